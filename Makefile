# Tally's build. Every target installs what it needs by itself (Go modules come through the
# module proxy on first use).
GO      ?= go
FUZZTIME ?= 30s
# FUZZTIME_SHORT is the run of each of the other fuzz targets in `make fuzz`.
FUZZTIME_SHORT ?= 10s
# GROUPS is the number of partition groups `make run` creates.
GROUPS  ?= 1

.PHONY: all build test unit lint fmt fuzz bench run clean jepsen jepsen-quick

all: build

build:
	$(GO) build -o bin/ ./cmd/...

# test is what CI runs: formatting, vet, staticcheck, then every test with the race detector,
# a short fuzz run of the parser and of every decoder a request reaches (6 × FUZZTIME_SHORT),
# and the quick fault-injection matrix.
test: lint unit fuzz jepsen-quick

unit:
	$(GO) test -race -count=1 -timeout=15m ./...

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

fmt:
	gofmt -w .

fuzz:
	$(GO) test ./siddhiql -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./siddhiql -run '^$$' -fuzz '^FuzzParseStoreQuery$$' -fuzztime $(FUZZTIME)
	$(GO) test ./engine/expr -run '^$$' -fuzz '^FuzzCompileExpr$$' -fuzztime $(FUZZTIME_SHORT)
	$(GO) test ./engine/agg -run '^$$' -fuzz '^FuzzDecodeShardRows$$' -fuzztime $(FUZZTIME_SHORT)
	$(GO) test ./fsm -run '^$$' -fuzz '^FuzzRestore$$' -fuzztime $(FUZZTIME_SHORT)
	$(GO) test ./httpapi -run '^$$' -fuzz '^FuzzIngest$$' -fuzztime $(FUZZTIME_SHORT)
	$(GO) test ./httpapi -run '^$$' -fuzz '^FuzzStoreQuery$$' -fuzztime $(FUZZTIME_SHORT)
	$(GO) test ./httpapi -run '^$$' -fuzz '^FuzzInternalIngest$$' -fuzztime $(FUZZTIME_SHORT)

# jepsen-quick runs the fault-injection suite on a fixed set of seeds (mixed faults over 1
# and 3 groups, a node killed mid-move, plus the planted-bug runs that must be caught),
# about 4 minutes; reports go
# to jepsen/report/. jepsen runs the full matrix (every nemesis alone and mixed, 1 and 3
# groups), about 15 minutes, and writes the summary table to jepsen/report/summary.md and
# to README.md ("Guarantees and how they are tested").
jepsen-quick:
	$(GO) run ./jepsen/cmd/tally-jepsen -matrix quick

jepsen:
	$(GO) run ./jepsen/cmd/tally-jepsen -matrix full -markdown jepsen/report/summary.md -readme README.md

# bench measures the engine, the raw Raft ceiling, Tally with 3 nodes (1 and 3 groups),
# MariaDB doing the same aggregation, failover, memory and the cost of TLS and users in one
# run (about 10 minutes), and rewrites the generated section of BENCHMARKS.md (scripts/bench.sh).
bench:
	GO=$(GO) ./scripts/bench.sh

# run starts a 3-node cluster on loopback (HTTP 7070/7080/7090, Raft 7071/7081/7091; BASE_PORT
# moves them) with the sample trade app, prints how to use it, and stops it on Ctrl-C.
# `make run GROUPS=3` makes the nodes host 3 partition groups (default 1).
run: build
	GROUPS=$(GROUPS) ./scripts/run-cluster.sh

clean:
	rm -rf bin
