#!/usr/bin/env bash
# bench.sh is `make bench`: it measures, in one run on this machine, the engine and codec
# (go test -bench), the raw Raft ceiling (tally-bench raft), Tally with 3 nodes and 1 group and
# then 3 groups (run-cluster.sh + tally bench), the same aggregation done directly in MariaDB
# (tally-bench mariadb), failover (systest.TestCluster_LeaderKill) and the memory of a replica
# holding many distinct keys (tally-bench load), then rewrites the generated section of
# BENCHMARKS.md (between `<!-- make bench: begin -->` and `<!-- make bench: end -->`) with
# tally-bench report. Everything runs on loopback; every process it starts is stopped at the
# end, also on failure or Ctrl-C. A step that fails is reported in the table as missing and
# makes the script exit 1 after the report is written.
#
# Environment:
#   BENCH_DIR       where raw results go (default: a new temporary directory; kept)
#   BENCH_DURATION  seconds per load run (default 10)
#   BASE_PORT       first port of the clusters (default 17070; the 3-group cluster uses +200)
#   MEM_KEYS        distinct symbols for the memory step (default 1000000)
#   FAILOVER_TRIALS leader kills in the failover step (default 20)
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
GO=${GO:-go}
DUR=${BENCH_DURATION:-10}
BASE_PORT=${BASE_PORT:-17070}
MEM_KEYS=${MEM_KEYS:-1000000}
FAILOVER_TRIALS=${FAILOVER_TRIALS:-20}
OUT=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/tally-bench.XXXXXX")}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
START=$SECONDS
FAILED=()

say() { printf '==> [%4ds] %s\n' $((SECONDS - START)) "$*"; }
fail() {
	FAILED+=("$1")
	say "FAILED: $1 (see $OUT)" >&2
}
# cmd records a command for the report (and prints it).
cmd() {
	printf '%s\n' "$*" >>"$OUT/commands.txt"
	printf '    $ %s\n' "$*"
}

# ---- process management ----

CHILD=""   # the foreground measuring process, run in the background so traps are not delayed
RC_PID=""  # run-cluster.sh of the running cluster
NODES=()   # its tally serve PIDs (n1 n2 n3)

# run COMMAND...: runs it in the background and waits for it (a signal to this script is
# handled at once, and the trap stops the child).
run() {
	"$@" &
	CHILD=$!
	local rc=0
	wait "$CHILD" || rc=$?
	CHILD=""
	return $rc
}

stop_cluster() {
	[[ -z $RC_PID ]] && return 0
	local waited=0 pid
	kill -TERM "$RC_PID" 2>/dev/null || true
	while kill -0 "$RC_PID" 2>/dev/null && ((waited < 400)); do
		sleep 0.1
		waited=$((waited + 1))
	done
	kill -0 "$RC_PID" 2>/dev/null && kill -KILL "$RC_PID" 2>/dev/null
	wait "$RC_PID" 2>/dev/null || true
	for pid in "${NODES[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			say "node pid $pid still running: killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	RC_PID=""
	NODES=()
}

cleanup() {
	trap '' INT TERM
	if [[ -n $CHILD ]]; then
		kill -TERM "$CHILD" 2>/dev/null || true
		wait "$CHILD" 2>/dev/null || true
	fi
	stop_cluster
}
trap cleanup EXIT
trap 'say "interrupted: stopping everything"; exit 130' INT TERM

