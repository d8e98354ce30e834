package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tally-db/tally/raftnode"
)

// The --smtp-* flags reach each replica's configuration, the password read from its file.
func TestServeConfig_SMTPFlags(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "smtp-password")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := load(t, "--id", "n1", "--data-dir", dir, "--smtp-host", "relay.example.com", "--smtp-port", "2525",
		"--smtp-username", "tally", "--smtp-password-file", pw, "--smtp-from", "alerts@example.com", "--smtp-tls", "starttls")
	if err != nil {
		t.Fatal(err)
	}
	want := raftnode.SMTPConfig{Host: "relay.example.com", Port: 2525, Username: "tally", Password: "s3cret", From: "alerts@example.com", TLS: raftnode.SMTPStartTLS}
	if got := nodeConfig(cfg, 0, dir, "0", nil, slog.New(slog.DiscardHandler)).SMTP; got != want {
		t.Errorf("node SMTP %+v, want %+v", got, want)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--smtp-tls", "ssl"}, `--smtp-tls "ssl": want none, starttls or tls`},
		{[]string{"--smtp-port", "70000"}, "--smtp-port 70000"},
		{[]string{"--smtp-from", "not an address"}, `--smtp-from "not an address" is not an email address`},
		{[]string{"--smtp-password-file", filepath.Join(dir, "missing")}, "--smtp-password-file"},
	} {
		if _, err := load(t, append([]string{"--id", "n1", "--data-dir", dir}, c.args...)...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v, want %q", c.args, err, c.want)
		}
	}
}

// A WSO2 deployment.yaml's email sink properties (siddhi.extensions) are the node's SMTP
// server; Tally's own keys and the flags win over them.
func TestServeConfig_SMTPFromWSO2Extensions(t *testing.T) {
	yaml := `wso2.carbon:
  id: si-1
siddhi:
  extensions:
    - extension:
        name: email
        namespace: sink
        properties:
          username: alerts
          address: alerts@example.com
          password: from-yaml
          host: smtp.example.com
          port: 465
          ssl.enable: true
          mail.smtp.timeout: 10000
    - extension:
        name: http
        namespace: sink
        properties:
          clientBootstrapBossGroupSize: 4
smtp-from: ops@example.com
`
	cfg, err := load(t, "--config", writeConfig(t, yaml), "--smtp-port", "2465")
	if err != nil {
		t.Fatal(err)
	}
	want := raftnode.SMTPConfig{Host: "smtp.example.com", Port: 2465, Username: "alerts", Password: "from-yaml", From: "ops@example.com", TLS: raftnode.SMTPTLS}
	if cfg.smtp != want {
		t.Errorf("SMTP %+v, want %+v", cfg.smtp, want)
	}
	if got := strings.Join(cfg.ignored, " "); got != "siddhi.extensions.email.mail.smtp.timeout siddhi.extensions.sink:http" {
		t.Errorf("ignored %q", got)
	}
}
