//go:build unix

package client

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockState takes an exclusive lock on path's lock file (path + ".lock"), held until
// release: two publishers on one state file would send the same seqs, and the cluster
// would drop one's batches as duplicates of the other's.
func lockState(path string) (release func(), err error) {
	f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock publisher state: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("publisher state %s is in use by another publisher (%s is locked)", path, f.Name())
		}
		return nil, fmt.Errorf("lock publisher state %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}
