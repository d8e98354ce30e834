//go:build !tally_bug_earlyack

package raftnode

// bugEarlyAck is the planted early-acknowledgement bug, off in every normal build. See
// bug_earlyack.go.
const bugEarlyAck = false
