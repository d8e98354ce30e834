package raftnode

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/internal/certtest"
)

// mailApp mails each output of Alerts: to SYMBOL@example.com, cc ops@example.com.
func mailApp(timeout string) string {
	return fmt.Sprintf(`@app:name('Mail')
define stream S (symbol string, q long);
@sink(type='email', address='alerts@example.com', subject='Alert {{symbol}}', to='{{symbol}}@example.com', cc='ops@example.com',
      timeout='%s', retry.interval='10 millisec', retry.max.interval='100 millisec',
      @map(type='text', @payload('{{symbol}} reached {{t}}')))
define stream Alerts (symbol string, t long);
from S select symbol, q as t insert into Alerts;
`, timeout)
}

// mailCluster starts n nodes whose SMTP server is srv, and deploys mailApp.
func mailCluster(t *testing.T, n int, srv *smtpTestServer, timeout string, opts ...func(*Config)) *cluster {
	t.Helper()
	opts = append([]func(*Config){func(cfg *Config) {
		cfg.SMTP = SMTPConfig{Host: "127.0.0.1", Port: srv.port(), TLS: SMTPTLSNone, Username: srv.user, Password: srv.pass}
	}}, opts...)
	c := newCluster(t, n, opts...)
	leader := c.waitLeader(testTimeout)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	_, idx, err := leader.Deploy(ctx, mailApp(timeout))
	if err != nil {
		t.Fatal(err)
	}
	c.waitApplied(idx)
	return c
}

// byOutput groups messages by X-Tally-Output-ID.
func byOutput(msgs []smtpMessage) map[string][]smtpMessage {
	out := map[string][]smtpMessage{}
	for _, m := range msgs {
		id := m.header("X-Tally-Output-ID")
		out[id] = append(out[id], m)
	}
	return out
}

// checkMail checks that m is the mail of output id for symbol sym with t = v.
func checkMail(t *testing.T, m smtpMessage, id, sym string, v int64) {
	t.Helper()
	if got, want := m.header("Message-ID"), "<"+id+".Alerts.0@tally>"; got != want {
		t.Errorf("output %s: Message-ID %q, want %q", id, got, want)
	}
	if m.From != "alerts@example.com" || strings.Join(m.To, " ") != sym+"@example.com ops@example.com" {
		t.Errorf("output %s: envelope from %q to %q", id, m.From, m.To)
	}
	if m.header("Subject") != "Alert "+sym || m.header("To") != "<"+sym+"@example.com>" || m.header("Cc") != "<ops@example.com>" ||
		m.header("From") != "<alerts@example.com>" || !strings.HasPrefix(m.header("Content-Type"), "text/plain") {
		t.Errorf("output %s: headers\n%s", id, m.Data)
	}
	if got, want := strings.TrimSpace(m.body()), fmt.Sprintf("%s reached %d", sym, v); got != want {
		t.Errorf("output %s: body %q, want %q", id, got, want)
	}
}

// The leader mails every output once, in log order, with the sink's subject, recipients
// and payload, authenticating with the node's credentials; the position is replicated.
func TestEmailSink_MailsEveryOutputOnce(t *testing.T) {
	srv := newSMTPTestServer(t, func(s *smtpTestServer) { s.user, s.pass = "tally", "s3cret" })
	c := mailCluster(t, 1, srv, "2 sec")
	leader := c.waitLeader(testTimeout)
	for i := range 5 {
		ingest(t, leader, "p", uint64(i+1), row(fmt.Sprintf("s%d", i), int64(100+i)))
	}
	eventually(t, testTimeout, func() bool { return len(srv.messages()) >= 5 }, "5 mails")
	_, ids := alertsOf(t, leader)
	msgs := srv.messages()
	if len(ids) != 5 || len(msgs) != 5 {
		t.Fatalf("%d outputs, %d mails", len(ids), len(msgs))
	}
	for i, m := range msgs {
		if got := m.header("X-Tally-Output-ID"); got != ids[i] {
			t.Errorf("mail %d is output %s, want %s (log order)", i, got, ids[i])
		}
		checkMail(t, m, ids[i], fmt.Sprintf("s%d", i), int64(100+i))
	}
	eventually(t, testTimeout, func() bool {
		st := leader.SinkStatus()
		return len(st) == 1 && st[0].Undelivered == 0 && st[0].Type == "email" && !st[0].Failing
	}, "delivered position replicated")
}

