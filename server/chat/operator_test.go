package chat

import (
	"context"
	"slices"
	"testing"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
)

func TestAcceptChat_TakenByAnotherOperatorIsFailedPrecondition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	admin, bob := e.operator(opAdmin), e.operator(opBob)
	v := e.startChat("Uma", "", "first")
	if err := admin.accept(ctx, v.chatID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, bob.accept(ctx, v.chatID), connect.CodeFailedPrecondition)
	// Accepting one's own chat again is harmless and adds no event.
	if err := admin.accept(ctx, v.chatID); err != nil {
		t.Fatalf("second Accept by the same operator: %v", err)
	}
	// Bob may not write in it, type in it or close it either.
	_, err := bob.send(ctx, v.chatID, "hijack")
	wantCode(t, err, connect.CodePermissionDenied)
	wantCode(t, bob.typing(ctx, v.chatID, true), connect.CodePermissionDenied)
	wantCode(t, bob.close(ctx, v.chatID), connect.CodePermissionDenied)
	evs := history(t, v, 3)
	if j := evs[2].GetOperatorJoined(); j.GetOperatorId() != opAdmin.ID {
		t.Fatalf("seq 3 = %v, want the admin joining", evs[2])
	}
	if ev, err := v.send(ctx, "still mine"); err != nil || ev.Seq != 4 {
		t.Fatalf("Send = %v, %v; want seq 4 (the refused calls stored nothing)", ev, err)
	}
}

func TestSendOperatorMessage_UnassignedChatIsPermissionDenied(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	op := e.operator(opAdmin)
	v := e.startChat("Vic", "", "first")
	_, err := op.send(ctx, v.chatID, "before accepting")
	wantCode(t, err, connect.CodePermissionDenied)
	wantCode(t, op.typing(ctx, v.chatID, true), connect.CodePermissionDenied)
	got := texts(history(t, v, 2))
	if !slices.Equal(got, []string{"first"}) {
		t.Fatalf("history = %q", got)
	}
}

func TestCloseChat_AnyOperatorMayCloseWaitingChat(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	op := e.operator(opBob)
	v := e.startChat("Wes", "", "first")
	if err := op.close(ctx, v.chatID); err != nil {
		t.Fatalf("Close of a waiting chat: %v", err)
	}
	e.waitDestroyed(v.chatID)
	wantCode(t, op.accept(ctx, v.chatID), connect.CodeNotFound)
}

func TestTransferChat_ToOfflineOperatorIsFailedPrecondition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	admin := e.operator(opAdmin) // Bob is signed in but has no console open
	v := e.startChat("Xan", "", "first")
	if err := admin.accept(ctx, v.chatID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, admin.transfer(ctx, v.chatID, opBob.ID), connect.CodeFailedPrecondition)
	// Still the admin's chat.
	if _, err := admin.send(ctx, v.chatID, "still here"); err != nil {
		t.Fatalf("Send after a refused transfer: %v", err)
	}
}

func TestTransferChat_ToUnknownOperatorIsNotFound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	admin := e.operator(opAdmin)
	v := e.startChat("Yul", "", "first")
	if err := admin.accept(ctx, v.chatID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, admin.transfer(ctx, v.chatID, "nosuchoperator00"), connect.CodeNotFound)
	wantCode(t, admin.transfer(ctx, v.chatID, opAdmin.ID), connect.CodeInvalidArgument)
	if _, err := admin.send(ctx, v.chatID, "still here"); err != nil {
		t.Fatalf("Send after a refused transfer: %v", err)
	}
}

// The proto promises FAILED_PRECONDITION for a disabled target, even one
// whose console is still connected.
func TestTransferChat_ToDisabledOperatorIsFailedPrecondition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	admin := e.operator(opAdmin)
	adminInbox := watchInbox(t, admin)
	watchInbox(t, e.operator(opBob))
	adminInbox.Next("Bob online", func(r *chatv1.WatchInboxResponse) bool {
		p := r.GetPresence()
		return p.GetOperatorId() == opBob.ID && p.Status == chatv1.OperatorStatus_OPERATOR_STATUS_ONLINE
	})
	v := e.startChat("Zed", "", "first")
	if err := admin.accept(ctx, v.chatID); err != nil {
		t.Fatal(err)
	}
	e.accounts.disable(opBob.ID)
	wantCode(t, admin.transfer(ctx, v.chatID, opBob.ID), connect.CodeFailedPrecondition)
	if _, err := admin.send(ctx, v.chatID, "still here"); err != nil {
		t.Fatalf("Send after a refused transfer: %v", err)
	}
}

