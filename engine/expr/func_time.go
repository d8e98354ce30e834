package expr

import (
	"strconv"
	"strings"
	"time"

	"github.com/tally-db/tally/siddhiql"
)

// The time: functions of siddhi-execution-time. Patterns are Java date patterns
// (javaLayout); dates are read and written in UTC, as Siddhi does on a JVM in GMT.
// time:timestampInMilliseconds() without arguments is the stamped time of the entry,
// never the wall clock. A date that does not match its pattern gives null (Siddhi throws
// and drops the event).

// defaultDatePattern is the pattern the time: functions use when none is given.
const defaultDatePattern = "yyyy-MM-dd HH:mm:ss.SSS"

func init() {
	register("time:timestampInMilliseconds", fn{min: 0, max: 2, stampedBare: true, build: buildTimestampInMillis})
	register("time:dateFormat", fn{min: 2, max: 3, build: buildDateFormat})
	register("time:extract", fn{min: 2, max: 4, build: buildExtract})
	register("time:dateAdd", fn{min: 3, max: 4, build: buildDateAdd})
}

// timeUnit is a calendar unit of time:extract and time:dateAdd.
type timeUnit uint8

const (
	unitYear timeUnit = iota + 1
	unitQuarter
	unitMonth
	unitWeek
	unitDay
	unitHour
	unitMinute
	unitSecond
)

func parseTimeUnit(s string) timeUnit {
	switch strings.ToUpper(s) {
	case "YEAR":
		return unitYear
	case "QUARTER":
		return unitQuarter
	case "MONTH":
		return unitMonth
	case "WEEK":
		return unitWeek
	case "DAY":
		return unitDay
	case "HOUR":
		return unitHour
	case "MINUTE":
		return unitMinute
	case "SECOND":
		return unitSecond
	}
	return 0
}

// layoutArg is a date pattern: constant (translated once, errors at deploy) or per event.
type layoutArg struct {
	fixed string // translated layout when constant
	ev    Eval   // nil when constant
	parse bool   // a layout to read dates with (lenient), not to write them
}

func newLayoutArg(c *siddhiql.Call, args []*Compiled, i int, parse bool) (layoutArg, error) {
	translate := javaLayout
	if parse {
		translate = javaParseLayout
	}
	if i < 0 {
		l, _ := translate(defaultDatePattern)
		return layoutArg{fixed: l, parse: parse}, nil
	}
	if err := needType(c, args, i, siddhiql.TypeString); err != nil {
		return layoutArg{}, err
	}
	if !args[i].Const {
		return layoutArg{ev: args[i].Eval, parse: parse}, nil
	}
	v := args[i].Eval(nil)
	if v.IsNull() {
		return layoutArg{}, Errorf(c.Args[i], "argument %d of %s() (a date pattern) must not be null", i+1, callName(c))
	}
	l, err := translate(v.S)
	if err != nil {
		return layoutArg{}, Errorf(c.Args[i], "%s(): %v", callName(c), err)
	}
	return layoutArg{fixed: l, parse: parse}, nil
}

// layout is the Go layout for row r; ok is false for a null or unsupported pattern.
func (l layoutArg) layout(r Row) (string, bool) {
	if l.ev == nil {
		return l.fixed, true
	}
	v := l.ev(r)
	if v.IsNull() {
		return "", false
	}
	translate := javaLayout
	if l.parse {
		translate = javaParseLayout
	}
	s, err := translate(v.S)
	return s, err == nil
}

func parseDate(layout, s string) (time.Time, bool) {
	t, err := time.ParseInLocation(layout, s, time.UTC)
	return t, err == nil
}

func buildTimestampInMillis(c *siddhiql.Call, args []*Compiled, env *Env) (*Compiled, error) {
	if len(args) == 0 {
		if env == nil {
			return nil, Errorf(c, "time:timestampInMilliseconds() reads the stamped time of the event, which is not available here")
		}
		return &Compiled{Type: siddhiql.TypeLong, Eval: func(Row) Value { return Long(env.Now) }}, nil
	}
	if err := strArgs(c, args, 0); err != nil {
		return nil, err
	}
	pi := -1
	if len(args) == 2 {
		pi = 1
	}
	lay, err := newLayoutArg(c, args, pi, true)
	if err != nil {
		return nil, err
	}
	src := args[0].Eval
	return result(siddhiql.TypeLong, func(r Row) Value {
		s := src(r)
		if s.IsNull() && len(args) == 1 && env != nil {
			return Long(env.Now) // as Siddhi: a null date alone reads the current time
		}
		l, ok := lay.layout(r)
		if s.IsNull() || !ok {
			return Null
		}
		t, ok := parseDate(l, s.S)
		if !ok {
			return Null
		}
		return Long(t.UnixMilli())
	})
}

