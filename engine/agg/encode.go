package agg

import (
	"fmt"
	"maps"
	"slices"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/internal/wire"
	"github.com/tally-db/tally/siddhiql"
)

const stateVersion = 1

// Encode appends the state to w deterministically: groups in key order, rows in arrival
// order, set members sorted.
func (s *State) Encode(w *wire.Writer) {
	w.Byte(stateVersion)
	w.Varint(s.now)
	w.Uvarint(uint64(len(s.open)))
	for _, o := range s.open {
		w.Varint(o)
	}
	keys := slices.Sorted(maps.Keys(s.groups))
	w.Uvarint(uint64(len(keys)))
	m := startMemo{s: s}
	for _, k := range keys {
		g := s.groups[k]
		w.Uvarint(uint64(len(g.values)))
		for _, v := range g.values {
			v.Encode(w)
		}
		// Each granularity's rows in the order they were created: the cells that cover it,
		// in the group's order.
		for di := range s.def.Durations {
			n := 0
			for j := range g.cells {
				if g.cells[j].covers(di) {
					n++
				}
			}
			w.Uvarint(uint64(n))
			for j := range g.cells {
				if c := &g.cells[j]; c.covers(di) {
					agg, evt := m.logical(c, di)
					s.def.encodeCell(w, c, g.ext(j), agg, evt)
				}
			}
		}
	}
}

// encodeCell writes granularity's row of a cell (buckets agg and evt) exactly as encodeRow
// writes the Row it stands for.
func (d *Def) encodeCell(w *wire.Writer, c *cell, x *cellExt, agg, evt int64) {
	w.Varint(agg)
	w.Varint(evt)
	w.Uvarint(c.index())
	w.Varint(lastEvt(x))
	if x != nil {
		for _, v := range x.latest {
			v.Encode(w)
		}
	}
	for i, b := range d.Bases {
		d.baseValue(c, x, i).Encode(w)
		if b.Kind == BaseSet {
			members := SetMembers(x.sets[i])
			w.Uvarint(uint64(len(members)))
			for _, m := range members {
				w.String(m)
			}
		}
	}
}

func encodeRow(w *wire.Writer, r *Row) {
	w.Varint(r.AggTimestamp)
	w.Varint(r.EventTimestamp)
	w.Uvarint(r.Index)
	w.Varint(r.LastEventTimestamp)
	for _, v := range r.Latest {
		v.Encode(w)
	}
	for i, v := range r.Bases {
		v.Encode(w)
		if r.Sets != nil && r.Sets[i] != nil {
			members := slices.Sorted(maps.Keys(r.Sets[i]))
			w.Uvarint(uint64(len(members)))
			for _, m := range members {
				w.String(m)
			}
		}
	}
}

// Decode replaces the state with one written by Encode for the same definition.
func (s *State) Decode(r *wire.Reader) error {
	if v := r.Byte(); r.Err() == nil && v != stateVersion {
		return fmt.Errorf("agg %s: state version %d, want %d", s.def.Name, v, stateVersion)
	}
	now := r.Varint()
	nOpen := r.Count(1)
	if r.Err() == nil && nOpen != len(s.def.Durations) {
		return fmt.Errorf("agg %s: state has %d granularities, the definition %d", s.def.Name, nOpen, len(s.def.Durations))
	}
	open := make([]int64, nOpen)
	for i := range open {
		open[i] = r.Varint()
	}
	groups := map[string]*group{}
	nGroups := r.Count(1)
	needsExt, shares := s.def.needsExt(), s.shares()
	for range nGroups {
		nVals := r.Count(1)
		if r.Err() == nil && nVals != len(s.def.GroupBy) {
			return fmt.Errorf("agg %s: state group has %d values, the definition %d", s.def.Name, nVals, len(s.def.GroupBy))
		}
		if r.Err() != nil {
			break
		}
		g := newGroup(nVals, needsExt, len(s.def.Durations), shares)
		var kb []byte
		var ends []int
		for i := range nVals {
			v := expr.DecodeValue(r)
			g.values[i] = v
			kb = v.Key(kb)
			ends = append(ends, len(kb))
		}
		key := string(kb)
		for i, v := range g.values {
			if v.T == siddhiql.TypeString || v.T == siddhiql.TypeObject {
				g.values[i].S = key[ends[i]-len(v.S) : ends[i]]
			}
		}
		// prev is the position of the cell that covers the previous granularity's newest
		// row, -1 when it has none.
		prev := -1
		for di := range s.def.Durations {
			n := r.Count(4)
			if r.Err() != nil {
				break
			}
			for range n {
				c, x := s.def.decodeCell(r, di)
				g.cells = append(g.cells, c)
				if g.exts != nil {
					g.exts = append(g.exts, x)
				}
			}
			if n == 0 {
				prev = -1
				continue
			}
			last := len(g.cells) - 1
			if prev >= 0 && s.mergeable(&g.cells[prev], &g.cells[last], di-1) {
				// The previous granularity's newest cell moves to the end of this one's
				// rows and stands for both: every granularity keeps its rows' order.
				c := g.cells[prev]
				c.setSpan(c.lo(), di)
				g.cells[last] = c
				g.cells = slices.Delete(g.cells, prev, prev+1)
				last--
			}
			prev = last
		}
		if r.Err() != nil {
			break
		}
		if len(g.cells) > 1 {
			g.cells = slices.Clip(g.cells)
		}
		groups[key] = g
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("agg %s: decode state: %w", s.def.Name, err)
	}
	s.now, s.open, s.groups = now, open, groups
	s.retain.forget()
	s.countPending()
	s.forgetFast(s.maxIndex())
	for i, d := range s.def.Durations {
		s.openEnd[i] = s.clock.Next(open[i], d)
	}
	return nil
}