# start_cluster NAME GROUPS BASE_PORT: run-cluster.sh in the background, waits until it says
# the cluster is ready; sets RC_PID, NODES and ADDRS.
start_cluster() {
	local name=$1 groups=$2 port=$3 waited=0 pid id
	env GROUPS="$groups" BASE_PORT="$port" DATA_DIR="$OUT/$name" TALLY="$ROOT/bin/tally" READY_TIMEOUT=90 \
		./scripts/run-cluster.sh >"$OUT/$name.log" 2>&1 &
	RC_PID=$!
	until grep -q '^Tally is running' "$OUT/$name.log" 2>/dev/null; do
		if ! kill -0 "$RC_PID" 2>/dev/null || ((waited > 1200)); then
			tail -n 20 "$OUT/$name.log" >&2
			stop_cluster
			return 1
		fi
		sleep 0.1
		waited=$((waited + 1))
	done
	NODES=()
	for pid in $(ps -o pid= --ppid "$RC_PID"); do
		id=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | sed -n 's/.* --id \(n[0-9]\) .*/\1/p')
		[[ -n $id ]] && NODES[${id#n} - 1]=$pid
	done
	ADDRS="http://127.0.0.1:$port,http://127.0.0.1:$((port + 10)),http://127.0.0.1:$((port + 20))"
	say "cluster $name up ($groups group(s), nodes ${NODES[*]}, $ADDRS)"
}

# tally_load NAME CLIENTS EVENTS: one `tally bench` run against the running cluster.
tally_load() {
	local name=$1 clients=$2 events=$3
	cmd bin/tally bench --addr "$ADDRS" --clients "$clients" --events-per-request "$events" --keys 1000 --duration "${DUR}s" --json
	if run bin/tally bench --addr "$ADDRS" --clients "$clients" --events-per-request "$events" --keys 1000 \
		--duration "${DUR}s" --json >"$OUT/$name.json" 2>"$OUT/$name.log"; then
		say "$name: $(jq -r '"\(.events_per_s|floor) events/s, p99 \(.latency_ms.p99) ms, errors \(.errors)"' "$OUT/$name.json")"
	else
		tail -n 5 "$OUT/$name.log" >&2
		fail "$name"
	fi
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# ---- the steps ----

say "results in $OUT"
: >"$OUT/commands.txt"

say "machine"
{
	echo "nproc=$(nproc)"
	echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
	echo "mem=$(awk '/^MemTotal:/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
	echo "kernel=$(uname -r)"
	echo "go=$($GO version | awk '{print $3}')"
} >"$OUT/machine.txt"
sed 's/^/    /' "$OUT/machine.txt"

say "step 0: build"
cmd $GO build -o bin/ ./cmd/...
run $GO build -o bin/ ./cmd/... || {
	say "build failed"
	exit 1
}

say "step 1: engine apply and command codec benchmarks"
cmd $GO test -run "'^\$'" -bench ApplyTrade -benchtime 2s -count 3 ./engine/
run $GO test -run '^$' -bench ApplyTrade -benchtime 2s -count 3 ./engine/ >"$OUT/engine.txt" 2>&1 || fail engine
grep '^Benchmark' "$OUT/engine.txt" | sed 's/^/    /'
cmd $GO test -run "'^\$'" -bench CommandCodec -benchmem -count 3 ./fsm/
run $GO test -run '^$' -bench CommandCodec -benchmem -count 3 ./fsm/ >"$OUT/codec.txt" 2>&1 || fail codec
grep '^Benchmark' "$OUT/codec.txt" | sed 's/^/    /'
say "step 1 done"

say "step 2: raw Raft ceiling (3 replicas, raft-boltdb, fsync, TCP on 127.0.0.1)"
for ev in 100 1000; do
	cmd bin/tally-bench raft --events $ev --proposers 8 --duration "${DUR}s"
	if run bin/tally-bench raft --events $ev --proposers 8 --duration "${DUR}s" >"$OUT/raft$ev.json" 2>"$OUT/raft$ev.log"; then
		say "raft $ev-event entries: $(jq -r '"\(.entries_per_s|floor) entries/s = \(.events_per_s|floor) events/s (\(.entry_bytes) bytes each)"' "$OUT/raft$ev.json")"
	else
		tail -n 5 "$OUT/raft$ev.log" >&2
		fail "raft$ev"
	fi
done
say "step 2 done"

say "step 3: Tally, 3 nodes, 1 group"
cmd env GROUPS=1 BASE_PORT=$BASE_PORT scripts/run-cluster.sh
if start_cluster g1 1 "$BASE_PORT"; then
	tally_load g1_b100 8 100
	tally_load g1_b1000 8 1000
	tally_load g1_single 64 1
	stop_cluster
else
	fail "cluster g1"
fi
say "step 3 done"

say "step 4: Tally, 3 nodes, 3 groups (TradeStream is partitioned by symbol)"
cmd env GROUPS=3 BASE_PORT=$((BASE_PORT + 200)) scripts/run-cluster.sh
if start_cluster g3 3 $((BASE_PORT + 200)); then
	tally_load g3_b100 8 100
	tally_load g3_b1000 8 1000
	tally_load g3_single 64 1
	stop_cluster
else
	fail "cluster g3"
fi
say "step 4 done"

say "step 5: MariaDB alternative"
cmd bin/tally-bench mariadb --clients 8 --events 1000 --keys 1000 --duration "${DUR}s"
if run bin/tally-bench mariadb --clients 8 --events 1000 --keys 1000 --duration "${DUR}s" >"$OUT/mariadb.json" 2>"$OUT/mariadb.log"; then
	say "mariadb: $(jq -r '"\(.events_per_s|floor) events/s"' "$OUT/mariadb.json")"
else
	tail -n 5 "$OUT/mariadb.log" >&2
	fail mariadb
fi
say "step 5 done"

say "step 6: failover ($FAILOVER_TRIALS leader kills)"
cmd TALLY_FAILOVER_TRIALS=$FAILOVER_TRIALS $GO test -count=1 -v -run TestCluster_LeaderKill ./systest/
if run env TALLY_FAILOVER_TRIALS=$FAILOVER_TRIALS $GO test -count=1 -v -run TestCluster_LeaderKill ./systest/ >"$OUT/failover.log" 2>&1; then
	grep 'failover times' "$OUT/failover.log" | sed 's/^ */    /'
else
	tail -n 10 "$OUT/failover.log" >&2
	fail failover
fi
say "step 6 done"

say "step 7: memory of a replica with $MEM_KEYS distinct symbols (fresh 1-group cluster)"
if start_cluster mem 1 "$BASE_PORT"; then
	base=0
	for pid in "${NODES[@]}"; do base=$(( $(rss_kb "$pid") > base ? $(rss_kb "$pid") : base )); done
	cmd bin/tally-bench load --addr "http://127.0.0.1:$BASE_PORT,..." --keys "$MEM_KEYS" --batch 1000 --clients 8 --max-duration 150s
	run bin/tally-bench load --addr "$ADDRS" --keys "$MEM_KEYS" --batch 1000 --clients 8 --max-duration 150s \
		>"$OUT/load.json" 2>"$OUT/load.log" || {
		tail -n 2 "$OUT/load.log" >&2
		fail "memory load (stopped early: RSS measured with the symbols acknowledged so far)"
	}
	if [[ -s $OUT/load.json ]]; then
		say "load: $(jq -r '"\(.events) of \(.keys) symbols acknowledged at \(.events_per_s|floor) events/s in \(.duration_s|floor) s"' "$OUT/load.json")"
		sleep 3
		{
			echo "keys=$(jq -r .events "$OUT/load.json")"
			echo "settle_s=3"
			echo "base_rss_kb_max=$base"
			for i in 0 1 2; do echo "rss_kb_n$((i + 1))=$(rss_kb "${NODES[i]}")"; done
		} >"$OUT/memory.txt"
		sed 's/^/    /' "$OUT/memory.txt"
	fi
	stop_cluster
else
	fail "cluster mem"
fi
say "step 7 done"

WALL=$((SECONDS - START))
{
	echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "wall=$((WALL / 60)) min $((WALL % 60)) s"
	echo "dur=$DUR"
	echo "failed=${FAILED[*]:-}"
} >"$OUT/meta.txt"
say "report: rewriting the generated section of BENCHMARKS.md"
if ! bin/tally-bench report --dir "$OUT" --md BENCHMARKS.md; then
	fail report
fi
say "done in $((WALL / 60)) min $((WALL % 60)) s; raw results in $OUT"
if ((${#FAILED[@]} > 0)); then
	say "failed steps: ${FAILED[*]}" >&2
	exit 1
fi