// A 4xx answer is retried with backoff until the server takes the mail; a 5xx answer to the
// message is permanent: that mail is skipped (not retried) and the next ones go out; a
// recipient refused with 5xx leaves the mail to the others.
func TestEmailSink_TemporaryAndPermanentRefusals(t *testing.T) {
	srv := newSMTPTestServer(t)
	c := mailCluster(t, 1, srv, "2 sec")
	leader := c.waitLeader(testTimeout)
	status := func() SinkStatus { return leader.SinkStatus()[0] }

	srv.rcptCode.Store("451")
	ingest(t, leader, "p", 1, row("a", 1))
	eventually(t, testTimeout, func() bool {
		return srv.connections() >= 3 && status().Failing && strings.Contains(status().LastError, "451")
	}, "retries while the server answers 451")
	if n := len(srv.messages()); n != 0 {
		t.Fatalf("%d mails while refused", n)
	}
	srv.rcptCode.Store("")
	eventually(t, testTimeout, func() bool { return len(srv.messages()) == 1 }, "the mail once the server recovers")

	srv.dataCode.Store("554")
	ingest(t, leader, "p", 2, row("b", 2))
	eventually(t, testTimeout, func() bool { return strings.Contains(status().LastError, "554") }, "the 554 refusal")
	conns := srv.connections()
	srv.dataCode.Store("")
	srv.refuseRcpt.Store("c@example.com")
	ingest(t, leader, "p", 3, row("c", 3))
	eventually(t, testTimeout, func() bool { return len(srv.messages()) == 2 }, "the mail after the refused one")
	_, ids := alertsOf(t, leader)
	msgs := srv.messages()
	if len(ids) != 3 || msgs[0].header("X-Tally-Output-ID") != ids[0] || msgs[1].header("X-Tally-Output-ID") != ids[2] {
		t.Fatalf("outputs %v, mails %v", ids, msgs)
	}
	if strings.Join(msgs[1].To, " ") != "ops@example.com" {
		t.Errorf("with c@example.com refused, the mail went to %v", msgs[1].To)
	}
	if got := srv.connections() - conns; got != 1 {
		t.Errorf("%d connections after the permanent refusal, want 1 (no retry)", got)
	}
	eventually(t, testTimeout, func() bool { st := status(); return !st.Failing && st.Undelivered == 0 }, "every output delivered or skipped")
	if st := status(); st.Skipped != 1 {
		t.Errorf("skipped %d, want 1", st.Skipped)
	}
	leader.deliver.mu.Lock()
	got := leader.deliver.delivered[sinkName("Alerts", 0)]
	leader.deliver.mu.Unlock()
	if got != 2 {
		t.Errorf("delivered counter %d, want 2 (the skipped mail is not counted)", got)
	}
}

// A server that accepts connections and never answers costs one timeout per attempt: the
// worker retries, and mails as soon as the server speaks again.
func TestEmailSink_HangingServerTimesOut(t *testing.T) {
	srv := newSMTPTestServer(t)
	srv.hang.Store(true)
	c := mailCluster(t, 1, srv, "200 millisec")
	leader := c.waitLeader(testTimeout)
	ingest(t, leader, "p", 1, row("a", 7))
	start := time.Now()
	eventually(t, testTimeout, func() bool {
		st := leader.SinkStatus()[0]
		return srv.connections() >= 3 && st.Failing && strings.Contains(st.LastError, "no answer within 200ms")
	}, "timed-out attempts")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("3 attempts took %s with a 200ms timeout", d)
	}
	srv.hang.Store(false)
	eventually(t, testTimeout, func() bool { return len(srv.messages()) == 1 }, "the mail once the server answers")
	_, ids := alertsOf(t, leader)
	checkMail(t, srv.messages()[0], ids[0], "a", 7)
}

