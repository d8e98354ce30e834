package fsm

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/tally-db/tally/engine"
)

// Errors of the fsm package; test with errors.Is.
var (
	// ErrBadCommand wraps every failure to encode or decode a Command.
	ErrBadCommand = errors.New("fsm: bad command")
	// ErrUnknownKind is wrapped (with ErrBadCommand) when a command's kind is unknown.
	ErrUnknownKind = errors.New("fsm: unknown command kind")
	// ErrSeqTooOld is a part's error when its producer seq is below the producer's dedup
	// window: it may or may not have been applied long ago, so it is not applied now.
	ErrSeqTooOld = errors.New("fsm: producer seq too old")
	// ErrBadSnapshot wraps every failure to read a snapshot.
	ErrBadSnapshot = errors.New("fsm: bad snapshot")
	// ErrShardMismatch is a KindShard command's error when the group already has another
	// shard ID: a group's shard ID never changes.
	ErrShardMismatch = errors.New("fsm: shard ID mismatch")
)

// DefaultMaxProducers is Config.MaxProducers' default.
const DefaultMaxProducers = 100_000

// DefaultProducerTTL is Config.ProducerTTL's default: one hour, in milliseconds.
const DefaultProducerTTL = 60 * 60 * 1000

// ErrTooManyProducers is a part's error when its producer is new and the dedup table is
// full of producers that applied within ProducerTTL: forgetting one of them could apply
// its retry twice, so the new producer is refused until one expires.
var ErrTooManyProducers = errors.New("fsm: too many live producers")

// Config configures an FSM. Start from DefaultConfig. Every replica of a group must use the
// same values: they shape the replicated state.
type Config struct {
	// GroupID is the partition group (shard) this FSM belongs to. It is written into the
	// state, and a snapshot of another group is refused.
	GroupID uint32
	// AggTimeZone is the IANA zone in which hour, day, month and year buckets start; empty
	// means GMT (see engine.Config).
	AggTimeZone string
	// GeoIP is the node's GeoIP database for the engine's geo: functions (nil: none).
	GeoIP engine.GeoIP
	// MaxProducers bounds the dedup table (producers remembered). Default 100,000; zero
	// means the default.
	MaxProducers int
	// ProducerTTL is how long, in milliseconds of stamped time, a producer stays in the
	// dedup table after its last applied part, however many new producers arrive. Default
	// one hour; zero means the default. Every replica must use the same value.
	ProducerTTL int64
	// RetainForSubscribers is how many outputs per output stream the outbox keeps after
	// every sink of the stream delivered them, for subscribers to replay. Default 10,000;
	// zero means the default. Every replica must use the same value.
	RetainForSubscribers int
	// MaxUndelivered bounds a sink's undelivered outputs: past it CheckBatch refuses input
	// to every stream that feeds the sink's stream (ErrSinkBacklog). Default 100,000; zero
	// means the default. Only the leader's value counts.
	MaxUndelivered int
	// MaxKeys bounds the distinct group keys of each aggregation: CheckBatch refuses input
	// that would add a key past it (agg.ErrTooManyKeys). Apply never does, so only the
	// leader's value counts. Zero means no limit.
	MaxKeys int
	// Logger logs restores; nil means slog.Default(). Apply never logs.
	Logger *slog.Logger
	// OnSnapshot, if set, is called (outside the lock) each time a snapshot is captured:
	// the leader flushes to the shared store then. It must not block.
	OnSnapshot func()
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{MaxProducers: DefaultMaxProducers, ProducerTTL: DefaultProducerTTL, RetainForSubscribers: DefaultRetainForSubscribers, MaxUndelivered: DefaultMaxUndelivered}
}

