package siddhiql

import (
	"fmt"
	"strings"
)

// Notes returns remarks for the operator about annotations Tally accepts as declarations
// only: an @source of a type other than inMemory (http, wso2event, mgwfile, a ref=...)
// does not run, the stream's events arrive through Tally's ingest API instead; an
// @sink(type='email') that names no host mails through the node's SMTP server; @Async
// changes nothing, as Tally applies events in replicated batches. Streams are taken in text
// order, so the notes are deterministic.
func Notes(app *App) []string {
	var notes []string
	for _, s := range app.Streams {
		for _, a := range s.Annotations {
			switch {
			case strings.EqualFold(a.Name, "source"):
				kind := sourceKind(a)
				if strings.EqualFold(kind, "type='inMemory'") {
					continue
				}
				notes = append(notes, fmt.Sprintf("%s: stream %s: @source(%s) is a declaration: Tally runs no such source; send events for %s to the ingest API (POST /v1/streams/%s/events, or /v1/streams/%s.%s/events when other apps define %s too)", a.Pos, s.Name, kind, s.Name, s.Name, app.Name, s.Name, s.Name))
			case strings.EqualFold(a.Name, "sink") && strings.EqualFold(sourceKind(a), "type='email'") && !hasElement(a, "host"):
				notes = append(notes, fmt.Sprintf("%s: stream %s: @sink(type='email') names no host: mail goes through the node's SMTP server (tally serve --smtp-host); a node without one logs each mail instead of sending it", a.Pos, s.Name))
			case strings.EqualFold(a.Name, "async"):
				notes = append(notes, fmt.Sprintf("%s: stream %s: @Async is accepted and changes nothing: Tally applies events in replicated batches", a.Pos, s.Name))
			}
		}
	}
	return notes
}

// sourceKind names an @source by its type or ref element.
func sourceKind(a *Annotation) string {
	for _, e := range a.Elements {
		if strings.EqualFold(e.Key, "type") {
			return "type='" + e.Value + "'"
		}
	}
	for _, e := range a.Elements {
		if strings.EqualFold(e.Key, "ref") {
			return "ref='" + e.Value + "'"
		}
	}
	return "without a type"
}

// hasElement reports whether annotation a has the option key.
func hasElement(a *Annotation, key string) bool {
	for _, e := range a.Elements {
		if strings.EqualFold(e.Key, key) {
			return true
		}
	}
	return false
}