// buildDateFormat is time:dateFormat(long millis, target) or
// time:dateFormat(string date, target[, source pattern]).
func buildDateFormat(c *siddhiql.Call, args []*Compiled, _ *Env) (*Compiled, error) {
	if err := needType(c, args, 0, siddhiql.TypeLong, siddhiql.TypeString); err != nil {
		return nil, err
	}
	target, err := newLayoutArg(c, args, 1, false)
	if err != nil {
		return nil, err
	}
	src := args[0].Eval
	if args[0].Type == siddhiql.TypeLong {
		if len(args) == 3 {
			return nil, Errorf(c, "time:dateFormat(millis, pattern) takes no source pattern")
		}
		return result(siddhiql.TypeString, func(r Row) Value {
			v := src(r)
			l, ok := target.layout(r)
			if v.IsNull() || !ok {
				return Null
			}
			return String(time.UnixMilli(v.I).UTC().Format(l))
		})
	}
	si := -1
	if len(args) == 3 {
		si = 2
	}
	source, err := newLayoutArg(c, args, si, true)
	if err != nil {
		return nil, err
	}
	return result(siddhiql.TypeString, func(r Row) Value {
		v := src(r)
		tl, ok1 := target.layout(r)
		sl, ok2 := source.layout(r)
		if v.IsNull() || !ok1 || !ok2 {
			return Null
		}
		t, ok := parseDate(sl, v.S)
		if !ok {
			return Null
		}
		return String(t.Format(tl))
	})
}

// constUnit reads a constant unit argument.
func constUnit(c *siddhiql.Call, args []*Compiled, i int) (timeUnit, error) {
	s, err := constString(c, args, i, "the unit")
	if err != nil {
		return 0, err
	}
	u := parseTimeUnit(s)
	if u == 0 {
		return 0, Errorf(c.Args[i], "%s(): unknown unit %q: units are YEAR, QUARTER, MONTH, WEEK, DAY, HOUR, MINUTE, SECOND", callName(c), s)
	}
	return u, nil
}

// buildExtract is time:extract(unit, string date[, pattern[, locale]]) or
// time:extract(long millis, unit[, locale]); it answers an int.
func buildExtract(c *siddhiql.Call, args []*Compiled, _ *Env) (*Compiled, error) {
	var (
		unit timeUnit
		err  error
		get  func(r Row) (time.Time, bool)
	)
	if args[0].Type == siddhiql.TypeLong {
		if len(args) > 3 {
			return nil, Errorf(c, "time:extract(millis, unit[, locale]) takes at most 3 arguments")
		}
		if unit, err = constUnit(c, args, 1); err != nil {
			return nil, err
		}
		src := args[0].Eval
		get = func(r Row) (time.Time, bool) {
			v := src(r)
			return time.UnixMilli(v.I).UTC(), !v.IsNull()
		}
	} else {
		if unit, err = constUnit(c, args, 0); err != nil {
			return nil, err
		}
		if err := strArgs(c, args, 1); err != nil {
			return nil, err
		}
		pi := -1
		if len(args) >= 3 {
			pi = 2
		}
		lay, err := newLayoutArg(c, args, pi, true)
		if err != nil {
			return nil, err
		}
		src := args[1].Eval
		get = func(r Row) (time.Time, bool) {
			v := src(r)
			l, ok := lay.layout(r)
			if v.IsNull() || !ok {
				return time.Time{}, false
			}
			return parseDate(l, v.S)
		}
	}
	return result(siddhiql.TypeInt, func(r Row) Value {
		t, ok := get(r)
		if !ok {
			return Null
		}
		var n int
		switch unit {
		case unitYear:
			n = t.Year()
		case unitQuarter:
			n = (int(t.Month())-1)/3 + 1
		case unitMonth:
			n = int(t.Month())
		case unitWeek:
			n = javaWeekOfYear(t)
		case unitDay:
			n = t.Day()
		case unitHour:
			n = t.Hour()
		case unitMinute:
			n = t.Minute()
		case unitSecond:
			n = t.Second()
		}
		return Int(int32(n))
	})
}

