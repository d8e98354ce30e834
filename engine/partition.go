package engine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/engine/window"
	"github.com/tally-db/tally/internal/wire"
	"github.com/tally-db/tally/siddhiql"
)

// maxPartitionKeys bounds the partition instances one partition keeps: an event of a new key
// past it is dropped by that partition (the app's other queries still see it). Instances are
// never purged, so the bound keeps hostile or unbounded keys from exhausting memory.
const maxPartitionKeys = 100_000

// partition is a `partition with (...) begin ... end` of an app. Its queries run once per
// partition key, each key (an instance) with its own windows, aggregates, rate limits and
// inner streams, as Siddhi runs them:
//
//   - An event of a partitioned stream goes to the instance of its key: the value of the
//     key expression (`symbol of S`), or the label of every range condition it meets, in
//     the order written (`price < 100 as 'low' or price >= 100 as 'high' of S`); an event
//     that meets none goes to no instance. Consecutive events of a batch with the same key
//     reach the instance together.
//   - An event of a stream the partition reads but does not partition goes to every
//     instance that exists, in creation order.
//   - Inner streams (#Name) stay inside their instance; outputs into other streams leave
//     the partition like any query output.
//
// Instances are created by the first event of their key and kept (with their state) in
// creation order, which is the same on every replica, until @purge drops them. An app's own
// queries see a stream's events before its partitions do.
type partition struct {
	def     *siddhiql.Partition
	keyers  map[string]keyer               // partitioned stream → key function
	inputs  []*siddhiql.StreamDef          // input definition of each query
	attrs   [][]siddhiql.Attribute         // output attributes of each query
	inner   map[string]*siddhiql.StreamDef // inner streams, by name with '#'
	outputs []string                       // global streams the partition's queries insert into
	// @purge(enable='true', interval='…', idle.period='…'): instances that no event of a
	// partitioned stream reached for idlePeriod are dropped, checked every interval.
	purge                 bool
	purgeEvery, purgeIdle int64

	// state
	keys      []string // instances in creation order
	insts     map[string]*instance
	nextPurge int64 // the next purge check; 0 until the partition first sees a time
}

// instance is the state of one partition key: a runtime of every query of the partition.
type instance struct {
	key     string
	last    int64 // stamped time of the last event of a partitioned stream that reached it
	queries []*query
}

// keyer returns the partition keys of an event (none, one, or one per met range).
type keyer func(row expr.Row) []string

// compilePartitionsAt compiles the partitions written after the first n app queries.
func (a *App) compilePartitionsAt(p *siddhiql.App, n int) error {
	for _, pd := range p.Partitions {
		if pd.After != n {
			continue
		}
		part, err := a.compilePartition(pd)
		if err != nil {
			return err
		}
		a.partitions = append(a.partitions, part)
	}
	return nil
}

func (a *App) compilePartition(pd *siddhiql.Partition) (*partition, error) {
	part := &partition{def: pd, keyers: map[string]keyer{}, inner: map[string]*siddhiql.StreamDef{}, insts: map[string]*instance{}}
	if err := part.compilePurge(); err != nil {
		return nil, err
	}
	for _, w := range pd.With {
		s, ok := a.streams[w.Stream]
		if !ok {
			return nil, &siddhiql.Error{Pos: w.Pos, Msg: fmt.Sprintf("partition with ... of %s: stream %s is not defined", w.Stream, w.Stream)}
		}
		k, err := compileKeyer(w, s.def)
		if err != nil {
			return nil, err
		}
		part.keyers[w.Stream] = k
	}
	for _, qd := range pd.Queries {
		if qd.Join != nil {
			return nil, &siddhiql.Error{Pos: qd.Join.Pos, Msg: "joins inside a partition are not supported: join outside it, on the partition's output streams"}
		}
		var in *siddhiql.StreamDef
		if siddhiql.IsInner(qd.From) {
			in = part.inner[qd.From]
			if in == nil {
				return nil, &siddhiql.Error{Pos: qd.Pos, Msg: fmt.Sprintf("query reads inner stream %s, which no earlier query of the partition inserts into", qd.From)}
			}
		} else {
			s, ok := a.streams[qd.From]
			if !ok {
				return nil, &siddhiql.Error{Pos: qd.Pos, Msg: fmt.Sprintf("query reads stream %s, which is neither defined nor the output of an earlier query", qd.From)}
			}
			in = s.def
			if !slices.Contains(s.partitions, part) {
				s.partitions = append(s.partitions, part)
			}
		}
		rt, err := window.Compile(qd, in)
		if err != nil {
			return nil, err
		}
		q := &query{def: qd, rt: rt, attrs: rt.OutputAttrs()}
		if siddhiql.IsInner(qd.Into) {
			if err := part.connectInner(q); err != nil {
				return nil, err
			}
		} else {
			if err := a.connectOutput(q); err != nil {
				return nil, err
			}
			if !slices.Contains(part.outputs, qd.Into) {
				part.outputs = append(part.outputs, qd.Into)
			}
		}
		part.inputs = append(part.inputs, in)
		part.attrs = append(part.attrs, q.attrs)
	}
	return part, nil
}