// Validate checks c, naming the field and bound that fail.
func (c Config) Validate() error {
	if c.MaxProducers < 0 {
		return fmt.Errorf("fsm: MaxProducers must be >= 1 (0 means %d), got %d", DefaultMaxProducers, c.MaxProducers)
	}
	if c.ProducerTTL < 0 {
		return fmt.Errorf("fsm: ProducerTTL must be >= 1 ms (0 means %d), got %d", DefaultProducerTTL, c.ProducerTTL)
	}
	if c.RetainForSubscribers < 0 || c.MaxUndelivered < 0 {
		return fmt.Errorf("fsm: RetainForSubscribers and MaxUndelivered must be >= 1 (0 means the default), got %d and %d", c.RetainForSubscribers, c.MaxUndelivered)
	}
	if err := (engine.Config{AggTimeZone: c.AggTimeZone}).Validate(); err != nil {
		return fmt.Errorf("fsm: AggTimeZone %q: %w", c.AggTimeZone, err)
	}
	return nil
}

// ApplyResult is what Apply returns for a command entry (raft's ApplyFuture.Response).
type ApplyResult struct {
	// Index is the entry's log index.
	Index uint64
	// Parts has one result per part of a KindBatch entry, in order.
	Parts []PartResult
	// Outputs are the window query outputs the entry caused, with Seq numbered 0..n-1
	// across the whole entry: (group, Index, Seq) is an output's stable ID.
	Outputs []engine.Output
	// Err is a deploy or undeploy error (the app text's parse error, or one wrapping
	// engine.ErrUnknownApp). A failed command changes nothing.
	Err error
}

// PartResult is the outcome of one part of a batch.
type PartResult struct {
	// Err is why the part was not applied (engine.ErrUnknownStream, engine.ErrBadEvent,
	// ErrSeqTooOld); the part then changed nothing.
	Err error
	// Duplicate reports that the producer's seq was applied before; nothing changed.
	Duplicate bool
	// Events is the number of events applied.
	Events int
}

// Stats counts what this FSM has applied since it was created. The counters are local, not
// replicated, and survive Restore.
type Stats struct {
	Entries    uint64 // command entries applied
	Parts      uint64 // batch parts applied
	Events     uint64 // events applied
	Duplicates uint64 // parts skipped as duplicates
	Failed     uint64 // parts and commands that returned an error
	Outputs    uint64 // query outputs emitted
	Evicted    uint64 // producers evicted from the dedup table
	Dropped    uint64 // flushed rows dropped from memory
	Restores   uint64 // snapshots restored
	// Proposed counts command entries applied from the command this replica proposed
	// (RememberProposal) instead of decoding the entry.
	Proposed uint64
}

// FSM is a group's replicated state machine: the engine, the dedup table and the applied
// index. It implements raft.FSM and raft.BatchingFSM. Its methods are safe for concurrent
// use; Apply and Restore take the write lock, queries a read lock.
type FSM struct {
	cfg Config
	log *slog.Logger

	mu      sync.RWMutex
	eng     *engine.Engine // guarded by mu
	dedup   *dedup         // guarded by mu
	shard   string         // the group's shard ID, "" until a KindShard; guarded by mu
	flushed uint64         // the greatest KindFlushed index; guarded by mu
	outbox  *outbox        // query outputs until delivered; guarded by mu
	notify  chan struct{}  // closed when outputs are added; guarded by mu
	applied atomic.Uint64  // written under mu; read freely
	stats   Stats          // guarded by mu

	proposed proposals // commands this replica proposed, for Apply; has its own lock

	// catalog is what handlers read without the lock (catalog.go); stored under mu.
	catalog atomic.Pointer[Catalog]
	// applyHook, if set (tests only), runs at the start of each entry's apply, under mu.
	applyHook func()
}

var (
	_ raft.FSM         = (*FSM)(nil)
	_ raft.BatchingFSM = (*FSM)(nil)
)

