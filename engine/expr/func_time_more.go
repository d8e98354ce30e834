package expr

import (
	"time"

	"github.com/tally-db/tally/siddhiql"
)

// More time: functions: dateSub, dateDiff, and the "current" ones, which answer the
// stamped time of the entry (never the wall clock) in Siddhi's formats.
func init() {
	register("time:dateSub", fn{min: 3, max: 4, build: func(c *siddhiql.Call, args []*Compiled, _ *Env) (*Compiled, error) {
		return buildDateShift(c, args, -1)
	}})
	register("time:dateDiff", fn{min: 2, max: 4, build: buildDateDiff})
	for name, layout := range map[string]string{
		"time:currentTimestamp": "2006-01-02 15:04:05",
		"time:utcTimestamp":     "2006-01-02 15:04:05",
		"time:currentDate":      "2006-01-02",
		"time:currentTime":      "15:04:05",
	} {
		register(name, fn{min: 0, max: 0, stamped: true, build: func(_ *siddhiql.Call, _ []*Compiled, env *Env) (*Compiled, error) {
			return result(siddhiql.TypeString, func(Row) Value { return String(time.UnixMilli(env.Now).UTC().Format(layout)) })
		}})
	}
}

// buildDateDiff is time:dateDiff(date1, date2[, pattern1, pattern2]) on strings, or
// time:dateDiff(millis1, millis2): whole days from date2 to date1, truncated toward zero.
func buildDateDiff(c *siddhiql.Call, args []*Compiled, _ *Env) (*Compiled, error) {
	if len(args) == 3 {
		return nil, Errorf(c, "time:dateDiff() takes 2 dates, or 2 dates and their 2 patterns, got 3 arguments")
	}
	days := func(a, b time.Time) Value { return Long(int64(a.Sub(b) / (24 * time.Hour))) }
	if args[0].Type == siddhiql.TypeLong || args[1].Type == siddhiql.TypeLong {
		if err := needType(c, args, 0, siddhiql.TypeLong); err != nil {
			return nil, err
		}
		if err := needType(c, args, 1, siddhiql.TypeLong); err != nil {
			return nil, err
		}
		if len(args) == 4 {
			return nil, Errorf(c, "time:dateDiff(millis, millis) takes no patterns")
		}
		a, b := args[0].Eval, args[1].Eval
		return result(siddhiql.TypeLong, func(r Row) Value {
			x, y := a(r), b(r)
			if x.IsNull() || y.IsNull() {
				return Null
			}
			return days(time.UnixMilli(x.I), time.UnixMilli(y.I))
		})
	}
	if err := strArgs(c, args, 0, 1); err != nil {
		return nil, err
	}
	p1, p2 := -1, -1
	if len(args) == 4 {
		p1, p2 = 2, 3
	}
	l1, err := newLayoutArg(c, args, p1, true)
	if err != nil {
		return nil, err
	}
	l2, err := newLayoutArg(c, args, p2, true)
	if err != nil {
		return nil, err
	}
	a, b := args[0].Eval, args[1].Eval
	return result(siddhiql.TypeLong, func(r Row) Value {
		x, y := a(r), b(r)
		f1, ok1 := l1.layout(r)
		f2, ok2 := l2.layout(r)
		if x.IsNull() || y.IsNull() || !ok1 || !ok2 {
			return Null
		}
		t1, ok1 := parseDate(f1, x.S)
		t2, ok2 := parseDate(f2, y.S)
		if !ok1 || !ok2 {
			return Null
		}
		return days(t1, t2)
	})
}
