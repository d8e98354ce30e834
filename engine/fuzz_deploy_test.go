package engine

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

// zeroRow is an event of def with a small value of each attribute's type.
func zeroRow(def *siddhiql.StreamDef, i int) expr.Row {
	row := make(expr.Row, len(def.Attributes))
	for j, a := range def.Attributes {
		switch a.Type {
		case siddhiql.TypeString:
			row[j] = expr.String(string(rune('a' + i%3)))
		case siddhiql.TypeInt:
			row[j] = expr.Int(int32(i % 7))
		case siddhiql.TypeLong:
			row[j] = expr.Long(int64(i%5) * 1000)
		case siddhiql.TypeFloat:
			row[j] = expr.Float(float32(i) / 2)
		case siddhiql.TypeDouble:
			row[j] = expr.Double(float64(i) * 1.5)
		case siddhiql.TypeBool:
			row[j] = expr.Bool(i%2 == 0)
		}
	}
	return row
}

const fuzzPublisher = `@app:name('FuzzPub')
define stream FuzzIn (s string, v int);
@sink(type='inMemory', topic='T')
define stream FuzzOut (s string, v int);
from FuzzIn select s, v insert into FuzzOut;`

// FuzzDeployRun: any app text either fails to deploy with an error, or deploys, runs events
// and ticks through every input stream, and restores from its encoding, without panicking.
func FuzzDeployRun(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "siddhi", "*", "*.txt"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		text := string(b)
		if i := strings.Index(text, "-- app --\n"); i >= 0 {
			text = text[i+len("-- app --\n"):]
			if j := strings.Index(text, "\n-- "); j >= 0 {
				text = text[:j]
			}
			f.Add(text)
		}
	}
	for _, apps := range rateApps {
		for _, a := range apps {
			f.Add(a)
		}
	}
	f.Add("@app:name('Sub')\n@source(type='inMemory', topic='T')\ndefine stream In (s string, v int);\n" +
		"partition with (s of In) begin from In#window.length(2) select s, sum(v) as t output last every 2 events insert into O; end;")
	f.Fuzz(func(t *testing.T, text string) {
		e, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		// A publisher on topic T, so that fuzzed apps can subscribe to it.
		if _, err := e.Deploy(fuzzPublisher); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Deploy(text); err != nil {
			return
		}
		now := int64(1000)
		for i := range 12 {
			for _, a := range e.Apps() {
				for _, s := range a.streamOrder {
					def := a.streams[s].def
					// Event-time aggregations may refuse a value: that is an error, not a panic.
					_, _ = e.Apply(uint64(i+1), now, s, []expr.Row{zeroRow(def, i), zeroRow(def, i+1)})
				}
			}
			now += 700
			e.Tick(uint64(i+1), now)
		}
		snap, err := e.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		fresh, _ := New(Config{})
		if err := fresh.UnmarshalBinary(snap); err != nil {
			t.Fatalf("restore: %v", err)
		}
		again, _ := fresh.MarshalBinary()
		if !bytes.Equal(snap, again) {
			t.Fatal("restore then encode changed the bytes")
		}
	})
}
