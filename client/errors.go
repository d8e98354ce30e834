package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The kinds of failure, for errors.Is. Every error of a refused request is an *APIError
// (errors.As gives the status and the server's message) that matches one of them.
var (
	// ErrUnavailable: the cluster cannot serve the request right now (503: no leader, a
	// node shutting down, a store outage) or no node answered at all. Retry later: the
	// *APIError's RetryAfter says when the server suggests.
	ErrUnavailable = errors.New("tally cluster unavailable")
	// ErrBadRequest: the request is wrong and retrying it changes nothing (400, 404, 405,
	// 409, 410, 413 and other 4xx not listed below). The *APIError has the server's message.
	ErrBadRequest = errors.New("request refused")
	// ErrUnauthorized: no credentials, or wrong ones (401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: the credentials do not allow the request (403).
	ErrForbidden = errors.New("forbidden")
	// ErrTooManyRequests: the server asks to slow down (429); retryable after RetryAfter.
	ErrTooManyRequests = errors.New("too many requests")
)

// APIError is a non-2xx answer of a node.
type APIError struct {
	Method, URL string
	Status      int
	// Message is the server's own error text.
	Message string
	// RetryAfter is the server's Retry-After, zero when it sent none.
	RetryAfter time.Duration
	// HasRetryAfter says the server sent a Retry-After it could be read from (which may
	// ask for no wait at all: RetryAfter zero).
	HasRetryAfter bool
	// Event is the index (from 0) of the refused event of an ingest batch, when the
	// server names one; Field is the attribute at fault, if known.
	Event *int
	Field string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s: %s (HTTP %d %s)", e.Method, e.URL, e.Message, e.Status, http.StatusText(e.Status))
}

// Is matches the sentinel of the answer's kind.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrUnavailable:
		return e.Status == http.StatusServiceUnavailable || e.Status == http.StatusBadGateway || e.Status == http.StatusGatewayTimeout
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrTooManyRequests:
		return e.Status == http.StatusTooManyRequests
	case ErrBadRequest:
		switch e.Status {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests:
			return false
		}
		return e.Status >= 400 && e.Status < 500
	}
	return false
}

// newAPIError reads the server's message out of an error body: {"error":...} from /v1,
// {"type":"error","message":...} from the store query API, else the body's text.
func newAPIError(method, target string, status int, h http.Header, b []byte) *APIError {
	e := &APIError{Method: method, URL: target, Status: status}
	var body struct {
		Error   *string `json:"error"`
		Message *string `json:"message"`
		Event   *int    `json:"event"`
		Field   string  `json:"field"`
	}
	switch {
	case json.Unmarshal(b, &body) == nil && body.Error != nil:
		e.Message, e.Event, e.Field = *body.Error, body.Event, body.Field
	case body.Message != nil:
		e.Message = *body.Message
	default:
		e.Message = strings.TrimSpace(string(b))
	}
	if e.Message == "" {
		e.Message = "(empty response body)"
	}
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			e.RetryAfter, e.HasRetryAfter = time.Duration(n)*time.Second, true
		} else if t, err := http.ParseTime(v); err == nil {
			e.RetryAfter, e.HasRetryAfter = max(time.Until(t), 0), true
		}
	}
	return e
}

// netError is a request that got no answer (connection refused or reset, timeout).
type netError struct {
	Method, URL string
	Err         error
}

func (e *netError) Error() string { return fmt.Sprintf("%s %s: %v", e.Method, e.URL, e.Err) }

func (e *netError) Unwrap() error { return e.Err }

// unavailableError is a request that no node answered.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string {
	return fmt.Sprintf("%v: no node answered (last: %v)", ErrUnavailable, e.err)
}

func (e *unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// RetryAfter returns the wait the server asked for with Retry-After in err (an *APIError
// anywhere in its chain), and whether it asked.
func RetryAfter(err error) (time.Duration, bool) {
	var ae *APIError
	if errors.As(err, &ae) && ae.RetryAfter > 0 {
		return ae.RetryAfter, true
	}
	return 0, false
}
