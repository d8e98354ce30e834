package fsm

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tally-db/tally/engine"
)

// Two apps that each define and insert into Mid: the bare name is ambiguous.
const (
	midX = `@app:name('X')
define stream XIn (k string);
define stream Mid (k string);
from XIn select k insert into Mid;
`
	midY = `@app:name('Y')
define stream YIn (k string);
define stream Mid (k string);
from YIn select k insert into Mid;
`
)

// catalogNames are the names the catalog is compared with the engine on, known or not.
var catalogNames = []string{"S", "T.S", "Out", "T.Out", "U1", "U.U1", "XIn", "X.XIn", "Mid", "X.Mid", "Y.Mid", "YIn", "Nope", "T.Nope", "", "."}

// checkCatalog compares f's published catalog with what its engine answers, name by name.
func checkCatalog(t *testing.T, f *FSM, when string) {
	t.Helper()
	cat := f.Catalog()
	f.Read(func(e View) {
		for _, n := range catalogNames {
			want, wantOK := e.Stream(n)
			got, ok := cat.StreamDef(n)
			if ok != wantOK || got != want {
				t.Errorf("%s: StreamDef(%q) = %v, %v; the engine says %v, %v", when, n, got, ok, want, wantOK)
			}
			wantErr := e.e.CheckEvents(n, nil)
			if err := cat.CheckStream(n); (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
				t.Errorf("%s: CheckStream(%q) = %v; the engine says %v", when, n, err, wantErr)
			}
			if got, want := cat.IsOutputStream(n), e.IsOutputStream(n); got != want {
				t.Errorf("%s: IsOutputStream(%q) = %v; the engine says %v", when, n, got, want)
			}
		}
		var apps []string
		for _, a := range e.Apps() {
			apps = append(apps, a.Name())
			if !cat.HasApp(a.Name()) {
				t.Errorf("%s: HasApp(%q) = false", when, a.Name())
			}
		}
		if got := cat.Apps(); !slices.Equal(got, apps) {
			t.Errorf("%s: Apps() = %v, want %v", when, got, apps)
		}
	})
}

func TestCatalog_FollowsDeployUndeployRestore(t *testing.T) {
	f := newFSM(t, DefaultConfig())
	checkCatalog(t, f, "empty")
	if _, ok := f.Catalog().StreamDef("S"); ok {
		t.Fatal("an empty FSM's catalog knows stream S")
	}
	idx := uint64(1)
	step := func(c Command) *ApplyResult {
		t.Helper()
		res := mustApply(t, f, idx, c)
		idx++
		return res
	}
	for _, app := range []string{testApp, otherApp, midX, midY} {
		if res := step(Command{Kind: KindDeploy, Time: t0, Text: app}); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	checkCatalog(t, f, "after deploys")
	def, ok := f.Catalog().StreamDef("T.S")
	if !ok || def.Name != "S" || len(def.Attributes) != 2 {
		t.Fatalf("StreamDef(T.S) = %+v, %v", def, ok)
	}
	if err := f.Catalog().CheckStream("Mid"); !errors.Is(err, engine.ErrUnknownStream) || !strings.Contains(err.Error(), "X.Mid") {
		t.Fatalf("CheckStream(Mid) = %v, want the ambiguous-name error naming X.Mid", err)
	}
	if !f.Catalog().IsOutputStream("Out") {
		t.Fatal("Out is not an output stream in the catalog")
	}
	// A failed deploy publishes nothing new; an undeploy does.
	before := f.Catalog()
	if res := step(Command{Kind: KindDeploy, Time: t0, Text: "define stream"}); res.Err == nil {
		t.Fatal("a bad app deployed")
	}
	if f.Catalog() != before {
		t.Fatal("a failed deploy published a new catalog")
	}
	if res := step(Command{Kind: KindUndeploy, Time: t0, Text: "T"}); res.Err != nil {
		t.Fatal(res.Err)
	}
	checkCatalog(t, f, "after undeploy")
	if _, ok := f.Catalog().StreamDef("S"); ok || f.Catalog().IsOutputStream("Out") || f.Catalog().HasApp("T") {
		t.Fatal("the catalog still shows app T after its undeploy")
	}
	step(Command{Kind: KindShard, Time: t0, Text: "shard-a"})
	step(Command{Kind: KindFlushed, Time: t0, Index: 3})
	if s, fl := f.Catalog().ShardID(); s != "shard-a" || fl != 3 {
		t.Fatalf("catalog ShardID = %q, %d; want shard-a, 3", s, fl)
	}
	if s, fl := f.ShardID(); s != "shard-a" || fl != 3 {
		t.Fatalf("FSM ShardID = %q, %d; want shard-a, 3", s, fl)
	}

	g := newFSM(t, DefaultConfig())
	if err := restore(t, g, snapshotBytes(t, f)); err != nil {
		t.Fatal(err)
	}
	checkCatalog(t, g, "after restore")
	if got, want := g.Catalog().Streams(), f.Catalog().Streams(); !slices.Equal(got, want) {
		t.Fatalf("restored catalog streams %v, want %v", got, want)
	}
	if s, fl := g.Catalog().ShardID(); s != "shard-a" || fl != 3 {
		t.Fatalf("restored catalog ShardID = %q, %d; want shard-a, 3", s, fl)
	}
}

// TestCatalog_NotBlockedByApply parks Apply inside its write lock and reads the catalog, the
// shard ID and a batch check of an unknown stream: none of them waits for the lock.
func TestCatalog_NotBlockedByApply(t *testing.T) {
	f := newFSM(t, DefaultConfig())
	mustApply(t, f, 1, Command{Kind: KindDeploy, Time: t0, Text: testApp})
	parked, release := make(chan struct{}), make(chan struct{})
	f.applyHook = func() {
		close(parked)
		<-release
	}
	applied := make(chan struct{})
	go func() {
		defer close(applied)
		f.Apply(logOf(t, 2, batch(t0, part("S", "", 0, ev("a", 1))))[0])
	}()
	<-parked
	read := make(chan string, 1)
	go func() {
		def, ok := f.Catalog().StreamDef("S")
		shard, _ := f.ShardID()
		errs := f.CheckBatch([]Part{part("Nope", "", 0, ev("a", 1))})
		switch {
		case !ok || def.Name != "S":
			read <- "StreamDef(S) not found"
		case shard != "":
			read <- "unexpected shard " + shard
		case len(errs) != 1 || !errors.Is(errs[0], engine.ErrUnknownStream):
			read <- "CheckBatch did not refuse the unknown stream"
		default:
			read <- ""
		}
	}()
	select {
	case msg := <-read:
		if msg != "" {
			t.Error(msg)
		}
	case <-time.After(5 * time.Second):
		t.Error("a catalog read waited behind Apply's lock")
	}
	close(release)
	<-applied
	if f.AppliedIndex() != 2 {
		t.Fatalf("applied index %d after release, want 2", f.AppliedIndex())
	}
}
