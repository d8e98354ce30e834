package engine

import (
	"fmt"
	"slices"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/internal/wire"
	"github.com/tally-db/tally/siddhiql"
)

// maxTriggerCatchUp bounds how many firings of one trigger a single call makes when the
// stamped time jumps over many of them; the schedule then skips to the first firing after
// the new time. A tick every second keeps any reasonable trigger far below it.
const maxTriggerCatchUp = 1000

// trigger is a `define trigger` of an app: a stream (triggered_time long) whose events the
// engine makes from stamped time alone, so that every replica makes the same ones.
//
// A trigger's schedule starts at the app's start: the stamped time of the first Apply or
// Tick after the app was deployed (with a tick every second, within a second of the
// deploy). `at 'start'` fires once, at that time; `at every T` fires at start + T, start +
// 2T, ...; `at '<cron>'` fires at every matching second (UTC) from start on. A firing due
// at or before a call's stamped time fires in that call, stamped with its due time, before
// the call's own events. Restoring a snapshot or replaying the log does not start an app
// again: its schedule is in the encoded state, so `at 'start'` fires once per deploy, not
// once per node start. Deploying the same text again changes nothing; deploying a changed
// text is a new deploy and starts again.
type trigger struct {
	def  *siddhiql.TriggerDef
	cron *cron // nil unless def.Cron is set

	// state
	anchored bool  // the app has started: next is set
	next     int64 // the next firing's time
	done     bool  // no more firings (a fired start trigger; a cron that matches no more)
}

// compileTriggers defines each trigger's stream in the app.
func (a *App) compileTriggers(p *siddhiql.App) error {
	for _, td := range p.Triggers {
		if _, dup := a.streams[td.Name]; dup {
			return &siddhiql.Error{Pos: td.Pos, Msg: fmt.Sprintf("trigger %s has the name of a stream", td.Name)}
		}
		t := &trigger{def: td}
		if !td.Start && td.Every <= 0 && td.Cron == "" {
			return &siddhiql.Error{Pos: td.Pos, Msg: fmt.Sprintf("trigger %s has no schedule: use at every <time>, at 'start' or at '<cron>'", td.Name)}
		}
		if td.Cron != "" {
			c, err := parseCron(td.Cron)
			if err != nil {
				return &siddhiql.Error{Pos: td.CronPos, Msg: fmt.Sprintf("trigger %s: %v", td.Name, err)}
			}
			t.cron = c
		}
		a.streams[td.Name] = &stream{def: &siddhiql.StreamDef{Pos: td.Pos, Name: td.Name, Attributes: td.Attributes()}}
		a.triggers = append(a.triggers, t)
	}
	return nil
}

// start sets the trigger's schedule from the app's start time now.
func (t *trigger) start(now int64) {
	t.anchored = true
	switch {
	case t.def.Start:
		t.next = now
	case t.def.Every > 0:
		t.next = now + t.def.Every
	default:
		t.schedule(now - 1)
	}
}

// schedule sets next to the cron's first firing after after.
func (t *trigger) schedule(after int64) {
	n, ok := t.cron.next(after)
	t.next, t.done = n, !ok
}

func (t *trigger) due(now int64) bool { return t.anchored && !t.done && t.next <= now }

// fired moves the schedule past the firing at next; skip asks it to jump past now.
func (t *trigger) fired(now int64, skip bool) {
	switch {
	case t.def.Start:
		t.done = true
	case t.def.Every > 0:
		t.next += t.def.Every
		if skip && t.next <= now {
			t.next += ((now-t.next)/t.def.Every + 1) * t.def.Every
		}
	default:
		after := t.next
		if skip {
			after = max(after, now)
		}
		t.schedule(after)
	}
}

// fireTriggers fires every trigger firing due at or before now, earliest first (ties in
// definition order), each as one event of the trigger's stream stamped with its due time.
func (a *App) fireTriggers(index uint64, now int64, out *[]Output) {
	if len(a.triggers) == 0 {
		return
	}
	for _, t := range a.triggers {
		if !t.anchored {
			t.start(now)
		}
	}
	counts := make([]int, len(a.triggers))
	for {
		best := -1
		for i, t := range a.triggers {
			if t.due(now) && (best < 0 || t.next < a.triggers[best].next) {
				best = i
			}
		}
		if best < 0 {
			return
		}
		t := a.triggers[best]
		at := t.next
		counts[best]++
		t.fired(now, counts[best] >= maxTriggerCatchUp)
		a.feed(index, at, t.def.Name, []expr.Row{{expr.Long(at)}}, out, 0)
	}
}

// fireTriggers fires the due triggers of every app, apps by name.
func (e *Engine) fireTriggers(index uint64, now int64, out *[]Output) {
	var names []string
	for name, a := range e.apps {
		if len(a.triggers) > 0 {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		e.apps[n].fireTriggers(index, now, out)
	}
}

func (a *App) encodeTriggers(w *wire.Writer) {
	for _, t := range a.triggers {
		w.Bool(t.anchored)
		w.Varint(t.next)
		w.Bool(t.done)
	}
}

func (a *App) decodeTriggers(r *wire.Reader) {
	for _, t := range a.triggers {
		t.anchored = r.Bool()
		t.next = r.Varint()
		t.done = r.Bool()
	}
}
