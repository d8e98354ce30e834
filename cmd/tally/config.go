package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/raftnode"
)

// serveConfig is `tally serve`'s configuration: defaults, then the YAML file, then flags.
type serveConfig struct {
	ID        string `yaml:"id"`
	DataDir   string `yaml:"data-dir"`
	HTTPAddr  string `yaml:"http-addr"`
	RaftAddr  string `yaml:"raft-addr"`
	Bootstrap bool   `yaml:"bootstrap"`
	Groups    int    `yaml:"groups"`
	// Replicas is each group's number of voters, fixed when the cluster is created.
	Replicas int `yaml:"replicas"`
	// Zone labels this node's failure domain: each group's replicas spread over zones.
	Zone string `yaml:"zone"`
	// DeadNodeTimeout: a node unreachable this long has its replicas re-created elsewhere.
	DeadNodeTimeout time.Duration `yaml:"dead-node-timeout"`
	Join            []string      `yaml:"join"`
	Apps            []string      `yaml:"app"`
	ShardID         string        `yaml:"shard-id"`
	AggTimeZone     string        `yaml:"agg-time-zone"`
	LogLevel        string        `yaml:"log-level"`
	LogFormat       string        `yaml:"log-format"`
	Pprof           bool          `yaml:"pprof"`
	// StoreDSN is the shared rollup store: mysql://user:pass@tcp(host:port)/db or
	// sqlite:///path; empty means an SQLite file beside the data dir (shared by the nodes
	// of one machine).
	StoreDSN string `yaml:"store-dsn"`
	// FlushInterval, MaxUnflushedRows and FlushChunkRows: zero means raftnode's default.
	FlushInterval    time.Duration `yaml:"flush-interval"`
	MaxUnflushedRows int           `yaml:"max-unflushed-rows"`
	FlushChunkRows   int           `yaml:"flush-chunk-rows"`
	// RaftLogStore is the Raft log store of replicas this node creates: wal or bolt;
	// empty means wal. Existing replicas keep theirs.
	RaftLogStore string `yaml:"raft-log-store"`
	// RaftWALSegmentBytes sizes new raft-wal segment files; zero means raftnode's default.
	RaftWALSegmentBytes int `yaml:"raft-wal-segment-bytes"`
	// shardIDSet records that the shard ID was given explicitly (flag or file).
	shardIDSet bool
	// groupsSet records that the number of groups was given (flag or file).
	groupsSet bool
	// Raft tuning; zero means raftnode's default.
	SnapshotThreshold uint64        `yaml:"snapshot-threshold"`
	SnapshotInterval  time.Duration `yaml:"snapshot-interval"`
	TrailingLogs      uint64        `yaml:"trailing-logs"`
	// DialMap rewrites the addresses this node dials to reach other nodes (Raft, meta,
	// forwarding, join): FROM: TO. Fault-injection suites route links through proxies with it.
	DialMap raftnode.DialMap `yaml:"dial-map"`
	// Limits (see README "Limits"): keys per aggregation (0: no limit), open subscriptions,
	// the dedup TTL (must be the same on every node) and the longest min_index wait.
	MaxKeys        int           `yaml:"max-keys"`
	MaxSubscribers int           `yaml:"max-subscribers"`
	ProducerTTL    time.Duration `yaml:"producer-ttl"`
	MaxWait        time.Duration `yaml:"max-wait"`
	// SinkAllow are the hosts, IPs and CIDRs http sinks may reach (--sink-allow); empty
	// allows any host but link-local ones. sinkPolicy is it parsed.
	SinkAllow  []string `yaml:"sink-allow"`
	sinkPolicy *raftnode.SinkPolicy
	// The mail server of email sinks that name none (--smtp-*; siddhi.extensions' email
	// sink properties in a WSO2 deployment.yaml). smtp is them resolved, the password read.
	SMTPHost         string `yaml:"smtp-host"`
	SMTPPort         int    `yaml:"smtp-port"`
	SMTPUsername     string `yaml:"smtp-username"`
	SMTPPasswordFile string `yaml:"smtp-password-file"`
	SMTPFrom         string `yaml:"smtp-from"`
	SMTPTLS          string `yaml:"smtp-tls"`
	smtp             raftnode.SMTPConfig
	// wso2SMTPPassword is the email sink password of a WSO2 deployment.yaml.
	wso2SMTPPassword string
	// FaultInjection shares one skewable clock between the node's groups and serves
	// /v1/debug/clock. Off by default.
	FaultInjection bool `yaml:"fault-injection"`
	// Transport security (package security): this node's certificate and key (the HTTP API
	// serves HTTPS only when given), the cluster CA (mutual TLS between nodes), or a
	// shared cluster key file for clusters without TLS.
	TLSCert    string `yaml:"tls-cert"`
	TLSKey     string `yaml:"tls-key"`
	TLSCA      string `yaml:"tls-ca"`
	ClusterKey string `yaml:"cluster-key"`
	// Insecure lets a node listen on non-loopback addresses without --auth and TLS.
	Insecure bool `yaml:"insecure"`
	// Auth is the users file (security.Load): when set, the API asks for credentials and
	// permissions. Empty leaves the API open.
	Auth string `yaml:"auth"`
	// MaxConns caps the HTTP listener's open connections and the Raft port's connections
	// not yet routed; past it they wait before accepting more. Default 4096.
	MaxConns int `yaml:"max-conns"`
	// MemoryLimit is --memory-limit as given (bytes with a unit, e.g. 2GiB); memoryLimit is
	// it in bytes, 0 when unset. serve sets GOMEMLIMIT's default from it.
	MemoryLimit string `yaml:"memory-limit"`
	memoryLimit int64
	// GeoIPDB is the MaxMind-format database of geo:findCountryFromIP/findCityFromIP;
	// every node must have the same file. Empty: the functions answer "".
	GeoIPDB string `yaml:"geoip-db"`
	// Siddhi mirrors WSO2's deployment.yaml keys (siddhi.properties.shardId, aggTimeZone;
	// see configfile.go, which also reads wso2.carbon.id).
	Siddhi struct {
		Properties struct {
			ShardID     string `yaml:"shardId"`
			AggTimeZone string `yaml:"aggTimeZone"`
		} `yaml:"properties"`
	} `yaml:"siddhi"`
	// Store is the YAML form store.dsn.
	Store struct {
		DSN string `yaml:"dsn"`
	} `yaml:"store"`
	// ignored are the WSO2 keys of the --config file Tally does not use (logged at start).
	ignored []string
	// wso2Node is set when the --config file names the node the WSO2 way (wso2.carbon.id):
	// such a node stands alone, as a WSO2 active-active node does, unless told to join.
	wso2Node bool
}

