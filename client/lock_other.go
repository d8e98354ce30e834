//go:build !unix

package client

// lockState does nothing where flock is not available: keep one publisher per state file.
func lockState(string) (func(), error) { return func() {}, nil }
