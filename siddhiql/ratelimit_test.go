package siddhiql

import "testing"

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
