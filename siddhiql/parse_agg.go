package siddhiql

import (
	"slices"
	"strconv"
	"strings"
)

// parseAggregation parses the rest of `define aggregation Name from S[f] select ...
// group by ... aggregate by attr every durations`, then its annotations.
func (p *parser) parseAggregation(pos Pos, anns []*Annotation) *AggregationDef {
	a := &AggregationDef{Pos: pos, Annotations: anns, Name: p.name("an aggregation name").text}
	p.expectWord("from", "after aggregation name "+a.Name)
	a.From = p.parseSource()
	a.Filter = p.parseFilters()
	if p.isPunct("#") {
		p.failf(p.tok().pos, "windows and stream functions are not allowed in the input of aggregation %s", a.Name)
	}
	p.expectWord("select", "in aggregation "+a.Name)
	if p.isPunct("*") {
		p.failf(p.tok().pos, "select * is not allowed in aggregation %s: list the output attributes", a.Name)
	}
	a.Select = p.parseSelectList()
	if p.acceptWord("group") {
		a.GroupBy = p.parseGroupBy()
	}
	if p.isWord("having") {
		p.failf(p.tok().pos, "having is not allowed in aggregation %s", a.Name)
	}
	p.expectWord("aggregate", "in aggregation "+a.Name)
	if p.acceptWord("by") {
		t := p.name("an attribute after 'aggregate by'")
		name := t.text
		if p.acceptPunct(".") {
			name = p.name("an attribute name after '" + t.text + ".'").text
			if t.text != a.From {
				p.failf(t.pos, "aggregate by %s.%s: %s is not the input stream %s", t.text, name, t.text, a.From)
			}
		}
		a.AggregateBy = name
	}
	p.expectWord("every", "in aggregation "+a.Name)
	a.Durations = p.parseDurations()
	p.aggAnnotations(a)
	return a
}

// parseSource parses the input stream name of a query or aggregation and rejects the
// pattern, sequence and inner-stream forms.
func (p *parser) parseSource() string {
	t := p.tok()
	switch {
	case isWord(t, "every"):
		p.failf(t.pos, "patterns ('every') are not supported")
	case t.kind == tPunct && t.text == "#" && p.inPartition:
		p.advance()
		return "#" + p.name("an inner stream name after '#'").text
	case t.kind == tPunct && t.text == "#":
		p.failf(t.pos, "inner streams ('#') belong to partitions: use them between a partition's begin and end")
	case t.kind == tPunct && t.text == "(":
		p.failf(t.pos, "patterns and sequences are not supported")
	case t.kind != tIdent:
		p.failf(t.pos, "expected a stream name after 'from', found %s", t.describe())
	}
	p.advance()
	if p.isPunct("=") {
		p.failf(p.tok().pos, "patterns and sequences ('%s=...') are not supported", t.text)
	}
	return t.text
}

// parseFilters parses [cond][cond]...; several filters are joined with `and`.
func (p *parser) parseFilters() Expr {
	var f Expr
	for p.isPunct("[") {
		open := p.advance()
		e := p.parseExpr()
		p.expectPunct("]", "to close the filter opened at "+open.pos.String())
		if f == nil {
			f = e
		} else {
			f = &Binary{Pos: open.pos, Op: OpAnd, L: f, R: e}
		}
	}
	return f
}

// durWord parses one duration keyword of `aggregate every`.
func (p *parser) durWord() (Duration, token) {
	t := p.tok()
	if t.kind != tIdent {
		p.failf(t.pos, "expected an aggregation duration (sec, min, hour, day, month, year), found %s", t.describe())
	}
	d, isWeek, ok := aggDuration(t.text)
	if isWeek {
		p.failf(t.pos, "%s is not supported as an aggregation duration: use sec, min, hour, day, month or year", t.text)
	}
	if !ok || t.quoted {
		p.failf(t.pos, "unknown aggregation duration %q: use sec, min, hour, day, month or year", t.text)
	}
	p.advance()
	return d, t
}

// parseDurations parses `a ... b` (inclusive) or `a, b, ...` (sorted, deduplicated).
func (p *parser) parseDurations() []Duration {
	first, ft := p.durWord()
	if p.acceptPunct("...") {
		last, lt := p.durWord()
		if first > last {
			p.failf(ft.pos, "aggregation durations go from %q to %q: the start must not be after the end", ft.text, lt.text)
		}
		var ds []Duration
		for d := first; d <= last; d++ {
			ds = append(ds, d)
		}
		return ds
	}
	ds := []Duration{first}
	for p.acceptPunct(",") {
		d, _ := p.durWord()
		ds = append(ds, d)
	}
	slices.Sort(ds)
	return slices.Compact(ds)
}

