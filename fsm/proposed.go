package fsm

import (
	"math"
	"strings"
	"sync"
	"unsafe"

	"github.com/hashicorp/raft"

	"github.com/tally-db/tally/siddhiql"
)

// proposals are the batch commands this replica proposed, by the first byte of their
// encoding. hashicorp/raft gives the leader's FSM the very slice passed to raft.Apply (the
// log of the entry's future), so an entry whose Data starts at a remembered slice's first
// byte, with the same length, is that slice: its command need not be decoded again. An
// entry read back from the log store, as every follower and a new leader read it, is a
// fresh slice and is decoded. The map holds the slices, so their memory is never reused
// while remembered.
type proposals struct {
	mu sync.Mutex
	m  map[*byte]proposal
}

type proposal struct {
	data []byte
	cmd  *Command
}

// RememberProposal tells the FSM that data, the encoding of the KindBatch command c, is about
// to be passed to this replica's raft.Apply. When the entry is applied here with those very
// bytes, Apply uses c instead of decoding data: a leader applies what it proposed. Whenever
// that cannot be trusted (another kind, a value not as decoding would give it) Apply decodes.
// The caller hands c over: neither it nor anyone else may read or modify c, its parts or
// their rows afterwards, as Apply copies their strings in place (so that the state never
// holds the memory of a request body) and the engine keeps rows. Call ForgetProposal with
// the same data once the entry's future has completed, whatever its outcome.
func (f *FSM) RememberProposal(data []byte, c *Command) {
	if len(data) == 0 || c == nil || c.Kind != KindBatch {
		return
	}
	f.proposed.mu.Lock()
	defer f.proposed.mu.Unlock()
	if f.proposed.m == nil {
		f.proposed.m = map[*byte]proposal{}
	}
	f.proposed.m[unsafe.SliceData(data)] = proposal{data: data, cmd: c}
}

// ForgetProposal drops what RememberProposal kept for data if Apply did not use it.
func (f *FSM) ForgetProposal(data []byte) {
	if len(data) == 0 {
		return
	}
	f.proposed.mu.Lock()
	defer f.proposed.mu.Unlock()
	delete(f.proposed.m, unsafe.SliceData(data))
}

// take returns and forgets the command remembered for l's very bytes, or nil.
func (p *proposals) take(l *raft.Log) *Command {
	if len(l.Data) == 0 {
		return nil
	}
	key := unsafe.SliceData(l.Data)
	p.mu.Lock()
	defer p.mu.Unlock()
	pr, ok := p.m[key]
	if !ok {
		return nil
	}
	delete(p.m, key)
	if len(pr.data) != len(l.Data) {
		return nil
	}
	return pr.cmd
}

// command is the command of entry l: the one this replica proposed for these very bytes,
// made to equal what decoding gives, else the decoded entry.
func (f *FSM) command(l *raft.Log) (c Command, proposed bool) {
	if pc := f.proposed.take(l); pc != nil && adopt(pc) {
		return *pc, true
	}
	return decodeEntry(l), false
}

// adopt makes a proposed batch command what UnmarshalBinary would return for its encoding,
// and reports whether it could: every value holds only its type's field (Encode writes
// nothing else, so decoding leaves the others zero), rows have no spare capacity (an append
// must not reach a neighbour's values), a part without events has nil events, and every
// string is copied, so that the engine keeps no reference into the buffers the command was
// decoded from (a request body) any more than a follower does.
func adopt(c *Command) bool {
	if c.Kind != KindBatch {
		return false
	}
	for i := range c.Parts {
		p := &c.Parts[i]
		p.Stream, p.ProducerID = strings.Clone(p.Stream), strings.Clone(p.ProducerID)
		if len(p.Events) == 0 {
			p.Events = nil
			continue
		}
		for j, row := range p.Events {
			if cap(row) != len(row) {
				row = row[:len(row):len(row)]
				p.Events[j] = row
			}
			for k := range row {
				v := &row[k]
				switch v.T {
				case siddhiql.TypeInvalid:
					if v.I != 0 || math.Float64bits(v.F) != 0 || v.S != "" {
						return false
					}
				case siddhiql.TypeFloat, siddhiql.TypeDouble:
					if v.I != 0 || v.S != "" {
						return false
					}
				case siddhiql.TypeString, siddhiql.TypeObject:
					if v.I != 0 || math.Float64bits(v.F) != 0 {
						return false
					}
					v.S = strings.Clone(v.S)
				case siddhiql.TypeInt, siddhiql.TypeLong, siddhiql.TypeBool:
					if math.Float64bits(v.F) != 0 || v.S != "" {
						return false
					}
				default:
					return false
				}
			}
		}
	}
	return true
}
