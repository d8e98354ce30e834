package engine

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/siddhiql"
)

// Read-only aggregations: `@persistedAggregation(is.read.only='true') define aggregation X
// from S select … aggregate by … every …` declares X without aggregating anything: the app's
// joins read the rows of the aggregation X that another app of the same engine defines and
// feeds. The declaration must be compatible with that one (the same granularities, time mode
// and group by; every output it names, with the same type), which deploy checks whichever app
// comes first. Without a feeding app the app deploys with a note and its joins find no rows.
// Undeploying the feeding app leaves the reader deployed, finding no rows again; deploying a
// feeding app again links it to the new (empty) aggregation. A read-only aggregation has no
// state and no store tables of its own: store queries name the feeding app.

// addReadOnly records a read-only aggregation of the app.
func (a *App) addReadOnly(ad *siddhiql.AggregationDef, in *siddhiql.StreamDef) error {
	def, err := agg.CompileEnv(ad, in, a.env)
	if err != nil {
		return err
	}
	if a.readOnly == nil {
		a.readOnly = map[string]*agg.Def{}
	}
	a.readOnly[ad.Name] = def
	return nil
}

// ReadOnlyAggregations lists the app's read-only aggregation definitions by name.
func (a *App) ReadOnlyAggregations() []*agg.Def {
	out := make([]*agg.Def, 0, len(a.readOnly))
	for _, n := range slices.Sorted(maps.Keys(a.readOnly)) {
		out = append(out, a.readOnly[n])
	}
	return out
}

// feederOf returns the deployed app, other than skip, that defines and feeds aggregation name,
// and that aggregation's state.
func (e *Engine) feederOf(name, skip string) (*App, *agg.State) {
	for _, a := range e.Apps() {
		if a.Name == skip {
			continue
		}
		if st, ok := a.aggs[name]; ok {
			return a, st
		}
	}
	return nil, nil
}

// checkReadOnly refuses an app whose read-only aggregations do not fit the deployed
// aggregations they read, or whose aggregations do not fit the deployed apps that read them
// read-only. It adds a note for each read-only aggregation no deployed app feeds.
func (e *Engine) checkReadOnly(a *App) error {
	for _, def := range a.ReadOnlyAggregations() {
		f, st := e.feederOf(def.Name, a.Name)
		if f == nil {
			a.Notes = append(a.Notes, fmt.Sprintf("aggregation %s is read-only (@persistedAggregation(is.read.only='true')): no deployed app defines and feeds %s, so joins on it find no rows until one is deployed", def.Name, def.Name))
			continue
		}
		if _, err := readerCols(def, st.Def()); err != nil {
			return fmt.Errorf("%w: read-only aggregation %s cannot read aggregation %s of app %s: %w", ErrConflict, def.Name, def.Name, f.Name, err)
		}
	}
	for _, n := range a.aggOrder {
		for _, other := range e.Apps() {
			rd, ok := other.readOnly[n]
			if !ok || other.Name == a.Name {
				continue
			}
			if _, err := readerCols(rd, a.aggs[n].Def()); err != nil {
				return fmt.Errorf("%w: app %s reads aggregation %s read-only and could not read this one: %w", ErrConflict, other.Name, n, err)
			}
		}
	}
	return nil
}

// readerCols checks that read-only declaration rd can read aggregation fd and maps each of
// rd's join attributes to its position in fd's (nil when they are the same).
func readerCols(rd, fd *agg.Def) ([]int, error) {
	if !slices.Equal(rd.Durations, fd.Durations) {
		return nil, fmt.Errorf("it keeps %s, the aggregation keeps %s", durations(rd.Durations), durations(fd.Durations))
	}
	if rd.EventTime != fd.EventTime {
		mode := func(d *agg.Def) string {
			if d.EventTime {
				return "event time (aggregate by)"
			}
			return "arrival time"
		}
		return nil, fmt.Errorf("it aggregates by %s, the aggregation by %s", mode(rd), mode(fd))
	}
	if len(rd.GroupBy) != len(fd.GroupBy) {
		return nil, fmt.Errorf("it groups by %s, the aggregation by %s", columns(rd.GroupBy), columns(fd.GroupBy))
	}
	for _, g := range rd.GroupBy {
		if !slices.ContainsFunc(fd.GroupBy, func(c agg.Column) bool { return c.Name == g.Name && c.Type == g.Type }) {
			return nil, fmt.Errorf("it groups by %s, the aggregation by %s", columns(rd.GroupBy), columns(fd.GroupBy))
		}
	}
	cols := []int{0}
	same := len(rd.Outputs) == len(fd.Outputs)
	for i, o := range rd.Outputs {
		j := slices.IndexFunc(fd.Outputs, func(f agg.Output) bool { return f.Name == o.Name })
		switch {
		case j < 0:
			return nil, fmt.Errorf("output %s is not an output of the aggregation", o.Name)
		case fd.Outputs[j].Type != o.Type:
			return nil, fmt.Errorf("output %s is %s, in the aggregation %s", o.Name, o.Type, fd.Outputs[j].Type)
		}
		cols = append(cols, 1+j)
		same = same && j == i
	}
	if same {
		return nil, nil
	}
	return cols, nil
}

func durations(ds []siddhiql.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = lower(d)
	}
	return strings.Join(s, ", ")
}

func columns(cs []agg.Column) string {
	if len(cs) == 0 {
		return "nothing"
	}
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = c.Name
	}
	return strings.Join(s, ", ")
}

// linkAggJoins points every read-only aggregation join at the aggregation that feeds it now,
// and makes every aggregation that some join reads keep its recently closed rows for the
// granularities the joins read (all of them when a join's per is not a constant). It runs
// whenever the set of deployed apps changes, restore included, so it depends only on them.
func (e *Engine) linkAggJoins() {
	type need struct {
		ds  []siddhiql.Duration
		all bool
	}
	needs := map[*agg.State]*need{}
	for _, a := range e.Apps() {
		for _, s := range a.aggJoins {
			if s.readOnly {
				s.state, s.cols = nil, nil
				if _, st := e.feederOf(s.name, a.Name); st != nil {
					if cols, err := readerCols(s.def, st.Def()); err == nil {
						s.state, s.cols = st, cols
					}
				}
			}
			if s.state == nil {
				continue
			}
			n := needs[s.state]
			if n == nil {
				n = &need{}
				needs[s.state] = n
			}
			if s.perConst {
				n.ds = append(n.ds, s.perDur)
			} else {
				n.all = true
			}
		}
	}
	for _, a := range e.Apps() {
		for _, name := range a.aggOrder {
			st := a.aggs[name]
			if n := needs[st]; n != nil {
				st.Retain(n.ds, n.all)
			} else {
				st.Retain(nil, false)
			}
		}
	}
}
