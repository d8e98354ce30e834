package expr

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/tally-db/tally/siddhiql"
)

// FieldError names the attribute of an event that could not be decoded.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return fmt.Sprintf("attribute %q: %s", e.Field, e.Msg)
}

// DecodeJSON decodes one JSON object into a row of attrs. Every attribute must be present
// (null is allowed and gives a null value), no other key may be, and each value must fit its
// type: int and long take integral numbers in range, float and double any number, string a
// string, bool a bool, object any JSON value (kept as its text). Errors are *FieldError.
func DecodeJSON(attrs []siddhiql.Attribute, data []byte) (Row, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, &FieldError{Msg: "not a JSON object: " + err.Error()}
	}
	if obj == nil {
		return nil, &FieldError{Msg: "event is null, want a JSON object"}
	}
	if err := duplicateKey(data, len(obj)); err != nil {
		return nil, err
	}
	row := make(Row, len(attrs))
	for i, a := range attrs {
		raw, ok := obj[a.Name]
		if !ok {
			return nil, &FieldError{Field: a.Name, Msg: fmt.Sprintf("missing (want %s)", a.Type)}
		}
		v, err := decodeField(a.Type, raw)
		if err != nil {
			return nil, &FieldError{Field: a.Name, Msg: err.Error()}
		}
		row[i] = v
	}
	if len(obj) > len(attrs) {
		for k := range obj {
			if !hasAttr(attrs, k) {
				return nil, &FieldError{Field: k, Msg: "not an attribute of the stream"}
			}
		}
	}
	return row, nil
}

// duplicateKey returns a *FieldError naming the first key that occurs twice in the JSON
// object data (valid JSON, with distinct keys once decoded into a map), or nil: a map keeps
// only the last of duplicate keys, so they must be found in the text.
func duplicateKey(data []byte, distinct int) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // '{'
		return nil
	}
	seen := make(map[string]struct{}, distinct)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil
		}
		k, _ := t.(string)
		if _, dup := seen[k]; dup {
			return &FieldError{Field: k, Msg: "duplicate key in the event object"}
		}
		seen[k] = struct{}{}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil
		}
	}
	return nil
}

func hasAttr(attrs []siddhiql.Attribute, name string) bool {
	for _, a := range attrs {
		if a.Name == name {
			return true
		}
	}
	return false
}

func decodeField(t siddhiql.Type, raw json.RawMessage) (Value, error) {
	raw = bytes.TrimSpace(raw)
	if string(raw) == "null" {
		return Null, nil
	}
	switch t {
	case siddhiql.TypeString:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return Null, fmt.Errorf("want a string, got %s", kind(raw))
		}
		return String(s), nil
	case siddhiql.TypeBool:
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return Null, fmt.Errorf("want a bool, got %s", kind(raw))
		}
		return Bool(b), nil
	case siddhiql.TypeInt, siddhiql.TypeLong:
		if kind(raw) != "a number" {
			return Null, fmt.Errorf("want an integer (%s), got %s", t, kind(raw))
		}
		i, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return Null, fmt.Errorf("%s is not a %s", raw, t)
		}
		if t == siddhiql.TypeInt {
			if i != int64(int32(i)) {
				return Null, fmt.Errorf("%s is out of range for int", raw)
			}
			return Int(int32(i)), nil
		}
		return Long(i), nil
	case siddhiql.TypeFloat, siddhiql.TypeDouble:
		if kind(raw) != "a number" {
			return Null, fmt.Errorf("want a number (%s), got %s", t, kind(raw))
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || math.IsInf(f, 0) {
			return Null, fmt.Errorf("%s is not a finite %s", raw, t)
		}
		if t == siddhiql.TypeFloat {
			return Float(float32(f)), nil
		}
		return Double(f), nil
	case siddhiql.TypeObject:
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return Null, fmt.Errorf("not JSON: %v", err)
		}
		return Value{T: siddhiql.TypeObject, S: buf.String()}, nil
	}
	return Null, fmt.Errorf("unsupported type %s", t)
}

func kind(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a bool"
	case 'n':
		return "null"
	}
	return "a number"
}

// AppendJSONObject appends row as a JSON object with attrs' names, in attribute order.
func AppendJSONObject(dst []byte, attrs []siddhiql.Attribute, row Row) []byte {
	dst = append(dst, '{')
	for i, a := range attrs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = String(a.Name).AppendJSON(dst)
		dst = append(dst, ':')
		if i < len(row) {
			dst = row[i].AppendJSON(dst)
		} else {
			dst = append(dst, "null"...)
		}
	}
	return append(dst, '}')
}
