package siddhiql

import (
	"math"
	"strconv"
	"strings"
)

// Milliseconds per time unit, as Siddhi counts them (a month is 30 days, a year 365).
const (
	msSecond = int64(1000)
	msMinute = 60 * msSecond
	msHour   = 60 * msMinute
	msDay    = 24 * msHour
	msWeek   = 7 * msDay
	msMonth  = 30 * msDay
	msYear   = 365 * msDay
)

// TimeUnitMillis returns the milliseconds in one unit of a SiddhiQL time literal:
// millisec/millisecond(s), sec/second(s), min/minute(s), hour(s), day(s), week(s), month(s)
// (30 days) and year(s) (365 days), case-insensitive. ok is false for anything else.
func TimeUnitMillis(unit string) (ms int64, ok bool) {
	switch strings.ToLower(unit) {
	case "millisec", "millisecond", "milliseconds":
		return 1, true
	case "sec", "second", "seconds":
		return msSecond, true
	case "min", "minute", "minutes":
		return msMinute, true
	case "hour", "hours":
		return msHour, true
	case "day", "days":
		return msDay, true
	case "week", "weeks":
		return msWeek, true
	case "month", "months":
		return msMonth, true
	case "year", "years":
		return msYear, true
	}
	return 0, false
}

// timeUnitRank orders time units largest first; Siddhi's grammar wants them in that order
// in a multi-unit literal (1 min 30 sec, not 30 sec 1 min).
func timeUnitRank(ms int64) int {
	switch ms {
	case msYear:
		return 0
	case msMonth:
		return 1
	case msWeek:
		return 2
	case msDay:
		return 3
	case msHour:
		return 4
	case msMinute:
		return 5
	case msSecond:
		return 6
	}
	return 7
}

// ParseDuration maps an aggregation granularity name to its Duration, as Siddhi normalizes
// the store query's per value and @retentionPeriod keys: sec/second/seconds,
// min/minute/minutes, h/hour/hours, day/days, month/months, year/years (case-insensitive,
// surrounding spaces ignored). Weeks are not a granularity: week(s) returns false.
func ParseDuration(s string) (Duration, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "sec", "second", "seconds":
		return Seconds, true
	case "min", "minute", "minutes":
		return Minutes, true
	case "h", "hour", "hours":
		return Hours, true
	case "day", "days":
		return Days, true
	case "month", "months":
		return Months, true
	case "year", "years":
		return Years, true
	}
	return 0, false
}

// aggDuration is a duration keyword of `aggregate every`: like ParseDuration, but the
// grammar has no `h`, and week(s) lexes but is rejected with its own message.
func aggDuration(word string) (d Duration, isWeek, ok bool) {
	w := strings.ToLower(word)
	if w == "week" || w == "weeks" {
		return 0, true, false
	}
	if w == "h" {
		return 0, false, false
	}
	d, ok = ParseDuration(w)
	return d, false, ok
}

// addMillis adds a and b, reporting overflow.
func addMillis(a, b int64) (int64, bool) {
	if b > 0 && a > math.MaxInt64-b {
		return 0, false
	}
	return a + b, true
}

// mulMillis multiplies a non-negative count by a unit, reporting overflow.
func mulMillis(n, unit int64) (int64, bool) {
	if n < 0 || (n > 0 && unit > math.MaxInt64/n) {
		return 0, false
	}
	return n * unit, true
}

// parseTimeString parses a time literal inside an annotation value ('10 sec', '1 min 30 sec')
// into milliseconds. The message of a failure says what was wrong, without position.
func parseTimeString(s string) (int64, string) {
	p := newParser(s)
	var ms int64
	var msg string
	func() {
		defer func() {
			if r := recover(); r != nil {
				b, ok := r.(bailout)
				if !ok {
					panic(r)
				}
				msg = b.err.Msg
			}
		}()
		if p.tok().kind != tNumber {
			p.failf(Pos{}, "it is not a time such as '10 sec'")
		}
		lit, ok := p.parseNumber().(*Literal)
		if !ok || !lit.Time {
			p.failf(Pos{}, "it has no time unit (write e.g. '10 sec')")
		}
		if p.tok().kind != tEOF {
			p.failf(p.tok().pos, "unexpected %s after the time", p.tok().describe())
		}
		ms = lit.Int
	}()
	return ms, msg
}

// formatMillis writes ms as a time literal, largest units first (90000 → "1 min 30 sec").
// Weeks, months and years are not used, so the text reads back to the same value.
func formatMillis(ms int64) string {
	if ms == 0 {
		return "0 millisec"
	}
	var b strings.Builder
	if ms < 0 {
		b.WriteByte('-')
		if ms == math.MinInt64 {
			return "-9223372036854775808 millisec"
		}
		ms = -ms
	}
	units := [...]struct {
		ms   int64
		name string
	}{{msDay, "day"}, {msHour, "hour"}, {msMinute, "min"}, {msSecond, "sec"}, {1, "millisec"}}
	first := true
	for _, u := range units {
		if n := ms / u.ms; n > 0 {
			if !first {
				b.WriteByte(' ')
			}
			first = false
			b.WriteString(strconv.FormatInt(n, 10))
			b.WriteByte(' ')
			b.WriteString(u.name)
			if n != 1 && u.name != "sec" && u.name != "min" && u.name != "millisec" {
				b.WriteByte('s')
			}
			ms %= u.ms
		}
	}
	return b.String()
}
