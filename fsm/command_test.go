package fsm

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// goldenCommands has one command of each kind; their encodings are in testdata.
var goldenCommands = []struct {
	name string
	cmd  Command
}{
	{"batch", batch(t0,
		part("S", "producer-1", 42, ev("a", 1), ev("b", -2)),
		part("TradeStream", "", 0, expr.Row{expr.String("IBM"), expr.Double(100.5), expr.Long(7), expr.Long(t0)}),
		part("Mixed", "p2", math.MaxUint64, expr.Row{expr.Int(-3), expr.Float(1.5), expr.Bool(true), expr.Null, expr.Value{T: siddhiql.TypeObject, S: `{"x":1}`}}),
	)},
	{"tick", Command{Kind: KindTick, Time: t0 + 1000}},
	{"deploy", Command{Kind: KindDeploy, Time: t0, Text: testApp}},
	{"undeploy", Command{Kind: KindUndeploy, Time: t0, Text: "T"}},
	{"flushed", Command{Kind: KindFlushed, Time: t0, Index: 123456}},
	{"shard", Command{Kind: KindShard, Time: t0, Text: "wso2-si-1"}},
	{"delivered", Command{Kind: KindDelivered, Time: t0, Text: "Alerts", Sink: 1, Through: OutPos{Index: 123456, Seq: 7}}},
	{"tablewrite", Command{Kind: KindTableWrite, Time: t0, Text: "T", Query: "select 'IBM' as symbol, 10L as volume update or insert into StockTable on StockTable.symbol == symbol"}},
}

func TestCommandRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		cmd  Command
	}{
		{"empty batch", Command{Kind: KindBatch, Time: -5}},
		{"batch of empty part", batch(0, Part{Stream: "S"})},
		{"negative time", Command{Kind: KindTick, Time: math.MinInt64}},
		{"max time", Command{Kind: KindTick, Time: math.MaxInt64}},
		{"empty deploy", Command{Kind: KindDeploy}},
		{"flushed 0", Command{Kind: KindFlushed, Index: 0}},
		{"flushed max", Command{Kind: KindFlushed, Index: math.MaxUint64}},
		{"nan and extremes", batch(1, part("X", "", 0, expr.Row{expr.Double(math.NaN()), expr.Double(math.Inf(-1)), expr.Long(math.MinInt64), expr.Long(math.MaxInt64), expr.String("")}))},
		{"ragged rows", batch(1, part("X", "p", 1, expr.Row{expr.Long(1)}, expr.Row{expr.Long(1), expr.Long(2), expr.Null}))},
		{"unicode", batch(1, part("Ström", "prod/ü", 3, expr.Row{expr.String("€ and \x00 bytes")}))},
	}
	for _, g := range goldenCommands {
		cases = append(cases, struct {
			name string
			cmd  Command
		}{"golden " + g.name, g.cmd})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := c.cmd.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if b[0] != FormatVersion || Kind(b[1]) != c.cmd.Kind {
				t.Fatalf("header % x, want version %d kind %d", b[:2], FormatVersion, c.cmd.Kind)
			}
			var got Command
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !sameCommand(&got, &c.cmd) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, c.cmd)
			}
			if again := got.AppendBinary([]byte("prefix")); !bytes.Equal(again[6:], b) || string(again[:6]) != "prefix" {
				t.Fatalf("AppendBinary of the decoded command differs")
			}
		})
	}
}

// sameCommand compares commands field by field, NaN equal to NaN and nil equal to empty.
func sameCommand(a, b *Command) bool {
	if a.Kind != b.Kind || a.Time != b.Time || a.Text != b.Text || a.Index != b.Index || len(a.Parts) != len(b.Parts) {
		return false
	}
	for i := range a.Parts {
		p, q := a.Parts[i], b.Parts[i]
		if p.Stream != q.Stream || p.ProducerID != q.ProducerID || p.Seq != q.Seq || len(p.Events) != len(q.Events) {
			return false
		}
		for j := range p.Events {
			if len(p.Events[j]) != len(q.Events[j]) {
				return false
			}
			for k := range p.Events[j] {
				if !expr.Equal(p.Events[j][k], q.Events[j][k]) {
					return false
				}
			}
		}
	}
	return true
}

