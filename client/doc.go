// Package client is the Go client of Tally's HTTP API.
//
// A Client knows the base URLs of some of the cluster's nodes (any node answers any
// request, passing it to the leader it concerns) and sends requests to them round robin,
// failing over to the next node when one cannot be reached or answers 503:
//
//	c, err := client.New([]string{"http://10.0.0.1:7070", "http://10.0.0.2:7070"}, client.Options{})
//
// A Publisher sends events to a stream in batches, each exactly once: batch k carries the
// publisher's Producer-Id and Producer-Seq k and is retried, with the same seq, until the
// cluster acknowledges it, and the cluster applies a producer's seq only once. With
// PublisherOptions.StatePath the producer ID, the next seq and the batch in flight are kept
// in a file, so a publisher that restarts resends that batch and never reuses a seq (the
// cluster remembers the last 1024 seqs of a producer: seqs only go up).
//
// Query runs store queries (read your writes with QueryOptions.MinIndex set to
// Publisher.Indexes), Subscribe follows a query's output stream as Server-Sent Events and
// resumes after a dropped connection from the last output it returned, and Deploy,
// Undeploy, Apps, Status, Map, Drain and Transfer manage and describe the cluster. Ingest and
// IngestNDJSON send one request each, for callers that track every request's outcome; Call
// reaches any other endpoint and returns its answer as the node sent it.
//
// Errors of refused requests are *APIError values with the server's message; errors.Is
// sorts them into ErrUnavailable (retry later), ErrBadRequest, ErrUnauthorized,
// ErrForbidden and ErrTooManyRequests.
//
// A Client and its Publishers are safe for concurrent use; a Subscription is read by one
// goroutine.
package client
