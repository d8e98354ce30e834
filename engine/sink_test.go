package engine

import (
	"slices"
	"strings"
	"testing"
)

func TestSinks_Parse(t *testing.T) {
	e, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Deploy(`@app:name('A')
define stream S (symbol string, q long);
@sink(type='http', publisher.url='http://127.0.0.1:9/alerts', headers="'X-Key:abc','X-Other: 2'",
      timeout='5 sec', retry.interval='50 millisec', retry.max.interval='1 min 30 sec', @map(type='json'))
@sink(type='log', prefix='ALERT')
define stream Alerts (symbol string, t long);
from S#window.time(1 min) select symbol, sum(q) as t group by symbol having t > 100 insert into Alerts;
from Alerts select symbol insert into Loud;
from S[q > 5] select symbol insert into Big;
`)
	if err != nil {
		t.Fatal(err)
	}
	s := e.Sinks()
	if len(s) != 2 {
		t.Fatalf("%d sinks", len(s))
	}
	h := s[0]
	if h.Type != SinkHTTP || h.URL != "http://127.0.0.1:9/alerts" || h.TimeoutMillis != 5000 || h.RetryIntervalMillis != 50 ||
		h.MaxBackoffMillis != 90_000 || !slices.Equal(h.Headers, [][2]string{{"X-Key", "abc"}, {"X-Other", "2"}}) || h.Index != 0 || h.App != "A" {
		t.Errorf("http sink %#v", h)
	}
	if l := s[1]; l.Type != SinkLog || l.Prefix != "ALERT" || l.Index != 1 || l.Stream != "Alerts" {
		t.Errorf("log sink %#v", l)
	}
	if got := h.String(); got != "sink 0 (http http://127.0.0.1:9/alerts) of stream Alerts" {
		t.Errorf("String %q", got)
	}
	if got := e.Reaches("S"); !slices.Equal(got, []string{"Alerts", "Big", "Loud"}) {
		t.Errorf("Reaches(S) = %v", got)
	}
	if got := e.Reaches("Alerts"); !slices.Equal(got, []string{"Loud"}) {
		t.Errorf("Reaches(Alerts) = %v", got)
	}
	if !e.IsOutputStream("Loud") || e.IsOutputStream("S") {
		t.Error("IsOutputStream")
	}
	if len(e.SinksOf("Alerts")) != 2 || e.SinksOf("S") != nil {
		t.Error("SinksOf")
	}
}

func TestSinks_Errors(t *testing.T) {
	const tail = "define stream Out (symbol string);\nfrom S select symbol insert into Out;\n"
	for _, c := range []struct{ sink, want string }{
		{"@sink(type='kafka')", "2:7: unknown sink type \"kafka\""},
		{"@sink(publisher.url='http://x/')", "2:1: @sink needs a type"},
		{"@sink(type='http')", "2:1: @sink(type='http') needs publisher.url"},
		{"@sink(type='http', publisher.url='ftp://x/')", "2:20: publisher.url \"ftp://x/\" is not an http"},
		{"@sink(type='http', publisher.url='http://x/', timeout='soon')", "2:47: timeout \"soon\" is not a positive duration"},
		{"@sink(type='http', publisher.url='http://x/', method='PUT')", "2:47: @sink(type='http') has no option method"},
		{"@sink(type='log', @map(type='xml'))", "2:24: @map: only type='json'"},
		{"@sink(type='http', publisher.url='http://x/', headers='nocolon')", "2:47: headers: header 1 is not Name:value"},
	} {
		e, _ := New(Config{})
		_, err := e.Deploy("@app:name('A') define stream S (symbol string);\n" + c.sink + "\n" + tail)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.sink, err, c.want)
		}
	}
	e, _ := New(Config{})
	_, err := e.Deploy("@app:name('A')\n@sink(type='log')\ndefine stream S (symbol string);\n" + tail)
	if err == nil || !strings.Contains(err.Error(), "2:1: stream S has a @sink but no query inserts into it") {
		t.Errorf("sink on an input stream: %v", err)
	}
}
