package agg

import (
	"fmt"
	"maps"
	"slices"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/internal/wire"
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
	for _, k := range keys {
		g := s.groups[k]
		w.Uvarint(uint64(len(g.values)))
		for _, v := range g.values {
			v.Encode(w)
		}
		// Cells are ordered by granularity: each granularity's run, in arrival order.
		j := 0
		for di := range s.def.Durations {
			end := g.runEnd(di)
			w.Uvarint(uint64(end - j))
			for ; j < end; j++ {
				s.def.encodeCell(w, &g.cells[j])
			}
		}
	}
}

// encodeCell writes a cell exactly as encodeRow writes the Row it stands for.
func (d *Def) encodeCell(w *wire.Writer, c *cell) {
	w.Varint(c.agg)
	w.Varint(c.evt)
	w.Uvarint(c.index)
	w.Varint(c.lastEvt())
	if c.ext != nil {
		for _, v := range c.ext.latest {
			v.Encode(w)
		}
	}
	for i, b := range d.Bases {
		d.baseValue(c, i).Encode(w)
		if b.Kind == BaseSet {
			members := SetMembers(c.ext.sets[i])
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
	for range nGroups {
		g := &group{}
		nVals := r.Count(1)
		if r.Err() == nil && nVals != len(s.def.GroupBy) {
			return fmt.Errorf("agg %s: state group has %d values, the definition %d", s.def.Name, nVals, len(s.def.GroupBy))
		}
		var kb []byte
		for range nVals {
			v := expr.DecodeValue(r)
			g.values = append(g.values, v)
			kb = v.Key(kb)
		}
		g.key = string(kb)
		for di := range s.def.Durations {
			n := r.Count(4)
			if r.Err() != nil {
				break
			}
			if g.cells == nil {
				g.cells = make([]cell, 0, max(n, len(s.def.Durations)))
			}
			for range n {
				g.cells = append(g.cells, s.def.decodeCell(r, di))
			}
		}
		if r.Err() != nil {
			break
		}
		groups[g.key] = g
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("agg %s: decode state: %w", s.def.Name, err)
	}
	s.now, s.open, s.groups = now, open, groups
	return nil
}

// decodeCell reads a cell of granularity di written by encodeCell (or encodeRow).
func (d *Def) decodeCell(r *wire.Reader, di int) cell {
	c := d.newCell(di, 0, 0)
	c.agg = r.Varint()
	c.evt = r.Varint()
	c.index = r.Uvarint()
	lastEvt := r.Varint()
	if c.ext != nil {
		c.ext.lastEvt = lastEvt
		for i := range c.ext.latest {
			c.ext.latest[i] = expr.DecodeValue(r)
		}
	}
	for i, b := range d.Bases {
		v := expr.DecodeValue(r)
		if b.Kind == BaseSet {
			set := c.ext.sets[i]
			for range r.Count(1) {
				set[r.String()] = struct{}{}
			}
			continue
		}
		if !v.IsNull() && v.T != b.Type {
			r.Fail(fmt.Errorf("agg %s: base %s holds a %s, want %s", d.Name, b.Name, v.T, b.Type))
		}
		d.setBase(&c, i, v)
	}
	return c
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
