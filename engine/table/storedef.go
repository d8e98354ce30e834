package table

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tally-db/tally/siddhiql"
)

// DefaultStringLength is a string column's VARCHAR length when field.length does not give
// one: Siddhi's RDBMS default.
const DefaultStringLength = 254

// maxStringLength bounds field.length: the largest VARCHAR a utf8mb4 MySQL column holds.
const maxStringLength = siddhiql.MaxFieldLength

// StoreDef is how a `@store(type='rdbms')` table is laid out in the shared store, in
// Siddhi's RDBMS table layout: one table named after the table (or its table.name option),
// one column per attribute in definition order, the primary key from @primaryKey and an
// index from @index. It is derived from the definition alone.
type StoreDef struct {
	// Table is the SQL table's name.
	Table string
	// App is the app whose table this is. Several apps may define one SQL table (with the
	// same layout); each writes, and is fenced, on its own.
	App string
	// Columns are the attributes, in definition order.
	Columns []StoreColumn
	// PrimaryKey and Indexes are positions in Columns; PrimaryKey is empty without
	// @primaryKey.
	PrimaryKey []int
	Indexes    []int
}

// SameLayout reports whether o lays its SQL table out as sd does: the same table name
// (ignoring letter case), columns, primary key and index.
func (sd *StoreDef) SameLayout(o *StoreDef) bool {
	if !strings.EqualFold(sd.Table, o.Table) || len(sd.Columns) != len(o.Columns) ||
		!slices.Equal(sd.PrimaryKey, o.PrimaryKey) || !slices.Equal(sd.Indexes, o.Indexes) {
		return false
	}
	for i, c := range sd.Columns {
		oc := o.Columns[i]
		if !strings.EqualFold(c.Name, oc.Name) || c.Type != oc.Type || c.Length != oc.Length {
			return false
		}
	}
	return true
}

// StoreColumn is one attribute as a store column.
type StoreColumn struct {
	Name string
	Type siddhiql.Type
	// Length is a string column's VARCHAR length (field.length, else
	// DefaultStringLength); 0 for other types.
	Length int
}

// ParseStore returns the store layout of def, or nil when def is not a
// `@store(type='rdbms')` table (an in-memory table, or another store type, which the
// engine holds in memory only). A malformed field.length or table.name is an error at the
// annotation element's position.
func ParseStore(def *siddhiql.TableDef) (*StoreDef, error) {
	an := def.Store
	if an == nil {
		return nil, nil
	}
	var typ, name, lengths string
	var lengthsPos, namePos siddhiql.Pos
	for _, e := range an.Elements {
		switch strings.ToLower(e.Key) {
		case "type":
			typ = e.Value
		case "table.name":
			name, namePos = e.Value, e.Pos
		case "field.length":
			lengths, lengthsPos = e.Value, e.Pos
		}
	}
	if !strings.EqualFold(typ, "rdbms") {
		return nil, nil
	}
	sd := &StoreDef{Table: def.Name}
	if name != "" {
		if !plainName(name) {
			return nil, &siddhiql.Error{Pos: namePos, Msg: fmt.Sprintf("table.name %q of table %s must be a plain name: letters, digits and '_'", name, def.Name)}
		}
		sd.Table = name
	}
	lens, err := parseLengths(lengths, lengthsPos)
	if err != nil {
		return nil, err
	}
	for _, a := range def.Attributes {
		c := StoreColumn{Name: a.Name, Type: a.Type}
		if a.Type == siddhiql.TypeString {
			c.Length = DefaultStringLength
			if n, ok := lens[strings.ToUpper(a.Name)]; ok {
				c.Length = n
			}
		}
		sd.Columns = append(sd.Columns, c)
	}
	sd.PrimaryKey = positions(def.Attributes, def.PrimaryKey)
	sd.Indexes = positions(def.Attributes, def.Indexes)
	return sd, nil
}

// parseLengths reads field.length="attr:N, ...". Names are compared ignoring letter case,
// as SQL column names are; one that names no string attribute is ignored, as Siddhi does.
func parseLengths(s string, pos siddhiql.Pos) (map[string]int, error) {
	out := map[string]int{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, n, ok := strings.Cut(item, ":")
		name, n = strings.TrimSpace(name), strings.TrimSpace(n)
		if !ok || !plainName(name) {
			return nil, &siddhiql.Error{Pos: pos, Msg: fmt.Sprintf("field.length %q: each item must be attribute:length, as in \"symbol:100\"", item)}
		}
		length, err := strconv.Atoi(n)
		if err != nil || length < 1 || length > maxStringLength {
			return nil, &siddhiql.Error{Pos: pos, Msg: fmt.Sprintf("field.length of %s must be a whole number from 1 to %d, found %q", name, maxStringLength, n)}
		}
		k := strings.ToUpper(name)
		if _, dup := out[k]; dup {
			return nil, &siddhiql.Error{Pos: pos, Msg: fmt.Sprintf("field.length names %s twice", name)}
		}
		out[k] = length
	}
	return out, nil
}

func positions(attrs []siddhiql.Attribute, names []string) []int {
	var out []int
	for _, n := range names {
		for i, a := range attrs {
			if a.Name == n {
				out = append(out, i)
			}
		}
	}
	return out
}

// plainName reports whether s is a letter or '_' followed by letters, digits and '_'.
func plainName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