func TestTransferChat_ToOnlineOperatorMovesChatWithHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	admin, bob := e.operator(opAdmin), e.operator(opBob)
	adminInbox := watchInbox(t, admin)
	bobInbox := watchInbox(t, bob)
	// The admin's inbox learns that Bob is online.
	adminInbox.Next("Bob online", func(r *chatv1.WatchInboxResponse) bool {
		p := r.GetPresence()
		return p.GetOperatorId() == opBob.ID && p.Status == chatv1.OperatorStatus_OPERATOR_STATUS_ONLINE
	})

	v := e.startChat("Amy", "amy@example.com", "first")
	vs := watchChat(t, v, 0)
	if err := admin.accept(ctx, v.chatID); err != nil {
		t.Fatal(err)
	}
	if _, err := v.send(ctx, "from the visitor"); err != nil { // seq 4
		t.Fatal(err)
	}
	if _, err := admin.send(ctx, v.chatID, "from the admin"); err != nil { // seq 5
		t.Fatal(err)
	}
	adminInbox.Next("admin sees seq 5", inboxEvent(v.chatID, 5))
	// Bob saw it waiting, then taken by someone else.
	bobInbox.Next("waiting in Bob's queue", chatUpdated(v.chatID, chatv1.ChatState_CHAT_STATE_WAITING))
	bobInbox.Next("removed from Bob's queue", isRemoved(v.chatID))
	for _, r := range bobInbox.Rest() {
		if r.GetEvent().GetSeq() > 0 {
			t.Fatalf("Bob saw an event of a chat that is not his: %v", r)
		}
	}

	if err := admin.transfer(ctx, v.chatID, opBob.ID); err != nil {
		t.Fatalf("Transfer: %v", err)
	}
	// Bob's inbox gets the chat with its whole history, in order.
	sum := bobInbox.Next("chat in Bob's list", chatUpdated(v.chatID, chatv1.ChatState_CHAT_STATE_ACTIVE)).GetChatUpdated()
	if sum.OperatorId != opBob.ID || sum.VisitorEmail != "amy@example.com" {
		t.Fatalf("Bob's summary = %v", sum)
	}
	var bobEvents []*chatv1.ChatEvent
	for seq := int64(1); seq <= 7; seq++ {
		bobEvents = append(bobEvents, bobInbox.Next("history for Bob", inboxEvent(v.chatID, seq)).GetEvent())
	}
	if got := texts(bobEvents); !slices.Equal(got, []string{"first", "from the visitor", "from the admin"}) {
		t.Fatalf("Bob's history texts = %q", got)
	}
	if bobEvents[5].GetOperatorLeft().GetOperatorId() != opAdmin.ID || bobEvents[6].GetOperatorJoined().GetOperatorId() != opBob.ID {
		t.Fatalf("seqs 6, 7 = %v, %v; want admin left, Bob joined", bobEvents[5], bobEvents[6])
	}
	// The admin's inbox drops it.
	adminInbox.Next("chat removed from the admin's list", isRemoved(v.chatID))
	// The visitor sees the hand-over.
	left := vs.Next("operator left", isSeq(6)).Event.GetOperatorLeft()
	joined := vs.Next("operator joined", isSeq(7)).Event.GetOperatorJoined()
	if left.GetOperatorName() != "Admin" || joined.GetOperatorName() != "Bob" {
		t.Fatalf("visitor saw left %v, joined %v", left, joined)
	}

	// Now Bob answers and the admin may not.
	if ev, err := bob.send(ctx, v.chatID, "Bob here"); err != nil || ev.Seq != 8 {
		t.Fatalf("Bob Send = %v, %v", ev, err)
	}
	if m := vs.Next("Bob's message", isSeq(8)).Event.GetMessage(); m.GetAuthorName() != "Bob" {
		t.Fatalf("seq 8 = %v", m)
	}
	_, err := admin.send(ctx, v.chatID, "me too")
	wantCode(t, err, connect.CodePermissionDenied)
	for _, r := range adminInbox.Rest() {
		if ev := r.GetEvent(); ev.GetChatId() == v.chatID && ev.Seq > 7 {
			t.Fatalf("the admin still gets events of the transferred chat: %v", ev)
		}
	}
}