// New returns an empty FSM. A zero MaxProducers means the default.
func New(cfg Config) (*FSM, error) {
	if cfg.MaxProducers == 0 {
		cfg.MaxProducers = DefaultMaxProducers
	}
	if cfg.ProducerTTL == 0 {
		cfg.ProducerTTL = DefaultProducerTTL
	}
	if cfg.RetainForSubscribers == 0 {
		cfg.RetainForSubscribers = DefaultRetainForSubscribers
	}
	if cfg.MaxUndelivered == 0 {
		cfg.MaxUndelivered = DefaultMaxUndelivered
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	eng, err := engine.New(engine.Config{AggTimeZone: cfg.AggTimeZone, GeoIP: cfg.GeoIP})
	if err != nil {
		return nil, fmt.Errorf("fsm: %w", err)
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.Default()
	}
	f := &FSM{
		cfg:    cfg,
		log:    lg.With("component", "fsm", "group", cfg.GroupID),
		eng:    eng,
		dedup:  newDedup(cfg.MaxProducers, cfg.ProducerTTL),
		outbox: newOutbox(cfg.RetainForSubscribers),
		notify: make(chan struct{}),
	}
	f.catalog.Store(buildCatalog(eng, "", 0))
	return f, nil
}

// Apply implements raft.FSM. Same log ⇒ same state and results on every replica. It returns
// nil for entries that are not raft.LogCommand and an *ApplyResult otherwise. It panics on an
// entry it cannot decode: continuing would let replicas diverge. An entry this replica
// proposed is applied from the command it remembered (RememberProposal), which equals the
// decoded entry, without decoding it again.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	c, proposed := f.command(l)
	f.mu.Lock()
	defer f.mu.Unlock()
	if proposed {
		f.stats.Proposed++
	}
	return f.applyLocked(l.Index, &c)
}

// ApplyBatch implements raft.BatchingFSM: Apply for each entry, under one lock. The entries
// are decoded (or taken as proposed, see RememberProposal) before the lock is taken.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	cmds := make([]Command, len(logs))
	proposed := 0
	for i, l := range logs {
		if l.Type == raft.LogCommand {
			var ok bool
			if cmds[i], ok = f.command(l); ok {
				proposed++
			}
		}
	}
	out := make([]any, len(logs))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats.Proposed += uint64(proposed)
	for i, l := range logs {
		if l.Type == raft.LogCommand {
			out[i] = f.applyLocked(l.Index, &cmds[i])
		}
	}
	return out
}

func decodeEntry(l *raft.Log) Command {
	var c Command
	if err := c.UnmarshalBinary(l.Data); err != nil {
		panic(fmt.Sprintf("fsm: decode entry %d: %v", l.Index, err)) // diverging is worse
	}
	return c
}

