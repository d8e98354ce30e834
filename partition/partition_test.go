package partition

import (
	"fmt"
	"go/parser"
	"go/token"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

func TestKeyBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    expr.Value
		want string
	}{
		{"string", expr.String("IBM"), "IBM"},
		{"string utf8", expr.String("日本"), "日本"},
		{"string empty", expr.String(""), ""},
		{"string number", expr.String("42"), "42"},
		{"int", expr.Int(42), "42"},
		{"int negative", expr.Int(-7), "-7"},
		{"int min", expr.Int(math.MinInt32), "-2147483648"},
		{"long", expr.Long(42), "42"},
		{"long max", expr.Long(math.MaxInt64), "9223372036854775807"},
		{"double", expr.Double(0.1), "0.1"},
		{"double integral", expr.Double(42), "42"},
		{"double large", expr.Double(1e21), "1e+21"},
		{"double negative zero", expr.Double(math.Copysign(0, -1)), "-0"},
		{"double NaN", expr.Double(math.NaN()), "NaN"},
		{"double +Inf", expr.Double(math.Inf(1)), "+Inf"},
		{"float", expr.Float(0.1), "0.1"}, // shortest float32 form, not 0.10000000149011612
		{"float integral", expr.Float(42), "42"},
		{"float -Inf", expr.Float(float32(math.Inf(-1))), "-Inf"},
		{"bool true", expr.Bool(true), "true"},
		{"bool false", expr.Bool(false), "false"},
		{"null", expr.Null, ""},
		{"object", expr.Value{T: siddhiql.TypeObject, S: `{"a":[1,2]}`}, `{"a":[1,2]}`},
		{"object empty", expr.Value{T: siddhiql.TypeObject}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(KeyBytes(nil, tc.v)); got != tc.want {
				t.Errorf("KeyBytes(%v) = %q, want %q", tc.v, got, tc.want)
			}
			// KeyBytes appends.
			if got := string(KeyBytes([]byte("p:"), tc.v)); got != "p:"+tc.want {
				t.Errorf("KeyBytes(p:, %v) = %q, want %q", tc.v, got, "p:"+tc.want)
			}
		})
	}
}

// A key means the same whatever its type: these all go to the same group.
func TestKeyBytesAcrossTypes(t *testing.T) {
	want := For([]byte("42"), 7)
	for _, v := range []expr.Value{expr.String("42"), expr.Int(42), expr.Long(42), expr.Float(42), expr.Double(42)} {
		if g := For(KeyBytes(nil, v), 7); g != want {
			t.Errorf("%v (%s) goes to group %d, want %d like \"42\"", v, v.T, g, want)
		}
	}
}

// TestForGolden pins the hash: the groups of these keys are part of the on-disk contract.
// If this test fails, the change re-partitions every existing cluster: revert it.
func TestForGolden(t *testing.T) {
	for _, tc := range []struct {
		key  string
		hash uint32 // FNV-1a 32-bit
		g2   uint32
		g3   uint32
		g7   uint32
		g16  uint32
	}{
		// The first three are FNV-1a's published test vectors.
		{"", 0x811c9dc5, 1, 1, 2, 5},
		{"a", 0xe40c292c, 0, 1, 5, 12},
		{"foobar", 0xbf9cf968, 0, 1, 0, 8},
		{"IBM", 0xe1b9164d, 1, 2, 4, 13},
		{"WSO2", 0x83029b26, 0, 2, 2, 6},
		{"wso2", 0x209a9fc6, 0, 0, 5, 6},
		{"42", 0x87e38583, 1, 2, 6, 3},
		{"true", 0x4db211e5, 1, 0, 2, 5},
		{"symbol-0001", 0xc30f7b47, 1, 2, 4, 7},
		{"日本", 0x9f26ee51, 1, 0, 1, 1},
	} {
		k := []byte(tc.key)
		h := fnv.New32a()
		h.Write(k)
		if got := h.Sum32(); got != tc.hash {
			t.Errorf("hash/fnv of %q = %#x, want %#x", tc.key, got, tc.hash)
		}
		if got := For(k, 1<<32); got != tc.hash {
			t.Errorf("For(%q, 1<<32) = %#x, want the raw hash %#x", tc.key, got, tc.hash)
		}
		for _, g := range []struct {
			n    int
			want uint32
		}{{1, 0}, {2, tc.g2}, {3, tc.g3}, {7, tc.g7}, {16, tc.g16}} {
			if got := For(k, g.n); got != g.want {
				t.Errorf("For(%q, %d) = %d, want %d", tc.key, g.n, got, g.want)
			}
		}
	}
}