// decodeCell reads a cell of granularity di written by encodeCell (or encodeRow).
func (d *Def) decodeCell(r *wire.Reader, di int) (cell, *cellExt) {
	c, x := d.newCell(di, di, 0, 0)
	c.agg = r.Varint()
	c.evt = r.Varint()
	index := r.Uvarint()
	if index > maxIndex {
		r.Fail(fmt.Errorf("agg %s: row index %d is over the greatest a state records (%d)", d.Name, index, uint64(maxIndex)))
	}
	c.setIndex(index)
	lastEvt := r.Varint()
	if x != nil {
		x.lastEvt = lastEvt
		for i := range x.latest {
			x.latest[i] = expr.DecodeValue(r)
		}
	}
	for i, b := range d.Bases {
		v := expr.DecodeValue(r)
		if b.Kind == BaseSet {
			set := x.sets[i]
			for range r.Count(1) {
				set[r.String()] = struct{}{}
			}
			continue
		}
		if !v.IsNull() && v.T != b.Type {
			r.Fail(fmt.Errorf("agg %s: base %s holds a %s, want %s", d.Name, b.Name, v.T, b.Type))
		}
		d.setBase(&c, x, i, v)
	}
	return c, x
}

func decodeRow(d *Def, r *wire.Reader, values []expr.Value, key string) *Row {
	row := newRow(len(d.Bases))
	row.Group, row.key = values, key
	row.AggTimestamp = r.Varint()
	row.EventTimestamp = r.Varint()
	row.Index = r.Uvarint()
	row.LastEventTimestamp = r.Varint()
	if len(d.Latest) > 0 {
		row.Latest = make([]expr.Value, len(d.Latest))
		for i := range row.Latest {
			row.Latest[i] = expr.DecodeValue(r)
		}
	}
	for i, b := range d.Bases {
		row.Bases[i] = expr.DecodeValue(r)
		if b.Kind == BaseSet {
			if row.Sets == nil {
				row.Sets = make([]Set, len(d.Bases))
			}
			set := Set{}
			for range r.Count(1) {
				set[r.String()] = struct{}{}
			}
			row.Sets[i] = set
		}
	}
	return row
}

// EncodeShardRows appends rows with their shards and group values, for sending between nodes
// (a query fanned out to another group's leader).
func EncodeShardRows(w *wire.Writer, rows []ShardRow) {
	w.Uvarint(uint64(len(rows)))
	for _, sr := range rows {
		w.String(sr.Shard)
		w.Uvarint(uint64(len(sr.Row.Group)))
		for _, v := range sr.Row.Group {
			v.Encode(w)
		}
		encodeRow(w, sr.Row)
	}
}

// DecodeShardRows reads rows written by EncodeShardRows for the same definition.
func (d *Def) DecodeShardRows(r *wire.Reader) ([]ShardRow, error) {
	n := r.Count(4)
	out := make([]ShardRow, 0, n)
	for range n {
		shard := r.String()
		nv := r.Count(1)
		if r.Err() == nil && nv != len(d.GroupBy) {
			return nil, fmt.Errorf("agg %s: row has %d group values, the definition %d", d.Name, nv, len(d.GroupBy))
		}
		values := make([]expr.Value, nv)
		var kb []byte
		for i := range values {
			values[i] = expr.DecodeValue(r)
			kb = values[i].Key(kb)
		}
		row := decodeRow(d, r, values, string(kb))
		if r.Err() != nil {
			break
		}
		out = append(out, ShardRow{Shard: shard, Row: row})
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("agg %s: decode rows: %w", d.Name, err)
	}
	return out, nil
}
