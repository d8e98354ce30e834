package client_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tally-db/tally/client"
)

// TestAppsAndStatus deploys, lists and removes an app on a real node, and reads its
// status.
func TestAppsAndStatus(t *testing.T) {
	c := sharedNode(t)
	cl, err := client.New(c.urls(), client.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	res, err := cl.Deploy(ctx, appText("Man"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Name != "ManApp" || len(res.Groups) != 1 || res.Groups[0].Status != 201 || res.Indexes()[0] == 0 {
		t.Fatalf("deploy answered %+v", res)
	}
	apps, err := cl.AppsWithText(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(apps, func(a client.App) bool { return a.Name == "ManApp" })
	if i < 0 || apps[i].Text != appText("Man") || !slices.Equal(apps[i].Aggregations, []string{"ManTotals"}) || apps[i].Queries != 1 {
		t.Fatalf("apps %+v: want ManApp with its text, aggregation and query", apps)
	}
	if _, err := cl.Undeploy(ctx, "ManApp"); err != nil {
		t.Fatal(err)
	}
	if apps, err = cl.Apps(ctx); err != nil || slices.ContainsFunc(apps, func(a client.App) bool { return a.Name == "ManApp" }) {
		t.Fatalf("apps after undeploy: %+v, %v", apps, err)
	}
	if _, err := cl.Undeploy(ctx, "ManApp"); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("second undeploy: %v, want ErrBadRequest", err)
	}
	var ae *client.APIError
	if _, err := cl.Deploy(ctx, "@app:name('Bad')\ndefine stream BadS (a int);\nfrom BadS select b insert into BadT;"); !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Message, "3:") {
		t.Fatalf("deploy of a bad app: %v, want 400 naming the line", err)
	}
	st, err := cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	g := st.Groups[0]
	if st.ID != "n1" || g.Role != "leader" || g.Leader == nil || g.Leader.ID != "n1" || g.Term == 0 || g.AppliedIndex == 0 || !slices.Equal(st.Voters(0), []string{"n1"}) {
		t.Fatalf("status %+v", st)
	}
}
