package engine

import (
	"bytes"
	"fmt"
	"regexp"
	"testing"
)

// funcApp calls the functions that read the Env (UUID(), currentTimeMillis(),
// eventTimestamp()) and others, through a chain and a batch window with expired events.
const funcApp = `@app:name('Funcs')
define stream Trades (symbol string, price double, qty long, ts long, venue string);
from Trades
select UUID() as id, currentTimeMillis() as now, eventTimestamp() as et,
       ifThenElse(qty > 7, str:concat(symbol, '-', venue), str:upper(venue)) as tag,
       time:dateFormat(ts, 'yyyy-MM-dd HH:mm:ss.SSS') as at, math:round(price) as p
insert into Tagged;
from Trades#window.lengthBatch(3) select symbol, UUID() as batchId, eventTimestamp() as et, count() as n
insert all events into Batches;
from Tagged[str:contains(tag, '-')] select id, UUID() as id2, time:timestampInMilliseconds() as t insert into Chained;
`

// TestFunctionsDeterministic: stamped functions and UUID() answer the same on two engines
// fed the same calls and after a restore, and UUID() never repeats.
func TestFunctionsDeterministic(t *testing.T) {
	steps := workload(5, 200)
	a, b := newEngine(t, "", funcApp), newEngine(t, "", funcApp)
	oa, ob := run(t, a, steps), run(t, b, steps)
	if len(oa) == 0 {
		t.Fatal("the workload produced no outputs: it tests nothing")
	}
	if fmt.Sprint(oa) != fmt.Sprint(ob) {
		t.Fatal("same calls gave different outputs")
	}
	uuid := regexp.MustCompile(`"(id|id2|batchId)":"([0-9a-f-]{36})"`)
	seen := map[string]bool{}
	n := 0
	for _, o := range oa {
		for _, m := range uuid.FindAllStringSubmatch(o, -1) {
			// An id passed down the chain (id in Chained) repeats on purpose.
			if m[1] == "id" && bytes.Contains([]byte(o), []byte("Chained")) {
				continue
			}
			if seen[m[2]] {
				t.Fatalf("UUID %s repeats: %s", m[2], o)
			}
			seen[m[2]] = true
			n++
		}
	}
	if n < 100 {
		t.Fatalf("only %d UUIDs in the outputs: the test checks too little", n)
	}
	for _, cut := range []int{1, 77, 199} {
		first := newEngine(t, "", funcApp)
		out := run(t, first, steps[:cut])
		second, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		if err := second.UnmarshalBinary(encode(t, first)); err != nil {
			t.Fatalf("restore: %v", err)
		}
		out = append(out, run(t, second, steps[cut:])...)
		if fmt.Sprint(out) != fmt.Sprint(oa) {
			t.Errorf("cut %d: outputs after restore differ from an uninterrupted run", cut)
		}
	}
}
