package fsm

import (
	"crypto/sha256"
	"encoding/hex"
)

// HashedState returns the applied index and the hex SHA-256 of the state at exactly that
// index, for checking that replicas converge. The state is encoded under the read lock (as a
// snapshot is: Apply waits meanwhile) and hashed outside it.
func (f *FSM) HashedState() (uint64, string, error) {
	f.mu.RLock()
	b, err := f.stateLocked()
	index := f.applied.Load()
	f.mu.RUnlock()
	if err != nil {
		return 0, "", err
	}
	sum := sha256.Sum256(b)
	return index, hex.EncodeToString(sum[:]), nil
}
