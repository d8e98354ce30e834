package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// wso2Snippet is WSO2's active-active deployment.yaml snippet, exactly.
const wso2Snippet = `wso2.carbon:
  id: wso2-si-1
siddhi:
  properties:
    partitionById: true
    shardId: wso2-si-1
`

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "deployment.yaml")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestServeConfig_WSO2Keys: WSO2's keys set the node ID, shard ID and time zone, in the
// dotted and the nested form; WSO2's other sections are ignored and named.
func TestServeConfig_WSO2Keys(t *testing.T) {
	cfg, err := load(t, "--config", writeConfig(t, wso2Snippet))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ID != "wso2-si-1" || cfg.ShardID != "wso2-si-1" || !cfg.shardIDSet || len(cfg.ignored) != 0 {
		t.Errorf("snippet: id %q shard %q (set %v), ignored %v", cfg.ID, cfg.ShardID, cfg.shardIDSet, cfg.ignored)
	}
	nested := `wso2:
  carbon:
    id: si-2
    name: WSO2 Streaming Integrator
  datasources:
    dataSources: []
siddhi:
  refs: []
  properties:
    aggTimeZone: Asia/Colombo
    partitionById: false
listenerConfigurations:
  - id: default
    port: 9090
wso2.metrics:
  enabled: false
http-addr: 127.0.0.1:9300
raft-addr: 127.0.0.1:9301
`
	cfg, err = load(t, "--config", writeConfig(t, nested))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ID != "si-2" || cfg.AggTimeZone != "Asia/Colombo" || cfg.ShardID != "0" || cfg.HTTPAddr != "127.0.0.1:9300" {
		t.Errorf("nested: %+v", cfg)
	}
	want := []string{"wso2.carbon.name", "wso2.datasources", "siddhi.refs", "listenerConfigurations", "wso2.metrics"}
	if !slices.Equal(cfg.ignored, want) {
		t.Errorf("ignored %v, want %v", cfg.ignored, want)
	}
	var log syncLog
	cfg.logIgnored(newLogger(&log, "info", "text"))
	if got := log.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "wso2.datasources, siddhi.refs") {
		t.Errorf("log: %q", got)
	}
}

// TestServeConfig_FileErrors: a bad file is refused naming the key and its line in plain
// words, never a Go type.
func TestServeConfig_FileErrors(t *testing.T) {
	for text, want := range map[string]string{
		"id: n1\ngroups: many\n":                                   `line 2: groups must be a whole number, got "many"`,
		"id: n1\nflush-interval: soon\n":                           `line 2: flush-interval must be a duration such as 500ms, 10s or 1h, got "soon"`,
		"id: n1\npprof: [1]\n":                                     `line 2: pprof must be true or false, got a list`,
		"wso2.carbon:\n  id: [a, b]\n":                             `line 2: wso2.carbon.id must be a string, got a list`,
		"wso2.carbon: x\n":                                         `line 1: wso2.carbon must be a mapping of keys, not "x"`,
		"siddhi:\n  properties:\n    partitionById: maybe\n":       `line 3: siddhi.properties.partitionById must be true or false, got "maybe"`,
		"siddhi:\n  properties:\n    shardId: a\n    shardId: b\n": `line 4: siddhi.properties.shardId is given twice (first on line 3)`,
		"id: n1\nhttp-adr: 127.0.0.1:1\n":                          `line 2: unknown key "http-adr"`,
		"store:\n  url: x\n":                                       `line 2: unknown key store.url`,
		"- id: n1\n":                                               `line 1: the file must be a mapping of keys`,
		"id: n1\n  bad: indent\n":                                  `not valid YAML: line 2`,
		"dial-map: [a]\n":                                          `line 1: dial-map must be a mapping of FROM: TO addresses, got a list`,
	} {
		_, err := load(t, "--config", writeConfig(t, text))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", text, err, want)
			continue
		}
		for _, goType := range []string{"main.", " int", "uint64", "time.Duration", "!!", "[]string", "unmarshal"} {
			if strings.Contains(err.Error(), goType) {
				t.Errorf("%q: the error speaks of Go types (%s): %v", text, goType, err)
			}
		}
	}
}

// TestServe_WSO2DeploymentYAML: tally serve --config with exactly WSO2's active-active
// snippet starts a node named wso2-si-1 whose group's shard ID is wso2-si-1.
func TestServe_WSO2DeploymentYAML(t *testing.T) {
	dir := t.TempDir()
	httpAddr := freeAddr(t)
	// No --bootstrap: a node named the WSO2 way stands alone, as a WSO2 active-active node.
	cfg, _ := startServe(t, "--config", writeConfig(t, wso2Snippet), "--data-dir", filepath.Join(dir, "data"),
		"--http-addr", httpAddr, "--raft-addr", freeAddr(t))
	if cfg.ID != "wso2-si-1" {
		t.Fatalf("node ID %q", cfg.ID)
	}
	var st struct {
		ID     string `json:"id"`
		Groups []struct {
			ShardID string `json:"shard_id"`
			Role    string `json:"role"`
		} `json:"groups"`
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + httpAddr + "/v1/cluster/status")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if err == nil && len(st.Groups) == 1 && st.Groups[0].ShardID != "" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no shard ID in the status: %+v, %v", st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.ID != "wso2-si-1" || st.Groups[0].ShardID != "wso2-si-1" {
		t.Errorf("status: node %q, group shard ID %q; want wso2-si-1 for both", st.ID, st.Groups[0].ShardID)
	}
}