// For agrees with hash/fnv on arbitrary keys.
func TestForMatchesFNV(t *testing.T) {
	for i := range 2000 {
		k := []byte(strings.Repeat("x", i%37) + strconv.Itoa(i*7919))
		h := fnv.New32a()
		h.Write(k)
		for _, n := range []int{2, 3, 5, 7, 64, 1000} {
			if got, want := For(k, n), h.Sum32()%uint32(n); got != want {
				t.Fatalf("For(%q, %d) = %d, want %d", k, n, got, want)
			}
		}
	}
}

func TestForUniform(t *testing.T) {
	const keys = 100_000
	for _, groups := range []int{3, 7} {
		counts := make([]int, groups)
		var buf []byte
		for i := range keys {
			buf = KeyBytes(buf[:0], expr.String("sym-"+strconv.Itoa(i)))
			counts[For(buf, groups)]++
		}
		want := float64(keys) / float64(groups)
		for g, c := range counts {
			if dev := math.Abs(float64(c)-want) / want; dev > 0.05 {
				t.Errorf("%d groups: group %d got %d keys, %.1f%% off %.0f", groups, g, c, 100*dev, want)
			}
		}
		t.Logf("%d groups: %v", groups, counts)
	}
	// Sequential integer keys too.
	counts := make([]int, 3)
	for i := range keys {
		counts[For(KeyBytes(nil, expr.Long(int64(i))), 3)]++
	}
	for g, c := range counts {
		if dev := math.Abs(float64(c)-keys/3.0) / (keys / 3.0); dev > 0.05 {
			t.Errorf("long keys: group %d got %d keys, %.1f%% off", g, c, 100*dev)
		}
	}
}

func TestForPanicsWithoutGroups(t *testing.T) {
	for _, n := range []int{0, -1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("For(key, %d) did not panic", n)
				}
			}()
			For([]byte("k"), n)
		}()
	}
}

func TestKeyIndex(t *testing.T) {
	app := mustParse(t, `
@distribution(strategy='partitioned', partitionKey='symbol')
define stream P (ts long, symbol string, price double);
define stream R (symbol string);
@distribution(strategy='roundRobin')
define stream R2 (symbol string);
@distribution(strategy='broadcast')
define stream B (symbol string);
`)
	want := map[string]int{"P": 1, "R": -1, "R2": -1, "B": -1}
	for _, s := range app.Streams {
		if got := KeyIndex(s); got != want[s.Name] {
			t.Errorf("KeyIndex(%s) = %d, want %d", s.Name, got, want[s.Name])
		}
	}
	if got := KeyIndex(nil); got != -1 {
		t.Errorf("KeyIndex(nil) = %d, want -1", got)
	}
	bad := &siddhiql.StreamDef{Name: "X", Routing: siddhiql.Routing{Strategy: siddhiql.Partitioned, PartitionKey: "nope"}}
	if got := KeyIndex(bad); got != -1 {
		t.Errorf("KeyIndex(key not an attribute) = %d, want -1", got)
	}
}

// rows builds events (id long, symbol string): id is the position in the batch.
func rows(symbols ...string) []expr.Row {
	out := make([]expr.Row, len(symbols))
	for i, s := range symbols {
		out[i] = expr.Row{expr.Long(int64(i)), expr.String(s)}
	}
	return out
}

