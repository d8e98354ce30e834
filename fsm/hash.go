package fsm

import (
	"crypto/sha256"
	"encoding/hex"
)

// HashedState returns the applied index and the hex SHA-256 of the state at exactly that
// index (both read under one lock), for checking that replicas converge.
func (f *FSM) HashedState() (uint64, string, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	b, err := f.stateLocked()
	if err != nil {
		return 0, "", err
	}
	sum := sha256.Sum256(b)
	return f.applied.Load(), hex.EncodeToString(sum[:]), nil
}
