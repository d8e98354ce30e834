package proxy

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testNet builds the links of a 3-node cluster behind one echo target: raft and http
// between every ordered pair of nodes, and store from every node to "db".
func testNet(t *testing.T) *Net {
	t.Helper()
	srv := startServer(t, echo)
	n := NewNet(42, testLogger(t))
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
	})
	nodes := []string{"n1", "n2", "n3"}
	for _, a := range nodes {
		for _, b := range nodes {
			if a == b {
				continue
			}
			for _, kind := range []string{"raft", "http"} {
				if _, err := n.Add(a, b, kind, srv.addr()); err != nil {
					t.Fatal(err)
				}
			}
		}
		if _, err := n.Add(a, "db", "store", srv.addr()); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// checkCut checks that exactly the links named in cut are blackholed, by their fault state
// and by a round trip through every link (concurrently: each cut link costs a timeout).
func checkCut(t *testing.T, n *Net, cut ...string) {
	t.Helper()
	var mu sync.Mutex
	var wrong []string
	var wg sync.WaitGroup
	for _, p := range n.Links() {
		wantCut := slices.Contains(cut, p.Name())
		if got := p.Faults().Blackhole == Both; got != wantCut {
			mu.Lock()
			wrong = append(wrong, fmt.Sprintf("%s: blackholed %v, want %v", p.Name(), got, wantCut))
			mu.Unlock()
		}
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
			if err == nil {
				defer c.Close()
				err = tryRoundTrip(c, "probe", 300*time.Millisecond)
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case wantCut && !isTimeout(err):
				wrong = append(wrong, fmt.Sprintf("%s: round trip %v, want a timeout", p.Name(), err))
			case !wantCut && err != nil:
				wrong = append(wrong, fmt.Sprintf("%s: round trip %v, want an echo", p.Name(), err))
			}
		})
	}
	wg.Wait()
	if len(wrong) > 0 {
		slices.Sort(wrong)
		t.Fatalf("links:\n%s", strings.Join(wrong, "\n"))
	}
}

func TestNetPartition(t *testing.T) {
	n := testNet(t)
	if got := len(n.Links()); got != 15 {
		t.Fatalf("%d links", got)
	}
	checkCut(t, n)

	n.Partition([]string{"n1"}, []string{"n2", "n3"})
	checkCut(t, n,
		"n1->n2/raft", "n1->n2/http", "n2->n1/raft", "n2->n1/http",
		"n1->n3/raft", "n1->n3/http", "n3->n1/raft", "n3->n1/http")

	n.Heal()
	checkCut(t, n)

	// n3 on no side: its links stay up.
	n.Partition([]string{"n1"}, []string{"n2"})
	checkCut(t, n, "n1->n2/raft", "n1->n2/http", "n2->n1/raft", "n2->n1/http")
	n.Heal()
}

func TestNetCuts(t *testing.T) {
	n := testNet(t)

	n.CutOneWay("n1", "n2")
	checkCut(t, n, "n1->n2/raft", "n1->n2/http")
	n.Heal()

	n.CutOneWay("n2", "n3", "raft")
	checkCut(t, n, "n2->n3/raft")
	n.Heal()

	n.CutKind("store")
	checkCut(t, n, "n1->db/store", "n2->db/store", "n3->db/store")
	n.Heal()

	n.Isolate("n2", "raft", "http")
	checkCut(t, n, "n1->n2/raft", "n1->n2/http", "n2->n1/raft", "n2->n1/http",
		"n2->n3/raft", "n2->n3/http", "n3->n2/raft", "n3->n2/http")
	n.Heal()

	// Faults accumulate until Heal.
	n.Isolate("n3")
	n.CutOneWay("n1", "n2", "raft")
	checkCut(t, n, "n1->n3/raft", "n1->n3/http", "n3->n1/raft", "n3->n1/http",
		"n2->n3/raft", "n2->n3/http", "n3->n2/raft", "n3->n2/http", "n3->db/store",
		"n1->n2/raft")
	n.Heal()
	checkCut(t, n)
}

func TestNetFlakyAndReset(t *testing.T) {
	n := testNet(t)
	n.Flaky(0.5, 10*time.Millisecond, 5*time.Millisecond, "raft")
	for _, p := range n.Links() {
		f := p.Faults()
		raft := strings.HasSuffix(p.Name(), "/raft")
		if raft != (f == Faults{Flaky: 0.5, Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond}) || (!raft && !f.Healthy()) {
			t.Errorf("%s: faults %+v", p.Name(), f)
		}
	}
	n.Heal()

	n.Reset("store")
	for _, p := range n.Links() {
		if got, want := p.Faults().Refuse, strings.HasSuffix(p.Name(), "/store"); got != want {
			t.Errorf("%s: refusing %v, want %v", p.Name(), got, want)
		}
	}
	n.Heal()
	checkCut(t, n)
}

func TestNetAddAndLookup(t *testing.T) {
	n := testNet(t)
	p := n.Link("n1", "n2", "raft")
	if p == nil || p.Name() != "n1->n2/raft" {
		t.Fatalf("Link: %v", p)
	}
	if n.Link("n1", "n1", "raft") != nil {
		t.Fatal("Link found a link that was never added")
	}
	if _, err := n.Add("n1", "n2", "raft", p.Target()); err == nil {
		t.Fatal("duplicate link added")
	}
	if _, err := n.Add("n1", "n1", "raft", p.Target()); err == nil {
		t.Fatal("self link added")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("Partition with an endpoint on two sides did not panic")
			}
		}()
		n.Partition([]string{"n1", "n2"}, []string{"n2"})
	}()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Add("n1", "n4", "raft", p.Target()); err == nil {
		t.Fatal("Add after Close succeeded")
	}
}
