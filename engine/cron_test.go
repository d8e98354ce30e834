package engine

import (
	"strings"
	"testing"
	"time"
)

func ms(s string) int64 {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMilli()
}

func TestCron_Next(t *testing.T) {
	tests := []struct {
		expr, after, want string
	}{
		{"*/5 * * * * ?", "2026-01-01T00:00:00Z", "2026-01-01T00:00:05Z"},
		{"*/5 * * * * ?", "2026-01-01T00:00:04Z", "2026-01-01T00:00:05Z"},
		{"*/5 * * * * ?", "2026-01-01T00:00:59Z", "2026-01-01T00:01:00Z"},
		{"0 0 12 * * ?", "2026-01-01T12:00:00Z", "2026-01-02T12:00:00Z"},
		{"0 15 10 ? * MON-FRI", "2026-01-02T11:00:00Z", "2026-01-05T10:15:00Z"}, // Fri → Mon
		{"0 0 0 1 JAN ?", "2026-06-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"0 0 0 29 2 ?", "2026-03-01T00:00:00Z", "2028-02-29T00:00:00Z"},
		{"0 0/30 8-9 * * ?", "2026-01-01T08:40:00Z", "2026-01-01T09:00:00Z"},
		{"10,20 * * * * ?", "2026-01-01T00:00:15Z", "2026-01-01T00:00:20Z"},
		{"0 0 0 ? * 1", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z"}, // 1 is Sunday
		{"0 0 0 1 1 ? 2030", "2026-01-01T00:00:00Z", "2030-01-01T00:00:00Z"},
	}
	for _, tt := range tests {
		c, err := parseCron(tt.expr)
		if err != nil {
			t.Fatalf("%q: %v", tt.expr, err)
		}
		got, ok := c.next(ms(tt.after))
		if !ok || got != ms(tt.want) {
			t.Errorf("%q after %s = %s (%v), want %s", tt.expr, tt.after, time.UnixMilli(got).UTC().Format(time.RFC3339), ok, tt.want)
		}
	}
	c, _ := parseCron("0 0 0 30 2 ?")
	if got, ok := c.next(ms("2026-01-01T00:00:00Z")); ok {
		t.Errorf("30 February fired at %d", got)
	}
}

func TestCron_Errors(t *testing.T) {
	tests := []struct{ expr, want string }{
		{"* * * * *", "has 5 fields, want 6 or 7"},
		{"60 * * * * ?", "cron field seconds: 60 is outside 0-59"},
		{"* * * 1 * MON", "one of them must be '?'"},
		{"? * * * * *", "'?' is only allowed in day-of-month and day-of-week"},
		{"* * * L * ?", `cron field day-of-month: "L" is not a number`},
		{"*/0 * * * * ?", `step "0" is not a positive number`},
		{"* * 5-2 * * ?", "range 5-2 goes backwards"},
	}
	for _, tt := range tests {
		if _, err := parseCron(tt.expr); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want %q", tt.expr, err, tt.want)
		}
	}
}