// A leader change in the middle: every output is mailed at least once; the new leader mails
// again what was sent but not yet recorded, with the same Message-ID and body.
func TestEmailSink_LeaderChange(t *testing.T) {
	srv := newSMTPTestServer(t)
	// Positions are recorded only when the sink has been idle for an hour: the new leader
	// mails everything again.
	c := mailCluster(t, 3, srv, "2 sec", func(cfg *Config) { cfg.DeliveryRecordInterval = time.Hour })
	for i := range 3 {
		ingestRetrying(t, c, uint64(i+1), row(fmt.Sprintf("s%d", i), int64(i)))
	}
	eventually(t, testTimeout, func() bool { return len(srv.messages()) >= 3 }, "first mails")
	leader := c.waitLeader(testTimeout)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	if _, err := leader.Transfer(ctx, ""); err != nil {
		t.Fatal(err)
	}
	waitLeaderOf(t, func() []*Node { return c.others(leader) }, testTimeout)
	for i := 3; i < 6; i++ {
		ingestRetrying(t, c, uint64(i+1), row(fmt.Sprintf("s%d", i), int64(i)))
	}
	c.waitConverged(testTimeout)
	_, ids := alertsOf(t, c.waitLeader(testTimeout))
	if len(ids) != 6 {
		t.Fatalf("%d outputs", len(ids))
	}
	// The new leader starts from the replicated position, before the first output: it mails
	// that one again. (The old leader may mail a few outputs more until it sees it lost
	// leadership.)
	eventually(t, testTimeout, func() bool {
		got := byOutput(srv.messages())
		return len(got) == 6 && len(got[ids[0]]) >= 2
	}, "every output mailed, the first one again by the new leader")
	got := byOutput(srv.messages())
	dups := 0
	for i, id := range ids {
		ms := got[id]
		for _, m := range ms {
			checkMail(t, m, id, fmt.Sprintf("s%d", i), int64(i))
			if m.Data != ms[0].Data {
				t.Errorf("output %s: a duplicate differs:\n%s\n%s", id, ms[0].Data, m.Data)
			}
		}
		dups += len(ms) - 1
	}
	t.Logf("%d mails for %d outputs (%d duplicates, same Message-ID)", len(srv.messages()), len(ids), dups)
}

