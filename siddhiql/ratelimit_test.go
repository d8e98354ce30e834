package siddhiql

import (
	"strings"
	"testing"
)

func TestParse_OutputRate(t *testing.T) {
	tests := []struct {
		clause string
		want   OutputRate
		text   string
	}{
		{"output every 5 events", OutputRate{Kind: RateAll, Events: 5}, "output all every 5 events"},
		{"output all every 3 events", OutputRate{Kind: RateAll, Events: 3}, "output all every 3 events"},
		{"output first every 2 events", OutputRate{Kind: RateFirst, Events: 2}, "output first every 2 events"},
		{"output last every 10 events", OutputRate{Kind: RateLast, Events: 10}, "output last every 10 events"},
		{"output last every 1 minutes", OutputRate{Kind: RateLast, Millis: 60_000}, "output last every 1 min"},
		{"output first every 1 sec", OutputRate{Kind: RateFirst, Millis: 1000}, "output first every 1 sec"},
		{"output every 1 min 30 sec", OutputRate{Kind: RateAll, Millis: 90_000}, "output all every 1 min 30 sec"},
		{"output snapshot every 500 millisec", OutputRate{Kind: RateSnapshot, Millis: 500}, "output snapshot every 500 millisec"},
	}
	for _, tt := range tests {
		t.Run(tt.clause, func(t *testing.T) {
			q := queryOf(t, "from S select sym "+tt.clause+" insert into O;")
			if q.Rate == nil {
				t.Fatal("no rate parsed")
			}
			got := *q.Rate
			got.Pos = Pos{}
			if got != tt.want {
				t.Errorf("rate = %+v, want %+v", got, tt.want)
			}
			if q.Rate.Pos != (Pos{2, 19}) {
				t.Errorf("pos = %s, want 2:19", q.Rate.Pos)
			}
			if s := q.Rate.String(); s != tt.text {
				t.Errorf("String() = %q, want %q", s, tt.text)
			}
			if q.Into != "O" {
				t.Errorf("into = %q", q.Into)
			}
		})
	}
	if q := queryOf(t, "from S select sym insert into O;"); q.Rate != nil {
		t.Errorf("rate without output clause = %+v", q.Rate)
	}
}

func TestParse_Triggers(t *testing.T) {
	app := mustParse(t, `@app:name('T')
define trigger FiveSec at every 5 sec;
define trigger Once at 'start';
define trigger Cron at '*/5 * * * * ?';
from FiveSec select triggered_time insert into Out;`)
	if len(app.Triggers) != 3 {
		t.Fatalf("got %d triggers", len(app.Triggers))
	}
	a, b, c := app.Triggers[0], app.Triggers[1], app.Triggers[2]
	if a.Name != "FiveSec" || a.Every != 5000 || a.Start || a.Cron != "" || a.Pos != (Pos{2, 1}) {
		t.Errorf("every trigger = %+v", a)
	}
	if b.Name != "Once" || !b.Start || b.Every != 0 {
		t.Errorf("start trigger = %+v", b)
	}
	if c.Name != "Cron" || c.Cron != "*/5 * * * * ?" || c.CronPos != (Pos{4, 24}) {
		t.Errorf("cron trigger = %+v", c)
	}
	if attrs := a.Attributes(); len(attrs) != 1 || attrs[0].Name != "triggered_time" || attrs[0].Type != TypeLong {
		t.Errorf("attributes = %+v", attrs)
	}
	if _, err := Parse("define stream T (a int);\ndefine trigger T at 'start';"); err == nil || !strings.Contains(err.Error(), `"T" is already defined at 1:1`) {
		t.Errorf("duplicate name: err = %v", err)
	}
}