// TestCommandIgnoresOtherFields: fields that do not belong to the kind are not encoded.
func TestCommandIgnoresOtherFields(t *testing.T) {
	c := Command{Kind: KindTick, Time: 9, Text: "x", Index: 3, Parts: []Part{part("S", "", 0, ev("a", 1))}}
	b, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Command
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if want := (Command{Kind: KindTick, Time: 9}); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestCommandGolden(t *testing.T) {
	for _, g := range goldenCommands {
		t.Run(g.name, func(t *testing.T) {
			b, err := g.cmd.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			got := []byte(hex.Dump(b))
			path := filepath.Join("testdata", "command-"+g.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("the log format changed: bump FormatVersion or, if intended, run -update and review the diff\ngot:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestCommandDecodeErrors(t *testing.T) {
	valid := func(c Command) []byte {
		b, err := c.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tick := valid(Command{Kind: KindTick, Time: 5})
	b := valid(batch(1, part("S", "p", 1, ev("a", 1))))
	cases := []struct {
		name string
		data []byte
		msg  string
	}{
		{"empty", nil, "unexpected end"},
		{"version 0", []byte{0, 2, 0}, "format version 0"},
		{"version 2", []byte{2, 2, 0}, "format version 2"},
		{"kind 0", []byte{1, 0, 0}, "unknown command kind 0"},
		{"kind 9 (reserved)", []byte{1, 9, 0}, "unknown command kind 9"},
		{"kind 255", []byte{1, 255, 0}, "unknown command kind 255"},
		{"no time", []byte{1, 2}, "unexpected end"},
		{"trailing", append(append([]byte{}, tick...), 0), "1 trailing bytes"},
		{"non-minimal time", []byte{1, 2, 0x8a, 0x00}, "non-minimal varint"},
		{"non-minimal flushed", []byte{1, 5, 0, 0x80, 0x80, 0x00}, "non-minimal varint"},
		{"huge part count", []byte{1, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, "exceeds"},
		{"truncated batch", b[:len(b)-1], "unexpected end"},
		{"bad value type", bytes.Replace(b, []byte{byte(siddhiql.TypeLong), 2}, []byte{9, 2}, 1), "bad value type 9"},
		// parts=1, stream "", producer "", seq 0, events 1, values 2, width 1, null
		{"values missing", []byte{1, 1, 0, 1, 0, 0, 0, 1, 2, 1, 0}, "values missing"},
		{"width over values", []byte{1, 1, 0, 1, 0, 0, 0, 1, 1, 2, 0, 0}, "only 1 left"},
		{"values without events", []byte{1, 1, 0, 1, 0, 0, 0, 0, 1, 0}, "values in no events"},
		{"string past end", []byte{1, 3, 0, 5, 'a'}, "unexpected end"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cmd Command
			err := cmd.UnmarshalBinary(c.data)
			if !errors.Is(err, ErrBadCommand) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err = %v, want ErrBadCommand containing %q", err, c.msg)
			}
			if !reflect.DeepEqual(cmd, Command{}) {
				t.Errorf("a failed decode left %+v", cmd)
			}
		})
	}
	var cmd Command
	if err := cmd.UnmarshalBinary([]byte{1, 9, 0}); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("unknown kind: err = %v, want ErrUnknownKind", err)
	}
}

func TestCommandEncodeErrors(t *testing.T) {
	for _, c := range []Command{
		{Kind: 0},
		{Kind: 9},
		batch(1, part("S", "", 0, expr.Row{{T: 42}})),
	} {
		if _, err := c.MarshalBinary(); !errors.Is(err, ErrBadCommand) {
			t.Errorf("MarshalBinary(%+v): err = %v, want ErrBadCommand", c, err)
		}
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.HasPrefix(fmt.Sprint(r), "fsm: encode") {
					t.Errorf("AppendBinary(%+v): recovered %v, want an fsm: encode panic", c, r)
				}
			}()
			c.AppendBinary(nil)
		}()
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindBatch: "batch", KindTick: "tick", KindDeploy: "deploy",
		KindUndeploy: "undeploy", KindFlushed: "flushed", KindShard: "shard", KindDelivered: "delivered", 9: "kind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
}

func FuzzCommandUnmarshal(f *testing.F) {
	for _, g := range goldenCommands {
		b, err := g.cmd.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{1, 1, 0, 1, 0, 0, 0, 1, 1, 1, 0})
	f.Add([]byte{1, 5, 0, 0x80, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Command
		if err := c.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrBadCommand) {
				t.Fatalf("error %v does not wrap ErrBadCommand", err)
			}
			return
		}
		b, err := c.MarshalBinary()
		if err != nil {
			t.Fatalf("a decoded command does not encode: %v", err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("re-encoding differs:\n in % x\nout % x", data, b)
		}
	})
}

// tradeBatch is a 1000-event TradeStream batch in one part.
func tradeBatch() Command {
	symbols := []string{"IBM", "WSO2", "ORCL", "MSFT", "GOOG", "AAPL", "AMZN", "TSLA"}
	evs := make([]expr.Row, 1000)
	for i := range evs {
		evs[i] = expr.Row{expr.String(symbols[i%len(symbols)]), expr.Double(100 + float64(i%977)/7),
			expr.Long(int64(1 + i%50)), expr.Long(t0 + int64(i)*13)}
	}
	return batch(t0, part("TradeStream", "bench-producer", 1, evs...))
}

func BenchmarkCommandCodec(b *testing.B) {
	c := tradeBatch()
	enc, err := c.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		buf := make([]byte, 0, len(enc))
		b.SetBytes(int64(len(enc)))
		b.ReportAllocs()
		for b.Loop() {
			buf = c.AppendBinary(buf[:0])
		}
	})
	b.Run("marshal", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.MarshalBinary(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		b.ReportAllocs()
		var d Command
		for b.Loop() {
			if err := d.UnmarshalBinary(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}
