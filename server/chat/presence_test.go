package chat

import (
	"context"
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/server/internal/testkit"
)

// waitOperatorsOnline polls GetWidgetConfig until it says want.
func (e *env) waitOperatorsOnline(want bool) {
	e.t.Helper()
	v := e.visitor()
	testkit.Eventually(e.t, testkit.Wait, fmt.Sprintf("operators_online %v", want), func() bool {
		res, err := v.chat.GetWidgetConfig(context.Background(), connect.NewRequest(&chatv1.GetWidgetConfigRequest{AccountId: acct}))
		if err != nil {
			e.t.Fatal(err)
		}
		return res.Msg.OperatorsOnline == want
	})
}

func TestPresence_FollowsInboxStreamAndStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	op := e.operator(opAdmin)
	// Signed in is not online: only an open console is.
	e.waitOperatorsOnline(false)

	inbox := watchInbox(t, op)
	e.waitOperatorsOnline(true)

	if err := op.setStatus(ctx, chatv1.OperatorStatus_OPERATOR_STATUS_AWAY); err != nil {
		t.Fatal(err)
	}
	e.waitOperatorsOnline(false)
	if err := op.setStatus(ctx, chatv1.OperatorStatus_OPERATOR_STATUS_ONLINE); err != nil {
		t.Fatal(err)
	}
	e.waitOperatorsOnline(true)
	wantCode(t, op.setStatus(ctx, chatv1.OperatorStatus_OPERATOR_STATUS_OFFLINE), connect.CodeInvalidArgument)

	inbox.Stop()
	inbox.Wait()
	e.waitOperatorsOnline(false)
}

// Signing out (what the account service does on logout or when an operator
// is disabled) sets the operator offline at once and ends their console.
func TestPresence_LogoutSetsOffline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withPresenceGrace(time.Hour)) // offline by the sign-out, not the grace period
	inbox := watchInbox(t, e.operator(opAdmin))
	e.waitOperatorsOnline(true)
	e.svc.SignOut(opAdmin.ID)
	wantCode(t, inbox.Wait(), connect.CodeUnauthenticated)
	e.waitOperatorsOnline(false)
}

// A console that reconnects within the grace period (what the SDK does after
// any cut) and then goes away must still end up offline.
func TestPresence_OfflineAfterReconnectWithinGraceThenLeave(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withPresenceGrace(3*time.Second))
	op := e.operator(opAdmin)
	const ended = "procedure=/lethe.chat.v1.ChatService/WatchInbox"

	first := watchInbox(t, op)
	e.waitOperatorsOnline(true)
	first.Stop()
	first.Wait()
	// Wait until the server has let go of the first stream.
	testkit.WaitLog(t, e.logs, ended, 1)
	// Reconnect within the grace period, then leave for good.
	second := watchInbox(t, op)
	second.Stop()
	second.Wait()
	testkit.WaitLog(t, e.logs, ended, 2)
	e.waitOperatorsOnline(false)
}