// applyLocked applies one decoded command. f.mu must be held for writing.
// No wall clock, randomness or map iteration here: time is c.Time, order is the log's.
func (f *FSM) applyLocked(index uint64, c *Command) *ApplyResult {
	res := &ApplyResult{Index: index}
	if f.applyHook != nil {
		f.applyHook()
	}
	switch c.Kind {
	case KindBatch:
		res.Parts = make([]PartResult, len(c.Parts))
		for i := range c.Parts {
			res.Parts[i] = f.applyPartLocked(index, c.Time, &c.Parts[i], &res.Outputs)
		}
	case KindTick:
		res.Outputs = f.eng.Tick(index, c.Time)
		// Rows flushed while their bucket was open are dropped once it has closed.
		if f.flushed > 0 {
			f.stats.Dropped += uint64(f.eng.DropFlushed(f.flushed))
		}
	case KindDeploy:
		if _, err := f.eng.Deploy(c.Text); err != nil {
			res.Err = fmt.Errorf("fsm: deploy: %w", err)
		} else {
			f.outbox.reconcile(f.eng)
			f.publishLocked()
		}
	case KindUndeploy:
		if !f.eng.Undeploy(c.Text) {
			res.Err = fmt.Errorf("fsm: undeploy %s: %w", c.Text, engine.ErrUnknownApp)
		} else {
			f.outbox.reconcile(f.eng)
			f.publishLocked()
		}
	case KindFlushed:
		f.stats.Dropped += uint64(f.eng.DropFlushed(c.Index))
		if c.Index > f.flushed {
			f.flushed = c.Index
			f.publishProgressLocked()
		}
	case KindShard:
		switch {
		case c.Text == "":
			res.Err = fmt.Errorf("%w: empty shard ID", ErrShardMismatch)
		case f.shard == "":
			f.shard = c.Text
			f.publishProgressLocked()
		case f.shard != c.Text:
			res.Err = fmt.Errorf("%w: the group's shard ID is %q, not %q", ErrShardMismatch, f.shard, c.Text)
		}
	case KindDelivered:
		res.Err = f.outbox.delivered(c.Text, c.Sink, c.Through)
	case KindTableWrite:
		if err := f.eng.TableWrite(index, c.Time, c.Text, c.Query); err != nil {
			res.Err = fmt.Errorf("fsm: table write: %w", err)
		}
	default: // UnmarshalBinary refuses unknown kinds; this is a programming error.
		panic(fmt.Sprintf("fsm: unknown command %v at index %d", c.Kind, index))
	}
	for i := range res.Outputs {
		res.Outputs[i].Seq = i
	}
	if len(res.Outputs) > 0 {
		f.outbox.add(index, res.Outputs)
		f.notifyLocked()
	}
	f.stats.Entries++
	f.stats.Outputs += uint64(len(res.Outputs))
	if res.Err != nil {
		f.stats.Failed++
	}
	f.applied.Store(index)
	return res
}

// applyPartLocked applies one part of a batch, appending its outputs to out. A part that is
// a duplicate or fails changes nothing; its seq is recorded only when it applied.
func (f *FSM) applyPartLocked(index uint64, now int64, p *Part, out *[]engine.Output) PartResult {
	if p.ProducerID != "" {
		switch f.dedup.check(p.ProducerID, p.Seq) {
		case duplicate:
			f.stats.Duplicates++
			return PartResult{Duplicate: true}
		case tooOld:
			f.stats.Failed++
			return PartResult{Err: fmt.Errorf("%w: producer %q seq %d is below its window, which starts at %d",
				ErrSeqTooOld, p.ProducerID, p.Seq, f.dedup.low(p.ProducerID))}
		}
		// CheckBatch refused a new producer when the table was full of live ones; one
		// admitted by it may still find the table full here (another new producer got
		// the place first), and every replica then refuses it alike.
		if !f.dedup.known(p.ProducerID) {
			ok, evicted := f.dedup.makeRoom(max(now, f.eng.Now()))
			if evicted {
				f.stats.Evicted++
			}
			if !ok {
				f.stats.Failed++
				return PartResult{Err: f.tooManyProducers(p.ProducerID)}
			}
		}
	}
	outs, err := f.eng.Apply(index, now, p.Stream, p.Events)
	if err != nil {
		f.stats.Failed++
		return PartResult{Err: err}
	}
	if p.ProducerID != "" && f.dedup.record(p.ProducerID, p.Seq, index, f.eng.Now()) {
		f.stats.Evicted++
	}
	*out = append(*out, outs...)
	f.stats.Parts++
	f.stats.Events += uint64(len(p.Events))
	return PartResult{Events: len(p.Events)}
}