// aggAnnotations interprets the aggregation's annotations: @store, @purge,
// @PartitionById and @info; anything else is an error.
func (p *parser) aggAnnotations(a *AggregationDef) {
	var purge *Annotation
	for _, an := range a.Annotations {
		switch strings.ToLower(an.Name) {
		case "store":
			if a.Store != nil {
				p.failf(an.Pos, "aggregation %s has more than one @store", a.Name)
			}
			a.Store = an
			a.FieldLengths = p.parseFieldLengths(an)
		case "purge":
			if purge != nil {
				p.failf(an.Pos, "aggregation %s has more than one @purge", a.Name)
			}
			purge = an
		case "partitionbyid":
			a.PartitionByID = p.enableFlag(an, true)
		case "persistedaggregation":
			a.ReadOnly = p.persistedAggregation(an)
		case "info":
		case "primarykey":
			p.failf(an.Pos, "@%s is not allowed on aggregation %s: Aggregation Tables have predefined primary key", an.Name, a.Name)
		default:
			p.failf(an.Pos, "annotation @%s is not supported on aggregation %s: use @store, @purge, @PartitionById, @persistedAggregation or @info", an.Name, a.Name)
		}
	}
	a.Purge = p.parsePurge(purge, a.Durations)
}

// boolValue parses 'true' or 'false' (case-insensitive).
func (p *parser) boolValue(e Element, what string) bool {
	switch strings.ToLower(e.Value) {
	case "true":
		return true
	case "false":
		return false
	}
	p.failf(e.Pos, "%s must be 'true' or 'false', found '%s'", what, e.Value)
	return false
}

// enableFlag reads an annotation that is either bare or has one enable='true|false'.
func (p *parser) enableFlag(an *Annotation, def bool) bool {
	if len(an.Annotations) > 0 {
		p.failf(an.Annotations[0].Pos, "@%s does not take nested annotations", an.Name)
	}
	v := def
	for i, e := range an.Elements {
		if !strings.EqualFold(e.Key, "enable") || i > 0 {
			p.failf(e.Pos, "@%s takes only enable='true' or enable='false'", an.Name)
		}
		v = p.boolValue(e, "@"+an.Name+" enable")
	}
	return v
}

// retention holds Siddhi's default and minimum retention of a granularity (PUR, QG).
type retention struct {
	def, min int64
	minText  string
}

func retentionOf(d Duration) retention {
	switch d {
	case Seconds:
		return retention{120 * msSecond, 120 * msSecond, "120 sec"}
	case Minutes:
		return retention{24 * msHour, 120 * msMinute, "120 min"}
	case Hours:
		return retention{30 * msDay, 25 * msHour, "25 hours"}
	case Days:
		return retention{msYear, 32 * msDay, "32 days"}
	case Months:
		return retention{RetainAll, 13 * msMonth, "13 months"}
	}
	return retention{RetainAll, 0, "0 sec"}
}

// timeValue parses an annotation value such as '10 sec'.
func (p *parser) timeValue(e Element, what string) int64 {
	ms, msg := parseTimeString(e.Value)
	if msg != "" {
		p.failf(e.Pos, "%s '%s': %s", what, e.Value, msg)
	}
	return ms
}

// parsePurge reads @purge(enable, interval, @retentionPeriod(...)) and fills Siddhi's
// defaults; ann may be nil. Retention has an entry for exactly the aggregation's durations.
func (p *parser) parsePurge(ann *Annotation, durs []Duration) *Purge {
	pu := &Purge{Enable: true, IntervalMillis: 15 * msMinute, Retention: map[Duration]int64{}}
	if ann != nil {
		seen := map[string]bool{}
		for _, e := range ann.Elements {
			key := strings.ToLower(e.Key)
			if seen[key] {
				p.failf(e.Pos, "duplicate %s in @purge", e.Key)
			}
			seen[key] = true
			switch key {
			case "enable":
				pu.Enable = p.boolValue(e, "@purge enable")
			case "interval":
				pu.IntervalMillis = p.timeValue(e, "@purge interval")
				if pu.IntervalMillis <= 0 {
					p.failf(e.Pos, "@purge interval must be more than 0, found '%s'", e.Value)
				}
			case "":
				p.failf(e.Pos, "@purge takes enable='...', interval='...' and @retentionPeriod(...), found the value '%s' without a key", e.Value)
			default:
				p.failf(e.Pos, "unknown @purge element %s: supported are enable, interval and @retentionPeriod", e.Key)
			}
		}
		var rp *Annotation
		for _, n := range ann.Annotations {
			if !strings.EqualFold(n.Name, "retentionPeriod") {
				p.failf(n.Pos, "@%s is not supported inside @purge: use @retentionPeriod", n.Name)
			}
			if rp != nil {
				p.failf(n.Pos, "@purge has more than one @retentionPeriod")
			}
			rp = n
		}
		if rp != nil {
			p.parseRetention(rp, durs, pu)
		}
	}
	for _, d := range durs {
		if _, ok := pu.Retention[d]; !ok {
			pu.Retention[d] = retentionOf(d).def
		}
	}
	return pu
}

