package table

import (
	"testing"

	"github.com/tally-db/tally/internal/wire"
	"github.com/tally-db/tally/siddhiql"
)

func stored(pk ...string) *Table {
	d := def(pk...)
	d.Store = &siddhiql.Annotation{Name: "store", Elements: []siddhiql.Element{{Key: "type", Value: "RDBMS"}}}
	sd, err := ParseStore(d)
	if err != nil || sd == nil {
		panic("store def")
	}
	t := New(d)
	t.TrackStore(sd)
	return t
}

// TestDecode_V1StoreTable: a store table restored from a state written before tables
// were mirrored is written whole at the next flush, and that write is cleared only by a
// flush after the first entry applied since.
func TestDecode_V1StoreTable(t *testing.T) {
	old := New(def("k"))
	old.Insert(row("a", 1))
	old.Insert(row("b", 2))
	var w wire.Writer
	old.Encode(&w)
	if w.Buf[0] != stateVersion {
		t.Fatalf("in-memory table encoded as version %d", w.Buf[0])
	}
	tb := stored("k")
	if err := tb.Decode(wire.NewReader(w.Buf)); err != nil {
		t.Fatal(err)
	}
	c := tb.Changes()
	if !c.Replace || len(c.Rows) != 2 || c.Index != 0 {
		t.Fatalf("changes = %+v, want the whole table, index unknown", c)
	}
	tb.ClearChanges(100) // an old flushed index, as a tick passes: must not clear
	if !tb.Changes().Replace {
		t.Fatal("a flushed index cleared a write pending since an unknown index")
	}
	tb.Stamp(120)
	if c := tb.Changes(); c.Index != 120 {
		t.Fatalf("index after Stamp = %d, want 120", c.Index)
	}
	tb.ClearChanges(119)
	if !tb.Changes().Replace {
		t.Fatal("cleared by a flush before the stamp")
	}
	tb.ClearChanges(120)
	if c := tb.Changes(); !c.Empty() {
		t.Fatalf("not cleared: %+v", c)
	}
	// And the tracked encoding round-trips, changes included.
	tb.Stamp(121)
	tb.DeleteAt(0)
	var w2 wire.Writer
	tb.Encode(&w2)
	back := stored("k")
	if err := back.Decode(wire.NewReader(w2.Buf)); err != nil {
		t.Fatal(err)
	}
	var w3 wire.Writer
	back.Encode(&w3)
	if string(w2.Buf) != string(w3.Buf) || len(back.Changes().Deleted) != 1 {
		t.Fatalf("tracked state does not round-trip: deleted %v", back.Changes().Deleted)
	}
}

func TestParseStore_OnlyRDBMS(t *testing.T) {
	d := def("k")
	if sd, err := ParseStore(d); sd != nil || err != nil {
		t.Errorf("in-memory: %v %v", sd, err)
	}
	d.Store = &siddhiql.Annotation{Name: "store", Elements: []siddhiql.Element{{Key: "type", Value: "mongodb"}}}
	if sd, err := ParseStore(d); sd != nil || err != nil {
		t.Errorf("mongodb: %v %v", sd, err)
	}
}

// FuzzDecodeTracked: no bytes make decoding a store table panic, and what decodes
// encodes back to what a second decode reads the same.
func FuzzDecodeTracked(f *testing.F) {
	for _, pk := range [][]string{{"k"}, nil} {
		tb := stored(pk...)
		tb.Stamp(3)
		tb.Insert(row("a", 1))
		tb.Insert(row("b", 2))
		tb.DeleteAt(0)
		var w wire.Writer
		tb.Encode(&w)
		f.Add(w.Buf, pk != nil)
	}
	f.Fuzz(func(t *testing.T, b []byte, keyed bool) {
		var pk []string
		if keyed {
			pk = []string{"k"}
		}
		tb := stored(pk...)
		if err := tb.Decode(wire.NewReader(b)); err != nil {
			return
		}
		var w wire.Writer
		tb.Encode(&w)
		again := stored(pk...)
		if err := again.Decode(wire.NewReader(w.Buf)); err != nil {
			t.Fatalf("re-decoding an encoded table: %v", err)
		}
		var w2 wire.Writer
		again.Encode(&w2)
		if string(w.Buf) != string(w2.Buf) {
			t.Fatal("encode, decode, encode changed the bytes")
		}
		_ = again.Changes()
	})
}
