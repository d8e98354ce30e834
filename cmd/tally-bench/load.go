package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type loadResult struct {
	Mode       string  `json:"mode"`
	Keys       int     `json:"keys"`
	Events     int64   `json:"events"`
	DurationS  float64 `json:"duration_s"`
	EventsPerS float64 `json:"events_per_s"`
}

// loadMain posts symbols S000000 ... S(keys-1) once each (the naming of `tally bench`), in
// batches of --batch from --clients clients, to the nodes of --addr in turn.
func loadMain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	addr := fs.String("addr", "http://127.0.0.1:7070", "comma-separated node URLs")
	stream := fs.String("stream", "TradeStream", "stream (trade schema)")
	keys := fs.Int("keys", 1000000, "distinct symbols, each sent once")
	batch := fs.Int("batch", 1000, "events per request")
	clients := fs.Int("clients", 8, "concurrent clients")
	maxDur := fs.Duration("max-duration", 150*time.Second, "stop sending new batches after this long (the result then has fewer keys)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	addrs := strings.Split(*addr, ",")
	width := max(6, len(strconv.Itoa(*keys-1)))
	var next, sent atomic.Int64
	var firstErr error
	var errOnce sync.Once
	hc := &http.Client{Timeout: 30 * time.Second}
	start := time.Now()
	var wg sync.WaitGroup
	for c := range *clients {
		wg.Go(func() {
			var buf []byte
			i := c
			seq := 0
			for ctx.Err() == nil && time.Since(start) < *maxDur {
				from := next.Add(int64(*batch)) - int64(*batch)
				if from >= int64(*keys) {
					return
				}
				to := min(from+int64(*batch), int64(*keys))
				now := time.Now().UnixMilli()
				buf = buf[:0]
				seq++
				for k := from; k < to; k++ {
					buf = append(buf, `{"symbol":"S`...)
					s := strconv.FormatInt(k, 10)
					for n := len(s); n < width; n++ {
						buf = append(buf, '0')
					}
					buf = append(buf, s...)
					buf = append(buf, `","price":`...)
					buf = strconv.AppendFloat(buf, float64(1+k%100000)/100, 'f', 2, 64)
					buf = append(buf, `,"quantity":`...)
					buf = strconv.AppendInt(buf, 1+k%100, 10)
					buf = append(buf, `,"timestamp":`...)
					buf = strconv.AppendInt(buf, now, 10)
					buf = append(buf, "}\n"...)
				}
				for attempt := 0; ; attempt++ {
					u := strings.TrimRight(addrs[i%len(addrs)], "/") + "/v1/streams/" + *stream + "/events"
					i++
					req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(buf))
					if err != nil {
						errOnce.Do(func() { firstErr = err })
						return
					}
					req.Header.Set("Content-Type", "application/x-ndjson")
					req.Header.Set("Producer-Id", fmt.Sprintf("load-%d-%d", start.UnixNano(), c))
					req.Header.Set("Producer-Seq", strconv.Itoa(seq))
					resp, err := hc.Do(req)
					if err == nil {
						body, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if resp.StatusCode/100 == 2 {
							break
						}
						err = fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
						if resp.StatusCode != 503 && resp.StatusCode != 429 && resp.StatusCode != 502 && resp.StatusCode != 504 {
							errOnce.Do(func() { firstErr = err })
							return
						}
					}
					// 503 while the cluster's flush backlog is full: wait for it, within bounds.
					if ctx.Err() != nil || time.Since(start) > *maxDur+30*time.Second {
						errOnce.Do(func() { firstErr = err })
						return
					}
					time.Sleep(min(time.Duration(attempt+1)*100*time.Millisecond, time.Second))
				}
				sent.Add(to - from)
			}
		})
	}
	done := make(chan struct{})
	go func() {
		tk := time.NewTicker(2 * time.Second)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				fmt.Fprintf(os.Stderr, "tally-bench load: %d of %d symbols sent\n", sent.Load(), *keys)
			}
		}
	}()
	wg.Wait()
	close(done)
	el := time.Since(start).Seconds()
	// The result (acknowledged symbols so far) is printed even on error, for the memory figure.
	if err := json.NewEncoder(os.Stdout).Encode(loadResult{Mode: "load", Keys: *keys, Events: sent.Load(), DurationS: el, EventsPerS: float64(sent.Load()) / el}); err != nil {
		return err
	}
	return firstErr
}
