package expr

import (
	"strings"
	"testing"

	"github.com/tally-db/tally/siddhiql"
)

func TestCoordinationIsLeader(t *testing.T) {
	fields := &Fields{Stream: "S", Attrs: []siddhiql.Attribute{{Name: "v", Type: siddhiql.TypeInt}}}
	e, err := siddhiql.ParseExpr("coordination:isLeader() == true and v > 0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Compile(e, fields)
	if err != nil {
		t.Fatal(err)
	}
	if c.Type != siddhiql.TypeBool || !c.Eval(Row{Int(1)}).Truth() || c.Eval(Row{Int(0)}).Truth() {
		t.Error("isLeader() is not true inside the engine")
	}
	e, _ = siddhiql.ParseExpr("coordination:isLeader(v)")
	if _, err := Compile(e, fields); err == nil || !strings.Contains(err.Error(), "takes no arguments") {
		t.Errorf("isLeader(v): err = %v", err)
	}
}
