package siddhiql

import "strings"

// Partition is `partition with (... of S, ...) begin query; ... end`: its queries run once
// per partition key, each key with its own windows, aggregates and inner streams.
type Partition struct {
	Pos         Pos
	Annotations []*Annotation
	With        []*PartitionWith
	// Queries are the queries between begin and end, in text order. Their From and Into
	// name inner streams with a leading '#' ("#Inner").
	Queries []*Query
	// After is how many app-level queries come before the partition in the text.
	After int
}

// PartitionWith is one `... of S` of a partition: a value partition (`symbol of S`: the
// key is the value of Value) or a range partition (`price < 100 as 'low' or price >= 100
// as 'high' of S`: the keys are the labels of the conditions an event meets).
type PartitionWith struct {
	Pos    Pos
	Stream string
	Value  Expr // nil for a range partition
	Ranges []PartitionRange
}

// PartitionRange is one `cond as 'label'` of a range partition.
type PartitionRange struct {
	Pos   Pos
	Cond  Expr
	Label string
}

// IsInner reports whether a stream name is a partition's inner stream ("#Name").
func IsInner(name string) bool { return strings.HasPrefix(name, "#") }

// parsePartition parses a partition; `partition` is next. after is the number of queries
// before it.
func (p *parser) parsePartition(anns []*Annotation, after int, names map[string]Pos) *Partition {
	kw := p.advance()
	if p.inPartition {
		p.failf(kw.pos, "partitions cannot be nested")
	}
	part := &Partition{Pos: kw.pos, Annotations: anns, After: after}
	p.expectWord("with", "after 'partition'")
	open := p.expectPunct("(", "after 'partition with'")
	seen := map[string]Pos{}
	for {
		w := p.parsePartitionWith()
		if prev, dup := seen[w.Stream]; dup {
			p.failf(w.Pos, "stream %s is partitioned twice in this partition (first at %s)", w.Stream, prev)
		}
		seen[w.Stream] = w.Pos
		part.With = append(part.With, w)
		if p.acceptPunct(")") {
			break
		}
		p.expectPunct(",", "or ')' in 'partition with' opened at "+open.pos.String())
	}
	p.expectWord("begin", "after 'partition with (...)'")
	p.inPartition = true
	defer func() { p.inPartition = false }()
	for !p.isWord("end") {
		qanns := p.parseAnnotations()
		t := p.tok()
		if !isWord(t, "from") {
			p.failf(t.pos, "expected a query or 'end' in the partition begun at %s, found %s", part.Pos, t.describe())
		}
		q := p.parseQuery(qanns)
		if q.Name != "" {
			if prev, ok := names[q.Name]; ok {
				p.failf(q.Pos, "query name %q is already used by the query at %s", q.Name, prev)
			}
			names[q.Name] = q.Pos
		}
		part.Queries = append(part.Queries, q)
		if !p.acceptPunct(";") && !p.isWord("end") {
			p.failf(p.tok().pos, "expected ';' after query, found %s", p.tok().describe())
		}
	}
	if len(part.Queries) == 0 {
		p.failf(p.tok().pos, "the partition begun at %s has no queries", part.Pos)
	}
	p.advance() // end
	return part
}

// parsePartitionWith parses `expr of S` or `cond as 'label' (or cond as 'label')* of S`.
func (p *parser) parsePartitionWith() *PartitionWith {
	w := &PartitionWith{Pos: p.tok().pos}
	start := w.Pos
	e := p.parseExpr()
	if p.isWord("as") {
		for {
			r := PartitionRange{Pos: start, Cond: e}
			p.expectWord("as", "after a range condition")
			l := p.tok()
			if l.kind != tString {
				p.failf(l.pos, "expected the range's label in quotes after 'as', found %s", l.describe())
			}
			p.advance()
			r.Label = l.text
			for _, prev := range w.Ranges {
				if prev.Label == r.Label {
					p.failf(l.pos, "range label '%s' is used twice", r.Label)
				}
			}
			w.Ranges = append(w.Ranges, r)
			if !p.acceptWord("or") {
				break
			}
			start = p.tok().pos
			e = p.parseExpr()
		}
	} else {
		w.Value = e
	}
	p.expectWord("of", "and the stream name after the partition key")
	w.Stream = p.name("a stream name after 'of'").text
	return w
}

// triggersAndPartitions dumps the app's triggers and partitions (nothing when it has none).
func (d *dumper) triggersAndPartitions(app *App) {
	for _, t := range app.Triggers {
		switch {
		case t.Start:
			d.line(1, "trigger %s at 'start'  (%s)", quoteName(t.Name), t.Pos)
		case t.Every > 0:
			d.line(1, "trigger %s at every %s  (%s)", quoteName(t.Name), formatMillis(t.Every), t.Pos)
		default:
			d.line(1, "trigger %s at %s  (%s)", quoteName(t.Name), formatString(t.Cron), t.Pos)
		}
	}
	for _, part := range app.Partitions {
		d.line(1, "partition after query %d  (%s)", part.After, part.Pos)
		d.annotations(2, part.Annotations)
		for _, w := range part.With {
			if w.Value != nil {
				d.line(2, "with %s of %s  (%s)", FormatExpr(w.Value), quoteName(w.Stream), w.Pos)
				continue
			}
			d.line(2, "with ranges of %s  (%s)", quoteName(w.Stream), w.Pos)
			for _, r := range w.Ranges {
				d.line(3, "%s as %s", FormatExpr(r.Cond), formatString(r.Label))
			}
		}
		for _, q := range part.Queries {
			d.query(2, q)
		}
	}
}
