package main

import (
	"context"
	"testing"

	"connectrpc.com/connect"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	monitorv1 "github.com/lethehq/lethe/gen/go/lethe/monitor/v1"
	"github.com/lethehq/lethe/server/internal/testkit"
)

// An admin disabling an operator signs them out of every domain the wiring
// tells (account → chat and monitoring): the console's inbox stream and its
// Visitors stream both end at once, and the operator is offline.
func TestSignOut_DisablingEndsTheOperatorsStreamsInEveryDomain(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	admin := ts.admin()
	bob := ts.createOperator(admin, "bob@example.com", "Bob")
	me, err := bob.Account.GetMe(context.Background(), connect.NewRequest(&accountv1.GetMeRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	inbox := watchInbox(t, bob)
	// Bounded, so that a stream that never ends fails rather than hangs.
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Wait)
	defer cancel()
	visitors, err := bob.Monitor.WatchVisitors(ctx, connect.NewRequest(&monitorv1.WatchVisitorsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	for visitors.Receive() && !visitors.Msg().SnapshotDone {
	}

	if _, err := admin.Account.SetOperatorDisabled(context.Background(), connect.NewRequest(&accountv1.SetOperatorDisabledRequest{
		OperatorId: me.Msg.Operator.Id, Disabled: true})); err != nil {
		t.Fatal(err)
	}
	testkit.WantCode(t, "Bob's inbox stream after he was disabled", inbox.Wait(), connect.CodeUnauthenticated)
	for visitors.Receive() {
	}
	testkit.WantCode(t, "Bob's Visitors stream after he was disabled", visitors.Err(), connect.CodeUnauthenticated)
	waitOperatorsOnline(t, ts, false)
}