// The sink's own options win over the node's; an app that names its host gets Siddhi's
// defaults (SMTPS on 465) for what it leaves out.
func TestEmailSink_ResolveSMTP(t *testing.T) {
	node := SMTPConfig{Host: "relay.internal", Username: "node", Password: "np", From: "tally@example.com", TLS: SMTPStartTLS}
	for _, c := range []struct {
		name string
		m    engine.EmailSink
		node SMTPConfig
		want smtpServer
	}{
		{"node's server", engine.EmailSink{}, node,
			smtpServer{host: "relay.internal", port: 587, tls: SMTPStartTLS, auth: true, user: "node", pass: "np", from: "tally@example.com"}},
		{"app's sender, no auth", engine.EmailSink{Address: "a@example.com", Auth: "false"}, node,
			smtpServer{host: "relay.internal", port: 587, tls: SMTPStartTLS, user: "node", pass: "np", from: "a@example.com"}},
		{"app's host", engine.EmailSink{Host: "smtp.example.com", Username: "me@example.com", Password: "pw"}, node,
			smtpServer{host: "smtp.example.com", port: 465, tls: SMTPTLS, auth: true, user: "me@example.com", pass: "pw", from: "tally@example.com"}},
		{"app's host without ssl", engine.EmailSink{Host: "smtp.example.com", SSL: "false", Port: 2525}, SMTPConfig{},
			smtpServer{host: "smtp.example.com", port: 2525, tls: smtpStartTLSIfOffered}},
		{"user as sender", engine.EmailSink{}, SMTPConfig{Host: "h", Username: "u@example.com", TLS: SMTPTLS},
			smtpServer{host: "h", port: 465, tls: SMTPTLS, auth: true, user: "u@example.com", from: "u@example.com"}},
		{"no server", engine.EmailSink{}, SMTPConfig{}, smtpServer{port: 25, tls: smtpStartTLSIfOffered}},
	} {
		if got := resolveSMTP(&c.m, c.node); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
	for _, v := range []string{"", "none", "STARTTLS", "tls"} {
		if _, err := ParseSMTPTLS(v); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
	if _, err := ParseSMTPTLS("ssl"); err == nil || !strings.Contains(err.Error(), `"ssl"`) {
		t.Errorf("ssl: %v", err)
	}
}

// The sink policy applies to SMTP hosts: a link-local or unlisted host an app names is
// refused at deploy; the node's own server is checked when dialed.
func TestEmailSink_Policy(t *testing.T) {
	srv := newSMTPTestServer(t)
	policy, err := ParseSinkPolicy([]string{"smtp.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	c := mailCluster(t, 1, srv, "1 sec", func(cfg *Config) { cfg.SinkPolicy = policy })
	leader := c.waitLeader(testTimeout)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	for host, want := range map[string]string{
		"169.254.169.254":   "SMTP host 169.254.169.254 is link-local",
		"smtp.evil.example": "SMTP host smtp.evil.example is not allowed by --sink-allow smtp.example.com",
	} {
		app := strings.Replace(mailApp("1 sec"), "@sink(type='email',", "@sink(type='email', host='"+host+"',", 1)
		if _, _, err := leader.Deploy(ctx, app); !errors.Is(err, ErrAppRefused) || !strings.Contains(err.Error(), want) {
			t.Errorf("host %s: err = %v, want %q", host, err, want)
		}
	}
	app := strings.Replace(mailApp("1 sec"), "@sink(type='email',", "@sink(type='email', host='smtp.example.com',", 1)
	if _, _, err := leader.Deploy(ctx, app); err != nil {
		t.Errorf("allowed host: %v", err)
	}
	// mailCluster deployed the app without a host before the check: the node's server,
	// 127.0.0.1, is not allowed when dialed.
	_, idx, err := leader.Deploy(ctx, mailApp("1 sec"))
	if err != nil {
		t.Fatal(err)
	}
	c.waitApplied(idx)
	ingest(t, leader, "p", 1, row("a", 1))
	eventually(t, testTimeout, func() bool {
		st := leader.SinkStatus()
		return len(st) == 1 && st[0].Failing && strings.Contains(st[0].LastError, "which --sink-allow smtp.example.com does not allow")
	}, "the node's SMTP server refused by the policy")
	if n := srv.connections(); n != 0 {
		t.Errorf("%d connections reached the server", n)
	}
}

// Without an SMTP server (no host option, no --smtp-host) each mail is logged and the sink
// moves on; a wrong password is retried and shown nowhere.
func TestEmailSink_NoServerAndBadCredentials(t *testing.T) {
	logs := &lockedBuffer{}
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	leader := c.waitLeader(testTimeout)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	_, idx, err := leader.Deploy(ctx, mailApp("1 sec"))
	if err != nil {
		t.Fatal(err)
	}
	c.waitApplied(idx)
	ingest(t, leader, "p", 1, row("zed", 5))
	eventually(t, testTimeout, func() bool {
		return strings.Contains(logs.String(), "mail (no SMTP server: logged, not sent)") && strings.Contains(logs.String(), `subject="Alert zed"`)
	}, "the mail logged")
	eventually(t, testTimeout, func() bool { return leader.SinkStatus()[0].Undelivered == 0 }, "the sink moves on")

	srv := newSMTPTestServer(t, func(s *smtpTestServer) { s.user, s.pass = "tally", "right" })
	logs2 := &lockedBuffer{}
	c2 := mailCluster(t, 1, srv, "1 sec", func(cfg *Config) {
		cfg.SMTP.Username, cfg.SMTP.Password = "tally", "wrong-hunter2"
		cfg.Logger = slog.New(slog.NewTextHandler(logs2, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	leader2 := c2.waitLeader(testTimeout)
	ingest(t, leader2, "p", 1, row("a", 1))
	eventually(t, testTimeout, func() bool {
		st := leader2.SinkStatus()[0]
		return srv.connections() >= 2 && st.Failing && strings.Contains(st.LastError, "535")
	}, "AUTH refused and retried")
	if st := leader2.SinkStatus()[0]; strings.Contains(st.LastError+logs2.String(), "hunter2") {
		t.Errorf("the password shows: %s\n%s", st.LastError, logs2.String())
	}
	if n := len(srv.messages()); n != 0 {
		t.Errorf("%d mails without authentication", n)
	}
}

// --smtp-tls starttls refuses a server that does not offer STARTTLS (no mail in clear text);
// the sink waits, failing, with the reason.
func TestEmailSink_StartTLSRequired(t *testing.T) {
	srv := newSMTPTestServer(t)
	c := mailCluster(t, 1, srv, "1 sec", func(cfg *Config) { cfg.SMTP.TLS = SMTPStartTLS })
	leader := c.waitLeader(testTimeout)
	ingest(t, leader, "p", 1, row("a", 1))
	eventually(t, testTimeout, func() bool {
		st := leader.SinkStatus()[0]
		return st.Failing && strings.Contains(st.LastError, "the server offers no STARTTLS (--smtp-tls starttls)")
	}, "STARTTLS required")
	if n := len(srv.messages()); n != 0 {
		t.Errorf("%d mails sent without TLS", n)
	}
}

// The message is valid MIME: a non-ASCII subject is encoded, a long body line is wrapped by
// quoted-printable, and both read back as rendered; the sender must be an address.
func TestEmailSink_Compose(t *testing.T) {
	e := engine.EmailSink{Map: engine.EmailMapText, ContentType: engine.EmailTextPlain}
	tr := &emailTransport{n: &Node{cfg: Config{Group: 3}}, sk: engine.Sink{Stream: "Alerts", Index: 1, Email: &e}}
	for from, want := range map[string]string{"": "has no sender", "not an address": "is not an address"} {
		tr.srv.from = from
		if _, err := tr.sender(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("sender %q: %v", from, err)
		}
	}
	tr.srv.from = "Alerts <alerts@example.com>"
	from, err := tr.sender()
	if err != nil || from.Address != "alerts@example.com" {
		t.Fatalf("sender %v, %v", from, err)
	}
	to, _ := mail.ParseAddressList("Zoë <z@example.com>, b@example.com")
	body := strings.Repeat("long line ", 30) + "\nünïcode = end"
	m := engine.Mail{Subject: "Grüße from Tally", To: to, ContentType: "text/plain", Body: body}
	entry := &fsm.OutEntry{Pos: fsm.OutPos{Index: 7, Seq: 2}, Time: 1514783400000}
	raw := tr.compose(entry, &m, from)
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || subject != m.Subject {
		t.Errorf("subject %q (%v)", subject, err)
	}
	if got := msg.Header.Get("Message-ID"); got != "<3-7-2.Alerts.1@tally>" {
		t.Errorf("Message-ID %q", got)
	}
	if d, err := msg.Header.Date(); err != nil || d.UnixMilli() != entry.Time {
		t.Errorf("Date %v (%v), want the output's time", d, err)
	}
	if list, err := msg.Header.AddressList("To"); err != nil || len(list) != 2 || list[0].Name != "Zoë" {
		t.Errorf("To %v (%v)", list, err)
	}
	for _, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 78 {
			t.Errorf("line of %d characters: %q", len(line), line)
		}
	}
	got, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if want := strings.ReplaceAll(body, "\n", "\r\n"); err != nil || string(got) != want { // text lines end in CRLF
		t.Errorf("body %q (%v), want %q", got, err, want)
	}
}

// TLS: SMTPS (ssl.enable='true', the default of an app that names its host) and STARTTLS,
// the server's certificate checked against the node's roots; authentication goes over
// TLS only.
func TestEmailSink_TLS(t *testing.T) {
	certs := certtest.New(t, t.TempDir(), "smtp")
	pair, err := tls.LoadX509KeyPair(certs.Pairs["smtp"].Cert, certs.Pairs["smtp"].Key)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(certs.CA)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{pair}}
	for _, implicit := range []bool{true, false} {
		srv := newSMTPTestServer(t, func(s *smtpTestServer) { s.user, s.pass, s.tls, s.implicit = "tally", "pw", serverTLS, implicit })
		app := strings.Replace(mailApp("2 sec"), "@sink(type='email',",
			fmt.Sprintf("@sink(type='email', host='localhost', port='%d', username='tally', password='pw', ssl.enable='%v',", srv.port(), implicit), 1)
		c := newCluster(t, 1, func(cfg *Config) { cfg.SMTP.TLSConfig = &tls.Config{RootCAs: roots} })
		leader := c.waitLeader(testTimeout)
		ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
		_, idx, err := leader.Deploy(ctx, app)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		c.waitApplied(idx)
		ingest(t, leader, "p", 1, row("a", 1))
		eventually(t, testTimeout, func() bool { return len(srv.messages()) == 1 }, "the mail over TLS (implicit %v)", implicit)
		_, ids := alertsOf(t, leader)
		m := srv.messages()[0]
		checkMail(t, m, ids[0], "a", 1)
		if !m.TLS {
			t.Errorf("implicit %v: the mail came in clear text", implicit)
		}
	}
}

// ingestRetrying sends part seq of producer "p" to whichever node leads until it applies:
// a leader that steps down under load answers with an error, and the dedup table makes the
// retry apply the part once.
func ingestRetrying(t *testing.T, c *cluster, seq uint64, rows ...expr.Row) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
		res, err := c.waitLeader(testTimeout).Ingest(ctx, []fsm.Part{part("p", seq, rows...)})
		cancel()
		if err == nil && len(res.Parts) == 1 && res.Parts[0].Err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingest seq %d: %v %+v", seq, err, res)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
