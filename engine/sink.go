package engine

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tally-db/tally/siddhiql"
)

// Sink types.
const (
	SinkLog   = "log"
	SinkHTTP  = "http"
	SinkEmail = "email"
)

// Sink defaults (milliseconds).
const (
	DefaultSinkTimeoutMillis       = 10_000
	DefaultSinkRetryIntervalMillis = 100
	DefaultSinkMaxBackoffMillis    = 5_000
)

// Sink is one @sink annotation of a stream that queries write into. A sink is identified by
// its stream and its position (Index, from 0) among the stream's @sink annotations.
//
//	@sink(type='log' [, prefix='...'])
//	@sink(type='http', publisher.url='http://host/path'
//	      [, headers="'K1:v1','K2:v2'"]        -- or 'K1:v1,K2:v2'
//	      [, timeout='10 sec']                 -- per request; default 10 sec
//	      [, retry.interval='100 millisec']    -- first backoff after a failure
//	      [, retry.max.interval='5 sec']       -- backoff cap; retries never stop
//	      [, @map(type='json')])
//	@sink(type='email', to='{{email}}', subject='…', …)   -- see EmailSink
//
// Durations are SiddhiQL time literals ('5 sec', '1 min 30 sec') or plain milliseconds.
type Sink struct {
	App    string
	Stream string
	Index  int
	Type   string // SinkLog, SinkHTTP or SinkEmail
	Pos    siddhiql.Pos
	// URL is publisher.url (http).
	URL string
	// Headers are extra request headers (http), in declaration order.
	Headers [][2]string
	// Prefix starts every log line (log).
	Prefix string
	// Email is the mail an email sink sends (nil for other types).
	Email *EmailSink
	// TimeoutMillis bounds one request; RetryIntervalMillis is the first backoff after a
	// failure, doubled up to MaxBackoffMillis.
	TimeoutMillis, RetryIntervalMillis, MaxBackoffMillis int64
}

// String names the sink for messages: "sink 0 (http http://host/path) of stream Alerts",
// a password in the URL hidden (siddhiql.RedactURL).
func (s Sink) String() string {
	what := s.Type
	if s.URL != "" {
		what += " " + siddhiql.RedactURL(s.URL)
	}
	if s.Email != nil {
		what += " to " + s.Email.To.Text
	}
	return fmt.Sprintf("sink %d (%s) of stream %s", s.Index, what, s.Stream)
}

// Key identifies the sink's configuration: equal keys mean the same destination and options.
func (s Sink) Key() string {
	return fmt.Sprintf("%s/%d/%s/%q/%q/%q/%d/%d/%d/%s", s.Stream, s.Index, s.Type, s.URL, s.Headers, s.Prefix,
		s.TimeoutMillis, s.RetryIntervalMillis, s.MaxBackoffMillis, s.Email.key())
}

// parseSinks reads the @sink annotations of a stream definition.
func parseSinks(app string, sd *siddhiql.StreamDef) ([]Sink, error) {
	var out []Sink
	for _, an := range sd.Annotations {
		if !strings.EqualFold(an.Name, "sink") || isInMemory(an) { // inMemory links apps (inmemory.go)
			continue
		}
		s, err := parseSink(an, sd)
		if err != nil {
			return nil, err
		}
		s.App, s.Stream, s.Index, s.Pos = app, sd.Name, len(out), an.Pos
		out = append(out, s)
	}
	return out, nil
}

