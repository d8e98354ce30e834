package engine

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

// SinkInMemory is the sink and source type that links apps of one engine through a topic.
const SinkInMemory = "inMemory"

// link is an @sink or @source of type inMemory on a stream of an app:
//
//	@sink(type='inMemory', topic='X' [, @map(type='passThrough')])    publishes the stream
//	@source(type='inMemory', topic='X' [, @map(type='passThrough')])  subscribes a stream
//
// Every event of a publishing stream (ingested, or inserted by a query) is delivered, in
// the same Apply or Tick, to every stream subscribed to its topic: subscribing apps in
// app-name order, an app's subscribed streams in definition order, each after the
// publishing stream's own queries have seen the events. Attributes pass by position
// (passThrough), so a topic's publishers and subscribers must have the same attribute
// types; Deploy refuses a mismatch and any chain of links and queries that loops back to a
// stream it started from.
type link struct {
	pos    siddhiql.Pos
	topic  string
	stream string
}

// isInMemory reports whether an @sink or @source annotation has type='inMemory'.
func isInMemory(an *siddhiql.Annotation) bool {
	for _, el := range an.Elements {
		if strings.EqualFold(el.Key, "type") {
			return strings.EqualFold(el.Value, SinkInMemory)
		}
	}
	return false
}

// parseLink reads an inMemory @sink or @source of stream.
func parseLink(an *siddhiql.Annotation, stream string) (link, error) {
	kind := strings.ToLower(an.Name)
	l := link{pos: an.Pos, stream: stream}
	fail := func(pos siddhiql.Pos, format string, args ...any) (link, error) {
		return link{}, &siddhiql.Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
	}
	for _, el := range an.Elements {
		switch strings.ToLower(el.Key) {
		case "type":
		case "topic":
			if l.topic != "" {
				return fail(el.Pos, "@%s(type='inMemory') has topic twice", kind)
			}
			if el.Value == "" {
				return fail(el.Pos, "@%s(type='inMemory') topic must not be empty", kind)
			}
			l.topic = el.Value
		default:
			return fail(el.Pos, "@%s(type='inMemory') has no option %s: it takes topic='...'", kind, el.Key)
		}
	}
	if l.topic == "" {
		return fail(an.Pos, "@%s(type='inMemory') on stream %s needs topic='...'", kind, stream)
	}
	for _, m := range an.Annotations {
		if !strings.EqualFold(m.Name, "map") {
			return fail(m.Pos, "@%s(type='inMemory') takes only @map(type='passThrough') inside, not @%s", kind, m.Name)
		}
		for _, el := range m.Elements {
			if !strings.EqualFold(el.Key, "type") || !strings.EqualFold(el.Value, "passThrough") {
				return fail(el.Pos, "@map: an inMemory %s passes events through as they are: only type='passThrough' is supported", kind)
			}
		}
	}
	return l, nil
}

// compileLinks reads the inMemory sinks and sources of the app's defined streams.
func (a *App) compileLinks() error {
	for _, name := range a.streamOrder {
		s := a.streams[name]
		for _, an := range s.def.Annotations {
			isSink := strings.EqualFold(an.Name, "sink")
			if !isSink && !strings.EqualFold(an.Name, "source") || !isInMemory(an) {
				continue
			}
			l, err := parseLink(an, name)
			if err != nil {
				return err
			}
			if isSink {
				s.topics = append(s.topics, l)
			} else {
				a.sources = append(a.sources, l)
			}
		}
	}
	return nil
}

// subscriber is a stream of a deployed app subscribed to a topic.
type subscriber struct {
	app    *App
	stream string
}

// bus routes inMemory topics between the deployed apps of one engine.
type bus struct {
	subs map[string][]subscriber // topic → subscribers, apps by name, streams in text order
}

// rebuildBus recomputes the topic subscriptions of the deployed apps and points every app at
// this engine's bus.
func (e *Engine) rebuildBus() {
	if e.bus == nil {
		e.bus = &bus{}
	}
	e.bus.subs = map[string][]subscriber{}
	for _, name := range slices.Sorted(maps.Keys(e.apps)) {
		a := e.apps[name]
		a.bus = e.bus
		for _, l := range a.sources {
			e.bus.subs[l.topic] = append(e.bus.subs[l.topic], subscriber{app: a, stream: l.stream})
		}
	}
}

// publish delivers events of a publishing stream to the topics' subscribers. A subscriber
// stream that refuses the events (an event-time aggregation reading it finds a bad event
// time) does not get them; the others do.
func (b *bus) publish(index uint64, now int64, topics []link, events []expr.Row, out *[]Output, depth int) {
	if b == nil || depth >= maxDepth {
		return
	}
	for _, t := range topics {
		for _, sub := range b.subs[t.topic] {
			s := sub.app.streams[sub.stream]
			if s.check(events) != nil {
				continue
			}
			sub.app.feed(index, now, sub.stream, events, out, depth+1)
		}
	}
}

