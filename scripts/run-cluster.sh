#!/usr/bin/env bash
# run-cluster.sh starts a Tally cluster of NODES nodes (default 3) on loopback for trying
# Tally out (`make run`): n1 bootstraps the cluster (with GROUPS partition groups of REPLICAS
# replicas) and deploys testdata/cluster/trades.siddhi, the other nodes join it and the
# cluster moves replicas onto them. It waits until every node is ready (knows every group's
# leader), every group has its voters and the replicas are spread evenly, prints how to
# talk to the cluster, then waits; Ctrl-C (SIGINT) or SIGTERM stops the nodes cleanly and
# exits 0.
#
# Environment:
#   NODES          number of nodes, 1 to 50 (default 3)
#   GROUPS         number of partition groups (default 1)
#   REPLICAS       voters of each group, on that many distinct nodes, 1 to 7 (default 3;
#                  fewer while the cluster has fewer nodes)
#   BASE_PORT      first port (default 7070): node i uses HTTP BASE_PORT+10*(i-1), Raft +1
#   DATA_DIR       data and log directory (default: a new temporary directory); it is cleared
#                  at start, so an existing non-empty one must have been made by this script
#   TALLY          the tally binary (default bin/tally; built with `go build` if missing)
#   READY_TIMEOUT  seconds to wait for the cluster to be ready (default 60)
#   STOP_TIMEOUT   seconds to wait for a node to stop after SIGTERM (default 20)
#   TLS_DIR        a directory with ca.crt and n1.crt/n1.key … nN.crt/nN.key (README,
#                  Security): the nodes serve HTTPS and use mutual TLS between them
#   AUTH           a users file: the nodes require users; the script's own checks then
#                  send TALLY_USER (USER:PASSWORD of a user with the read permission)
#   SERVE_FLAGS    more `tally serve` flags for every node, split on spaces (e.g.
#                  "--memory-limit 1GiB")
set -euo pipefail

cd "$(dirname "$0")/.."

BASE_PORT=${BASE_PORT:-7070}
# GROUPS is also a bash variable (the user's group IDs) that hides the environment's GROUPS
# inside this script: read the environment's value with printenv.
NGROUPS=$(printenv GROUPS || true)
NGROUPS=${NGROUPS:-1}
NODES=${NODES:-3}
REPLICAS=${REPLICAS:-3}
TALLY=${TALLY:-bin/tally}
READY_TIMEOUT=${READY_TIMEOUT:-60}
STOP_TIMEOUT=${STOP_TIMEOUT:-20}
APP=testdata/cluster/trades.siddhi
HOST=127.0.0.1
MARKER=.tally-run-cluster

say() { printf 'run-cluster: %s\n' "$*"; }
die() { printf 'run-cluster: %s\n' "$*" >&2; exit 1; }

