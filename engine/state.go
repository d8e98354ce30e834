package engine

import (
	"fmt"

	"github.com/tally-db/tally/internal/wire"
)

// stateVersion is the first byte of an encoded engine. Bump it when the layout changes.
const stateVersion = 1

// MarshalBinary encodes the whole engine state: the clock, every app's text and the state of
// its aggregations and queries. The encoding is deterministic (apps by name, everything else
// in definition order or sorted), so replicas that applied the same log encode to the same
// bytes.
func (e *Engine) MarshalBinary() ([]byte, error) {
	var w wire.Writer
	w.Byte(stateVersion)
	w.String(e.clock.Zone())
	w.Varint(e.now)
	apps := e.Apps()
	w.Uvarint(uint64(len(apps)))
	for _, a := range apps {
		w.String(a.Name)
		w.String(a.Text)
		for _, n := range a.aggOrder {
			a.aggs[n].Encode(&w)
		}
		for _, q := range a.queries {
			q.encode(&w)
		}
		for _, t := range a.Tables() {
			t.Encode(&w)
		}
		a.encodeTriggers(&w)   // nothing for apps without triggers, as every older state
		a.encodePartitions(&w) // nothing for apps without partitions
	}
	return w.Buf, nil
}

// UnmarshalBinary replaces the engine's state with one written by MarshalBinary. The apps
// are compiled again from their text. The engine's time zone must match the encoded one. On
// error the engine is unchanged.
func (e *Engine) UnmarshalBinary(data []byte) error {
	r := wire.NewReader(data)
	if v := r.Byte(); r.Err() == nil && v != stateVersion {
		return fmt.Errorf("engine: state version %d, want %d", v, stateVersion)
	}
	zone := r.String()
	now := r.Varint()
	if r.Err() == nil && zone != e.clock.Zone() {
		return fmt.Errorf("engine: state was made with aggTimeZone %s, this engine uses %s", zone, e.clock.Zone())
	}
	fresh := &Engine{clock: e.clock, geo: e.geo, now: now, apps: map[string]*App{}, inputs: map[string]*App{}, restoring: true}
	n := r.Count(2)
	for range n {
		name, text := r.String(), r.String()
		if r.Err() != nil {
			break
		}
		a, err := fresh.Deploy(text)
		if err != nil {
			return fmt.Errorf("engine: restore app %s: %w", name, err)
		}
		if a.Name != name {
			return fmt.Errorf("engine: restore app %s: its text names it %s", name, a.Name)
		}
		for _, n := range a.aggOrder {
			if err := a.aggs[n].Decode(r); err != nil {
				return fmt.Errorf("engine: restore app %s: %w", name, err)
			}
		}
		for _, q := range a.queries {
			if err := q.decode(r); err != nil {
				return fmt.Errorf("engine: restore app %s query into %s: %w", name, q.def.Into, err)
			}
		}
		for _, t := range a.Tables() {
			if err := t.Decode(r); err != nil {
				return fmt.Errorf("engine: restore app %s: %w", name, err)
			}
		}
		a.decodeTriggers(r)
		if err := a.decodePartitions(r); err != nil {
			return fmt.Errorf("engine: restore app %s: %w", name, err)
		}
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("engine: decode state: %w", err)
	}
	if r.Len() != 0 {
		return fmt.Errorf("engine: decode state: %d trailing bytes", r.Len())
	}
	e.now, e.apps, e.inputs = fresh.now, fresh.apps, fresh.inputs
	e.rebuildBus()
	return nil
}
