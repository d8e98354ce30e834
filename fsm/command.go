package fsm

import (
	"fmt"
	"math/bits"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/internal/wire"
	"github.com/tally-db/tally/siddhiql"
)

// FormatVersion is the first byte of every encoded Command. A replica refuses (and Apply
// panics on) any other version, so a new format needs every replica upgraded first.
const FormatVersion = 1

// Kind says what a Command does. It is the second byte of the encoding.
type Kind uint8

// Command kinds. The zero Kind is invalid. Numbers are part of the log format: never reuse or
// renumber one. Kinds after KindTableWrite are reserved for later commands; a replica that
// does not know a kind fails to decode it.
const (
	// KindBatch applies events: Time and Parts (group commit of many requests).
	KindBatch Kind = 1
	// KindTick advances the engine clock to Time with no events.
	KindTick Kind = 2
	// KindDeploy deploys (or replaces) the app whose SiddhiQL text is Text.
	KindDeploy Kind = 3
	// KindUndeploy removes the app named Text.
	KindUndeploy Kind = 4
	// KindFlushed records that rows changed at or before log index Index are in the shared
	// store, so replicas may drop them from memory.
	KindFlushed Kind = 5
	// KindShard names the group's shard ID (Text), once: the name its rows carry in the
	// shared store. A different name later is refused.
	KindShard Kind = 6
	// KindDelivered records that sink Sink of output stream Text delivered every output
	// through position Through. A position never moves back.
	KindDelivered Kind = 7
	// KindTableWrite applies an on-demand write (Query: `select ... insert into T`, `update
	// T ...`, `update or insert into T ...`, `delete T ...`) to a table of the app named Text.
	KindTableWrite Kind = 8
)

