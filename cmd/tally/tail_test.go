package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

func TestTailReconnectsAfterTheLastID(t *testing.T) {
	var mu sync.Mutex
	var froms []string
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /v1/streams/Alerts/subscribe": func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			from := r.URL.Query().Get("from")
			froms = append(froms, from+"|"+r.URL.Query().Get("group"))
			call := len(froms)
			mu.Unlock()
			w.Header().Set("Content-Type", "text/event-stream")
			ev := func(id string) {
				fmt.Fprintf(w, "id: %s\nevent: output\ndata: {\"id\":%q}\n\n", id, id)
			}
			switch call {
			case 1: // two events, then the connection breaks
				fmt.Fprint(w, ": hello\n\n")
				ev("0-5-0")
				ev("0-5-1")
			case 2: // unavailable for a moment
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprint(w, `{"error":"busy"}`)
			default:
				ev("0-7-0")
			}
		},
	})
	code, out, errOut := tally(t, "tail", "Alerts", "--from", "0-4-0", "--group", "0", "--count", "3", "--addr", api.URL)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if want := "{\"id\":\"0-5-0\"}\n{\"id\":\"0-5-1\"}\n{\"id\":\"0-7-0\"}\n"; out != want {
		t.Errorf("stdout\n%s\nwant\n%s", out, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(froms, " "); got != "0-4-0|0 0-5-1|0 0-5-1|0" {
		t.Errorf("subscriptions from %s", got)
	}
	if !strings.Contains(errOut, "reconnecting") {
		t.Errorf("stderr %q", errOut)
	}
}

func TestTailGone(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /v1/streams/Alerts/subscribe": answer(http.StatusGone, `{"error":"outputs of stream Alerts after 0-1-0 are no longer retained"}`),
	})
	code, _, errOut := tally(t, "tail", "Alerts", "--from", "0-1-0", "--addr", api.URL)
	if code != 1 || !strings.Contains(errOut, "no longer retained") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if code, _, _ := tally(t, "tail"); code != 2 {
		t.Errorf("no stream: exit %d", code)
	}
}
