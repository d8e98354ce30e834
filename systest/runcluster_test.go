package systest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRunCluster_CtrlC runs `make run` in a terminal (tmux) and presses Ctrl-C, once while
// the script still waits for the cluster to be ready and once after it is ready: each time
// every tally process it started must be gone.
func TestRunCluster_CtrlC(t *testing.T) {
	tmux := needTmux(t)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, waitFor string
		after         time.Duration // after waitFor shows: inside the script's readiness loop
	}{
		{"during startup", "waiting for the cluster to be ready", 800 * time.Millisecond},
		{"when ready", "Press Ctrl-C to stop the cluster", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			dataDir := t.TempDir()
			base := freeRange(t, 22)
			session := fmt.Sprintf("tally-run-%d-%d", os.Getpid(), base)
			// TALLY is the binary the package built, so make's build step is quick.
			// The wrapper shell outlives Ctrl-C (a trap that does nothing; an ignored SIGINT
			// would be inherited by make) to report make's exit.
			cmd := fmt.Sprintf("bash -c 'trap : INT; cd %q && make run BASE_PORT=%d DATA_DIR=%q TALLY=%q; echo MAKE-EXITED $?; sleep 600'",
				root, base, dataDir, binary)
			if out, err := exec.Command(tmux, "new-session", "-d", "-s", session, "-x", "200", "-y", "50", cmd).CombinedOutput(); err != nil {
				t.Fatalf("tmux new-session: %v: %s", err, out)
			}
			t.Cleanup(func() {
				_ = exec.Command(tmux, "kill-session", "-t", session).Run()
				killMatching(dataDir)
			})
			pane := func() string {
				out, _ := exec.Command(tmux, "capture-pane", "-p", "-t", session, "-S", "-200").Output()
				return string(out)
			}
			waitPane(t, pane, c.waitFor, 120*time.Second)
			time.Sleep(c.after)
			if n := len(processesMatching(dataDir)); n == 0 {
				t.Fatalf("no tally process runs with data dir %s before Ctrl-C:\n%s", dataDir, pane())
			}
			if out, err := exec.Command(tmux, "send-keys", "-t", session, "C-c").CombinedOutput(); err != nil {
				t.Fatalf("tmux send-keys: %v: %s", err, out)
			}
			waitPane(t, pane, "MAKE-EXITED", 60*time.Second)
			deadline := time.Now().Add(10 * time.Second)
			for {
				left := processesMatching(dataDir)
				if len(left) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("tally processes left after Ctrl-C: %v\n%s", left, pane())
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

// needTmux returns tmux's path, installing Debian's package when it is missing and the test
// runs as root.
func needTmux(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("tmux"); err == nil {
		return p
	}
	if os.Geteuid() != 0 {
		t.Fatal("tmux is not installed and the test is not root to install it (apt-get install tmux)")
	}
	for _, args := range [][]string{{"update"}, {"install", "-y", "--no-install-recommends", "tmux"}} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("apt-get %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	p, err := exec.LookPath("tmux")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// freeRange returns a port p such that p..p+n-1 are all free on loopback right now.
func freeRange(t *testing.T, n int) int {
	t.Helper()
	for try := range 200 {
		base := 20000 + (os.Getpid()*7+try*97)%30000
		ok := true
		for i := range n {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+i))
			if err != nil {
				ok = false
				break
			}
			ln.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

func waitPane(t *testing.T, pane func() string, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(pane(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal did not show %q within %s:\n%s", want, d, pane())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// processesMatching returns the PIDs of processes whose command line mentions s.
func processesMatching(s string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0})
		if len(args) < 2 || filepath.Base(string(args[0])) != "tally" {
			continue
		}
		if bytes.Contains(b, []byte(s)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func killMatching(s string) {
	for _, pid := range processesMatching(s) {
		if p, err := os.FindProcess(pid); err == nil {
			_ = p.Kill()
		}
	}
}