func defaultServeConfig() serveConfig {
	return serveConfig{DataDir: "data", HTTPAddr: "127.0.0.1:7070", RaftAddr: "127.0.0.1:7071", AggTimeZone: "GMT",
		LogLevel: "info", LogFormat: "text", MaxConns: defaultMaxConns, MaxKeys: 1_000_000,
		Replicas: 3, DeadNodeTimeout: 5 * time.Minute}
}

// listFlag is a repeatable or comma-separated flag.
type listFlag struct{ v *[]string }

func (l listFlag) String() string {
	if l.v == nil {
		return ""
	}
	return strings.Join(*l.v, ",")
}

func (l listFlag) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l.v = append(*l.v, p)
		}
	}
	return nil
}

// loadServeConfig parses flags over an optional YAML file over the defaults: a flag given
// on the command line wins over the file.
func loadServeConfig(fs *flag.FlagSet, args []string) (serveConfig, error) {
	var flags serveConfig
	var configPath string
	fs.StringVar(&configPath, "config", "", "YAML config file with the same keys as the flags (flags win); WSO2's deployment.yaml keys wso2.carbon.id and siddhi.properties.shardId/aggTimeZone/partitionById and the email sink properties of siddhi.extensions are understood, its other sections ignored")
	fs.StringVar(&flags.ID, "id", "", "this node's ID, stable across restarts (required)")
	fs.StringVar(&flags.DataDir, "data-dir", "data", "directory for the Raft log and snapshots")
	fs.StringVar(&flags.HTTPAddr, "http-addr", "127.0.0.1:7070", "HTTP API address (host:port), also the address other nodes forward to")
	fs.StringVar(&flags.RaftAddr, "raft-addr", "127.0.0.1:7071", "Raft address (host:port) other nodes dial")
	fs.BoolVar(&flags.Bootstrap, "bootstrap", false, "form a new cluster with this node as its first voter (ignored once it has state)")
	fs.IntVar(&flags.Groups, "groups", 1, "number of partition groups, fixed when the cluster is created (with --bootstrap)")
	fs.IntVar(&flags.Replicas, "replicas", 3, "voters of each group, on that many distinct nodes, fixed when the cluster is created (with --bootstrap; 1 for development)")
	fs.StringVar(&flags.Zone, "zone", "", "this node's zone (failure domain): each group's replicas are spread over zones first")
	fs.DurationVar(&flags.DeadNodeTimeout, "dead-node-timeout", 5*time.Minute, "a node unreachable this long has its replicas re-created on other nodes")
	fs.Var(listFlag{&flags.Join}, "join", "HTTP URL of any cluster node to join through (repeatable or comma-separated)")
	fs.Var(listFlag{&flags.Apps}, "app", "SiddhiQL app file deployed when the cluster is bootstrapped (repeatable)")
	fs.StringVar(&flags.ShardID, "shard-id", "", "shard ID of this group's rows in the shared store, never changed once set (default: the group ID, 0)")
	fs.StringVar(&flags.StoreDSN, "store-dsn", "", "shared rollup store: mysql://user:pass@tcp(host:port)/db or sqlite:///path (default: sqlite file tally-store.db beside --data-dir)")
	fs.DurationVar(&flags.FlushInterval, "flush-interval", 0, "how often the leader flushes rollup rows to the store (default 1s)")
	fs.IntVar(&flags.MaxUnflushedRows, "max-unflushed-rows", 0, "rows held in memory while the store is down before ingest answers 503 (default 1000000)")
	fs.IntVar(&flags.FlushChunkRows, "flush-chunk-rows", 0, "rows the leader writes to the store per flush chunk before it replicates its progress (default 50000)")
	fs.StringVar(&flags.RaftLogStore, "raft-log-store", "", "Raft log store of the replicas this node creates: wal (raft-wal, one fsync per append) or bolt (raft-boltdb); existing replicas keep theirs (default wal)")
	fs.IntVar(&flags.RaftWALSegmentBytes, "raft-wal-segment-bytes", 0, "size of each new raft-wal segment file of a replica, 4096 to 1073741824 (default 16 MiB); a compacted log is deleted a whole segment at a time")
	fs.StringVar(&flags.AggTimeZone, "agg-time-zone", "GMT", "aggTimeZone: IANA zone of hour/day/month/year buckets; must be the same on every node")
	fs.StringVar(&flags.GeoIPDB, "geoip-db", "", "MaxMind-format GeoIP City database for geo:findCountryFromIP/findCityFromIP; must be the same file on every node (default: none, they answer \"\")")
	fs.StringVar(&flags.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&flags.LogFormat, "log-format", "text", "text or json")
	fs.BoolVar(&flags.Pprof, "pprof", false, "serve Go's runtime profiles under /debug/pprof/ on the HTTP address")
	fs.Uint64Var(&flags.SnapshotThreshold, "snapshot-threshold", 0, "snapshot after this many new log entries (default 8192)")
	fs.DurationVar(&flags.SnapshotInterval, "snapshot-interval", 0, "how often to check whether to snapshot (default 30s)")
	fs.Uint64Var(&flags.TrailingLogs, "trailing-logs", 0, "log entries kept after a snapshot for slow followers (default 10240)")
	var dialEntries []string
	fs.Var(listFlag{&dialEntries}, "dial-map", "FROM=TO (host:port each): connect to TO whenever this node dials another node at FROM (Raft, forwarding, join), e.g. through a fault-injection proxy; repeatable or comma-separated")
	fs.IntVar(&flags.MaxKeys, "max-keys", 1_000_000, "distinct group keys per aggregation per group; ingest adding one more answers 503 (0: no limit)")
	fs.IntVar(&flags.MaxSubscribers, "max-subscribers", 0, "open subscriptions (SSE) per node; one more answers 503 (default 1000)")
	fs.DurationVar(&flags.ProducerTTL, "producer-ttl", 0, "a producer that applied within this long is never forgotten by the dedup table; must be the same on every node (default 1h)")
	fs.DurationVar(&flags.MaxWait, "max-wait", 0, "longest wait of a read for min_index before it answers 503 (default 10s)")
	fs.Var(listFlag{&flags.SinkAllow}, "sink-allow", "HOST, IP or CIDR that @sink(type='http') may reach; repeatable or comma-separated (default: any host; link-local addresses never)")
	fs.StringVar(&flags.SMTPHost, "smtp-host", "", "SMTP server of @sink(type='email') sinks that name no host (default: none, such sinks log each mail)")
	fs.IntVar(&flags.SMTPPort, "smtp-port", 0, "port of --smtp-host (default 465 with --smtp-tls tls, 587 with starttls, else 25)")
	fs.StringVar(&flags.SMTPUsername, "smtp-username", "", "SMTP user name (AUTH PLAIN) of email sinks that name none")
	fs.StringVar(&flags.SMTPPasswordFile, "smtp-password-file", "", "file holding the password of --smtp-username")
	fs.StringVar(&flags.SMTPFrom, "smtp-from", "", "sender address of email sinks without address='…'")
	fs.StringVar(&flags.SMTPTLS, "smtp-tls", "", "none, starttls or tls (SMTPS) for --smtp-host (default: STARTTLS when the server offers it)")
	fs.BoolVar(&flags.FaultInjection, "fault-injection", false, "testing only: serve /v1/debug/clock, which skews this node's leader clock")
	fs.StringVar(&flags.TLSCert, "tls-cert", "", "this node's certificate (PEM; re-read when it changes): the HTTP API serves HTTPS only")
	fs.StringVar(&flags.TLSKey, "tls-key", "", "the private key of --tls-cert (PEM; re-read when it changes)")
	fs.StringVar(&flags.TLSCA, "tls-ca", "", "the cluster CA (PEM): mutual TLS between nodes; peers must present a certificate it signed")
	fs.StringVar(&flags.ClusterKey, "cluster-key", "", "file with a secret shared by the nodes (at least 16 bytes, mode 0600): node identity for clusters without TLS")
	fs.BoolVar(&flags.Insecure, "insecure", false, "allow non-loopback --http-addr/--raft-addr without --auth and --tls-cert/--tls-key/--tls-ca (warns every minute)")
	fs.StringVar(&flags.Auth, "auth", "", `users file: a JSON list of {"username", "password" or "password_hash" (bcrypt), "perms": ["read","write","admin","all"], optional "token"}; the API then needs credentials`)
	fs.IntVar(&flags.MaxConns, "max-conns", defaultMaxConns, "open HTTP connections, and Raft port connections not yet past their handshake and header, held at most; more wait to be accepted")
	fs.StringVar(&flags.MemoryLimit, "memory-limit", "", "memory this node may use, e.g. 2GiB or 512MiB: sets the Go runtime's soft memory limit to 90 % of it unless GOMEMLIMIT is set, and the default --max-unflushed-rows to one row per 4 KiB of it (default: none)")
	if err := fs.Parse(args); err != nil {
		return serveConfig{}, err
	}
	if fs.NArg() > 0 {
		return serveConfig{}, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	cfg := defaultServeConfig()
	if configPath != "" {
		data, err := os.ReadFile(configPath)
		if err != nil {
			return serveConfig{}, fmt.Errorf("read config: %w", err)
		}
		if cfg.ignored, err = decodeConfigFile(data, &cfg); err != nil {
			return serveConfig{}, fmt.Errorf("config %s: %w", configPath, err)
		}
		if p := cfg.Siddhi.Properties; p.ShardID != "" && cfg.ShardID == "" {
			cfg.ShardID = p.ShardID
		}
		if cfg.Store.DSN != "" && cfg.StoreDSN == "" {
			cfg.StoreDSN = cfg.Store.DSN
		}
		if p := cfg.Siddhi.Properties; p.AggTimeZone != "" {
			cfg.AggTimeZone = p.AggTimeZone
		}
	}
	var dialErr error
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "dial-map":
			cfg.DialMap, dialErr = raftnode.ParseDialMap(dialEntries)
		case "sink-allow":
			cfg.SinkAllow = flags.SinkAllow
		case "smtp-host":
			cfg.SMTPHost = flags.SMTPHost
		case "smtp-port":
			cfg.SMTPPort = flags.SMTPPort
		case "smtp-username":
			cfg.SMTPUsername = flags.SMTPUsername
		case "smtp-password-file":
			cfg.SMTPPasswordFile = flags.SMTPPasswordFile
		case "smtp-from":
			cfg.SMTPFrom = flags.SMTPFrom
		case "smtp-tls":
			cfg.SMTPTLS = flags.SMTPTLS
		case "fault-injection":
			cfg.FaultInjection = flags.FaultInjection
		case "auth":
			cfg.Auth = flags.Auth
		case "id":
			cfg.ID = flags.ID
		case "data-dir":
			cfg.DataDir = flags.DataDir
		case "http-addr":
			cfg.HTTPAddr = flags.HTTPAddr
		case "raft-addr":
			cfg.RaftAddr = flags.RaftAddr
		case "bootstrap":
			cfg.Bootstrap = flags.Bootstrap
		case "groups":
			cfg.Groups = flags.Groups
		case "replicas":
			cfg.Replicas = flags.Replicas
		case "zone":
			cfg.Zone = flags.Zone
		case "dead-node-timeout":
			cfg.DeadNodeTimeout = flags.DeadNodeTimeout
		case "join":
			cfg.Join = flags.Join
		case "app":
			cfg.Apps = flags.Apps
		case "shard-id":
			cfg.ShardID = flags.ShardID
		case "agg-time-zone":
			cfg.AggTimeZone = flags.AggTimeZone
		case "geoip-db":
			cfg.GeoIPDB = flags.GeoIPDB
		case "log-level":
			cfg.LogLevel = flags.LogLevel
		case "log-format":
			cfg.LogFormat = flags.LogFormat
		case "pprof":
			cfg.Pprof = flags.Pprof
		case "store-dsn":
			cfg.StoreDSN = flags.StoreDSN
		case "flush-interval":
			cfg.FlushInterval = flags.FlushInterval
		case "max-unflushed-rows":
			cfg.MaxUnflushedRows = flags.MaxUnflushedRows
		case "flush-chunk-rows":
			cfg.FlushChunkRows = flags.FlushChunkRows
		case "raft-log-store":
			cfg.RaftLogStore = flags.RaftLogStore
		case "raft-wal-segment-bytes":
			cfg.RaftWALSegmentBytes = flags.RaftWALSegmentBytes
		case "snapshot-threshold":
			cfg.SnapshotThreshold = flags.SnapshotThreshold
		case "snapshot-interval":
			cfg.SnapshotInterval = flags.SnapshotInterval
		case "trailing-logs":
			cfg.TrailingLogs = flags.TrailingLogs
		case "tls-cert":
			cfg.TLSCert = flags.TLSCert
		case "tls-key":
			cfg.TLSKey = flags.TLSKey
		case "tls-ca":
			cfg.TLSCA = flags.TLSCA
		case "cluster-key":
			cfg.ClusterKey = flags.ClusterKey
		case "insecure":
			cfg.Insecure = flags.Insecure
		case "max-conns":
			cfg.MaxConns = flags.MaxConns
		case "max-keys":
			cfg.MaxKeys = flags.MaxKeys
		case "max-subscribers":
			cfg.MaxSubscribers = flags.MaxSubscribers
		case "producer-ttl":
			cfg.ProducerTTL = flags.ProducerTTL
		case "max-wait":
			cfg.MaxWait = flags.MaxWait
		case "memory-limit":
			cfg.MemoryLimit = flags.MemoryLimit
		}
	})
	// A WSO2 active-active node is a cluster of its own (its own shard ID in the shared
	// store): with wso2.carbon.id, no --join and no --bootstrap=false it bootstraps itself.
	if cfg.wso2Node && len(cfg.Join) == 0 && !flagSet(fs, "bootstrap") {
		cfg.Bootstrap = true
	}
	if dialErr != nil {
		return serveConfig{}, fmt.Errorf("--dial-map: %w", dialErr)
	}
	cfg.shardIDSet = cfg.ShardID != ""
	cfg.groupsSet = cfg.Groups != 0
	if cfg.Groups == 0 {
		cfg.Groups = 1
	}
	if cfg.ShardID == "" {
		cfg.ShardID = "0" // the group ID
	}
	if cfg.StoreDSN == "" && cfg.DataDir != "" {
		abs, err := filepath.Abs(cfg.DataDir)
		if err != nil {
			return serveConfig{}, fmt.Errorf("--data-dir %q: %w", cfg.DataDir, err)
		}
		cfg.StoreDSN = "sqlite://" + filepath.Join(filepath.Dir(abs), "tally-store.db")
	}
	if cfg.MemoryLimit != "" {
		n, err := parseBytes(cfg.MemoryLimit)
		if err != nil {
			return cfg, fmt.Errorf("--memory-limit: %w", err)
		}
		cfg.memoryLimit = n
		if cfg.MaxUnflushedRows == 0 {
			cfg.MaxUnflushedRows = unflushedRowsFor(n)
		}
	}
	if err := cfg.validate(); err != nil {
		return cfg, err
	}
	if err := cfg.resolveSMTP(); err != nil {
		return cfg, err
	}
	if len(cfg.SinkAllow) > 0 {
		var err error
		if cfg.sinkPolicy, err = raftnode.ParseSinkPolicy(cfg.SinkAllow); err != nil {
			return cfg, fmt.Errorf("--%w", err)
		}
	}
	return cfg, nil
}