// String names the kind for messages.
func (k Kind) String() string {
	switch k {
	case KindBatch:
		return "batch"
	case KindTick:
		return "tick"
	case KindDeploy:
		return "deploy"
	case KindUndeploy:
		return "undeploy"
	case KindFlushed:
		return "flushed"
	case KindShard:
		return "shard"
	case KindDelivered:
		return "delivered"
	case KindTableWrite:
		return "table write"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Known reports whether k is a kind this version can encode and apply.
func (k Kind) Known() bool { return k >= KindBatch && k <= KindTableWrite }

// Part is the events of one request for one stream. One KindBatch entry carries the parts of
// many concurrent requests.
type Part struct {
	Stream string
	// ProducerID names the producer for deduplication; "" means no deduplication and Seq
	// is ignored.
	ProducerID string
	// Seq is the producer's sequence number of this request.
	Seq    uint64
	Events []expr.Row
}

// Command is one Raft log entry's payload. Which fields count depends on Kind; the others are
// neither encoded nor decoded.
type Command struct {
	Kind Kind
	// Time is the leader's stamped time, Unix milliseconds. Every kind carries it; it is the
	// only clock the FSM knows.
	Time  int64
	Parts []Part // KindBatch
	Text  string // KindDeploy: the app text; KindUndeploy: the app name; KindShard: the shard ID; KindDelivered: the output stream
	Index uint64 // KindFlushed: rows flushed through this log index
	// KindDelivered: the sink's position on the stream and the output position delivered
	// through.
	Sink    uint32
	Through OutPos
	Query   string // KindTableWrite: the on-demand write (Text names the app)
}

// MarshalBinary encodes c. It fails with ErrBadCommand for an unknown kind or a value whose
// type the format cannot carry: whatever it returns, every replica can decode.
func (c *Command) MarshalBinary() ([]byte, error) {
	size, err := c.check()
	if err != nil {
		return nil, err
	}
	return c.AppendBinary(make([]byte, 0, size)), nil
}

// AppendBinary appends c's encoding to dst and returns the extended slice. It panics on what
// MarshalBinary reports as an error (an unknown kind or value type): proposing bytes that
// replicas cannot decode would stop the group, so that programming error stops the proposer.
// Note the signature differs from encoding.BinaryAppender: there is no error to return.
func (c *Command) AppendBinary(dst []byte) []byte {
	if !c.Kind.Known() {
		panic(fmt.Sprintf("fsm: encode command of unknown %v", c.Kind))
	}
	w := wire.Writer{Buf: dst}
	w.Byte(FormatVersion)
	w.Byte(byte(c.Kind))
	w.Varint(c.Time)
	switch c.Kind {
	case KindBatch:
		w.Uvarint(uint64(len(c.Parts)))
		for i := range c.Parts {
			appendPart(&w, &c.Parts[i])
		}
	case KindDeploy, KindUndeploy, KindShard:
		w.String(c.Text)
	case KindTableWrite:
		w.String(c.Text)
		w.String(c.Query)
	case KindFlushed:
		w.Uvarint(c.Index)
	case KindDelivered:
		w.String(c.Text)
		w.Uvarint(uint64(c.Sink))
		w.Uvarint(c.Through.Index)
		w.Uvarint(c.Through.Seq)
	}
	return w.Buf
}

func appendPart(w *wire.Writer, p *Part) {
	w.String(p.Stream)
	w.String(p.ProducerID)
	w.Uvarint(p.Seq)
	w.Uvarint(uint64(len(p.Events)))
	n := 0
	for _, ev := range p.Events {
		n += len(ev)
	}
	w.Uvarint(uint64(n))
	for _, ev := range p.Events {
		w.Uvarint(uint64(len(ev)))
		for _, v := range ev {
			if !knownType(v.T) {
				panic(fmt.Sprintf("fsm: encode value of unknown type %d in stream %s", v.T, p.Stream))
			}
			v.Encode(w)
		}
	}
}

// check validates c for encoding and returns an upper bound of its encoded size.
func (c *Command) check() (int, error) {
	if !c.Kind.Known() {
		return 0, fmt.Errorf("%w: %w %d", ErrBadCommand, ErrUnknownKind, uint8(c.Kind))
	}
	size := 2 + 10 + 10 + 10 + 30 + len(c.Text) + 10 + len(c.Query)
	if c.Kind != KindBatch {
		return size, nil
	}
	for i := range c.Parts {
		p := &c.Parts[i]
		size += 5*10 + len(p.Stream) + len(p.ProducerID)
		for j, ev := range p.Events {
			size += 10
			for k, v := range ev {
				switch v.T {
				case siddhiql.TypeInvalid:
					size++
				case siddhiql.TypeFloat, siddhiql.TypeDouble:
					size += 9
				case siddhiql.TypeString, siddhiql.TypeObject:
					size += 11 + len(v.S)
				case siddhiql.TypeInt, siddhiql.TypeLong, siddhiql.TypeBool:
					size += 11
				default:
					return 0, fmt.Errorf("%w: part %d event %d value %d has unknown type %d", ErrBadCommand, i, j, k, v.T)
				}
			}
		}
	}
	return size, nil
}

func knownType(t siddhiql.Type) bool { return t <= siddhiql.TypeObject }

// UnmarshalBinary decodes data written by MarshalBinary into c, replacing its contents. It
// never panics; on malformed input (short data, an unknown version or kind, a count larger
// than the data could hold, a non-minimal varint, trailing bytes) it returns an error
// wrapping ErrBadCommand (and ErrUnknownKind for an unknown kind). Allocation is bounded by a
// small multiple of len(data). Decoded strings do not alias data.
func (c *Command) UnmarshalBinary(data []byte) error {
	*c = Command{}
	d := decoder{r: wire.NewReader(data)}
	if v := d.r.Byte(); d.r.Err() == nil && v != FormatVersion {
		return fmt.Errorf("%w: format version %d, want %d", ErrBadCommand, v, FormatVersion)
	}
	k := Kind(d.r.Byte())
	if d.r.Err() == nil && !k.Known() {
		return fmt.Errorf("%w: %w %d", ErrBadCommand, ErrUnknownKind, uint8(k))
	}
	c.Kind = k
	c.Time = d.varint()
	switch k {
	case KindBatch:
		// A part takes at least 5 bytes: two empty strings and three varints.
		n := d.count(5)
		if n > 0 {
			c.Parts = make([]Part, n)
			for i := range c.Parts {
				if !d.part(&c.Parts[i]) {
					break
				}
			}
		}
	case KindDeploy, KindUndeploy, KindShard:
		c.Text = d.string()
	case KindTableWrite:
		c.Text = d.string()
		c.Query = d.string()
	case KindFlushed:
		c.Index = d.uvarint()
	case KindDelivered:
		c.Text = d.string()
		sink := d.uvarint()
		if sink > 1<<32-1 {
			d.r.Fail(fmt.Errorf("sink %d out of range", sink))
		}
		c.Sink = uint32(sink)
		c.Through = OutPos{Index: d.uvarint(), Seq: d.uvarint()}
	}
	if err := d.r.Err(); err != nil {
		*c = Command{}
		return fmt.Errorf("%w: %w", ErrBadCommand, err)
	}
	if n := d.r.Len(); n != 0 {
		*c = Command{}
		return fmt.Errorf("%w: %d trailing bytes", ErrBadCommand, n)
	}
	return nil
}

// decoder reads through a wire.Reader and insists on minimal varints, so that every
// accepted input re-encodes to the same bytes (one entry, one meaning).
type decoder struct {
	r *wire.Reader
}

func uvarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

func (d *decoder) canonical(before, want int) {
	if d.r.Err() == nil && before-d.r.Len() != want {
		d.r.Fail(fmt.Errorf("non-minimal varint %d bytes before the end", before))
	}
}

func (d *decoder) uvarint() uint64 {
	before := d.r.Len()
	v := d.r.Uvarint()
	d.canonical(before, uvarintLen(v))
	return v
}

func (d *decoder) varint() int64 {
	before := d.r.Len()
	v := d.r.Varint()
	d.canonical(before, uvarintLen(uint64(v<<1)^uint64(v>>63)))
	return v
}

func (d *decoder) count(minSize int) int {
	before := d.r.Len()
	n := d.r.Count(minSize)
	d.canonical(before, uvarintLen(uint64(n)))
	return n
}

func (d *decoder) string() string {
	before := d.r.Len()
	s := d.r.String()
	d.canonical(before, uvarintLen(uint64(len(s)))+len(s))
	return s
}

// part decodes one part; all of its values share one allocation. It reports success.
func (d *decoder) part(p *Part) bool {
	p.Stream = d.string()
	p.ProducerID = d.string()
	p.Seq = d.uvarint()
	nEvents := d.count(1) // a width byte each
	nValues := d.count(1) // a type byte each
	if d.r.Err() != nil {
		return false
	}
	if nEvents == 0 {
		if nValues != 0 {
			d.r.Fail(fmt.Errorf("part of stream %s: %d values in no events", p.Stream, nValues))
			return false
		}
		return true
	}
	p.Events = make([]expr.Row, nEvents)
	var slab []expr.Value
	if nValues > 0 {
		slab = make([]expr.Value, nValues)
	}
	for i := range p.Events {
		width := d.count(1)
		if d.r.Err() != nil {
			return false
		}
		if width > len(slab) {
			d.r.Fail(fmt.Errorf("part of stream %s: event %d has %d values, only %d left of the declared %d", p.Stream, i, width, len(slab), nValues))
			return false
		}
		row := slab[:width:width]
		slab = slab[width:]
		for j := range row {
			row[j] = d.value()
		}
		if d.r.Err() != nil {
			return false
		}
		p.Events[i] = row
	}
	if len(slab) != 0 {
		d.r.Fail(fmt.Errorf("part of stream %s: %d of the declared %d values missing", p.Stream, len(slab), nValues))
		return false
	}
	return true
}

// value mirrors expr.DecodeValue with minimal-varint checks.
func (d *decoder) value() expr.Value {
	v := expr.Value{T: siddhiql.Type(d.r.Byte())}
	switch v.T {
	case siddhiql.TypeFloat, siddhiql.TypeDouble:
		v.F = d.r.Float()
	case siddhiql.TypeString, siddhiql.TypeObject:
		v.S = d.string()
	case siddhiql.TypeInvalid:
	case siddhiql.TypeInt, siddhiql.TypeLong, siddhiql.TypeBool:
		v.I = d.varint()
	default:
		d.r.Fail(fmt.Errorf("bad value type %d", v.T))
	}
	return v
}