// javaWeekOfYear is Calendar.WEEK_OF_YEAR with Java's default (US) rules: weeks start on
// Sunday and week 1 is the week that contains January 1st.
func javaWeekOfYear(t time.Time) int {
	// The Saturday ending t's week decides the year the week belongs to.
	sat := t.AddDate(0, 0, 6-int(t.Weekday()))
	jan1 := time.Date(sat.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
	firstSun := jan1.AddDate(0, 0, -int(jan1.Weekday()))
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return int(day.Sub(firstSun).Hours()/24)/7 + 1
}

// addUnit adds n units to t as Java's Calendar.add does (a month added to January 31st
// gives the last day of February).
func addUnit(t time.Time, u timeUnit, n int) time.Time {
	switch u {
	case unitYear:
		return addMonths(t, 12*n)
	case unitQuarter:
		return addMonths(t, 3*n)
	case unitMonth:
		return addMonths(t, n)
	case unitWeek:
		return t.AddDate(0, 0, 7*n)
	case unitDay:
		return t.AddDate(0, 0, n)
	case unitHour:
		return t.Add(time.Duration(n) * time.Hour)
	case unitMinute:
		return t.Add(time.Duration(n) * time.Minute)
	}
	return t.Add(time.Duration(n) * time.Second)
}

func addMonths(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	first := time.Date(y, m, 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location()).AddDate(0, n, 0)
	last := first.AddDate(0, 1, -1).Day()
	if d > last {
		d = last
	}
	return first.AddDate(0, 0, d-1)
}

// buildDateAdd is time:dateAdd(string date, int n, unit[, pattern]), a string in the
// same pattern, or time:dateAdd(long millis, int n, unit), the result's millis as a string.
func buildDateAdd(c *siddhiql.Call, args []*Compiled, _ *Env) (*Compiled, error) {
	return buildDateShift(c, args, 1)
}

// buildDateShift is time:dateAdd (sign 1) or time:dateSub (sign -1).
func buildDateShift(c *siddhiql.Call, args []*Compiled, sign int) (*Compiled, error) {
	if err := needType(c, args, 0, siddhiql.TypeLong, siddhiql.TypeString); err != nil {
		return nil, err
	}
	if err := needType(c, args, 1, siddhiql.TypeInt); err != nil {
		return nil, err
	}
	unit, err := constUnit(c, args, 2)
	if err != nil {
		return nil, err
	}
	src, num0 := args[0].Eval, args[1].Eval
	num := func(r Row) Value {
		v := num0(r)
		v.I *= int64(sign)
		return v
	}
	if args[0].Type == siddhiql.TypeLong {
		if len(args) == 4 {
			return nil, Errorf(c, "time:dateAdd(millis, n, unit) takes no pattern")
		}
		return result(siddhiql.TypeString, func(r Row) Value {
			v, n := src(r), num(r)
			if v.IsNull() || n.IsNull() {
				return Null
			}
			t := addUnit(time.UnixMilli(v.I).UTC(), unit, int(n.I))
			return String(strconv.FormatInt(t.UnixMilli(), 10))
		})
	}
	pi := -1
	if len(args) == 4 {
		pi = 3
	}
	out, err := newLayoutArg(c, args, pi, false)
	if err != nil {
		return nil, err
	}
	in, err := newLayoutArg(c, args, pi, true)
	if err != nil {
		return nil, err
	}
	return result(siddhiql.TypeString, func(r Row) Value {
		v, n := src(r), num(r)
		ol, ok1 := out.layout(r)
		il, ok2 := in.layout(r)
		if v.IsNull() || n.IsNull() || !ok1 || !ok2 {
			return Null
		}
		t, ok := parseDate(il, v.S)
		if !ok {
			return Null
		}
		return String(addUnit(t, unit, int(n.I)).Format(ol))
	})
}
