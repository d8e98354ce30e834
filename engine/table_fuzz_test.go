package engine

import (
	"testing"

	"github.com/tally-db/tally/engine/expr"
)

// FuzzTableRequests: whatever on-demand text a request sends, reading or writing a table
// never panics, and a write that passes CheckTableWrite applies.
func FuzzTableRequests(f *testing.F) {
	for _, s := range []string{
		"from T", "from T on v > 1 select k, sum(v) as s group by k having s > 2 order by s desc limit 1 offset 0",
		"select 'a' as k, 1L as v insert into T", "update T set T.v = T.v * 2 on T.k == 'a'",
		"select 'z' as k, 3L as v update or insert into T set T.v = v on T.k == k", "delete T on T.v >= 2L",
		"from T as t on t.k == 'b' select count() as n", "select 1 as k insert into T", "delete T on k",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		e := newEngine(t, "", `@app:name('F')
define stream S (k string, v long);
@primaryKey('k')
define table T (k string, v long);
from S insert into T;
`)
		mustApply(t, e, 1, 1000, "S", expr.Row{expr.String("a"), expr.Long(1)}, expr.Row{expr.String("b"), expr.Long(2)})
		if e.IsTableQuery("F", src) {
			_, _ = e.TableQuery("F", src)
		}
		if IsTableWrite(src) && e.CheckTableWrite("F", src) == nil {
			if err := e.TableWrite(2, 2000, "F", src); err != nil {
				t.Fatalf("checked write %q failed: %v", src, err)
			}
			b, err := e.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			fresh, _ := New(Config{})
			if err := fresh.UnmarshalBinary(b); err != nil {
				t.Fatalf("state after write %q does not restore: %v", src, err)
			}
		}
	})
}