func (c serveConfig) validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("--id is required (a stable name for this node, e.g. n1)"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir must not be empty"))
	}
	for _, a := range [][2]string{{"--http-addr", c.HTTPAddr}, {"--raft-addr", c.RaftAddr}} {
		if _, _, err := net.SplitHostPort(a[1]); err != nil {
			errs = append(errs, fmt.Errorf("%s %q is not host:port: %w", a[0], a[1], err))
		}
	}
	if c.HTTPAddr == c.RaftAddr {
		errs = append(errs, fmt.Errorf("--http-addr and --raft-addr must differ (both %s)", c.HTTPAddr))
	}
	if c.Bootstrap && len(c.Join) > 0 {
		errs = append(errs, errors.New("--bootstrap and --join exclude each other: bootstrap the first node, join the others"))
	}
	for _, u := range c.Join {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			errs = append(errs, fmt.Errorf("--join %q must be an HTTP URL such as http://127.0.0.1:7070", u))
		}
	}
	if err := (engine.Config{AggTimeZone: c.AggTimeZone}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--agg-time-zone: %w", err))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("--log-level %q: use debug, info, warn or error", c.LogLevel))
	}
	if c.Groups < 1 || c.Groups > 1024 {
		errs = append(errs, fmt.Errorf("--groups %d: use 1 to 1024", c.Groups))
	}
	if c.Replicas < 1 || c.Replicas > 7 {
		errs = append(errs, fmt.Errorf("--replicas %d: use 1 to 7", c.Replicas))
	}
	if c.DeadNodeTimeout < 10*time.Second {
		errs = append(errs, fmt.Errorf("--dead-node-timeout %s: use at least 10s (a node restarting must not lose its replicas)", c.DeadNodeTimeout))
	}
	if c.MaxKeys < 0 || c.MaxSubscribers < 0 || c.ProducerTTL < 0 || c.MaxWait < 0 {
		errs = append(errs, fmt.Errorf("--max-keys, --max-subscribers, --producer-ttl and --max-wait must not be negative"))
	}
	if c.FlushInterval < 0 || c.MaxUnflushedRows < 0 || c.FlushChunkRows < 0 {
		errs = append(errs, fmt.Errorf("--flush-interval, --max-unflushed-rows and --flush-chunk-rows must not be negative"))
	}
	if c.RaftLogStore != "" && c.RaftLogStore != raftnode.LogStoreWAL && c.RaftLogStore != raftnode.LogStoreBolt {
		errs = append(errs, fmt.Errorf("--raft-log-store %q: use %s or %s", c.RaftLogStore, raftnode.LogStoreWAL, raftnode.LogStoreBolt))
	}
	if b := c.RaftWALSegmentBytes; b != 0 && (b < raftnode.MinWALSegmentBytes || b > raftnode.MaxWALSegmentBytes) {
		errs = append(errs, fmt.Errorf("--raft-wal-segment-bytes %d: use %d to %d", b, raftnode.MinWALSegmentBytes, raftnode.MaxWALSegmentBytes))
	}
	if len(c.ShardID) > 254 {
		errs = append(errs, fmt.Errorf("--shard-id is %d bytes; the SHARD_ID column holds 254", len(c.ShardID)))
	}
	if len(c.DialMap) > 0 {
		// The file's map has not been checked yet (the flag's has: this repeats it).
		entries := make([]string, 0, len(c.DialMap))
		for _, from := range slices.Sorted(maps.Keys(c.DialMap)) {
			entries = append(entries, from+"="+c.DialMap[from])
		}
		if _, err := raftnode.ParseDialMap(entries); err != nil {
			errs = append(errs, fmt.Errorf("dial-map: %w", err))
		}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format %q: use text or json", c.LogFormat))
	}
	errs = append(errs, c.validateSecurity()...)
	return errors.Join(errs...)
}

