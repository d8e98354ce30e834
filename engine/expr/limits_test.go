package expr

import (
	"errors"
	"strings"
	"testing"

	"github.com/tally-db/tally/siddhiql"
)

// chain writes v+v+…+v with n operands: a left-leaning tree n-1 operators deep.
func chain(n int) string {
	var b strings.Builder
	b.WriteString("v")
	for i := 1; i < n; i++ {
		b.WriteString("+v")
	}
	return b.String()
}

// TestCompile_LongChainAtLimit compiles and evaluates the longest expression the parser
// accepts, a left-leaning chain as deep as it is long.
func TestCompile_LongChainAtLimit(t *testing.T) {
	n := (siddhiql.MaxExprNodes + 1) / 2 // n operands and n-1 operators
	e, err := siddhiql.ParseExpr(chain(n))
	if err != nil {
		t.Fatalf("parse %d operands: %v", n, err)
	}
	c, err := Compile(e, &Fields{Stream: "S", Attrs: []siddhiql.Attribute{{Name: "v", Type: siddhiql.TypeLong}}})
	if err != nil {
		t.Fatalf("compile %d operands: %v", n, err)
	}
	if got := c.Eval(Row{Long(3)}); got.I != int64(3*n) {
		t.Fatalf("eval = %v, want %d", got, 3*n)
	}
}

// TestCompile_HugeExpressionRefused: 200,000 operands are an error naming the limit, not
// a stack overflow.
func TestCompile_HugeExpressionRefused(t *testing.T) {
	_, err := siddhiql.ParseExpr(chain(200000))
	if err == nil || !strings.Contains(err.Error(), "more than 10000 operands and operators") {
		t.Fatalf("err = %v, want the expression size limit", err)
	}
}

// TestCompile_RefusesDeeperThanLimit: an AST built by hand past the bound is refused.
func TestCompile_RefusesDeeperThanLimit(t *testing.T) {
	var e siddhiql.Expr = &siddhiql.Variable{Name: "v"}
	for i := 0; i < siddhiql.MaxExprNodes+1; i++ {
		e = &siddhiql.Unary{Op: siddhiql.OpNeg, X: e}
	}
	_, err := Compile(e, &Fields{Stream: "S", Attrs: []siddhiql.Attribute{{Name: "v", Type: siddhiql.TypeLong}}})
	if err == nil || !strings.Contains(err.Error(), "nested too deeply") {
		t.Fatalf("err = %v, want nested too deeply", err)
	}
}

// TestDecodeJSON_DuplicateKeys: an event object with a key twice (however it is escaped)
// is refused naming the key, by both decoders.
func TestDecodeJSON_DuplicateKeys(t *testing.T) {
	attrs := []siddhiql.Attribute{{Name: "k", Type: siddhiql.TypeString}, {Name: "v", Type: siddhiql.TypeLong}}
	for _, body := range []string{
		`{"k":"a","v":1,"k":"b"}`,
		`{"k":"a","v":1,"\u006b":"b"}`,
		`{"v":1,"k":"a","v":null}`,
	} {
		if _, ok := DecodeEvents(attrs, []byte(body)); ok {
			t.Errorf("fast decoder took %s", body)
		}
		_, err := DecodeJSON(attrs, []byte(body))
		var fe *FieldError
		if !errors.As(err, &fe) || !strings.Contains(fe.Msg, "duplicate key") || (fe.Field != "k" && fe.Field != "v") {
			t.Errorf("%s: %v", body, err)
		}
	}
	if _, err := DecodeJSON(attrs, []byte(`{"k":"a","v":1}`)); err != nil {
		t.Errorf("distinct keys: %v", err)
	}
}
