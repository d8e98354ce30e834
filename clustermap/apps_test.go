package clustermap

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/hashicorp/raft"
)

func appNames(m Map) []string {
	var out []string
	for _, a := range m.Apps {
		out = append(out, a.Name)
	}
	return out
}

// TestApps_DeployUndeploy: deploy records an app with the index that deployed it, sorted by
// name; the same text again changes nothing (a retried deploy), another text replaces it;
// undeploy removes it, and an unknown name changes nothing; a deploy without text is refused.
func TestApps_DeployUndeploy(t *testing.T) {
	var m Map
	first := Node{ID: "n1", RaftAddr: "127.0.0.1:7071"}
	if err := m.Apply(1, Init(3, first, []string{"0"})); err != nil {
		t.Fatal(err)
	}
	if !m.AppsComplete || m.AppsIndex != 1 {
		t.Fatalf("a map created now must hold every app: complete %v at %d", m.AppsComplete, m.AppsIndex)
	}
	steps := []struct {
		index uint64
		cmd   Command
	}{
		{2, Deploy("B", "@app:name('B') define stream S (v long);")},
		{3, Deploy("A", "@app:name('A') define stream T (v long);")},
		{4, Deploy("B", "@app:name('B') define stream S (v long);")},
	}
	for _, s := range steps {
		if err := m.Apply(s.index, s.cmd); err != nil {
			t.Fatalf("apply %d: %v", s.index, err)
		}
	}
	if !slices.Equal(appNames(m), []string{"A", "B"}) {
		t.Fatalf("apps %v, want A B", appNames(m))
	}
	if b, _ := m.App("B"); b.Index != 2 || m.AppsIndex != 3 {
		t.Errorf("B at %d, apps changed at %d; want 2 and 3 (the same text again is no change)", b.Index, m.AppsIndex)
	}
	if err := m.Apply(5, Deploy("B", "@app:name('B') define stream S (v double);")); err != nil {
		t.Fatal(err)
	}
	if b, _ := m.App("B"); b.Index != 5 || b.Text != "@app:name('B') define stream S (v double);" || m.AppsIndex != 5 {
		t.Errorf("replaced B = %+v, apps index %d", b, m.AppsIndex)
	}
	if err := m.Apply(6, Undeploy("A")); err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(7, Undeploy("Nope")); err != nil {
		t.Fatalf("undeploy of an unknown app: %v", err)
	}
	if !slices.Equal(appNames(m), []string{"B"}) || m.AppsIndex != 6 {
		t.Errorf("apps %v changed at %d, want B at 6", appNames(m), m.AppsIndex)
	}
	before := m.Clone()
	if err := m.Apply(8, Deploy("C", "")); !errors.Is(err, ErrRefused) {
		t.Fatalf("deploy without text: %v, want ErrRefused", err)
	}
	if m.Index != before.Index || len(m.Apps) != 1 {
		t.Errorf("a refused deploy changed the map: %+v", m)
	}
	if err := m.Apply(9, Adopt(nil)); !errors.Is(err, ErrRefused) {
		t.Errorf("adopt on a map that holds every app: %v, want ErrRefused", err)
	}
	c := m.Clone()
	c.Apps[0].Name = "changed"
	if m.Apps[0].Name != "B" {
		t.Error("Clone shares the apps")
	}
}

// oldMapJSON is a map snapshot as nodes wrote it before the map kept apps.
const oldMapJSON = `{"index":12,"replicas":3,"nodes":[{"id":"n1","raft_addr":"127.0.0.1:7071","http_addr":"127.0.0.1:7070","state":"active"}],` +
	`"groups":[{"id":0,"shard_id":"0","keys":"all keys","voters":["n1"]}]}`

// TestApps_OldMapDecodes: a snapshot and an init entry written before the map kept apps
// decode into a map with no apps that does not claim to hold them all; adopting a group's
// apps then makes it complete, keeping an app deployed through the map meanwhile.
func TestApps_OldMapDecodes(t *testing.T) {
	f := NewFSM()
	if err := f.Restore(io.NopCloser(bytes.NewReader([]byte(oldMapJSON)))); err != nil {
		t.Fatalf("restore an old snapshot: %v", err)
	}
	m, _ := f.Map()
	if m.Index != 12 || len(m.Groups) != 1 || len(m.Apps) != 0 || m.AppsComplete {
		t.Fatalf("old snapshot restored as %+v", m)
	}
	oldInit := `{"op":"init","replicas":1,"groups":[{"id":0,"shard_id":"0","keys":"all keys","voters":["n1"]}],"node":{"id":"n1","raft_addr":"127.0.0.1:7071","state":"active"}}`
	g := NewFSM()
	if res := g.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: []byte(oldInit)}); res != nil {
		t.Fatalf("old init: %v", res)
	}
	if m, _ := g.Map(); !m.Initialized() || m.AppsComplete {
		t.Fatalf("an old init entry replayed: %+v; want initialized, apps not complete", m)
	}
	for i, c := range []Command{
		Deploy("New", "@app:name('New') define stream N (v long);"),
		Adopt([]App{{Name: "Old", Text: "@app:name('Old') define stream O (v long);"}, {Name: "New", Text: "an older text"}}),
	} {
		if res := g.Apply(&raft.Log{Index: uint64(2 + i), Type: raft.LogCommand, Data: c.Encode()}); res != nil {
			t.Fatalf("%s: %v", c.Op, res)
		}
	}
	m, _ = g.Map()
	if !m.AppsComplete || m.AppsIndex != 3 || !slices.Equal(appNames(m), []string{"New", "Old"}) {
		t.Fatalf("after adopt: %+v", m)
	}
	if n, _ := m.App("New"); n.Index != 2 || n.Text != "@app:name('New') define stream N (v long);" {
		t.Errorf("adopt replaced an app the map held: %+v", n)
	}
	// The map with apps round-trips through a snapshot.
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	h := NewFSM()
	if err := h.Restore(io.NopCloser(bytes.NewReader(b))); err != nil {
		t.Fatal(err)
	}
	if r, _ := h.Map(); !r.AppsComplete || !slices.Equal(appNames(r), []string{"New", "Old"}) || r.AppsIndex != 3 {
		t.Errorf("snapshot round trip: %+v", r)
	}
}
