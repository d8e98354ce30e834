package engine

import (
	"fmt"
	"maps"
	"regexp"
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
// A publisher's topic may name attributes (`topic='{{symbol}}'`, `'prices.{{symbol}}'`):
// each event then goes to the topic its values spell (strings as they are, other values as
// JSON writes them), and deploy checks it against every subscribed topic it can spell.
//
// Every event of a publishing stream (ingested, or inserted by a query) is delivered, in
// the same Apply or Tick, to every stream subscribed to its topic: subscribing apps in
// app-name order, an app's subscribed streams in definition order, each after the
// publishing stream's own queries have seen the events. Attributes pass by position
// (passThrough), so a topic's publishers and subscribers must have the same attribute
// types, except that a subscriber may take fewer attributes than the publisher sends when
// each of its attributes is one of the publisher's, by name and type: it then gets those
// attributes by name (projection, linkmap.go). Deploy refuses any other mismatch and any chain of static links and queries that loops
// back to a stream it started from. A loop through a dynamic topic is bounded instead: an
// event stops after maxDepth hops of queries and topics.
type link struct {
	pos    siddhiql.Pos
	topic  string
	stream string
	// tmpl is set for a publisher's dynamic topic (`topic='prices.{{symbol}}'`): the topic
	// of each event is the text with every {{attr}} replaced by the event's value.
	tmpl *topicTemplate
}

// topicTemplate is a dynamic topic: literal text and attribute positions, and a pattern
// that matches every topic it can produce.
type topicTemplate struct {
	parts []topicPart
	re    *regexp.Regexp
}

type topicPart struct {
	lit  string
	attr int // -1 for literal text
}

// parseTopicTemplate reads {{attr}} placeholders in a publisher's topic; nil when there are
// none.
func parseTopicTemplate(topic string, def *siddhiql.StreamDef) (*topicTemplate, error) {
	if !strings.Contains(topic, "{{") {
		return nil, nil
	}
	t := &topicTemplate{}
	var re strings.Builder
	re.WriteString("^")
	rest := topic
	for rest != "" {
		i := strings.Index(rest, "{{")
		if i < 0 {
			t.parts = append(t.parts, topicPart{lit: rest, attr: -1})
			re.WriteString(regexp.QuoteMeta(rest))
			break
		}
		if i > 0 {
			t.parts = append(t.parts, topicPart{lit: rest[:i], attr: -1})
			re.WriteString(regexp.QuoteMeta(rest[:i]))
		}
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			return nil, fmt.Errorf("topic %q has a '{{' without '}}'", topic)
		}
		name := strings.TrimSpace(rest[i+2 : i+j])
		idx := slices.IndexFunc(def.Attributes, func(a siddhiql.Attribute) bool { return a.Name == name })
		if idx < 0 {
			return nil, fmt.Errorf("topic %q: {{%s}} is not an attribute of stream %s", topic, name, def.Name)
		}
		t.parts = append(t.parts, topicPart{attr: idx})
		re.WriteString("(?s:.*)")
		rest = rest[i+j+2:]
	}
	re.WriteString("$")
	t.re = regexp.MustCompile(re.String())
	return t, nil
}

// render is the topic of one event.
func (t *topicTemplate) render(row expr.Row) string {
	var b strings.Builder
	for _, p := range t.parts {
		switch {
		case p.attr < 0:
			b.WriteString(p.lit)
		case row[p.attr].T == siddhiql.TypeString:
			b.WriteString(row[p.attr].S)
		case row[p.attr].IsNull():
			b.WriteString("null")
		default:
			b.WriteString(row[p.attr].String())
		}
	}
	return b.String()
}

// reaches reports whether a publisher's link can deliver to a subscriber's topic.
func (l link) reaches(topic string) bool {
	if l.tmpl == nil {
		return l.topic == topic
	}
	return l.tmpl.re.MatchString(topic)
}