// checkLinks refuses an app whose inMemory topics do not fit the deployed apps': every
// publisher and subscriber of a topic must have the same attribute types, and no chain of
// topics and queries may loop. a replaces the deployed app of the same name, if any.
func (e *Engine) checkLinks(a *App) error {
	apps := map[string]*App{}
	for n, x := range e.apps {
		apps[n] = x
	}
	apps[a.Name] = a
	names := slices.Sorted(maps.Keys(apps))
	type end struct {
		app *App
		l   link
		pub bool
	}
	byTopic := map[string][]end{}
	for _, n := range names {
		x := apps[n]
		for _, sn := range x.streamOrder {
			for _, l := range x.streams[sn].topics {
				byTopic[l.topic] = append(byTopic[l.topic], end{x, l, true})
			}
		}
		for _, l := range x.sources {
			byTopic[l.topic] = append(byTopic[l.topic], end{x, l, false})
		}
	}
	for _, topic := range slices.Sorted(maps.Keys(byTopic)) {
		ends := byTopic[topic]
		for _, mine := range ends {
			if mine.app != a {
				continue
			}
			for _, other := range ends {
				if other.pub == mine.pub {
					continue
				}
				want := other.app.streams[other.l.stream].def.Attributes
				got := a.streams[mine.l.stream].def.Attributes
				if !sameTypes(got, want) {
					what, role := "@source", "publishes to"
					if mine.pub {
						what, role = "@sink", "subscribes to"
					}
					return &siddhiql.Error{Pos: mine.l.pos, Msg: fmt.Sprintf(
						"%s(type='inMemory', topic='%s') on stream %s: its attributes (%s) do not match those of stream %s of app %s, which %s the topic (%s)",
						what, topic, mine.l.stream, typeList(got), other.l.stream, other.app.Name, role, typeList(want))}
				}
			}
		}
	}
	return checkLinkLoops(a, apps, names, byTopicSubs(apps, names))
}

func byTopicSubs(apps map[string]*App, names []string) map[string][]subscriber {
	subs := map[string][]subscriber{}
	for _, n := range names {
		for _, l := range apps[n].sources {
			subs[l.topic] = append(subs[l.topic], subscriber{app: apps[n], stream: l.stream})
		}
	}
	return subs
}

// checkLinkLoops refuses a loop through queries and topics (A→B→A), which would feed events
// back to where they came from without end. The error points at an inMemory link of app a
// (the app being deployed) on the loop.
func checkLinkLoops(a *App, apps map[string]*App, names []string, subs map[string][]subscriber) error {
	type node = linkNode
	state := map[node]int{} // 1 visiting, 2 done
	var path []node
	var visit func(n node) error
	visit = func(n node) error {
		switch state[n] {
		case 1:
			return loopError(a, append(path, n))
		case 2:
			return nil
		}
		state[n] = 1
		path = append(path, n)
		s := apps[n.app].streams[n.stream]
		for _, into := range apps[n.app].next(n.stream) {
			if err := visit(node{n.app, into}); err != nil {
				return err
			}
		}
		for _, l := range s.topics {
			for _, sub := range subs[l.topic] {
				if err := visit(node{sub.app.Name, sub.stream}); err != nil {
					return err
				}
			}
		}
		path = path[:len(path)-1]
		state[n] = 2
		return nil
	}
	for _, an := range names {
		for _, sn := range apps[an].sortedStreams() {
			if err := visit(node{an, sn}); err != nil {
				return err
			}
		}
	}
	return nil
}

// linkNode is a stream of an app in the graph of queries and topics.
type linkNode struct{ app, stream string }

// loopError describes the loop closed by the last node of path, at the position of a link
// of app a on the loop.
func loopError(a *App, path []linkNode) error {
	last := path[len(path)-1]
	start := slices.Index(path, last)
	var steps []string
	pos, found := siddhiql.Pos{Line: 1, Col: 1}, false
	for _, n := range path[start:] {
		steps = append(steps, n.app+"."+n.stream)
		if found || n.app != a.Name {
			continue
		}
		for _, l := range append(slices.Clone(a.streams[n.stream].topics), a.sources...) {
			if l.stream == n.stream {
				pos, found = l.pos, true
				break
			}
		}
	}
	return &siddhiql.Error{Pos: pos, Msg: fmt.Sprintf("inMemory topics and queries feed stream %s of app %s back into itself: %s",
		last.stream, last.app, strings.Join(steps, " → "))}
}

func sameTypes(a, b []siddhiql.Attribute) bool {
	return slices.EqualFunc(a, b, func(x, y siddhiql.Attribute) bool { return x.Type == y.Type })
}

func typeList(as []siddhiql.Attribute) string {
	parts := make([]string, len(as))
	for i, x := range as {
		parts[i] = x.Name + " " + x.Type.String()
	}
	return strings.Join(parts, ", ")
}