func (p *parser) parseRetention(rp *Annotation, durs []Duration, pu *Purge) {
	if len(rp.Annotations) > 0 {
		p.failf(rp.Annotations[0].Pos, "@retentionPeriod does not take nested annotations")
	}
	for _, e := range rp.Elements {
		if e.Key == "" {
			p.failf(e.Pos, "@retentionPeriod takes <duration>='<time>', as in sec='120 sec', found '%s' without a key", e.Value)
		}
		d, ok := ParseDuration(e.Key)
		if !ok {
			p.failf(e.Pos, "unknown duration %s in @retentionPeriod: use sec, min, hours, days, months or years", e.Key)
		}
		if _, dup := pu.Retention[d]; dup {
			p.failf(e.Pos, "duplicate retention period for %s in @retentionPeriod", d)
		}
		if !slices.Contains(durs, d) {
			p.failf(e.Pos, "@retentionPeriod sets %s, but the aggregation has no %s duration", e.Key, d)
		}
		if strings.EqualFold(strings.TrimSpace(e.Value), "all") {
			pu.Retention[d] = RetainAll
			continue
		}
		ms := p.timeValue(e, "@retentionPeriod "+e.Key)
		if r := retentionOf(d); ms < r.min {
			p.failf(e.Pos, "retention period %s='%s' is below the minimum of %s for %s", e.Key, e.Value, r.minText, d)
		}
		pu.Retention[d] = ms
	}
}

// FieldLength is one `attr:N` of @store(field.length="attr:N, ..."): the store column of
// attr holds at most N characters (its VARCHAR length).
type FieldLength struct {
	Pos    Pos
	Name   string
	Length int
}

// MaxFieldLength bounds N in field.length: the largest VARCHAR a utf8mb4 MySQL column holds.
const MaxFieldLength = 16383

// parseFieldLengths reads the field.length element of a @store annotation (Siddhi's RDBMS
// option; SHARD_ID may be named too). Names keep their spelling; one named twice, in any
// letter case, is an error, as is a length that is not a whole number from 1 to
// MaxFieldLength.
func (p *parser) parseFieldLengths(an *Annotation) []FieldLength {
	var out []FieldLength
	seen := false
	for _, e := range an.Elements {
		if !strings.EqualFold(e.Key, "field.length") {
			continue
		}
		if seen {
			p.failf(e.Pos, "@store has more than one field.length")
		}
		seen = true
		for item := range strings.SplitSeq(e.Value, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			name, n, ok := strings.Cut(item, ":")
			name, n = strings.TrimSpace(name), strings.TrimSpace(n)
			if !ok || !isPlainName(name) {
				p.failf(e.Pos, "field.length %q: each item must be attribute:length, as in \"symbol:100\"", item)
			}
			length, err := strconv.Atoi(n)
			if err != nil || length < 1 || length > MaxFieldLength {
				p.failf(e.Pos, "field.length of %s must be a whole number from 1 to %d, found %q", name, MaxFieldLength, n)
			}
			for _, f := range out {
				if strings.EqualFold(f.Name, name) {
					p.failf(e.Pos, "field.length names %s twice", name)
				}
			}
			out = append(out, FieldLength{Pos: e.Pos, Name: name, Length: length})
		}
	}
	return out
}

// isPlainName reports whether s is an identifier: a letter or '_', then letters, digits, '_'.
func isPlainName(s string) bool {
	if s == "" || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isIdentByte(s[i]) {
			return false
		}
	}
	return true
}

// FieldLength returns the field.length of the column name (compared ignoring letter case,
// as SQL column names are), or 0 when @store does not set one.
func (a *AggregationDef) FieldLength(name string) int {
	for _, f := range a.FieldLengths {
		if strings.EqualFold(f.Name, name) {
			return f.Length
		}
	}
	return 0
}
