package expr

import (
	"fmt"

	"github.com/tally-db/tally/siddhiql"
)

// Fields is a Scope over a stream's attributes: a variable resolves to its attribute's
// position. Names are case-sensitive, as in Siddhi.
type Fields struct {
	// Stream is the stream's name; a qualified variable (S.x) must name it (or Alias).
	Stream string
	// Alias is an optional second name for the stream (`from S as T`).
	Alias string
	Attrs []siddhiql.Attribute
	// Env is what functions read besides the row (stamped time, GeoIP); nil when none.
	Env *Env
}

// Index is the position of attribute name, or -1.
func (f *Fields) Index(name string) int {
	for i, a := range f.Attrs {
		if a.Name == name {
			return i
		}
	}
	return -1
}

// Var implements Scope.
func (f *Fields) Var(v *siddhiql.Variable) (int, siddhiql.Type, error) {
	if v.Stream != "" && v.Stream != f.Stream && (f.Alias == "" || v.Stream != f.Alias) {
		return 0, 0, &siddhiql.Error{Pos: v.Pos, Msg: fmt.Sprintf("unknown stream %q in %s.%s: this query reads %q", v.Stream, v.Stream, v.Name, f.Stream)}
	}
	i := f.Index(v.Name)
	if i < 0 {
		return 0, 0, &siddhiql.Error{Pos: v.Pos, Msg: fmt.Sprintf("%q has no attribute %q", f.Stream, v.Name)}
	}
	return i, f.Attrs[i].Type, nil
}

// Call implements Scope: Fields provides no functions.
func (f *Fields) Call(*siddhiql.Call) (int, siddhiql.Type, bool, error) { return 0, 0, false, nil }
