//go:build !tally_bug_earlyremove

package node

// bugEarlyRemove is the planted early-removal bug, off in every normal build. See
// bug_earlyremove.go.
const bugEarlyRemove = false
