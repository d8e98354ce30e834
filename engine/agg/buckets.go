package agg

import (
	"fmt"
	"strconv"
	"time"

	"github.com/tally-db/tally/siddhiql"
)

// Clock computes bucket starts for every granularity in one time zone (Siddhi's aggTimeZone).
// Seconds and minutes are epoch arithmetic, as in Siddhi; hours, days, months and years follow
// the zone's local calendar, so a +05:30 zone has hour buckets at XX:30Z.
type Clock struct {
	loc *time.Location
}

// NewClock returns a Clock for the IANA zone name (or "GMT"/"UTC"; empty means GMT).
func NewClock(zone string) (*Clock, error) {
	if zone == "" || zone == "GMT" || zone == "UTC" {
		return &Clock{loc: time.UTC}, nil
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, fmt.Errorf("agg: aggTimeZone %q is not a known time zone: %w", zone, err)
	}
	return &Clock{loc: loc}, nil
}

// Zone is the clock's zone name.
func (c *Clock) Zone() string {
	if c.loc == time.UTC {
		return "GMT"
	}
	return c.loc.String()
}

// nests reports whether every bucket of a granularity lies in one bucket of each coarser
// granularity for times from 1970 on, and Start of such a time is the greatest bucket start
// at or before it: true in UTC. (In other zones an hour or a day need not hold whole
// minutes, and before 1970 Start rounds the way Java's remainder does, towards zero.)
func (c *Clock) nests() bool { return c.loc == time.UTC }

// Start is the start (epoch ms) of the d bucket that holds ts.
func (c *Clock) Start(ts int64, d siddhiql.Duration) int64 {
	switch d {
	case siddhiql.Seconds:
		return ts - ts%1000 // Java's remainder, as Siddhi computes it
	case siddhiql.Minutes:
		return ts - ts%60000
	case siddhiql.Hours:
		t := time.UnixMilli(ts).In(c.loc)
		_, off := t.Zone()
		// Truncate in local time while keeping ts's own offset (java.time's resolution
		// during a DST overlap).
		local := ts + int64(off)*1000
		return ts - floorMod(local, 3600000)
	}
	t := time.UnixMilli(ts).In(c.loc)
	y, m, day := t.Date()
	switch d {
	case siddhiql.Days:
		return time.Date(y, m, day, 0, 0, 0, 0, c.loc).UnixMilli()
	case siddhiql.Months:
		return time.Date(y, m, 1, 0, 0, 0, 0, c.loc).UnixMilli()
	default:
		return time.Date(y, 1, 1, 0, 0, 0, 0, c.loc).UnixMilli()
	}
}

// Next is the start of the d bucket after the one that starts at start.
func (c *Clock) Next(start int64, d siddhiql.Duration) int64 {
	switch d {
	case siddhiql.Seconds:
		return start + 1000
	case siddhiql.Minutes:
		return start + 60000
	case siddhiql.Hours:
		// An hour later in absolute time is the next local hour, except across an offset
		// change of a fraction of an hour; Start settles both.
		return c.Start(start+3600000, d)
	}
	t := time.UnixMilli(start).In(c.loc)
	y, m, day := t.Date()
	switch d {
	case siddhiql.Days:
		return time.Date(y, m, day+1, 0, 0, 0, 0, c.loc).UnixMilli()
	case siddhiql.Months:
		return time.Date(y, m+1, 1, 0, 0, 0, 0, c.loc).UnixMilli()
	default:
		return time.Date(y+1, 1, 1, 0, 0, 0, 0, c.loc).UnixMilli()
	}
}

func floorMod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// ParseTimestamp reads an event time the way Siddhi's aggregate-by accepts it as a string:
// "yyyy-MM-dd HH:mm:ss" (GMT) or "yyyy-MM-dd HH:mm:ss ±HH:MM". It returns epoch ms.
func ParseTimestamp(s string) (int64, error) {
	switch len(s) {
	case 19:
		t, err := time.Parse("2006-01-02 15:04:05", s)
		if err != nil {
			return 0, fmt.Errorf("time %q is not yyyy-MM-dd HH:mm:ss: %w", s, err)
		}
		return t.UnixMilli(), nil
	case 26:
		t, err := time.Parse("2006-01-02 15:04:05 -07:00", s)
		if err != nil {
			return 0, fmt.Errorf("time %q is not yyyy-MM-dd HH:mm:ss ±HH:MM: %w", s, err)
		}
		return t.UnixMilli(), nil
	}
	return 0, fmt.Errorf("time %q is neither yyyy-MM-dd HH:mm:ss nor yyyy-MM-dd HH:mm:ss ±HH:MM", s)
}

// FormatMillis renders epoch ms for messages.
func FormatMillis(ms int64) string {
	return strconv.FormatInt(ms, 10) + " (" + time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05.000Z") + ")"
}
