package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tally-db/tally/httpapi"
	"github.com/tally-db/tally/node"
	"github.com/tally-db/tally/raftnode"
)

func TestServeConfig_DialMapAndFaultInjection(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tally.yaml")
	yaml := "id: n1\ndata-dir: " + filepath.Join(dir, "d") + "\nfault-injection: true\ndial-map: {\"127.0.0.1:7071\": \"127.0.0.1:9001\"}\n"
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := load(t, "--config", file)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.FaultInjection || !reflect.DeepEqual(cfg.DialMap, raftnode.DialMap{"127.0.0.1:7071": "127.0.0.1:9001"}) {
		t.Errorf("from the file: fault injection %v, dial map %v", cfg.FaultInjection, cfg.DialMap)
	}
	// Flags win, repeated or comma-separated.
	cfg, err = load(t, "--config", file, "--fault-injection=false", "--dial-map", "127.0.0.1:7081=127.0.0.1:9002, 127.0.0.1:7080=127.0.0.1:9003", "--dial-map", "n3:7091=proxy:9004")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.FaultInjection || cfg.DialMap.String() != "127.0.0.1:7080=127.0.0.1:9003,127.0.0.1:7081=127.0.0.1:9002,n3:7091=proxy:9004" {
		t.Errorf("from flags: fault injection %v, dial map %v", cfg.FaultInjection, cfg.DialMap)
	}
	// Off and empty by default.
	cfg, err = load(t, "--id", "n1", "--data-dir", filepath.Join(dir, "d"))
	if err != nil || cfg.FaultInjection || len(cfg.DialMap) != 0 || cfg.DialMap.Dialer() != nil {
		t.Errorf("defaults: %v, fault injection %v, dial map %v", err, cfg.FaultInjection, cfg.DialMap)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("id: n1\ndial-map: {\"x\": \"127.0.0.1:1\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--id", "n1", "--dial-map", "127.0.0.1:7071"}, `--dial-map: dial map entry "127.0.0.1:7071": want FROM=TO`},
		{[]string{"--id", "n1", "--dial-map", "a:1=b:2,a:1=c:3"}, `--dial-map: dial map entry "a:1=c:3": a:1 is already mapped to b:2`},
		{[]string{"--config", bad}, `dial-map: dial map entry "x=127.0.0.1:1": "x" is not host:port`},
	} {
		if _, err := load(t, c.args...); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%v: err = %v, want %q", c.args, err, c.msg)
		}
	}
}

// TestServe_ClientsDialThroughMap: the join and cluster-shape requests of tally serve
// connect to the mapped address and keep the original host in the URL.
func TestServe_ClientsDialThroughMap(t *testing.T) {
	var mu sync.Mutex
	var hosts []string
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /v1/cluster/status": answer(200, `{"id":"n1","groups":[{"id":0},{"id":1}]}`),
		"POST /v1/cluster/join":  answer(200, `{"status":"joined"}`),
	})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts = append(hosts, r.Host)
		mu.Unlock()
		api.Config.Handler.ServeHTTP(w, r)
	}))
	defer front.Close()
	const far = "n1.tally.invalid:7070" // resolves nowhere: only the map reaches it
	dial := raftnode.DialMap{far: strings.TrimPrefix(front.URL, "http://")}.Dialer()
	cfg := serveConfig{ID: "n2", RaftAddr: "127.0.0.1:7081", HTTPAddr: "127.0.0.1:7080", Join: []string{"http://" + far}}
	logger := slog.New(slog.DiscardHandler)
	n, err := node.GroupsOf(t.Context(), nodeClient(5*time.Second, dial), cfg.Join, logger)
	if err != nil || n != 2 {
		t.Fatalf("groupsOf through the map: %d, %v", n, err)
	}
	jr := httpapi.JoinRequest{ID: cfg.ID, RaftAddr: cfg.RaftAddr, HTTPAddr: cfg.HTTPAddr}
	if err := node.Join(t.Context(), nodeClient(10*time.Second, dial), cfg.Join, jr, logger); err != nil {
		t.Fatalf("join through the map: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(hosts, []string{far, far}) {
		t.Errorf("Host headers %v, want the original %s twice", hosts, far)
	}
}

func TestTransferCommand(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{"POST /v1/cluster/transfer": answer(200, `{"group":1,"leader":"n3"}`)})
	code, out, errOut := tally(t, "transfer", "--addr", api.URL, "--group", "1", "--to", "n3")
	if code != 0 || out != "group 1: leader is now n3\n" {
		t.Fatalf("exit %d, printed %q, stderr %s", code, out, errOut)
	}
	code, out, _ = tally(t, "transfer", "--addr", api.URL, "--json")
	if code != 0 || out != `{"group":1,"leader":"n3"}`+"\n" {
		t.Errorf("--json: exit %d, printed %q", code, out)
	}
	reqs := api.recorded()
	if len(reqs) != 2 || reqs[0].Query != "group=1&to=n3" || reqs[1].Query != "" || reqs[1].Method != "POST" {
		t.Errorf("requests: %+v", reqs)
	}

	refuse := newFakeAPI(t, map[string]http.HandlerFunc{"POST /v1/cluster/transfer": answer(400, `{"error":"raftnode: not a voter of the group: \"n9\" is not a voter of group 0 (voters: n1, n2)"}`)})
	code, _, errOut = tally(t, "transfer", "--addr", refuse.URL, "--to", "n9")
	if code != 1 || !strings.Contains(errOut, `"n9" is not a voter of group 0`) {
		t.Errorf("refused: exit %d, stderr %s", code, errOut)
	}
	if code, _, _ := tally(t, "transfer", "--addr", api.URL, "extra"); code != 2 {
		t.Errorf("extra argument: exit %d, want 2", code)
	}
}
