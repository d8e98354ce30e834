#!/usr/bin/env bash
# bench.sh is `make bench`: it measures, in one run on this machine, the engine and codec
# (go test -bench), the raw Raft ceiling (tally-bench raft, on raft-wal and raft-boltdb), Tally
# with 3 nodes and 1 group (and the same on raft-boltdb) and then 3 groups (run-cluster.sh + tally bench), the same aggregation done directly in MariaDB
# (tally-bench mariadb: 8 clients with 1000-event transactions and 64 with one-event ones), failover (systest.TestCluster_LeaderKill) and the memory of a replica
# holding many distinct keys (tally-bench load), scaling out (the same load on 3, 6 and 9 nodes
# with as many groups and 3 replicas each) and the cost of TLS and users on ingest (the
# 1-group workloads on a plain and a TLS+users cluster, alternating), then rewrites the
# generated section of BENCHMARKS.md (between `<!-- make bench: begin -->` and
# `<!-- make bench: end -->`) with tally-bench report. Everything runs on loopback; every
# process it starts is stopped at the end, also on failure or Ctrl-C. A step that fails is
# reported in the table as missing and makes the script exit 1 after the report is written.
#
# Environment:
#   BENCH_DIR       where raw results go (default: a new temporary directory; kept)
#   BENCH_DURATION  seconds per load run (default 10)
#   BASE_PORT       first port of the clusters (default 17070; the raft-boltdb cluster uses
#                   +100, the 3-group cluster +200,
#                   the TLS step +400 and +500, the scaling step +600, +700, ...)
#   MEM_KEYS        distinct symbols for the memory step (default 1000000)
#   MEM_MAX_DURATION seconds the memory step may take to have every symbol acknowledged
#                   (default 900); symbols not acknowledged by then make the figure missed
#   MEM_LIMIT       the memory step's nodes run with `tally serve --memory-limit MEM_LIMIT`
#                   (default 1GiB, the target; "none": without it)
#   FAILOVER_TRIALS leader kills in the failover step (default 20)
#   TLS_RUNS        runs of each workload on each cluster in the TLS step (default 3)
#   SCALE_NODES     cluster sizes of the scaling step, 3 to 10 nodes each (default "3 6 9")
#   BENCH_ONLY      "tls", "mem" or "scale": build, run only the TLS, the memory or the
#                   scaling step and print its section of the report (to stdout and
#                   BENCH_DIR/tls.md, mem.md or scale.md) instead of rewriting BENCHMARKS.md
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
GO=${GO:-go}
DUR=${BENCH_DURATION:-10}
BASE_PORT=${BASE_PORT:-17070}
MEM_KEYS=${MEM_KEYS:-1000000}
MEM_MAX_DURATION=${MEM_MAX_DURATION:-900}
MEM_LIMIT=${MEM_LIMIT:-1GiB}
FAILOVER_TRIALS=${FAILOVER_TRIALS:-20}
TLS_RUNS=${TLS_RUNS:-3}
SCALE_NODES=${SCALE_NODES:-3 6 9}
BENCH_ONLY=${BENCH_ONLY:-}
case $BENCH_ONLY in '' | tls | mem | scale) ;; *)
	echo "bench.sh: BENCH_ONLY must be empty, tls, mem or scale, got '$BENCH_ONLY'" >&2
	exit 2
	;;
esac
case $MEM_MAX_DURATION in '' | *[!0-9]* | 0)
	echo "bench.sh: MEM_MAX_DURATION must be a positive number of seconds, got '$MEM_MAX_DURATION'" >&2
	exit 2
	;;
esac
case $MEM_LIMIT in none | [0-9]*[0-9]GiB | [0-9]*[0-9]MiB | [0-9]GiB | [0-9]MiB) ;; *)
	echo "bench.sh: MEM_LIMIT must be a whole number of GiB or MiB (e.g. 1GiB) or none, got '$MEM_LIMIT'" >&2
	exit 2
	;;
esac
for n in $SCALE_NODES; do
	case $n in [3-9] | 10) ;; *)
		echo "bench.sh: SCALE_NODES must be cluster sizes of 3 to 10 nodes, got '$SCALE_NODES'" >&2
		exit 2
		;;
	esac