func parseSink(an *siddhiql.Annotation, sd *siddhiql.StreamDef) (Sink, error) {
	s := Sink{TimeoutMillis: DefaultSinkTimeoutMillis, RetryIntervalMillis: DefaultSinkRetryIntervalMillis,
		MaxBackoffMillis: DefaultSinkMaxBackoffMillis}
	fail := func(pos siddhiql.Pos, format string, args ...any) (Sink, error) {
		return Sink{}, &siddhiql.Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
	}
	opts := map[string]siddhiql.Element{}
	for _, el := range an.Elements {
		key := strings.ToLower(el.Key)
		if key == "" {
			return fail(el.Pos, "@sink takes key='value' options, not a bare '%s'", el.Value)
		}
		if _, dup := opts[key]; dup {
			return fail(el.Pos, "@sink option %s is given twice", el.Key)
		}
		opts[key] = el
	}
	typ, ok := opts["type"]
	if !ok {
		return fail(an.Pos, "@sink needs a type: type='log', type='http' or type='email'")
	}
	s.Type = strings.ToLower(typ.Value)
	allowed := map[string]bool{"type": true}
	switch s.Type {
	case SinkLog:
		allowed["prefix"] = true
		s.Prefix = opts["prefix"].Value
	case SinkHTTP:
		for _, k := range []string{"publisher.url", "headers", "timeout", "retry.interval", "retry.max.interval"} {
			allowed[k] = true
		}
		u, ok := opts["publisher.url"]
		if !ok {
			return fail(an.Pos, "@sink(type='http') needs publisher.url='http://host/path'")
		}
		pu, err := url.Parse(u.Value)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return fail(u.Pos, "publisher.url %q is not an http:// or https:// URL", siddhiql.RedactURL(u.Value))
		}
		s.URL = u.Value
		if h, ok := opts["headers"]; ok {
			hs, err := parseHeaders(h.Value)
			if err != nil {
				return fail(h.Pos, "headers: %v", err)
			}
			s.Headers = hs
		}
	case SinkEmail:
		for _, k := range emailOptions {
			allowed[k] = true
		}
		if el, ok := opts["attachments"]; ok {
			return fail(el.Pos, "@sink(type='email') option attachments is not supported: Tally sends no files")
		}
		if err := parseEmail(&s, an, opts, sd); err != nil {
			return Sink{}, err
		}
	default:
		return fail(typ.Pos, "unknown sink type %q: Tally has type='log', type='http' and type='email'", typ.Value)
	}
	for _, d := range []struct {
		key string
		dst *int64
	}{{"timeout", &s.TimeoutMillis}, {"retry.interval", &s.RetryIntervalMillis}, {"retry.max.interval", &s.MaxBackoffMillis}} {
		el, ok := opts[d.key]
		if !ok || !allowed[d.key] {
			continue
		}
		ms, err := parseMillis(el.Value)
		if err != nil || ms <= 0 {
			return fail(el.Pos, "%s %q is not a positive duration such as '5 sec' or '500 millisec'", d.key, el.Value)
		}
		*d.dst = ms
	}
	if s.MaxBackoffMillis < s.RetryIntervalMillis {
		s.MaxBackoffMillis = s.RetryIntervalMillis
	}
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		if !allowed[k] {
			return fail(opts[k].Pos, "@sink(type='%s') has no option %s", s.Type, opts[k].Key)
		}
	}
	for _, m := range an.Annotations {
		if s.Type == SinkEmail {
			break // parseEmail read its @map
		}
		if !strings.EqualFold(m.Name, "map") {
			return fail(m.Pos, "@sink takes only @map(type='json') inside, not @%s", m.Name)
		}
		for _, el := range m.Elements {
			if !strings.EqualFold(el.Key, "type") || !strings.EqualFold(el.Value, "json") {
				return fail(el.Pos, "@map: only type='json' is supported")
			}
		}
		if len(m.Annotations) > 0 {
			return fail(m.Annotations[0].Pos, "@map(type='json') takes no nested annotations (@payload, @attributes)")
		}
	}
	return s, nil
}

// parseHeaders reads "'K1:v1','K2:v2'" (Siddhi's form) or "K1:v1,K2:v2".
func parseHeaders(v string) ([][2]string, error) {
	var out [][2]string
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		item = strings.TrimSuffix(strings.TrimPrefix(item, "'"), "'")
		if item == "" {
			continue
		}
		k, val, ok := strings.Cut(item, ":")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t\r\n") || strings.ContainsAny(val, "\r\n") {
			return nil, fmt.Errorf("header %d is not Name:value", len(out)+1)
		}
		out = append(out, [2]string{k, strings.TrimSpace(val)})
	}
	return out, nil
}

// parseMillis reads a SiddhiQL time literal ('5 sec', '1 min 30 sec') or plain milliseconds.
func parseMillis(v string) (int64, error) {
	f := strings.Fields(v)
	if len(f) == 1 {
		return strconv.ParseInt(f[0], 10, 64)
	}
	if len(f) == 0 || len(f)%2 != 0 {
		return 0, fmt.Errorf("bad duration %q", v)
	}
	var total int64
	for i := 0; i < len(f); i += 2 {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, err
		}
		unit, ok := siddhiql.TimeUnitMillis(f[i+1])
		if !ok {
			return 0, fmt.Errorf("unknown time unit %q", f[i+1])
		}
		total += n * unit
	}
	return total, nil
}

