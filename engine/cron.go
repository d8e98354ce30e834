package engine

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// cron is a parsed cron expression in Quartz's form, as Siddhi's triggers take it:
//
//	seconds minutes hours day-of-month month day-of-week [year]
//
// Each field is `*`, a value, a range `a-b`, a step `*/n`, `a/n` or `a-b/n`, or a list of
// those separated by commas. Months may be JAN-DEC and days of the week SUN-SAT (1 is
// Sunday, 7 Saturday, as in Quartz). `?` means "no value" in day-of-month or day-of-week,
// and one of the two must be `?` (or `*`). Quartz's L, W and # are refused. Times are UTC.
type cron struct {
	sec, min, hour, dom, mon, dow []bool // allowed values, indexed by value
	domAny, dowAny                bool   // the field is * or ?
	year                          []bool // nil: every year; else indexed by year-cronMinYear
}

const (
	cronMinYear = 1970
	cronMaxYear = 2199
	// cronHorizonYears bounds the search for the next firing: an expression that matches
	// nothing within it (such as 30 February) never fires.
	cronHorizonYears = 8
)

var (
	monthNames = []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}
	dayNames   = []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}
)

// parseCron parses a Quartz-style cron expression; the error names the field.
func parseCron(s string) (*cron, error) {
	f := strings.Fields(s)
	if len(f) != 6 && len(f) != 7 {
		return nil, fmt.Errorf("cron expression %q has %d fields, want 6 or 7: seconds minutes hours day-of-month month day-of-week [year]", s, len(f))
	}
	c := &cron{}
	var err error
	fields := []struct {
		name     string
		dst      *[]bool
		lo, hi   int
		names    []string
		nameBase int
		any      *bool
	}{
		{"seconds", &c.sec, 0, 59, nil, 0, nil},
		{"minutes", &c.min, 0, 59, nil, 0, nil},
		{"hours", &c.hour, 0, 23, nil, 0, nil},
		{"day-of-month", &c.dom, 1, 31, nil, 0, &c.domAny},
		{"month", &c.mon, 1, 12, monthNames, 1, nil},
		{"day-of-week", &c.dow, 1, 7, dayNames, 1, &c.dowAny},
	}
	for i, fd := range fields {
		v := f[i]
		if v == "?" {
			if fd.any == nil {
				return nil, fmt.Errorf("cron field %s: '?' is only allowed in day-of-month and day-of-week", fd.name)
			}
			v = "*"
		}
		if fd.any != nil && v == "*" {
			*fd.any = true
		}
		if *fd.dst, err = cronField(v, fd.lo, fd.hi, fd.names, fd.nameBase); err != nil {
			return nil, fmt.Errorf("cron field %s: %w", fd.name, err)
		}
	}
	if !c.domAny && !c.dowAny {
		return nil, fmt.Errorf("cron expression %q gives both a day-of-month and a day-of-week: one of them must be '?'", s)
	}
	if len(f) == 7 && f[6] != "*" {
		y, err := cronField(f[6], cronMinYear, cronMaxYear, nil, 0)
		if err != nil {
			return nil, fmt.Errorf("cron field year: %w", err)
		}
		c.year = y[cronMinYear:]
	}
	return c, nil
}

// cronField parses one field into a table of allowed values lo..hi.
func cronField(v string, lo, hi int, names []string, nameBase int) ([]bool, error) {
	set := make([]bool, hi+1)
	num := func(s string) (int, error) {
		for i, n := range names {
			if strings.EqualFold(s, n) {
				return i + nameBase, nil
			}
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number (L, W and # are not supported)", s)
		}
		if n < lo || n > hi {
			return 0, fmt.Errorf("%d is outside %d-%d", n, lo, hi)
		}
		return n, nil
	}
	for part := range strings.SplitSeq(v, ",") {
		rng, stepS, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepS)
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("step %q is not a positive number", stepS)
			}
			step = n
		}
		a, b := lo, hi
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			x, y, _ := strings.Cut(rng, "-")
			var err error
			if a, err = num(x); err != nil {
				return nil, err
			}
			if b, err = num(y); err != nil {
				return nil, err
			}
			if b < a {
				return nil, fmt.Errorf("range %s goes backwards", rng)
			}
		default:
			n, err := num(rng)
			if err != nil {
				return nil, err
			}
			a = n
			if !hasStep {
				b = n
			}
		}
		for x := a; x <= b; x += step {
			set[x] = true
		}
	}
	return set, nil
}

// next returns the first whole second strictly after t (Unix ms) that the expression
// matches, and false when there is none within cronHorizonYears.
func (c *cron) next(t int64) (int64, bool) {
	tm := time.UnixMilli(t).UTC().Truncate(time.Second).Add(time.Second)
	limit := tm.AddDate(cronHorizonYears, 0, 0)
	for tm.Before(limit) {
		y := tm.Year()
		if c.year != nil && (y < cronMinYear || y-cronMinYear >= len(c.year) || !c.year[y-cronMinYear]) {
			tm = time.Date(y+1, 1, 1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if !c.mon[int(tm.Month())] {
			tm = time.Date(y, tm.Month()+1, 1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if !c.dayMatches(tm) {
			tm = time.Date(y, tm.Month(), tm.Day()+1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if !c.hour[tm.Hour()] {
			tm = time.Date(y, tm.Month(), tm.Day(), tm.Hour()+1, 0, 0, 0, time.UTC)
			continue
		}
		if !c.min[tm.Minute()] {
			tm = time.Date(y, tm.Month(), tm.Day(), tm.Hour(), tm.Minute()+1, 0, 0, time.UTC)
			continue
		}
		if !c.sec[tm.Second()] {
			tm = tm.Add(time.Second)
			continue
		}
		return tm.UnixMilli(), true
	}
	return 0, false
}

func (c *cron) dayMatches(tm time.Time) bool {
	if !c.domAny {
		return c.dom[tm.Day()]
	}
	if !c.dowAny {
		return c.dow[int(tm.Weekday())+1]
	}
	return true
}