case $NODES in '' | *[!0-9]*) die "NODES must be a number of nodes, got '$NODES'" ;; esac
((10#$NODES >= 1 && 10#$NODES <= 50)) || die "NODES must be 1 to 50, got $NODES"
NODES=$((10#$NODES))
case $REPLICAS in '' | *[!0-9]*) die "REPLICAS must be a number of replicas per group, got '$REPLICAS'" ;; esac
((10#$REPLICAS >= 1 && 10#$REPLICAS <= 7)) || die "REPLICAS must be 1 to 7, got $REPLICAS"
REPLICAS=$((10#$REPLICAS))
case $BASE_PORT in '' | *[!0-9]*) die "BASE_PORT must be a port number, got '$BASE_PORT'" ;; esac
LAST_PORT=$((BASE_PORT + 10 * (NODES - 1) + 1))
((BASE_PORT >= 1 && LAST_PORT <= 65535)) || die "BASE_PORT $BASE_PORT leaves no room for ports up to BASE_PORT+$((LAST_PORT - BASE_PORT))"
case $NGROUPS in '' | *[!0-9]*) die "GROUPS must be a number of partition groups, got '$NGROUPS'" ;; esac
((10#$NGROUPS >= 1 && 10#$NGROUPS <= 1024)) || die "GROUPS must be 1 to 1024, got $NGROUPS"
NGROUPS=$((10#$NGROUPS))

if [[ ! -x $TALLY ]]; then
	command -v go >/dev/null || die "$TALLY is missing and go is not installed to build it"
	say "building $TALLY"
	go build -o bin/ ./cmd/...
fi

# A fresh data directory: a new temporary one, or DATA_DIR cleared (only if this script made it).
if [[ -z ${DATA_DIR:-} ]]; then
	DATA_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tally-run.XXXXXX")
elif [[ -d $DATA_DIR && -n $(ls -A "$DATA_DIR") && ! -e $DATA_DIR/$MARKER ]]; then
	die "DATA_DIR $DATA_DIR is not empty and was not made by this script; refusing to clear it"
else
	rm -rf "$DATA_DIR"
	mkdir -p "$DATA_DIR"
fi
DATA_DIR=$(cd "$DATA_DIR" && pwd)
touch "$DATA_DIR/$MARKER"

IDS=()
HTTP=()
RAFT=()
for ((i = 0; i < NODES; i++)); do
	IDS+=("n$((i + 1))")
	HTTP+=("$HOST:$((BASE_PORT + 10 * i))")
	RAFT+=("$HOST:$((BASE_PORT + 10 * i + 1))")
done
SCHEME=http
if [[ -n ${TLS_DIR:-} ]]; then
	TLS_DIR=$(cd "$TLS_DIR" && pwd)
	for f in ca.crt "${IDS[@]/%/.crt}" "${IDS[@]/%/.key}"; do
		[[ -r $TLS_DIR/$f ]] || die "TLS_DIR $TLS_DIR has no readable $f"
	done
	SCHEME=https
	export TALLY_CA=$TLS_DIR/ca.crt # for the client commands below
fi
if [[ -n ${AUTH:-} ]]; then
	[[ -r $AUTH ]] || die "AUTH $AUTH is not a readable users file"
	AUTH=$(cd "$(dirname "$AUTH")" && pwd)/$(basename "$AUTH")
	[[ -n ${TALLY_USER:-} ]] || die "AUTH needs TALLY_USER=USER:PASSWORD (a user with the read permission) to check that the cluster is ready"
fi
URL1="$SCHEME://${HTTP[0]}"
PIDS=()
gone=() # nodes seen exiting by themselves, already reported and reaped

# Every node runs in a session of its own (setsid), so Ctrl-C in the terminal reaches this
# script (and make) but not the nodes; the script then stops the nodes in order. (Job
# control, set -m, would do the reverse: it puts each of the script's own foreground
# commands in a process group the terminal signals instead of the script, so a Ctrl-C
# during startup killed `tally status` or `sleep` and left the nodes running.)
start_node() { # index, extra serve flags...
	local i=$1
	shift
	local id=${IDS[$i]} sec=()
	[[ -n ${TLS_DIR:-} ]] && sec+=(--tls-cert "$TLS_DIR/$id.crt" --tls-key "$TLS_DIR/$id.key" --tls-ca "$TLS_DIR/ca.crt")
	[[ -n ${AUTH:-} ]] && sec+=(--auth "$AUTH")
	# shellcheck disable=SC2206 # split on spaces on purpose
	[[ -n ${SERVE_FLAGS:-} ]] && sec+=($SERVE_FLAGS)
	setsid "$TALLY" serve --id "$id" --data-dir "$DATA_DIR/$id" \
		--http-addr "${HTTP[$i]}" --raft-addr "${RAFT[$i]}" ${sec[@]+"${sec[@]}"} "$@" \
		>"$DATA_DIR/$id.log" 2>&1 &
	PIDS[i]=$!
}

alive() { kill -0 "$1" 2>/dev/null; }

# stop_all sends SIGTERM to every running node, waits for each (bounded) and reports.
stop_all() {
	trap '' INT TERM
	local i pid rc waited failed=0
	for i in "${!IDS[@]}"; do
		pid=${PIDS[i]:-}
		[[ -n $pid ]] && alive "$pid" && kill -TERM "$pid" 2>/dev/null || true
	done
	for i in "${!IDS[@]}"; do
		pid=${PIDS[i]:-}
		[[ -z $pid ]] && continue
		if [[ -n ${gone[i]:-} ]]; then
			say "${IDS[i]} had already exited"
			continue
		fi
		waited=0
		while alive "$pid" && ((waited < STOP_TIMEOUT * 10)); do
			sleep 0.1
			waited=$((waited + 1))
		done
		if alive "$pid"; then
			kill -KILL "$pid" 2>/dev/null || true
			say "${IDS[i]} did not stop within ${STOP_TIMEOUT}s: killed (log: $DATA_DIR/${IDS[i]}.log)"
			failed=1
		fi
		rc=0
		wait "$pid" 2>/dev/null || rc=$?
		if ((rc == 0)); then
			say "${IDS[i]} stopped"
		else
			say "${IDS[i]} exited with status $rc (log: $DATA_DIR/${IDS[i]}.log)"
			failed=1
		fi
	done
	return $failed
}

# dead reports a node that exited by itself, with the end of its log.
dead() {
	local i=$1
	say "${IDS[i]} (pid ${PIDS[i]}) exited; the end of $DATA_DIR/${IDS[i]}.log:" >&2
	tail -n 20 "$DATA_DIR/${IDS[i]}.log" | sed 's/^/    /' >&2
}

on_signal() {
	echo
	say "stopping the nodes"
	if stop_all; then
		say "all nodes stopped; data and logs are in $DATA_DIR"
	else
		say "some nodes did not stop cleanly; data and logs are in $DATA_DIR"
	fi
	exit 0
}
trap on_signal INT TERM

say "data and logs in $DATA_DIR (n1.log … n$NODES.log)"
start_node 0 --bootstrap --groups "$NGROUPS" --replicas "$REPLICAS" --app "$APP"
for ((i = 1; i < NODES; i++)); do
	start_node "$i" --join "$URL1"
done
started=()
for i in "${!IDS[@]}"; do
	started+=("${IDS[i]} (pid ${PIDS[i]})")
done
say "started ${started[*]}; waiting for the cluster to be ready"

# VOTERS is the number of voters each group ends with; the replicas are spread so that each
# node holds SPREAD_MIN or SPREAD_MAX of them.
VOTERS=$((REPLICAS < NODES ? REPLICAS : NODES))
SPREAD_MIN=$((NGROUPS * VOTERS / NODES))
SPREAD_MAX=$(((NGROUPS * VOTERS + NODES - 1) / NODES))

# status_rows prints, for each group in `tally status` on node i, "LEADER COMMIT APPLIED
# MEMBERS". It finds the columns by their headers (GROUP SHARD ROLE LEADER LEADER HTTP TERM
# COMMIT APPLIED LAG MEMBERS today), so that a column added to the table does not break it,
# and fails when one it needs is missing.
status_rows() {
	"$TALLY" status --addr "$SCHEME://${HTTP[$1]}" --timeout 2s 2>/dev/null | awk '
		NR == 2 {
			n = 0
			for (f = 1; f <= NF; f++) {
				if ($f == "HTTP" && $(f - 1) == "LEADER") continue # the header "LEADER HTTP"
				col[$f] = ++n
			}
			if (!col["LEADER"] || !col["COMMIT"] || !col["APPLIED"] || !col["MEMBERS"]) exit 1
		}
		NR > 2 && NF == 0 { exit } # the end of the groups table (the cluster map follows)
		NR > 2 {
			m = $col["MEMBERS"]
			for (f = col["MEMBERS"] + 1; f <= NF; f++) m = m " " $f # "n2 (nonvoter)"
			print $col["LEADER"], $col["COMMIT"], $col["APPLIED"], m
		}'
}

# spread prints, from `tally status` on n1, the replicas each node of the cluster map holds
# (one number a line), then "moves: none" when no replica move is in progress.
spread() {
	"$TALLY" status --addr "$URL1" --timeout 2s 2>/dev/null | awk '
		$1 == "NODE" && $2 == "ZONE" { for (f = 1; f <= NF; f++) if ($f == "REPLICAS") r = f; next }
		r && NF == 0 { r = 0 }
		r { print $r }
		/^moves in progress: none$/ { print "moves: none" }'
}

# ready says whether node i knows every group's leader and has applied what its replicas
# committed; on n1 also that every group has VOTERS voters and no non-voter, that the nodes
# hold the replicas evenly with no move in progress, and that the app is deployed in every
# group.
ready() {
	local i=$1 rows leader commit applied members n=0 voters held
	rows=$(status_rows "$i") || return 1
	while read -r leader commit applied members; do
		[[ -n $leader ]] || continue
		[[ $leader != - ]] && ((applied >= commit)) || return 1
		if ((i == 0)); then
			[[ $members != *" "* ]] || return 1
			IFS=, read -r -a voters <<<"$members"
			((${#voters[@]} == VOTERS)) || return 1
		fi
		n=$((n + 1))
	done <<<"$rows"
	((n == NGROUPS)) || return 1
	if ((i == 0)); then
		held=$(spread)
		[[ $held == *"moves: none" ]] || return 1
		n=0
		while read -r r; do
			[[ $r == moves:* ]] && continue
			((r >= SPREAD_MIN && r <= SPREAD_MAX)) || return 1
			n=$((n + 1))
		done <<<"$held"
		((n == NODES)) || return 1
		"$TALLY" apps list --addr "$URL1" --timeout 2s 2>/dev/null | grep -q '^TradeApp ' || return 1
		# A query plans in every group (and reads every group's leader): it fails until each
		# group has the app (the bootstrap deploys it to each group on its own).
		"$TALLY" query --addr "$URL1" --timeout 2s --app TradeApp \
			'from TradeAggregation within 0L, 1L per "hours" select symbol' >/dev/null 2>&1 || return 1
	fi
}

deadline=$((SECONDS + READY_TIMEOUT))
pending=("${!IDS[@]}")
while ((${#pending[@]} > 0)); do
	for i in "${!IDS[@]}"; do
		if ! alive "${PIDS[i]}"; then
			dead "$i"
			stop_all || true
			exit 1
		fi
	done
	still=()
	for i in "${pending[@]}"; do
		ready "$i" || still+=("$i")
	done
	pending=(${still[@]+"${still[@]}"})
	((${#pending[@]} == 0)) && break
	if ((SECONDS >= deadline)); then
		say "the cluster was not ready within ${READY_TIMEOUT}s; node status:" >&2
		for i in "${pending[@]}"; do
			say "${IDS[i]} (${HTTP[i]}):" >&2
			"$TALLY" status --addr "$SCHEME://${HTTP[i]}" --timeout 2s 2>&1 | sed 's/^/    /' >&2 || true
			tail -n 5 "$DATA_DIR/${IDS[i]}.log" | sed 's/^/    /' >&2
		done
		stop_all || true
		exit 1
	fi
	sleep 0.2
done

ADDR_FLAG=""
[[ $URL1 != http://127.0.0.1:7070 ]] && ADDR_FLAG=" --addr $URL1"
QUERY='from TradeAggregation within 1514764800000L, 1514851200000L per "hours" select AGG_TIMESTAMP, symbol, total, avgPrice'
SEC_NOTE=""
[[ -n ${TLS_DIR:-} ]] && SEC_NOTE+="HTTPS: give curl --cacert $TALLY_CA (the tally commands read TALLY_CA).
"
[[ -n ${AUTH:-} ]] && SEC_NOTE+="Users ($AUTH): give curl -u USER:PASSWORD (the tally commands read TALLY_USER).
"
NODE_LINES=""
for i in "${!IDS[@]}"; do
	if ((i > 0)); then NODE_LINES+=$'\n'; fi
	NODE_LINES+="  ${IDS[i]}  $SCHEME://${HTTP[i]}  (raft ${RAFT[i]})"
done
cat <<EOF

Tally is running: $NODES nodes, $NGROUPS partition group(s) of $VOTERS replicas, app TradeApp ($APP) deployed.
$NODE_LINES
Any node takes any request: writes and reads are passed to the leader (of each group).
Logs: $DATA_DIR/n1.log … n$NODES.log

Ingest an event:
  curl -sS -X POST $URL1/v1/streams/TradeStream/events -H 'Content-Type: application/x-ndjson' \\
    -d '{"symbol":"wso2","price":100.0,"quantity":10,"timestamp":1514783400000}'
Query the hourly aggregate:
  curl -sS -X POST $URL1/stores/query -H 'Content-Type: application/json' \\
    -d '{"appName":"TradeApp","query":"${QUERY//\"/\\\"}"}'

The same with the tally command:
  $TALLY ingest$ADDR_FLAG --stream TradeStream testdata/cluster/trades.ndjson
  $TALLY query$ADDR_FLAG --table '$QUERY'
  $TALLY status --addr $SCHEME://${HTTP[NODES - 1]}
$SEC_NOTE
Press Ctrl-C to stop the cluster.
EOF

# Wait for Ctrl-C. A node that exits by itself (or is killed to try a failover) is reported;
# the others keep running.
while :; do
	for i in "${!IDS[@]}"; do
		if [[ -z ${gone[i]:-} ]] && ! alive "${PIDS[i]}"; then
			gone[i]=1
			dead "$i"
			rc=0
			wait "${PIDS[i]}" 2>/dev/null || rc=$?
			say "${IDS[i]} exit status: $rc; the other nodes keep running (Ctrl-C stops them)" >&2
		fi
	done
	if ((${#gone[@]} == NODES)); then
		say "every node has exited" >&2
		exit 1
	fi
	sleep 1 &
	wait $! || true
done