// compileSinks parses the sinks of every defined stream and checks each sink's stream is
// written by a query of the app.
func (a *App) compileSinks() error {
	written := map[string]bool{}
	for _, q := range a.queries {
		written[q.def.Into] = true
	}
	for _, p := range a.partitions {
		for _, into := range p.outputs {
			written[into] = true
		}
	}
	for _, name := range a.streamOrder {
		sd := a.streams[name].def
		sinks, err := parseSinks(a.Name, sd)
		if err != nil {
			return err
		}
		if len(sinks) > 0 && !written[name] {
			return &siddhiql.Error{Pos: sinks[0].Pos, Msg: fmt.Sprintf("stream %s has a @sink but no query inserts into it: sinks deliver query outputs", name)}
		}
		a.streams[name].sinks = sinks
	}
	return nil
}

// Sinks lists the app's sinks by stream (in definition order), then position.
func (a *App) Sinks() []Sink {
	var out []Sink
	for _, name := range a.streamOrder {
		out = append(out, a.streams[name].sinks...)
	}
	return out
}

// Sinks lists every delivered sink: apps by name, streams in definition order. An email
// sink on a stream whose name another deployed app defines too is left out (see
// emailShared).
func (e *Engine) Sinks() []Sink {
	var out []Sink
	for _, a := range e.Apps() {
		for _, sk := range a.Sinks() {
			if !e.emailShared(a, sk) {
				out = append(out, sk)
			}
		}
	}
	return out
}

// SinksOf returns the delivered sinks declared on stream (nil when it has none or is
// unknown).
func (e *Engine) SinksOf(stream string) []Sink {
	a, local, _ := e.resolve(stream)
	if a == nil {
		return nil
	}
	var out []Sink
	for _, sk := range a.streams[local].sinks {
		if !e.emailShared(a, sk) {
			out = append(out, sk)
		}
	}
	return out
}

// emailShared reports whether sk is an email sink of app a on a stream whose name another
// deployed app defines too. Outputs wait for their sinks in an outbox per stream name, so
// such a sink would mail the other app's outputs with its own template: it is a declaration
// while the name is shared (the deploy notes say so), and delivers again from the outputs
// that follow once it is not. A log or http sink on a shared name is refused at deploy
// instead (checkSinkNames); two of the API-M apps declare email sinks on streams of the
// same name, and deploy together.
func (e *Engine) emailShared(a *App, sk Sink) bool {
	if sk.Type != SinkEmail {
		return false
	}
	for _, other := range e.apps {
		if other.Name != a.Name {
			if _, ok := other.streams[sk.Stream]; ok {
				return true
			}
		}
	}
	return false
}

// IsOutputStream reports whether some query of a deployed app inserts into stream.
func (e *Engine) IsOutputStream(stream string) bool {
	for _, a := range e.apps {
		for _, q := range a.queries {
			if q.def.Into == stream {
				return true
			}
		}
		for _, p := range a.partitions {
			if slices.Contains(p.outputs, stream) {
				return true
			}
		}
	}
	return false
}

// Reaches returns, sorted, the streams that events sent to stream can reach through queries,
// partitions and inMemory topics (directly or through chains); stream itself is not
// included unless a chain loops back, which deploy refuses.
func (e *Engine) Reaches(stream string) []string {
	a, local, _ := e.resolve(stream)
	if a == nil {
		return nil
	}
	seen := map[string]bool{}
	var visit func(a *App, s string, depth int)
	visit = func(a *App, s string, depth int) {
		st, ok := a.streams[s]
		if !ok || depth > maxDepth {
			return
		}
		for _, into := range a.next(s) { // queries and partitions
			if !seen[into] {
				seen[into] = true
				visit(a, into, depth+1)
			}
		}
		for _, l := range st.topics { // inMemory subscribers in other apps
			for _, sub := range l.targets(e.bus.subs) {
				if !seen[sub.stream] {
					seen[sub.stream] = true
					visit(sub.app, sub.stream, depth+1)
				}
			}
		}
	}
	visit(a, local, 0)
	return slices.Sorted(maps.Keys(seen))
}
