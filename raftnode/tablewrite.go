package raftnode

import (
	"context"

	"github.com/tally-db/tally/fsm"
)

// TableWrite replicates an on-demand write (`select ... insert into T`, `update T ...`,
// `update or insert into T ...`, `delete T ...`) to a table of app, and returns the log
// index it applied at. The write is checked against the current state first, so a bad one
// never reaches the log.
func (n *Node) TableWrite(ctx context.Context, app, query string) (uint64, error) {
	var err error
	n.fsm.Read(func(e fsm.View) { err = e.CheckTableWrite(app, query) })
	if err != nil {
		return 0, err
	}
	res, err := n.propose(ctx, &fsm.Command{Kind: fsm.KindTableWrite, Time: n.stamp(), Text: app, Query: query})
	if err != nil {
		return 0, err
	}
	return res.Index, res.Err
}
