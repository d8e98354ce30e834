package agg

import (
	"testing"
	"time"

	"github.com/tally-db/tally/siddhiql"
)

func ms(t *testing.T, s string) int64 {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm.UnixMilli()
}

func TestClock_StartAndNext(t *testing.T) {
	cases := []struct {
		zone      string
		ts        string
		d         siddhiql.Duration
		start     string
		nextStart string
	}{
		{"GMT", "2018-01-01T05:10:00.123Z", siddhiql.Seconds, "2018-01-01T05:10:00Z", "2018-01-01T05:10:01Z"},
		{"GMT", "2018-01-01T05:10:59.999Z", siddhiql.Minutes, "2018-01-01T05:10:00Z", "2018-01-01T05:11:00Z"},
		{"GMT", "2018-01-01T05:59:59Z", siddhiql.Hours, "2018-01-01T05:00:00Z", "2018-01-01T06:00:00Z"},
		// Leap day: Feb 29 is its own day; the month runs to Mar 1.
		{"GMT", "2024-02-29T23:59:59.999Z", siddhiql.Days, "2024-02-29T00:00:00Z", "2024-03-01T00:00:00Z"},
		{"GMT", "2024-02-29T12:00:00Z", siddhiql.Months, "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z"},
		{"GMT", "2023-02-28T12:00:00Z", siddhiql.Months, "2023-02-01T00:00:00Z", "2023-03-01T00:00:00Z"},
		// 2100 is not a leap year (Siddhi's year%4 rule would say it is).
		{"GMT", "2100-02-28T12:00:00Z", siddhiql.Days, "2100-02-28T00:00:00Z", "2100-03-01T00:00:00Z"},
		// Month and year ends.
		{"GMT", "2017-12-31T23:59:59.999Z", siddhiql.Months, "2017-12-01T00:00:00Z", "2018-01-01T00:00:00Z"},
		{"GMT", "2017-12-31T23:59:59.999Z", siddhiql.Years, "2017-01-01T00:00:00Z", "2018-01-01T00:00:00Z"},
		{"GMT", "2018-01-01T00:00:00Z", siddhiql.Years, "2018-01-01T00:00:00Z", "2019-01-01T00:00:00Z"},
		// +05:30: hour buckets at XX:30Z, days at 18:30Z.
		{"Asia/Kolkata", "2018-01-01T05:10:00Z", siddhiql.Hours, "2018-01-01T04:30:00Z", "2018-01-01T05:30:00Z"},
		{"Asia/Kolkata", "2018-01-01T05:10:00Z", siddhiql.Days, "2017-12-31T18:30:00Z", "2018-01-01T18:30:00Z"},
		{"Asia/Kolkata", "2017-12-31T18:29:59Z", siddhiql.Years, "2016-12-31T18:30:00Z", "2017-12-31T18:30:00Z"},
		{"Asia/Kolkata", "2017-12-31T18:30:00Z", siddhiql.Years, "2017-12-31T18:30:00Z", "2018-12-31T18:30:00Z"},
		// Seconds and minutes are epoch arithmetic, whatever the zone.
		{"Asia/Kolkata", "2018-01-01T05:10:07.5Z", siddhiql.Minutes, "2018-01-01T05:10:00Z", "2018-01-01T05:11:00Z"},
		// DST in New York: 2024-03-10 has 23 hours, 2024-11-03 has 25.
		{"America/New_York", "2024-03-10T12:00:00Z", siddhiql.Days, "2024-03-10T05:00:00Z", "2024-03-11T04:00:00Z"},
		{"America/New_York", "2024-11-03T12:00:00Z", siddhiql.Days, "2024-11-03T04:00:00Z", "2024-11-04T05:00:00Z"},
		// The repeated 01:00 hour keeps its own offset.
		{"America/New_York", "2024-11-03T05:30:00Z", siddhiql.Hours, "2024-11-03T05:00:00Z", "2024-11-03T06:00:00Z"},
		{"America/New_York", "2024-11-03T06:30:00Z", siddhiql.Hours, "2024-11-03T06:00:00Z", "2024-11-03T07:00:00Z"},
	}
	for _, c := range cases {
		t.Run(c.zone+"/"+c.ts+"/"+c.d.String(), func(t *testing.T) {
			clk, err := NewClock(c.zone)
			if err != nil {
				t.Fatal(err)
			}
			got := clk.Start(ms(t, c.ts), c.d)
			if want := ms(t, c.start); got != want {
				t.Errorf("Start = %s, want %s", FormatMillis(got), FormatMillis(want))
			}
			if next, want := clk.Next(got, c.d), ms(t, c.nextStart); next != want {
				t.Errorf("Next = %s, want %s", FormatMillis(next), FormatMillis(want))
			}
		})
	}
}

func TestNewClock_BadZone(t *testing.T) {
	if _, err := NewClock("Mars/Olympus"); err == nil {
		t.Fatal("NewClock accepted an unknown zone")
	}
}

func TestParseTimestamp(t *testing.T) {
	cases := []struct {
		in   string
		want string
		bad  bool
	}{
		{in: "2018-01-01 05:10:00", want: "2018-01-01T05:10:00Z"},
		{in: "2018-01-01 10:40:00 +05:30", want: "2018-01-01T05:10:00Z"},
		{in: "2018-01-01 00:10:00 -05:00", want: "2018-01-01T05:10:00Z"},
		{in: "2018-01-01T05:10:00", bad: true},
		{in: "2018-13-01 05:10:00", bad: true},
		{in: "yesterday", bad: true},
	}
	for _, c := range cases {
		got, err := ParseTimestamp(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("ParseTimestamp(%q) accepted a bad time", c.in)
			}
			continue
		}
		if err != nil || got != ms(t, c.want) {
			t.Errorf("ParseTimestamp(%q) = %d, %v; want %s", c.in, got, err, c.want)
		}
	}
}

func TestWithinPattern(t *testing.T) {
	cases := []struct {
		in         string
		start, end string
		bad        bool
	}{
		{in: "2014-02-15 10:20:30", start: "2014-02-15T10:20:30Z", end: "2014-02-15T10:20:31Z"},
		{in: "2014-02-15 10:20:**", start: "2014-02-15T10:20:00Z", end: "2014-02-15T10:21:00Z"},
		{in: "2014-02-15 10:**:**", start: "2014-02-15T10:00:00Z", end: "2014-02-15T11:00:00Z"},
		{in: "2014-02-15 **:**:** +05:30", start: "2014-02-14T18:30:00Z", end: "2014-02-15T18:30:00Z"},
		{in: "2014-02-** **:**:**", start: "2014-02-01T00:00:00Z", end: "2014-03-01T00:00:00Z"},
		{in: "2016-**-** **:**:**", start: "2016-01-01T00:00:00Z", end: "2017-01-01T00:00:00Z"},
		{in: "2016-02-** **:**:** +05:30", start: "2016-01-31T18:30:00Z", end: "2016-02-29T18:30:00Z"},
		{in: "2014-02-15 **:20:**", bad: true},
		{in: "2014-02-15", bad: true},
	}
	for _, c := range cases {
		s, e, err := WithinPattern(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("WithinPattern(%q) accepted a bad pattern", c.in)
			}
			continue
		}
		if err != nil || s != ms(t, c.start) || e != ms(t, c.end) {
			t.Errorf("WithinPattern(%q) = %s, %s, %v; want %s, %s", c.in, FormatMillis(s), FormatMillis(e), err, c.start, c.end)
		}
	}
}