// byteUnits are the units --memory-limit takes, longest first so "MiB" wins over "B".
var byteUnits = []struct {
	name string
	size float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

// parseBytes reads a size such as 2GiB, 1.5GB, 512MiB or 1073741824 (bytes): at least 1 MiB,
// at most 1 EiB.
func parseBytes(s string) (int64, error) {
	num, size := strings.TrimSpace(s), 1.0
	for _, u := range byteUnits {
		if strings.HasSuffix(num, u.name) {
			num, size = strings.TrimSpace(strings.TrimSuffix(num, u.name)), u.size
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" || strings.ContainsAny(num, "eEnNxXpP_+-") {
		return 0, fmt.Errorf("%q is not a size such as 2GiB, 512MiB or 1073741824 (units B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)", s)
	}
	n := f * size
	if n < 1<<20 || n > 1<<60 {
		return 0, fmt.Errorf("%q is out of range: use 1MiB to 1EiB", s)
	}
	return int64(n), nil
}

// bytesPerUnflushedRow sizes the flush backlog --memory-limit allows by default: a flush
// holds a copy of every row not yet in the store (about 300 bytes each), and a backlog of
// limit/bytesPerUnflushedRow rows keeps that copy under a tenth of the limit.
const bytesPerUnflushedRow = 4096

// unflushedRowsFor is the default --max-unflushed-rows under a memory limit: at most the
// default without one (1,000,000), at least 10,000.
func unflushedRowsFor(limit int64) int {
	return int(min(max(limit/bytesPerUnflushedRow, 10_000), 1_000_000))
}

// memoryLimitShare is the share of --memory-limit given to the Go runtime as its soft limit:
// the rest is room for what the runtime does not count (stacks of C code, the page cache of
// mapped files) and for the heap overshooting while the collector catches up.
const memoryLimitShare = 0.9

// applyMemoryLimit sets the Go runtime's soft memory limit to memoryLimitShare of
// --memory-limit, unless GOMEMLIMIT (as getenv reads it) already set one; it returns the
// limit set, 0 when it set none.
func (c serveConfig) applyMemoryLimit(getenv func(string) string, logger *slog.Logger) int64 {
	if c.memoryLimit <= 0 {
		return 0
	}
	if env := getenv("GOMEMLIMIT"); env != "" {
		logger.Info("GOMEMLIMIT is set: --memory-limit leaves the Go runtime's memory limit alone", "gomemlimit", env, "memory_limit", c.MemoryLimit)
		return 0
	}
	limit := int64(float64(c.memoryLimit) * memoryLimitShare)
	debug.SetMemoryLimit(limit)
	logger.Info("Go runtime memory limit set", "memory_limit", c.MemoryLimit, "gomemlimit_bytes", limit)
	return limit
}

// flagSet reports whether the command line set flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// resolveSMTP checks the --smtp-* settings and reads the password file into c.smtp.
func (c *serveConfig) resolveSMTP() error {
	tlsMode, err := raftnode.ParseSMTPTLS(c.SMTPTLS)
	if err != nil {
		return fmt.Errorf("--%w", err)
	}
	if c.SMTPPort < 0 || c.SMTPPort > 65535 {
		return fmt.Errorf("--smtp-port %d: use 1 to 65535", c.SMTPPort)
	}
	if c.SMTPFrom != "" {
		if _, err := mail.ParseAddress(c.SMTPFrom); err != nil {
			return fmt.Errorf("--smtp-from %q is not an email address: %w", c.SMTPFrom, err)
		}
	}
	c.smtp = raftnode.SMTPConfig{Host: c.SMTPHost, Port: c.SMTPPort, Username: c.SMTPUsername, From: c.SMTPFrom, TLS: tlsMode,
		Password: c.wso2SMTPPassword}
	if c.SMTPPasswordFile != "" {
		b, err := os.ReadFile(c.SMTPPasswordFile)
		if err != nil {
			return fmt.Errorf("--smtp-password-file: %w", err)
		}
		c.smtp.Password = strings.TrimRight(string(b), "\r\n")
	}
	return nil
}