// connectInner defines an inner stream from the first query inserting into it and checks
// later ones against it.
func (p *partition) connectInner(q *query) error {
	def, ok := p.inner[q.def.Into]
	if !ok {
		p.inner[q.def.Into] = &siddhiql.StreamDef{Pos: q.def.Pos, Name: q.def.Into, Attributes: q.attrs}
		return nil
	}
	if !sameTypes(def.Attributes, q.attrs) {
		return &siddhiql.Error{Pos: q.def.Pos, Msg: fmt.Sprintf("query outputs (%s) into inner stream %s, which an earlier query defined as (%s)",
			typeList(q.attrs), q.def.Into, typeList(def.Attributes))}
	}
	q.attrs = def.Attributes
	return nil
}

func compileKeyer(w *siddhiql.PartitionWith, s *siddhiql.StreamDef) (keyer, error) {
	fields := &expr.Fields{Stream: s.Name, Attrs: s.Attributes}
	if w.Value != nil {
		c, err := expr.Compile(w.Value, fields)
		if err != nil {
			return nil, err
		}
		return func(row expr.Row) []string { return []string{string(c.Eval(row).Key(nil))} }, nil
	}
	conds := make([]expr.Eval, len(w.Ranges))
	for i, r := range w.Ranges {
		c, err := expr.Compile(r.Cond, fields)
		if err != nil {
			return nil, err
		}
		if c.Type != siddhiql.TypeBool {
			return nil, &siddhiql.Error{Pos: r.Pos, Msg: fmt.Sprintf("range '%s' needs a bool condition, got %s", r.Label, c.Type)}
		}
		conds[i] = c.Eval
	}
	return func(row expr.Row) []string {
		var keys []string
		for i, c := range conds {
			if c(row).Truth() {
				keys = append(keys, w.Ranges[i].Label)
			}
		}
		return keys
	}, nil
}

// instance returns the instance of key, creating it; nil past maxPartitionKeys.
func (p *partition) instance(key string) *instance {
	if in, ok := p.insts[key]; ok {
		return in
	}
	if len(p.keys) >= maxPartitionKeys {
		return nil
	}
	in := &instance{key: key}
	for i, qd := range p.def.Queries {
		rt, err := window.Compile(qd, p.inputs[i])
		if err != nil { // compiled once already at deploy: cannot fail
			panic(fmt.Sprintf("engine: partition query failed to compile again: %v", err))
		}
		in.queries = append(in.queries, &query{def: qd, rt: rt, attrs: p.attrs[i]})
	}
	p.keys = append(p.keys, key)
	p.insts[key] = in
	return in
}

// feed delivers events of a global stream to the partition.
func (p *partition) feed(a *App, index uint64, now int64, stream string, events []expr.Row, out *[]Output, depth int) {
	p.purgeDue(now)
	k, partitioned := p.keyers[stream]
	if !partitioned {
		for _, key := range p.keys {
			p.feedInstance(a, p.insts[key], index, now, stream, events, out, depth)
		}
		return
	}
	var run []expr.Row
	cur := ""
	flush := func() {
		if len(run) > 0 {
			if in := p.instance(cur); in != nil {
				in.last = now
				p.feedInstance(a, in, index, now, stream, run, out, depth)
			}
		}
		run = nil
	}
	for _, ev := range events {
		for _, key := range k(ev) {
			if len(run) > 0 && key != cur {
				flush()
			}
			cur = key
			run = append(run, ev)
		}
	}
	flush()
}

// feedInstance runs the instance's queries that read stream.
func (p *partition) feedInstance(a *App, in *instance, index uint64, now int64, stream string, events []expr.Row, out *[]Output, depth int) {
	for _, q := range in.queries {
		if q.def.From == stream {
			p.run(a, in, index, now, q, func(emit func(window.Output)) { q.rt.Process(now, events, emit) }, out, depth)
		}
	}
}

// run collects one instance query's outputs: inner streams feed the instance, other
// streams are outputs of the app.
func (p *partition) run(a *App, in *instance, index uint64, now int64, q *query, step func(func(window.Output)), out *[]Output, depth int) {
	inner := siddhiql.IsInner(q.def.Into)
	var rows []expr.Row
	step(func(o window.Output) {
		if !inner {
			*out = append(*out, Output{App: a.Name, Stream: q.def.Into, Seq: len(*out), Expired: o.Kind == window.Expired,
				Time: o.Time, Attrs: q.attrs, Row: o.Row})
		}
		rows = append(rows, o.Row)
	})
	if len(rows) == 0 || depth >= maxDepth {
		return
	}
	if inner {
		p.feedInstance(a, in, index, now, q.def.Into, rows, out, depth+1)
	} else {
		a.feed(index, now, q.def.Into, rows, out, depth+1)
	}
}

