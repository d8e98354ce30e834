package engine

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Stream names are scoped per app, as in Siddhi: two apps may each define a stream Request
// and each app's queries read its own. Events are addressed to a stream by name:
//
//   - "App.Stream" is stream Stream of app App, always (an app name may itself contain
//     dots: the stream name is what follows the last one).
//   - A bare "Stream" is the app's that defines it as a plain input: a `define stream` with
//     no @source annotation that no query of the app inserts into. Only one deployed app
//     may define a plain input of a given name: a second one is refused with ErrConflict,
//     so producers that send to a bare name keep reaching the same app.
//   - Otherwise a bare "Stream" is the stream of the one deployed app that defines it (an
//     @source stream, a stream its queries also insert into). When several apps define it,
//     the bare name is ambiguous: events must name the app.

// isPlainInput reports whether the defined stream name of a takes a global bare name: it
// has no @source annotation and no query or partition of a inserts into it.
func (a *App) isPlainInput(name string) bool {
	s, ok := a.streams[name]
	if !ok || !slices.Contains(a.streamOrder, name) {
		return false
	}
	for _, an := range s.def.Annotations {
		if strings.EqualFold(an.Name, "source") {
			return false
		}
	}
	for _, q := range a.queries {
		if q.def.Into == name {
			return false
		}
	}
	for _, p := range a.partitions {
		if slices.Contains(p.outputs, name) {
			return false
		}
	}
	return true
}

// plainInputs lists a's plain input streams in definition order.
func (a *App) plainInputs() []string {
	var out []string
	for _, s := range a.streamOrder {
		if a.isPlainInput(s) {
			out = append(out, s)
		}
	}
	return out
}

// resolve finds the app and local stream name that events sent to name reach. ok is false
// when no deployed app has such a stream; definers then lists the apps that define a bare
// name ambiguously (sorted), for the error.
func (e *Engine) resolve(name string) (a *App, local string, definers []string) {
	if a, ok := e.inputs[name]; ok {
		return a, name, nil
	}
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		if a, ok := e.apps[name[:i]]; ok && slices.Contains(a.streamOrder, name[i+1:]) {
			return a, name[i+1:], nil
		}
	}
	for _, n := range slices.Sorted(maps.Keys(e.apps)) {
		if slices.Contains(e.apps[n].streamOrder, name) {
			definers = append(definers, n)
		}
	}
	if len(definers) == 1 {
		return e.apps[definers[0]], name, nil
	}
	return nil, "", definers
}

// lookup is resolve as an error wrapping ErrUnknownStream.
func (e *Engine) lookup(name string) (*App, string, error) {
	a, local, definers := e.resolve(name)
	if a != nil {
		return a, local, nil
	}
	if len(definers) > 1 {
		qualified := make([]string, len(definers))
		for i, d := range definers {
			qualified[i] = d + "." + name
		}
		return nil, "", fmt.Errorf("%w: %s is defined by apps %s: name the app, as %s",
			ErrUnknownStream, name, strings.Join(definers, ", "), strings.Join(qualified, " or "))
	}
	return nil, "", fmt.Errorf("%w: %s", ErrUnknownStream, name)
}

// ResolveStream returns the app and the app's own name of the stream that events sent to
// name reach (see the scoping rules above), or an error wrapping ErrUnknownStream that, for
// a bare name several apps define, lists the qualified names to use instead.
func (e *Engine) ResolveStream(name string) (app, stream string, err error) {
	a, local, err := e.lookup(name)
	if err != nil {
		return "", "", err
	}
	return a.Name, local, nil
}

// checkSinkNames refuses an app whose log or http sinks would share a stream name
// with a stream of another deployed app, either way round: outputs wait for their sinks in
// an outbox per stream name, so the sink would deliver the other app's events too. a
// replaces the deployed app of the same name, if any.
func (e *Engine) checkSinkNames(a *App) error {
	for _, n := range slices.Sorted(maps.Keys(e.apps)) {
		other := e.apps[n]
		if other.Name == a.Name {
			continue
		}
		for _, pair := range [2][2]*App{{a, other}, {other, a}} {
			withSink, withName := pair[0], pair[1]
			for _, sk := range withSink.Sinks() {
				_, clash := withName.streams[sk.Stream]
				if sk.Type == SinkEmail {
					if clash && withSink == a {
						a.Notes = append(a.Notes, fmt.Sprintf("%s: stream %s: @sink(type='email') sends no mail while app %s has a stream %s too: sinks deliver by stream name; rename one of the streams",
							sk.Pos, sk.Stream, withName.Name, sk.Stream))
					}
					continue // a declaration while the name is shared (emailShared)
				}
				if clash {
					return fmt.Errorf("%w: stream %s has a @sink(type='%s') in app %s, and app %s has a stream %s too: sinks deliver by stream name, so it would also deliver %s's events; rename one of the streams",
						ErrConflict, sk.Stream, sk.Type, withSink.Name, withName.Name, sk.Stream, withName.Name)
				}
			}
		}
	}
	return nil
}
