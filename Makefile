# Tally's build. Every target installs what it needs by itself (Go modules come through the
# module proxy on first use).
GO      ?= go
FUZZTIME ?= 30s
# FUZZTIME_SHORT is the run of each of the other fuzz targets in `make fuzz`.
FUZZTIME_SHORT ?= 10s
# NODES, GROUPS and REPLICAS shape the cluster `make run` starts: nodes, partition groups,
# and voters per group.
NODES    ?= 3
GROUPS   ?= 1
REPLICAS ?= 3

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

# scripts/fuzz.sh runs each target with go test -fuzz, once more only when Go's fuzzing
# coordinator reports its end-of-fuzztime race (a bare "context deadline exceeded").
fuzz:
	GO=$(GO) scripts/fuzz.sh ./siddhiql FuzzParse $(FUZZTIME)
	GO=$(GO) scripts/fuzz.sh ./siddhiql FuzzParseStoreQuery $(FUZZTIME)
	GO=$(GO) scripts/fuzz.sh ./engine/expr FuzzCompileExpr $(FUZZTIME_SHORT)
	GO=$(GO) scripts/fuzz.sh ./engine/agg FuzzDecodeShardRows $(FUZZTIME_SHORT)
	GO=$(GO) scripts/fuzz.sh ./fsm FuzzRestore $(FUZZTIME_SHORT)
	GO=$(GO) scripts/fuzz.sh ./httpapi FuzzIngest $(FUZZTIME_SHORT)
	GO=$(GO) scripts/fuzz.sh ./httpapi FuzzStoreQuery $(FUZZTIME_SHORT)
	GO=$(GO) scripts/fuzz.sh ./httpapi FuzzInternalIngest $(FUZZTIME_SHORT)

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
# MariaDB doing the same aggregation, failover, memory, scaling out to 6 and 9 nodes and the
# cost of TLS and users in one run (about 13 minutes), and rewrites the generated section of
# BENCHMARKS.md (scripts/bench.sh).
bench:
	GO=$(GO) ./scripts/bench.sh

# run starts a cluster on loopback (node i: HTTP 7070+10*(i-1), Raft one above; BASE_PORT
# moves them) with the sample trade app, prints how to use it, and stops it on Ctrl-C.
# `make run NODES=6 GROUPS=6` starts 6 nodes hosting 6 partition groups of REPLICAS voters
# each (defaults: 3 nodes, 1 group, 3 replicas).
run: build
	NODES=$(NODES) GROUPS=$(GROUPS) REPLICAS=$(REPLICAS) ./scripts/run-cluster.sh

clean:
	rm -rf bin