// tick advances every instance's queries, instances in creation order.
func (p *partition) tick(a *App, index uint64, now int64, out *[]Output) {
	p.purgeDue(now)
	for _, key := range p.keys {
		in := p.insts[key]
		for _, q := range in.queries {
			p.run(a, in, index, now, q, func(emit func(window.Output)) { q.rt.Advance(now, emit) }, out, 0)
		}
	}
}

func (a *App) encodePartitions(w *wire.Writer) {
	for _, p := range a.partitions {
		w.Varint(p.nextPurge)
		w.Uvarint(uint64(len(p.keys)))
		for _, key := range p.keys {
			w.String(key)
			w.Varint(p.insts[key].last)
			for _, q := range p.insts[key].queries {
				q.rt.Encode(w)
			}
		}
	}
}

func (a *App) decodePartitions(r *wire.Reader) error {
	for i, p := range a.partitions {
		p.keys, p.insts = nil, map[string]*instance{}
		p.nextPurge = r.Varint()
		n := r.Count(3)
		for range n {
			key, last := r.String(), r.Varint()
			if r.Err() != nil {
				break
			}
			if _, dup := p.insts[key]; dup {
				return fmt.Errorf("partition %d: key %q appears twice", i+1, key)
			}
			in := p.instance(key)
			if in == nil {
				return fmt.Errorf("partition %d: more than %d keys", i+1, maxPartitionKeys)
			}
			in.last = last
			for _, q := range in.queries {
				if err := q.rt.Decode(r); err != nil {
					return fmt.Errorf("partition %d key %q query into %s: %w", i+1, key, q.def.Into, err)
				}
			}
		}
	}
	return r.Err()
}

// compilePurge reads the partition's @purge annotation. Siddhi's defaults: interval 5 min;
// enable and idle.period are required.
func (p *partition) compilePurge() error {
	var an *siddhiql.Annotation
	for _, x := range p.def.Annotations {
		if strings.EqualFold(x.Name, "purge") {
			if an != nil {
				return &siddhiql.Error{Pos: x.Pos, Msg: "a partition takes one @purge"}
			}
			an = x
		}
	}
	if an == nil {
		return nil
	}
	fail := func(pos siddhiql.Pos, format string, args ...any) error {
		return &siddhiql.Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
	}
	p.purgeEvery = 5 * 60 * 1000
	var enable, idle bool
	for _, el := range an.Elements {
		switch strings.ToLower(el.Key) {
		case "enable":
			switch strings.ToLower(el.Value) {
			case "true":
				p.purge = true
			case "false":
			default:
				return fail(el.Pos, "@purge enable must be 'true' or 'false', found '%s'", el.Value)
			}
			enable = true
		case "interval", "idle.period":
			ms, err := parseMillis(el.Value)
			if err != nil || ms <= 0 {
				return fail(el.Pos, "@purge %s '%s' is not a positive duration such as '1 min'", el.Key, el.Value)
			}
			if strings.EqualFold(el.Key, "interval") {
				p.purgeEvery = ms
			} else {
				p.purgeIdle, idle = ms, true
			}
		default:
			return fail(el.Pos, "a partition's @purge has no element %s: it takes enable, interval and idle.period", el.Key)
		}
	}
	if !enable || !idle {
		return fail(an.Pos, "a partition's @purge needs enable='true|false' and idle.period='<time>'")
	}
	return nil
}

// purgeDue drops the instances idle for the idle period or longer (Siddhi's partition
// purging), keeping the others in creation order. It checks once every purge interval of
// stamped time, the first check one interval after the partition first sees a time.
func (p *partition) purgeDue(now int64) {
	if !p.purge {
		return
	}
	if p.nextPurge == 0 {
		p.nextPurge = now + p.purgeEvery
		return
	}
	if now < p.nextPurge {
		return
	}
	p.nextPurge = now + p.purgeEvery
	kept := p.keys[:0]
	for _, key := range p.keys {
		if p.insts[key].last+p.purgeIdle <= now {
			delete(p.insts, key)
			continue
		}
		kept = append(kept, key)
	}
	p.keys = kept
}

// next lists the streams that events of stream s reach in one step: the outputs of the
// queries and partitions reading it.
// edge is where a stream's events go next: the stream a query or partition inserts into,
// and the query or partition that does.
type edge struct {
	into string
	pos  siddhiql.Pos
}

// edges is next with positions, less the joins that insert into one of their own inputs
// (join.go), which loop on purpose.
func (a *App) edges(s string) []edge {
	st := a.streams[s]
	if st == nil { // a table
		return nil
	}
	var out []edge
	for _, q := range st.queries {
		if q.join.feedsItself(q.def.Into) {
			continue
		}
		out = append(out, edge{q.def.Into, q.def.Pos})
	}
	for _, p := range st.partitions {
		for _, o := range p.outputs {
			out = append(out, edge{o, p.def.Pos})
		}
	}
	return out
}

func (a *App) next(s string) []string {
	st := a.streams[s]
	if st == nil { // a table: its rows go nowhere by themselves
		return nil
	}
	var out []string
	for _, q := range st.queries {
		out = append(out, q.def.Into)
	}
	for _, p := range st.partitions {
		out = append(out, p.outputs...)
	}
	return out
}
