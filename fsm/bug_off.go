//go:build !tally_bug_nodedup

package fsm

// bugNoDedup is the planted dedup bug, off in every normal build. See bug_nodedup.go.
const bugNoDedup = false