// CheckBatch validates parts against the current engine (unknown stream, bad events) and the
// dedup table (seq too old) without applying them, and refuses parts whose stream feeds a
// sink with MaxUndelivered outputs waiting (a *SinkBacklogError), so a leader can refuse bad input before
// it reaches the log. It returns nil when every part is valid, otherwise one error (or nil)
// per part. It takes the read lock. A part that passes can still fail at apply time if an
// app is deployed or undeployed in between.
//
// Parts to a stream the catalog does not know are refused first, without the lock, and the
// lock is not taken at all when no part is left. That is only a pre-check: the catalog is
// the one published by the last deploy or undeploy applied, and one committed after it may
// still be applied before this batch's entry, so Apply's own lookup stays the authority
// (a part refused here is never proposed; one admitted here can still fail at apply time,
// as it could before). The checks that read mutable state (events against the stream,
// dedup, key limits, sink backlog) stay under the read lock.
func (f *FSM) CheckBatch(parts []Part) []error {
	var errs []error
	cat := f.Catalog()
	known := 0
	for i := range parts {
		if err := cat.CheckStream(parts[i].Stream); err != nil {
			if errs == nil {
				errs = make([]error, len(parts))
			}
			errs[i] = err
			continue
		}
		known++
	}
	if known == 0 {
		return errs
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	backlog := f.sinkBacklogLocked()
	var newProducers map[string]bool // new producers admitted so far in parts
	for i := range parts {
		if errs != nil && errs[i] != nil {
			continue
		}
		p := &parts[i]
		var err error
		switch {
		case p.ProducerID != "" && f.dedup.check(p.ProducerID, p.Seq) == tooOld:
			err = fmt.Errorf("%w: producer %q seq %d is below its window, which starts at %d",
				ErrSeqTooOld, p.ProducerID, p.Seq, f.dedup.low(p.ProducerID))
		case p.ProducerID != "" && !f.dedup.known(p.ProducerID) && !newProducers[p.ProducerID] &&
			!f.dedup.room(len(newProducers)+1, f.eng.Now()):
			err = f.tooManyProducers(p.ProducerID)
		default:
			if p.ProducerID != "" && !f.dedup.known(p.ProducerID) {
				if newProducers == nil {
					newProducers = map[string]bool{}
				}
				newProducers[p.ProducerID] = true
			}
			err = f.eng.CheckEvents(p.Stream, p.Events)
			if err == nil {
				err = f.eng.CheckLimits(p.Stream, p.Events, f.cfg.MaxKeys)
			}
		}
		if err == nil && backlog != nil {
			for _, s := range f.eng.Reaches(p.Stream) {
				if b := backlog[s]; b != nil {
					e := *b
					e.Input = p.Stream
					err = &e
					break
				}
			}
		}
		if err != nil {
			if errs == nil {
				errs = make([]error, len(parts))
			}
			errs[i] = err
		}
	}
	return errs
}

// tooManyProducers is the error of a new producer refused because the table is full of
// live ones.
func (f *FSM) tooManyProducers(id string) error {
	return fmt.Errorf("%w: producer %q is new and all %d producers remembered applied within the last %d ms; retry later or reuse a producer ID",
		ErrTooManyProducers, id, f.cfg.MaxProducers, f.cfg.ProducerTTL)
}

// Read runs fn with a read-only view of the engine under the read lock, for queries, table
// queries, flush capture and checks. fn must not keep the view, or what it returns, after
// returning, nor call Read or another locking method of f (a second read lock waits behind
// a queued Apply that waits for the first). Lookups that the catalog answers (Catalog)
// need no lock at all.
func (f *FSM) Read(fn func(v View)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(View{f.eng})
}

// AppliedIndex is the log index of the last command entry applied (or restored). Entries of
// other types (configuration, no-op, barrier) do not move it, so a reader waiting for raft's
// commit index should wait on raft's own AppliedIndex; one waiting for its own write's index
// can wait on this.
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// Stats returns the counters.
func (f *FSM) Stats() Stats {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.stats
}

// Producers is the number of producers the dedup table remembers.
func (f *FSM) Producers() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.dedup.Len()
}

// ShardID is the group's shard ID ("" until one was replicated) and the log index through
// which rows are in the shared store. It reads the catalog and takes no lock, so it may be
// called anywhere, inside Read too; within an ApplyBatch it may show an entry of the batch
// before AppliedIndex does (both values only ever move forward).
func (f *FSM) ShardID() (shard string, flushed uint64) {
	return f.Catalog().ShardID()
}

// Config returns the configuration in use (defaults filled in).
func (f *FSM) Config() Config { return f.cfg }