done
[[ -n ${SCALE_NODES// /} ]] || {
	echo "bench.sh: SCALE_NODES names no cluster size" >&2
	exit 2
}
case $TLS_RUNS in '' | *[!0-9]* | 0)
	echo "bench.sh: TLS_RUNS must be a positive number, got '$TLS_RUNS'" >&2
	exit 2
	;;
esac
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
# cmd records a command for the report, once (the TLS step repeats its runs), and prints it.
cmd() {
	grep -qxF -- "$*" "$OUT/commands.txt" 2>/dev/null || printf '%s\n' "$*" >>"$OUT/commands.txt"
	printf '    $ %s\n' "$*"
}

# ---- process management ----

CHILD=""   # the foreground measuring process, run in the background so traps are not delayed
RC_PID=""  # run-cluster.sh of the running cluster
NODES=()   # its tally serve PIDs (n1 n2 n3 ...)

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

# A second cluster can stay up, parked, while another is measured (the TLS step):
# swap_cluster exchanges the running cluster (RC_PID, NODES, ADDRS) with the parked one.
PARKED_RC=""
PARKED_NODES=()
PARKED_ADDRS=""
swap_cluster() {
	local rc=$RC_PID addrs=${ADDRS:-} nodes=(${NODES[@]+"${NODES[@]}"})
	RC_PID=$PARKED_RC
	ADDRS=$PARKED_ADDRS
	NODES=(${PARKED_NODES[@]+"${PARKED_NODES[@]}"})
	PARKED_RC=$rc
	PARKED_ADDRS=$addrs
	PARKED_NODES=(${nodes[@]+"${nodes[@]}"})
}

cleanup() {
	trap '' INT TERM
	if [[ -n $CHILD ]]; then
		kill -TERM "$CHILD" 2>/dev/null || true
		wait "$CHILD" 2>/dev/null || true
	fi
	stop_cluster
	swap_cluster
	stop_cluster
}
trap cleanup EXIT
trap 'say "interrupted: stopping everything"; exit 130' INT TERM

# start_cluster NAME GROUPS BASE_PORT [VAR=VALUE...]: run-cluster.sh in the background (with
# the extra environment given, such as TLS_DIR and AUTH, or NODES and READY_TIMEOUT for other
# than 3 nodes ready within 90 s), waits until it says the cluster is ready; sets RC_PID,
# NODES (the nodes' PIDs, n1 first) and ADDRS (every node's URL, https:// with TLS_DIR).
start_cluster() {
	local name=$1 groups=$2 port=$3 waited=0 pid id scheme=http n=3 ready=90 a i
	shift 3
	for a in "$@"; do
		case $a in
		TLS_DIR=*) scheme=https ;;
		NODES=*) n=${a#NODES=} ;;
		READY_TIMEOUT=*) ready=${a#READY_TIMEOUT=} ;;
		esac
	done
	env NODES=3 GROUPS="$groups" BASE_PORT="$port" DATA_DIR="$OUT/$name" TALLY="$ROOT/bin/tally" READY_TIMEOUT=90 "$@" \
		./scripts/run-cluster.sh >"$OUT/$name.log" 2>&1 &
	RC_PID=$!
	until grep -q '^Tally is running' "$OUT/$name.log" 2>/dev/null; do
		if ! kill -0 "$RC_PID" 2>/dev/null || ((waited > (ready + 30) * 10)); then
			tail -n 20 "$OUT/$name.log" >&2
			stop_cluster
			return 1
		fi
		sleep 0.1
		waited=$((waited + 1))
	done
	NODES=()
	for pid in $(ps -o pid= --ppid "$RC_PID"); do
		id=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | sed -n 's/.* --id n\([0-9][0-9]*\) .*/\1/p')
		[[ -n $id ]] && NODES[id - 1]=$pid
	done
	if ((${#NODES[@]} != n)); then
		say "cluster $name: found ${#NODES[@]} of its $n tally serve processes" >&2
		stop_cluster
		return 1
	fi
	ADDRS=""
	for ((i = 0; i < n; i++)); do
		ADDRS+="${ADDRS:+,}$scheme://127.0.0.1:$((port + 10 * i))"
	done
	say "cluster $name up ($groups group(s), nodes ${NODES[*]}, $ADDRS)"
}

# CLIENT_ENV and CLIENT_ARGS are the environment and extra flags of the client commands for
# the running cluster (TALLY_USER, --ca), CLIENT_SHOW how commands.txt shows them.
CLIENT_ENV=()
CLIENT_ARGS=()
CLIENT_SHOW=""

# cpu_ticks PID...: the CPU time (utime+stime, in clock ticks) the processes have used.
cpu_ticks() {
	local pid sum=0 t
	for pid in "$@"; do
		t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) || t=0
		sum=$((sum + ${t:-0}))
	done
	echo "$sum"
}

# tally_load NAME CLIENTS EVENTS [DURATION]: one `tally bench` run against the running
# cluster; NAME.json is its summary, NAME.cpu the CPU time its nodes spent meanwhile.
tally_load() {
	local name=$1 clients=$2 events=$3 dur=${4:-${DUR}s} before after
	cmd $CLIENT_SHOW bin/tally bench --addr "$ADDRS" ${CLIENT_ARGS[@]+"${CLIENT_ARGS[@]}"} --clients "$clients" --events-per-request "$events" --keys 1000 --duration "$dur" --json
	before=$(cpu_ticks "${NODES[@]}")
	if run env ${CLIENT_ENV[@]+"${CLIENT_ENV[@]}"} bin/tally bench --addr "$ADDRS" ${CLIENT_ARGS[@]+"${CLIENT_ARGS[@]}"} \
		--clients "$clients" --events-per-request "$events" --keys 1000 \
		--duration "$dur" --json >"$OUT/$name.json" 2>"$OUT/$name.log"; then
		after=$(cpu_ticks "${NODES[@]}")
		printf 'cpu_ticks=%s\nclk_tck=%s\nnodes=%s\n' $((after - before)) "$(getconf CLK_TCK)" "${NODES[*]}" >"$OUT/$name.cpu"
		say "$name: $(jq -r '"\(.events_per_s|floor) events/s, p99 \(.latency_ms.p99) ms, errors \(.errors)"' "$OUT/$name.json"), nodes' CPU $((after - before)) ticks"
	else
		tail -n 5 "$OUT/$name.log" >&2
		fail "$name"
	fi
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# make_certs DIR: a CA and certificates for n1, n2 and n3 in DIR, made with openssl exactly as
# README's Security section shows.
make_certs() (
	cd "$1" || exit 1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
		-subj "/CN=tally cluster CA" -keyout ca.key -out ca.crt || exit 1
	for n in n1 n2 n3; do
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$n" \
			-keyout $n.key -out $n.csr || exit 1
		openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 -out $n.crt \
			-extfile <(printf 'subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' $n) || exit 1
	done
	chmod 600 ./*.key
)

# tls_use MODE: makes the plain or the TLS cluster of the TLS step the running one (the other
# is parked), with the client flags it needs.
TLS_CUR=""
TLS_PW=""
tls_use() {
	[[ $1 != "$TLS_CUR" ]] && swap_cluster
	TLS_CUR=$1
	if [[ $1 == tls ]]; then
		CLIENT_ENV=(TALLY_USER="bench:$TLS_PW")
		CLIENT_ARGS=(--ca "$OUT/tls/ca.crt")
		CLIENT_SHOW="TALLY_USER=bench:PASSWORD"
	else
		CLIENT_ENV=()
		CLIENT_ARGS=()
		CLIENT_SHOW=""
	fi
}

# tls_step is step 9: the 1-group workloads of step 3 (1000-event batches from 8 clients,
# single events from 64) on two fresh clusters up at the same time, one plain and one with
# TLS (HTTPS API, mutual TLS between the nodes) and users (Basic auth, a user with read and
# write), TLS_RUNS runs of each, alternating run by run (plain first in odd rounds, TLS first
# in even ones), after a 3 s warm-up of each. Each run records events/s and the CPU time of
# the three nodes (tls_MODE_WORKLOAD_ROUND.json and .cpu); tls.txt says how many rounds.
tls_step() {
	local tdir=$OUT/tls plain_port=$((BASE_PORT + 400)) tls_port=$((BASE_PORT + 500)) r wl mode order
	say "step 9: TLS and users (3 nodes, 1 group; plain and TLS+users alternating, $TLS_RUNS runs each)"
	mkdir -p "$tdir"
	cmd "openssl req … ; openssl x509 -req … # a CA and n1..n3 (serverAuth, clientAuth), as in README's Security section"
	if ! make_certs "$tdir" >"$OUT/tls_certs.log" 2>&1; then
		tail -n 5 "$OUT/tls_certs.log" >&2
		fail "tls certificates"
		return
	fi
	TLS_PW=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
	printf '[{"username": "bench", "password": "%s", "perms": ["read", "write"]}]\n' "$TLS_PW" >"$tdir/users.json"
	chmod 600 "$tdir/users.json"
	cmd env GROUPS=1 BASE_PORT=$plain_port scripts/run-cluster.sh
	if ! start_cluster tls_plain 1 $plain_port; then
		fail "cluster tls_plain"
		return
	fi
	TLS_CUR=plain
	swap_cluster # parked while the TLS cluster starts
	TLS_CUR=tls
	cmd env GROUPS=1 BASE_PORT=$tls_port TLS_DIR=$tdir AUTH=$tdir/users.json TALLY_USER=bench:PASSWORD scripts/run-cluster.sh
	if ! start_cluster tls_tls 1 $tls_port TLS_DIR="$tdir" AUTH="$tdir/users.json" TALLY_USER="bench:$TLS_PW"; then
		fail "cluster tls_tls"
		swap_cluster
		stop_cluster
		return
	fi
	for mode in plain tls; do
		tls_use $mode
		tally_load "tls_${mode}_warmup" 8 1000 3s
	done
	for ((r = 1; r <= TLS_RUNS; r++)); do
		order=(plain tls)
		((r % 2 == 0)) && order=(tls plain)
		for wl in b1000 single; do
			for mode in "${order[@]}"; do
				tls_use $mode
				if [[ $wl == b1000 ]]; then
					tally_load "tls_${mode}_b1000_$r" 8 1000
				else
					tally_load "tls_${mode}_single_$r" 64 1
				fi
			done
		done
	done
	stop_cluster
	swap_cluster
	stop_cluster
	TLS_CUR=""
	CLIENT_ENV=()
	CLIENT_ARGS=()
	CLIENT_SHOW=""
	echo "runs=$TLS_RUNS" >"$OUT/tls.txt"
	say "step 9 done"
}

# read_ticks PID...: sets TICKS to each process's CPU time so far (utime+stime in
# /proc/PID/stat, clock ticks; 0 for one that is gone), read by bash itself without a fork per
# process, so that on a busy machine the readings of nine nodes are still close together.
TICKS=()
read_ticks() {
	local pid f
	TICKS=()
	for pid in "$@"; do
		f=()
		read -r -a f 2>/dev/null <"/proc/$pid/stat" || f=()
		TICKS+=($((${f[13]:-0} + ${f[14]:-0})))
	done
}

# applied_sum FILE: the events a node's replicas have applied, summed over its groups, from a
# copy of its /metrics (tally_fsm_applied_events_total{group="..."}).
applied_sum() {
	awk '/^tally_fsm_applied_events_total[{ ]/ {s += $NF} END {printf "%.0f\n", s}' "$1"
}

# scrape_metrics NAME WHEN: saves each node's /metrics as NAME_nI_WHEN.prom. Followers may
# still be applying the last entries of a run, so it reads again every 0.5 s until the nodes'
# applied events add up to the same total twice in a row (at most 10 reads; the last is kept).
scrape_metrics() {
	local name=$1 when=$2 i tries total prev=-1 urls=()
	IFS=, read -r -a urls <<<"$ADDRS"
	for ((tries = 0; tries < 10; tries++)); do
		total=0
		for i in "${!urls[@]}"; do
			curl -fsS --max-time 5 "${urls[i]}/metrics" >"$OUT/${name}_n$((i + 1))_$when.prom" || return 1
			total=$((total + $(applied_sum "$OUT/${name}_n$((i + 1))_$when.prom")))
		done
		((total == prev)) && return 0
		prev=$total
		sleep 0.5
	done
	return 0
}

# scale_load NAME N PORT: on the running cluster of N nodes (n1 on PORT), 5 s idle, a 3 s
# warm-up, then the measured run (1000-event batches from 8 clients over 1000 symbols, which
# spread over every group). NAME.json is its summary, NAME.cpu the CPU ticks each node spent
# idle and during the run, NAME_nI_before.prom and NAME_nI_after.prom each node's /metrics
# around the run (the events its replicas applied).
scale_load() {
	local name=$1 n=$2 port=$3 i before=() after=() applied=() idle=() t0 t1 idle_s
	local load=(bin/tally bench --addr "$ADDRS" --clients 8 --events-per-request 1000 --keys 1000 --json)
	t0=$EPOCHREALTIME
	read_ticks "${NODES[@]}"
	before=("${TICKS[@]}")
	run sleep 5
	t1=$EPOCHREALTIME
	read_ticks "${NODES[@]}"
	for ((i = 0; i < n; i++)); do idle[i]=$((TICKS[i] - before[i])); done
	idle_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
	if ! run "${load[@]}" --duration 3s >"$OUT/${name}_warmup.json" 2>"$OUT/${name}_warmup.log"; then
		tail -n 5 "$OUT/${name}_warmup.log" >&2
		fail "$name warm-up"
		return
	fi
	if ! scrape_metrics "$name" before; then
		fail "$name metrics before the run"
		return
	fi
	cmd bin/tally bench --addr "http://127.0.0.1:$port,..." --clients 8 --events-per-request 1000 --keys 1000 --duration "${DUR}s" --json "  # after 5 s idle and a 3 s warm-up; --addr lists all $n nodes"
	read_ticks "${NODES[@]}"
	before=("${TICKS[@]}")
	if ! run "${load[@]}" --duration "${DUR}s" >"$OUT/$name.json" 2>"$OUT/$name.log"; then
		tail -n 5 "$OUT/$name.log" >&2
		fail "$name"
		return
	fi
	read_ticks "${NODES[@]}"
	after=("${TICKS[@]}")
	{
		echo "clk_tck=$(getconf CLK_TCK)"
		echo "nodes=$n"
		echo "pids=${NODES[*]}"
		echo "idle_s=$idle_s"
		for ((i = 0; i < n; i++)); do echo "idle_ticks_n$((i + 1))=${idle[i]}"; done
		for ((i = 0; i < n; i++)); do echo "ticks_n$((i + 1))=$((after[i] - before[i]))"; done
	} >"$OUT/$name.cpu"
	if ! scrape_metrics "$name" after; then
		fail "$name metrics after the run"
		return
	fi
	for ((i = 1; i <= n; i++)); do
		applied+=($(($(applied_sum "$OUT/${name}_n${i}_after.prom") - $(applied_sum "$OUT/${name}_n${i}_before.prom"))))
	done
	say "$name: $(jq -r '"\(.events) events acknowledged, \(.events_per_s|floor) events/s, p99 \(.latency_ms.p99) ms, errors \(.errors)"' "$OUT/$name.json")"
	say "$name: applied per node ${applied[*]}; CPU ticks per node $(for ((i = 0; i < n; i++)); do printf '%s ' $((after[i] - before[i])); done)(idle 5 s: ${idle[*]})"
}

# scale_step is step 8: the same load on fresh clusters of SCALE_NODES (3, 6 and 9) nodes,
# one after the other, each with as many partition groups as nodes and 3 replicas per group
# (so each node holds 3 replicas, and each event is applied on 3 of the N nodes). scale.txt
# lists the sizes measured.
scale_step() {
	local n k=0 port
	say "step 8: scaling out ($SCALE_NODES nodes; as many groups, 3 replicas each)"
	for n in $SCALE_NODES; do
		port=$((BASE_PORT + 600 + 100 * k))
		k=$((k + 1))
		cmd env NODES=$n GROUPS=$n REPLICAS=3 BASE_PORT=$port scripts/run-cluster.sh
		cmd "curl -fsS http://127.0.0.1:PORT/metrics  # each node before and after the run: tally_fsm_applied_events_total; its CPU ticks from /proc/PID/stat"
		if ! start_cluster "scale$n" "$n" "$port" NODES="$n" REPLICAS=3 READY_TIMEOUT=180; then
			fail "cluster scale$n"
			continue
		fi
		scale_load "scale$n" "$n" "$port"
		stop_cluster
	done
	{
		echo "sizes=$SCALE_NODES"
		echo "replicas=3"
		echo "idle_s=5"
		echo "warmup_s=3"
	} >"$OUT/scale.txt"
	say "step 8 done"
}

# write_meta writes the run's date, wall time and failed steps for the report.
write_meta() {
	WALL=$((SECONDS - START))
	{
		echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
		echo "wall=$((WALL / 60)) min $((WALL % 60)) s"
		echo "dur=$DUR"
		echo "failed=${FAILED[*]:-}"
	} >"$OUT/meta.txt"
}

# mem_step is step 7: MEM_KEYS distinct symbols sent once each to a fresh 1-group cluster
# whose nodes run with --memory-limit MEM_LIMIT, every one of them acknowledged within
# MEM_MAX_DURATION s, then VmRSS of each node (memory.txt). Nothing is extrapolated: symbols
# not acknowledged in time are reported as such and the target as missed.
mem_step() {
	local base=0 pid limit_env=() show=""
	say "step 7: memory of a replica with $MEM_KEYS distinct symbols (fresh 1-group cluster, MEM_LIMIT $MEM_LIMIT)"
	if [[ $MEM_LIMIT != none ]]; then
		limit_env=(SERVE_FLAGS="--memory-limit $MEM_LIMIT")
		show="SERVE_FLAGS='--memory-limit $MEM_LIMIT' "
	fi
	if ! start_cluster mem 1 "$BASE_PORT" ${limit_env[@]+"${limit_env[@]}"}; then
		fail "cluster mem"
		say "step 7 done"
		return
	fi
	for pid in "${NODES[@]}"; do base=$(( $(rss_kb "$pid") > base ? $(rss_kb "$pid") : base )); done
	cmd env ${show}GROUPS=1 BASE_PORT=$BASE_PORT scripts/run-cluster.sh
	cmd bin/tally-bench load --addr "http://127.0.0.1:$BASE_PORT,..." --keys "$MEM_KEYS" --batch 1000 --clients 8 --max-duration "${MEM_MAX_DURATION}s"
	run bin/tally-bench load --addr "$ADDRS" --keys "$MEM_KEYS" --batch 1000 --clients 8 --max-duration "${MEM_MAX_DURATION}s" \
		>"$OUT/load.json" 2>"$OUT/load.log" || {
		tail -n 2 "$OUT/load.log" >&2
		fail "memory load (stopped early: RSS measured with the symbols acknowledged so far)"
	}
	if [[ -s $OUT/load.json ]]; then
		say "load: $(jq -r '"\(.events) of \(.keys) symbols acknowledged at \(.events_per_s|floor) events/s in \(.duration_s|floor) s"' "$OUT/load.json")"
		sleep 3
		{
			echo "keys=$(jq -r .events "$OUT/load.json")"
			echo "target_keys=$MEM_KEYS"
			echo "load_s=$(jq -r '.duration_s|floor' "$OUT/load.json")"
			echo "max_s=$MEM_MAX_DURATION"
			echo "mem_limit=$MEM_LIMIT"
			echo "settle_s=3"
			echo "base_rss_kb_max=$base"
			for i in 0 1 2; do echo "rss_kb_n$((i + 1))=$(rss_kb "${NODES[i]}")"; done
		} >"$OUT/memory.txt"
		sed 's/^/    /' "$OUT/memory.txt"
	fi
	stop_cluster
	say "step 7 done"
}

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

if [[ -n $BENCH_ONLY ]]; then
	"${BENCH_ONLY}_step"
	write_meta
	say "report: the $BENCH_ONLY section (BENCHMARKS.md is left as it is)"
	bin/tally-bench report --dir "$OUT" --only "$BENCH_ONLY" | tee "$OUT/$BENCH_ONLY.md" || fail report
	say "done in $((WALL / 60)) min $((WALL % 60)) s; raw results in $OUT"
	if ((${#FAILED[@]} > 0)); then
		say "failed steps: ${FAILED[*]}" >&2
		exit 1
	fi
	exit 0
fi

say "step 1: engine apply and command codec benchmarks"
cmd $GO test -run "'^\$'" -bench ApplyTrade -benchtime 2s -count 3 ./engine/
run $GO test -run '^$' -bench ApplyTrade -benchtime 2s -count 3 ./engine/ >"$OUT/engine.txt" 2>&1 || fail engine
grep '^Benchmark' "$OUT/engine.txt" | sed 's/^/    /'
cmd $GO test -run "'^\$'" -bench CommandCodec -benchmem -count 3 ./fsm/
run $GO test -run '^$' -bench CommandCodec -benchmem -count 3 ./fsm/ >"$OUT/codec.txt" 2>&1 || fail codec
grep '^Benchmark' "$OUT/codec.txt" | sed 's/^/    /'
say "step 1 done"

say "step 2: raw Raft ceiling (3 replicas, raft-wal and raft-boltdb, fsync, TCP on 127.0.0.1)"
# raftN.json is on raft-wal, the log store Tally's replicas use by default; raftN_bolt.json on
# raft-boltdb, which --raft-log-store bolt selects.
for ev in 100 1000; do
	for store in wal bolt; do
		f=raft$ev
		[[ $store == bolt ]] && f=raft${ev}_bolt
		cmd bin/tally-bench raft --log-store $store --events $ev --proposers 8 --duration "${DUR}s"
		if run bin/tally-bench raft --log-store $store --events $ev --proposers 8 --duration "${DUR}s" >"$OUT/$f.json" 2>"$OUT/$f.log"; then
			say "raft ($store) $ev-event entries: $(jq -r '"\(.entries_per_s|floor) entries/s = \(.events_per_s|floor) events/s (\(.entry_bytes) bytes each)"' "$OUT/$f.json")"
		else
			tail -n 5 "$OUT/$f.log" >&2
			fail "$f"
		fi
	done
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

say "step 3b: Tally, 3 nodes, 1 group, on raft-boltdb (--raft-log-store bolt), side by side"
cmd env SERVE_FLAGS=--raft-log-store=bolt GROUPS=1 BASE_PORT=$((BASE_PORT + 100)) scripts/run-cluster.sh
if start_cluster g1bolt 1 $((BASE_PORT + 100)) SERVE_FLAGS=--raft-log-store=bolt; then
	tally_load g1bolt_b1000 8 1000
	tally_load g1bolt_single 64 1
	stop_cluster
else
	fail "cluster g1bolt"
fi
say "step 3b done"

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
cmd bin/tally-bench mariadb --clients 64 --events 1 --keys 1000 --duration "${DUR}s"
if run bin/tally-bench mariadb --clients 64 --events 1 --keys 1000 --duration "${DUR}s" >"$OUT/mariadb_single.json" 2>"$OUT/mariadb_single.log"; then
	say "mariadb single events: $(jq -r '"\(.events_per_s|floor) events/s"' "$OUT/mariadb_single.json")"
else
	tail -n 5 "$OUT/mariadb_single.log" >&2
	fail mariadb_single
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

mem_step

scale_step

tls_step

write_meta
say "report: rewriting the generated section of BENCHMARKS.md"
if ! bin/tally-bench report --dir "$OUT" --md BENCHMARKS.md; then
	fail report
fi
say "done in $((WALL / 60)) min $((WALL % 60)) s; raw results in $OUT"
if ((${#FAILED[@]} > 0)); then
	say "failed steps: ${FAILED[*]}" >&2
	exit 1
fi
