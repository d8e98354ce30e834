package engine

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tally-db/tally/engine/expr"
)

// Two receivers publish the same topic from streams of the same name, and two summary apps
// each subscribe a stream Request of their own: Siddhi scopes streams per app, and so does
// Tally.
const (
	recvA = `@app:name('RecvA')
@source(type='http', receiver.url='http://0.0.0.0:8080/a')
define stream InReq (api string, n int);
@sink(type='inMemory', topic='Req')
define stream Request (api string, n int);
from InReq select api, n insert into Request;`
	recvB = `@app:name('Recv.B')
@source(type='http', receiver.url='http://0.0.0.0:8080/b')
define stream InReq (api string, n int);
@sink(type='inMemory', topic='Req')
define stream Request (api string, n int);
from InReq select api, n * 10 as n insert into Request;`
	sumA = `@app:name('SumA')
@source(type='inMemory', topic='Req')
define stream Request (api string, n int);
from Request select api, n insert into SeenA;`
	sumB = `@app:name('SumB')
@source(type='inMemory', topic='Req')
define stream Request (api string, n int);
from Request[n > 5] select api insert into SeenB;`
)

func TestScope_SameStreamNameInSeveralApps(t *testing.T) {
	e := newEngineApps(t, []string{recvA, recvB, sumA, sumB})

	// A bare name several apps define is ambiguous; the error names the qualified names.
	_, err := e.Apply(1, 1000, "InReq", []expr.Row{{expr.String("x"), expr.Int(1)}})
	if !errors.Is(err, ErrUnknownStream) || !strings.Contains(err.Error(), "Recv.B.InReq or RecvA.InReq") {
		t.Fatalf("bare ambiguous name: err = %v", err)
	}
	if _, ok := e.Stream("InReq"); ok {
		t.Error("Stream resolved an ambiguous bare name")
	}

	// App.Stream addresses one app's stream, also when the app name has a dot.
	outs, err := e.Apply(2, 1001, "Recv.B.InReq", []expr.Row{{expr.String("x"), expr.Int(1)}})
	if err != nil {
		t.Fatal(err)
	}
	want := `Recv.B/Request{"api":"x","n":10} SumA/SeenA{"api":"x","n":10} SumB/SeenB{"api":"x"}`
	if got := streams(outs); got != want {
		t.Errorf("outputs %s\nwant %s", got, want)
	}
	outs, err = e.Apply(3, 1002, "RecvA.InReq", []expr.Row{{expr.String("y"), expr.Int(2)}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := streams(outs), `RecvA/Request{"api":"y","n":2} SumA/SeenA{"api":"y","n":2}`; got != want {
		t.Errorf("outputs %s\nwant %s", got, want)
	}
	if app, s, err := e.ResolveStream("SumB.Request"); err != nil || app != "SumB" || s != "Request" {
		t.Errorf("ResolveStream(SumB.Request) = %s %s %v", app, s, err)
	}
	if _, _, err := e.ResolveStream("SumB.Nope"); !errors.Is(err, ErrUnknownStream) {
		t.Errorf("unknown qualified stream: err = %v", err)
	}

	// Undeploying one receiver makes its stream names unambiguous again.
	e.Undeploy("Recv.B")
	if _, err := e.Apply(5, 1004, "InReq", []expr.Row{{expr.String("z"), expr.Int(3)}}); err != nil {
		t.Errorf("bare name after undeploy: %v", err)
	}

	// The scoping survives a restore.
	restored, _ := New(Config{})
	if err := restored.UnmarshalBinary(encode(t, e)); err != nil {
		t.Fatal(err)
	}
	if _, ok := restored.Stream("InReq"); !ok {
		t.Error("restored engine lost the bare name")
	}
}

func TestScope_PlainInputNamesStayGlobal(t *testing.T) {
	e := newEngineApps(t, []string{`@app:name('P') define stream S (a int); from S select a insert into O;`})
	// A second plain input of the same name would take producers' events away: refused.
	_, err := e.Deploy(`@app:name('Q') define stream S (a int); from S select a insert into O2;`)
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "already defined by app P") {
		t.Fatalf("second plain input S: err = %v", err)
	}
	// A stream of the same name that is fed by the app's own query or by an @source is
	// scoped to its app; the bare name keeps going to the plain input.
	if _, err := e.Deploy(`@app:name('R') define stream X (a int); define stream S (a int); from X select a insert into S;`); err != nil {
		t.Fatalf("scoped S: %v", err)
	}
	if _, err := e.Deploy(`@app:name('T') @source(type='http', receiver.url='http://0.0.0.0:1/x') define stream S (a int); from S select a insert into O3;`); err != nil {
		t.Fatalf("@source S: %v", err)
	}
	outs, err := e.Apply(1, 1, "S", []expr.Row{{expr.Int(7)}})
	if err != nil {
		t.Fatal(err)
	}
	if got := streams(outs); got != `P/O{"a":7}` {
		t.Errorf("bare S reached %s, want only P", got)
	}
	outs, err = e.Apply(2, 2, "T.S", []expr.Row{{expr.Int(8)}})
	if err != nil {
		t.Fatal(err)
	}
	if got := streams(outs); got != `T/O3{"a":8}` {
		t.Errorf("T.S reached %s", got)
	}
}

// A subscriber that takes some of the publisher's attributes gets them by name.
func TestInMemory_SubscriberTakesSomeAttributesByName(t *testing.T) {
	pub := `@app:name('Pub3')
define stream In (user string, api string, method string, ts long);
@sink(type='inMemory', topic='T3')
define stream Out (user string, api string, method string, ts long);
from In select * insert into Out;`
	sub := `@app:name('Sub3')
@source(type='inMemory', topic='T3')
define stream Out (user string, ts long);
from Out select user, ts insert into Seen;`
	e := newEngineApps(t, []string{pub, sub})
	outs, err := e.Apply(1, 1, "In", []expr.Row{{expr.String("u"), expr.String("a"), expr.String("GET"), expr.Long(42)}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := streams(outs), `Pub3/Out{"user":"u","api":"a","method":"GET","ts":42} Sub3/Seen{"user":"u","ts":42}`; got != want {
		t.Errorf("outputs %s\nwant %s", got, want)
	}
	// A subscriber attribute the publisher lacks, or of another type, is still refused.
	for _, bad := range []string{
		"@app:name('Bad') @source(type='inMemory', topic='T3') define stream B (user string, host string);",
		"@app:name('Bad') @source(type='inMemory', topic='T3') define stream B (user string, ts int);",
	} {
		if _, err := e.Deploy(bad); err == nil || !strings.Contains(err.Error(), "do not match") {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
}

// @sink(type='email') is a delivered sink; one that names no host gets a note (the node's
// SMTP server sends it). The outputs are as before.
func TestSink_EmailIsDelivered(t *testing.T) {
	e := newEngineApps(t, []string{`@app:name('Mail')
define stream In (to string, msg string);
@sink(type='email', content.type="text/html", @map(type='text', @payload('<b>{{msg}}</b>')), subject='Alert', to='{{to}}')
define stream Mails (to string, msg string);
from In select to, msg insert into Mails;`})
	s := e.Sinks()
	if len(s) != 1 || s[0].Type != SinkEmail || s[0].Email == nil || s[0].Email.To.Text != "{{to}}" ||
		s[0].Email.ContentType != EmailTextHTML || s[0].Email.Payload.Text != "<b>{{msg}}</b>" || s[0].String() != "sink 0 (email to {{to}}) of stream Mails" {
		t.Fatalf("sinks = %+v", s)
	}
	a, _ := e.App("Mail")
	if len(a.Notes) != 1 || !strings.Contains(a.Notes[0], "@sink(type='email') names no host: mail goes through the node's SMTP server") {
		t.Errorf("notes = %q", a.Notes)
	}
	outs, err := e.Apply(1, 1, "In", []expr.Row{{expr.String("a@b"), expr.String("hi")}})
	if err != nil || streams(outs) != `Mail/Mails{"to":"a@b","msg":"hi"}` {
		t.Errorf("outputs %s, err %v", streams(outs), err)
	}
	m, err := s[0].Email.Render([]byte(`{"to":"a@b","msg":"x<y"}`), nil)
	if err != nil || m.Body != "<b>x&lt;y</b>" || m.Subject != "Alert" || len(m.To) != 1 || m.To[0].Address != "a@b" {
		t.Errorf("render: %+v, %v", m, err)
	}
}

// Two apps may declare email sinks on streams of the same name (two of the API-M apps do):
// while the name is shared, neither sends mail (outputs wait per stream name) and the deploy
// notes say so; undeploying one delivers the other's again. A log sink on a shared name is
// still refused.
func TestSink_EmailOnSharedStreamName(t *testing.T) {
	app := func(name string) string {
		return fmt.Sprintf(`@app:name('%s')
define stream In%s (to string);
@sink(type='email', subject='s', to='{{to}}')
define stream EmailNotificationStream (to string);
from In%s select to insert into EmailNotificationStream;`, name, name, name)
	}
	e := newEngineApps(t, []string{app("A")})
	if len(e.Sinks()) != 1 || len(e.SinksOf("EmailNotificationStream")) != 1 {
		t.Fatalf("one app: sinks %+v", e.Sinks())
	}
	b, err := e.Deploy(app("B"))
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Sinks()) != 0 {
		t.Errorf("shared name: sinks %+v", e.Sinks())
	}
	if n := b.Notes[len(b.Notes)-1]; !strings.Contains(n, "sends no mail while app A has a stream EmailNotificationStream too") {
		t.Errorf("notes %q", b.Notes)
	}
	if _, err := e.Deploy(`@app:name('C') define stream X (to string); @sink(type='log') define stream EmailNotificationStream (to string); from X select to insert into EmailNotificationStream;`); !errors.Is(err, ErrConflict) {
		t.Errorf("log sink on the shared name: err = %v", err)
	}
	e.Undeploy("A")
	if s := e.Sinks(); len(s) != 1 || s[0].App != "B" {
		t.Errorf("after undeploying A: sinks %+v", s)
	}
}

// Sinks deliver by stream name: another app's stream of the same name is refused, either
// way round, but not when restoring a state that already holds both.
func TestScope_SinkStreamNamesStayUnique(t *testing.T) {
	withSink := `@app:name('Alerting')
define stream In (a int);
@sink(type='log', prefix='ALERT')
define stream Alerts (a int);
from In select a insert into Alerts;`
	other := `@app:name('Other') define stream X (a int); from X select a insert into Alerts;`
	e := newEngineApps(t, []string{withSink})
	if _, err := e.Deploy(other); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "stream Alerts has a @sink(type='log') in app Alerting, and app Other has a stream Alerts too") {
		t.Errorf("other app inserting into Alerts: err = %v", err)
	}
	e2 := newEngineApps(t, []string{other})
	if _, err := e2.Deploy(withSink); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "in app Alerting, and app Other has a stream Alerts") {
		t.Errorf("sink app after the other: err = %v", err)
	}
	// Redeploying the sink's own app is no clash.
	if _, err := e.Deploy(strings.Replace(withSink, "prefix='ALERT'", "prefix='A'", 1)); err != nil {
		t.Errorf("redeploy: %v", err)
	}
	// A state written before the check restores.
	e2.restoring = true
	if _, err := e2.Deploy(withSink); err != nil {
		t.Fatalf("deploy while restoring: %v", err)
	}
	e2.restoring = false
	restored, _ := New(Config{})
	if err := restored.UnmarshalBinary(encode(t, e2)); err != nil {
		t.Errorf("restore a state with a clash: %v", err)
	}
}