// targets lists the subscribers l can deliver to: those of its topic, or, for a dynamic
// topic, those of every topic it can produce (topics sorted).
func (l link) targets(subs map[string][]subscriber) []subscriber {
	if l.tmpl == nil {
		return subs[l.topic]
	}
	var out []subscriber
	for _, topic := range slices.Sorted(maps.Keys(subs)) {
		if l.reaches(topic) {
			out = append(out, subs[topic]...)
		}
	}
	return out
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
				if l.tmpl, err = parseTopicTemplate(l.topic, s.def); err != nil {
					return &siddhiql.Error{Pos: l.pos, Msg: fmt.Sprintf("@sink(type='inMemory'): %v", err)}
				}
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
	e.linkAggJoins() // aggjoin_readonly.go: read-only aggregations follow the deployed apps too
}

// publish delivers events of a publishing stream to the topics' subscribers. A subscriber
// stream that refuses the events (an event-time aggregation reading it finds a bad event
// time) does not get them; the others do.
func (b *bus) publish(index uint64, now int64, from []siddhiql.Attribute, topics []link, events []expr.Row, out *[]Output, depth int) {
	if b == nil || depth >= maxDepth {
		return
	}
	deliver := func(topic string, events []expr.Row) {
		for _, sub := range b.subs[topic] {
			s := sub.app.streams[sub.stream]
			evs := events
			if len(from) != len(s.def.Attributes) {
				if evs = projectRows(from, s.def.Attributes, events); evs == nil {
					continue
				}
			}
			if s.check(evs) != nil {
				continue
			}
			sub.app.feed(index, now, sub.stream, evs, out, depth+1)
		}
	}
	for _, t := range topics {
		if t.tmpl == nil {
			deliver(t.topic, events)
			continue
		}
		// A dynamic topic: consecutive events of one topic travel together, in order.
		var run []expr.Row
		cur := ""
		for _, ev := range events {
			topic := t.tmpl.render(ev)
			if len(run) > 0 && topic != cur {
				deliver(cur, run)
				run = nil
			}
			cur = topic
			run = append(run, ev)
		}
		if len(run) > 0 {
			deliver(cur, run)
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
	}
	var pubs, subs []end
	for _, n := range names {
		x := apps[n]
		for _, sn := range x.streamOrder {
			for _, l := range x.streams[sn].topics {
				pubs = append(pubs, end{x, l})
			}
		}
		for _, l := range x.sources {
			subs = append(subs, end{x, l})
		}
	}
	for _, p := range pubs {
		for _, sub := range subs {
			if (p.app != a && sub.app != a) || !p.l.reaches(sub.l.topic) {
				continue
			}
			pa := p.app.streams[p.l.stream].def.Attributes
			sa := sub.app.streams[sub.l.stream].def.Attributes
			if sameTypes(pa, sa) || projection(pa, sa) != nil {
				continue
			}
			mine, other, what, role := p, sub, "@sink", "subscribes to"
			if p.app != a {
				mine, other, what, role = sub, p, "@source", "publishes to"
			}
			got := mine.app.streams[mine.l.stream].def.Attributes
			want := other.app.streams[other.l.stream].def.Attributes
			return &siddhiql.Error{Pos: mine.l.pos, Msg: fmt.Sprintf(
				"%s(type='inMemory', topic='%s') on stream %s: its attributes (%s) do not match those of stream %s of app %s, which %s the topic (%s)",
				what, mine.l.topic, mine.l.stream, typeList(got), other.l.stream, other.app.Name, role, typeList(want))}
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
		if s == nil { // a table: a sink of rows, never a source of events
			path = path[:len(path)-1]
			state[n] = 2
			return nil
		}
		// edges, not next: a join that inserts into its own input loops on purpose.
		for _, e := range apps[n.app].edges(n.stream) {
			if err := visit(node{n.app, e.into}); err != nil {
				return err
			}
		}
		for _, l := range s.topics {
			if l.tmpl != nil {
				// A dynamic topic could spell any topic, its own source's too: such loops
				// are bounded at run time (maxDepth hops), not refused.
				continue
			}
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