// summary writes parts as "group:id,id,...", for comparisons.
func summary(parts []Part) []string {
	var out []string
	for _, p := range parts {
		ids := make([]string, len(p.Events))
		for i, r := range p.Events {
			ids[i] = strconv.FormatInt(r[0].I, 10)
		}
		out = append(out, fmt.Sprintf("%d:%s", p.Group, strings.Join(ids, ",")))
	}
	return out
}

var byKey = siddhiql.Routing{Strategy: siddhiql.Partitioned, PartitionKey: "symbol"}

func TestRoutePartitioned(t *testing.T) {
	// Over 3 groups (see TestForGolden): IBM→2, WSO2→2, wso2→0, a→1, foobar→1, ""→1.
	for _, tc := range []struct {
		name   string
		groups int
		events []expr.Row
		want   []string
	}{
		{"empty", 3, nil, nil},
		{"one event", 3, rows("IBM"), []string{"2:0"}},
		{"one group hit", 3, rows("IBM", "WSO2", "IBM"), []string{"2:0,1,2"}},
		{"spread, order kept", 3, rows("IBM", "wso2", "a", "WSO2", "foobar", "wso2", "IBM"),
			[]string{"0:1,5", "1:2,4", "2:0,3,6"}},
		{"one group only", 1, rows("IBM", "wso2", "a"), []string{"0:0,1,2"}},
		{"empty key", 3, rows(""), []string{"1:0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := summary(NewRouter(tc.groups).Route(byKey, 1, tc.events))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Route = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRoutePartitionedMatchesFor(t *testing.T) {
	r := NewRouter(7)
	var events []expr.Row
	for i := range 5000 {
		events = append(events, expr.Row{expr.Long(int64(i)), expr.String("k" + strconv.Itoa(i%613))})
	}
	parts := r.Route(byKey, 1, events)
	seen := 0
	for i, p := range parts {
		if i > 0 && parts[i-1].Group >= p.Group {
			t.Fatalf("parts not sorted by group: %d after %d", p.Group, parts[i-1].Group)
		}
		if len(p.Events) == 0 {
			t.Fatalf("group %d has an empty part", p.Group)
		}
		last := int64(-1)
		for _, e := range p.Events {
			if g := For(KeyBytes(nil, e[1]), 7); g != p.Group {
				t.Fatalf("event %v in group %d, For says %d", e, p.Group, g)
			}
			if e[0].I <= last {
				t.Fatalf("group %d: event %d after %d", p.Group, e[0].I, last)
			}
			last = e[0].I
			seen++
		}
		if len(p.Events) != cap(p.Events) {
			t.Errorf("group %d: part has spare capacity %d", p.Group, cap(p.Events)-len(p.Events))
		}
	}
	if seen != len(events) || len(parts) != 7 {
		t.Errorf("got %d events in %d parts, want %d in 7", seen, len(parts), len(events))
	}
}

func TestRoutePartitionedEdgeKeys(t *testing.T) {
	r := NewRouter(3)
	// A row too short for the key, and a null key, both use the null key: empty bytes.
	events := []expr.Row{{expr.Long(0)}, {expr.Long(1), expr.Null}}
	got := summary(r.Route(byKey, 1, events))
	want := []string{fmt.Sprintf("%d:0,1", For(nil, 3))}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Route = %v, want %v", got, want)
	}
	// Many groups (more than the router's stack buffer for counts).
	r = NewRouter(40)
	parts := r.Route(byKey, 1, rows("IBM", "a", "foobar"))
	for _, p := range parts {
		for _, e := range p.Events {
			if g := For([]byte(e[1].S), 40); g != p.Group {
				t.Errorf("%s in group %d, want %d", e[1].S, p.Group, g)
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("partitioned Route with keyIndex -1 did not panic")
		}
	}()
	r.Route(byKey, -1, rows("IBM"))
}

func TestRouteRoundRobin(t *testing.T) {
	r := NewRouter(3)
	rr := siddhiql.Routing{Strategy: siddhiql.RoundRobin}
	var got []string
	for range 7 {
		got = append(got, summary(r.Route(rr, -1, rows("IBM", "a")))...)
	}
	want := []string{"0:0,1", "1:0,1", "2:0,1", "0:0,1", "1:0,1", "2:0,1", "0:0,1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rotation = %v, want %v", got, want)
	}
	// An empty batch has no parts and does not take a turn.
	if parts := r.Route(rr, -1, nil); parts != nil {
		t.Errorf("empty batch: %v", parts)
	}
	if got := summary(r.Route(rr, -1, rows("x"))); got[0] != "1:0" {
		t.Errorf("after an empty batch: %v, want group 1", got)
	}
	// The zero Routing is roundRobin, and a roundRobin part is the batch itself.
	events := rows("a", "b")
	parts := r.Route(siddhiql.Routing{}, 5, events)
	if len(parts) != 1 || parts[0].Group != 2 || &parts[0].Events[0] != &events[0] {
		t.Errorf("zero routing: %v", summary(parts))
	}
}

func TestRouteBroadcast(t *testing.T) {
	r := NewRouter(3)
	bc := siddhiql.Routing{Strategy: siddhiql.Broadcast}
	got := summary(r.Route(bc, -1, rows("IBM", "a", "wso2")))
	want := []string{"0:0,1,2", "1:0,1,2", "2:0,1,2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("broadcast = %v, want %v", got, want)
	}
	if parts := r.Route(bc, -1, nil); parts != nil {
		t.Errorf("empty broadcast: %v", parts)
	}
	// Broadcast does not take a round-robin turn.
	if got := r.Route(siddhiql.Routing{}, -1, rows("x")); got[0].Group != 0 {
		t.Errorf("round robin after broadcast went to group %d, want 0", got[0].Group)
	}
}

// Concurrent round-robin requests take distinct turns: over a multiple of the group count,
// every group gets exactly its share. Run with -race.
func TestRouteConcurrent(t *testing.T) {
	const groups, workers, perWorker = 3, 8, 300
	r := NewRouter(groups)
	var mu sync.Mutex
	counts := make([]int, groups)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			local := make([]int, groups)
			for i := range perWorker {
				for _, p := range r.Route(siddhiql.Routing{}, -1, rows("a")) {
					local[p.Group]++
				}
				// Partitioned and broadcast routing share the router too.
				if len(r.Route(byKey, 1, rows("IBM", "wso2", strconv.Itoa(i)))) == 0 {
					t.Error("no parts")
				}
				r.Route(siddhiql.Routing{Strategy: siddhiql.Broadcast}, -1, rows("b"))
			}
			mu.Lock()
			for g, c := range local {
				counts[g] += c
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	for g, c := range counts {
		if c != workers*perWorker/groups {
			t.Errorf("group %d took %d round-robin turns, want %d", g, c, workers*perWorker/groups)
		}
	}
}

func TestNewRouterPanicsWithoutGroups(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewRouter(0) did not panic")
		}
	}()
	NewRouter(0)
}

// The package must stay pure: no I/O, clock, randomness or per-process hash seed.
func TestImports(t *testing.T) {
	bad := map[string]string{
		"hash/maphash": "per-process seed", "math/rand": "randomness", "math/rand/v2": "randomness",
		"crypto/rand": "randomness", "time": "clock", "os": "I/O", "io": "I/O", "net": "I/O",
		"net/http": "I/O", "unsafe": "purity",
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if why, ok := bad[p]; ok {
				t.Errorf("%s imports %s: %s", name, p, why)
			}
		}
	}
}

func mustParse(t testing.TB, text string) *siddhiql.App {
	t.Helper()
	app, err := siddhiql.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	return app
}

func BenchmarkRoute(b *testing.B) {
	const batch = 1000
	r := NewRouter(3)
	events := make([]expr.Row, batch)
	for i := range events {
		events[i] = expr.Row{expr.Long(int64(i)), expr.String("symbol-" + strconv.Itoa(i%97)), expr.Double(float64(i))}
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(r.Route(byKey, 1, events)) != 3 {
			b.Fatal("want 3 parts")
		}
	}
	b.ReportMetric(float64(b.N)*batch/b.Elapsed().Seconds(), "events/s")
}
