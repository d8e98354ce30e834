package expr

import (
	"bytes"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/tally-db/tally/siddhiql"
)

// DecodeEvents decodes a request body of events, a JSON array of objects or objects one
// after another (NDJSON), into rows of attrs, without encoding/json and with a few
// allocations per body instead of several per event: the rows share one slab of values and
// every string value is a substring of one copy of the body (so a row's strings keep that
// copy alive: rows are meant to be encoded or checked and dropped, not kept).
//
// It handles the common case only. ok is false, with nothing decoded, whenever the body is
// anything else: malformed JSON, a missing, duplicate or unknown attribute, a value of the
// wrong type or out of range, a string or key with an escape sequence, an object attribute,
// an empty body, or more than 64 attributes. The caller then decodes with encoding/json and
// DecodeJSON, which give the same rows for every body this accepts and the error for the
// others.
func DecodeEvents(attrs []siddhiql.Attribute, body []byte) (rows []Row, ok bool) {
	width := len(attrs)
	if width == 0 || width > 64 {
		return nil, false
	}
	for _, a := range attrs {
		switch a.Type {
		case siddhiql.TypeString, siddhiql.TypeBool, siddhiql.TypeInt, siddhiql.TypeLong,
			siddhiql.TypeFloat, siddhiql.TypeDouble:
		default:
			return nil, false
		}
	}
	// Every event has a '{', so this bounds the number of events.
	est := bytes.Count(body, []byte{'{'})
	if est == 0 {
		return nil, false
	}
	d := fastDecoder{attrs: attrs, s: string(body)}
	d.slab = make([]Value, est*width)
	rows = make([]Row, 0, est)
	d.ws()
	if d.i == len(d.s) {
		return nil, false
	}
	if d.s[d.i] == '[' {
		d.i++
		for {
			d.ws()
			row, ok := d.object(len(rows))
			if !ok {
				return nil, false
			}
			rows = append(rows, row)
			done, ok := d.next(']')
			if !ok {
				return nil, false
			}
			if done {
				break
			}
		}
		d.ws()
		if d.i != len(d.s) {
			return nil, false
		}
		return rows, true
	}
	for d.i < len(d.s) {
		row, ok := d.object(len(rows))
		if !ok {
			return nil, false
		}
		rows = append(rows, row)
		d.ws()
	}
	return rows, true
}

type fastDecoder struct {
	attrs []siddhiql.Attribute
	s     string // the body
	i     int    // the next byte of s
	slab  []Value
}

// ws skips JSON whitespace.
func (d *fastDecoder) ws() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// object decodes the n-th event: one object with every attribute exactly once.
func (d *fastDecoder) object(n int) (Row, bool) {
	width := len(d.attrs)
	if d.i == len(d.s) || d.s[d.i] != '{' || (n+1)*width > len(d.slab) {
		return nil, false
	}
	d.i++
	row := d.slab[n*width : (n+1)*width : (n+1)*width]
	var seen uint64
	d.ws()
	if d.i < len(d.s) && d.s[d.i] == '}' {
		return nil, false // no attribute: missing ones
	}
	for {
		key, ok := d.plainString()
		if !ok {
			return nil, false
		}
		k := -1
		for j := range d.attrs {
			if d.attrs[j].Name == key {
				k = j
				break
			}
		}
		if k < 0 || seen&(1<<k) != 0 {
			return nil, false // unknown or repeated
		}
		seen |= 1 << k
		d.ws()
		if d.i == len(d.s) || d.s[d.i] != ':' {
			return nil, false
		}
		d.i++
		d.ws()
		if row[k], ok = d.value(d.attrs[k].Type); !ok {
			return nil, false
		}
		done, ok := d.next('}')
		if !ok {
			return nil, false
		}
		if done {
			break
		}
		d.ws()
	}
	if seen != 1<<width-1 {
		return nil, false // missing attributes
	}
	return row, true
}

// plainString reads a JSON string with no escape sequence and valid UTF-8, as a substring
// of the body.
func (d *fastDecoder) plainString() (string, bool) {
	if d.i == len(d.s) || d.s[d.i] != '"' {
		return "", false
	}
	start := d.i + 1
	ascii := true
	for j := start; j < len(d.s); j++ {
		c := d.s[j]
		switch {
		case c == '"':
			d.i = j + 1
			str := d.s[start:j]
			if !ascii && !utf8.ValidString(str) {
				return "", false
			}
			return str, true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// literal consumes lit if the body continues with it.
func (d *fastDecoder) literal(lit string) bool {
	if len(d.s)-d.i >= len(lit) && d.s[d.i:d.i+len(lit)] == lit {
		d.i += len(lit)
		return true
	}
	return false
}

// value reads one attribute value of type t (or null).
func (d *fastDecoder) value(t siddhiql.Type) (Value, bool) {
	if d.i == len(d.s) {
		return Null, false
	}
	if d.s[d.i] == 'n' {
		return Null, d.literal("null")
	}
	switch t {
	case siddhiql.TypeString:
		s, ok := d.plainString()
		return String(s), ok
	case siddhiql.TypeBool:
		if d.literal("true") {
			return Bool(true), true
		}
		return Bool(false), d.literal("false")
	case siddhiql.TypeInt, siddhiql.TypeLong:
		num, integral, ok := d.number()
		if !ok || !integral {
			return Null, false
		}
		i, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return Null, false
		}
		if t == siddhiql.TypeInt {
			if i != int64(int32(i)) {
				return Null, false
			}
			return Int(int32(i)), true
		}
		return Long(i), true
	case siddhiql.TypeFloat, siddhiql.TypeDouble:
		num, _, ok := d.number()
		if !ok {
			return Null, false
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil || math.IsInf(f, 0) {
			return Null, false
		}
		if t == siddhiql.TypeFloat {
			return Float(float32(f)), true
		}
		return Double(f), true
	}
	return Null, false
}

// number reads a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?. integral
// reports that it has neither fraction nor exponent.
func (d *fastDecoder) number() (num string, integral, ok bool) {
	s, start, i := d.s, d.i, d.i
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return "", false, false
	}
	integral = true
	if i < len(s) && s[i] == '.' {
		integral = false
		i++
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == j {
			return "", false, false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		integral = false
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == j {
			return "", false, false
		}
	}
	d.i = i
	return s[start:i], integral, true
}

// next skips white space and reads what follows an element: end (done) or a comma; ok
// is false on anything else or the end of the input.
func (d *fastDecoder) next(end byte) (done, ok bool) {
	d.ws()
	if d.i == len(d.s) {
		return false, false
	}
	c := d.s[d.i]
	d.i++
	return c == end, c == end || c == ','
}
