package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	lethe "github.com/lethehq/lethe/sdk/go"
)

func TestAcceptChat_TakenByAnotherOperatorIsFailedPrecondition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	admin := ts.admin()
	bob := ts.createOperator(admin, "bob@example.com", "Bob")
	v := ts.startChat("Uma", "", "first")
	if err := admin.Accept(ctx, v.ChatID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, bob.Accept(ctx, v.ChatID), connect.CodeFailedPrecondition)
	// Accepting one's own chat again is harmless and adds no event.
	if err := admin.Accept(ctx, v.ChatID); err != nil {
		t.Fatalf("second Accept by the same operator: %v", err)
	}
	// Bob may not write in it, type in it or close it either.
	_, err := bob.Send(ctx, v.ChatID, "hijack")
	wantCode(t, err, connect.CodePermissionDenied)
	wantCode(t, bob.Typing(ctx, v.ChatID, true), connect.CodePermissionDenied)
	wantCode(t, bob.Close(ctx, v.ChatID), connect.CodePermissionDenied)
	evs := history(t, v, 3)
	if j := evs[2].GetOperatorJoined(); j.GetOperatorId() != admin.Me.Id {
		t.Fatalf("seq 3 = %v, want the admin joining", evs[2])
	}
	if ev, err := v.Send(ctx, "still mine"); err != nil || ev.Seq != 4 {
		t.Fatalf("Send = %v, %v; want seq 4 (the refused calls stored nothing)", ev, err)
	}
}

func TestSendOperatorMessage_UnassignedChatIsPermissionDenied(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	op := ts.admin()
	v := ts.startChat("Vic", "", "first")
	_, err := op.Send(ctx, v.ChatID, "before accepting")
	wantCode(t, err, connect.CodePermissionDenied)
	wantCode(t, op.Typing(ctx, v.ChatID, true), connect.CodePermissionDenied)
	got := texts(history(t, v, 2))
	if !slices.Equal(got, []string{"first"}) {
		t.Fatalf("history = %q", got)
	}
}

func TestCloseChat_AnyOperatorMayCloseWaitingChat(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	op := ts.admin()
	v := ts.startChat("Wes", "", "first")
	if err := op.Close(ctx, v.ChatID); err != nil {
		t.Fatalf("Close of a waiting chat: %v", err)
	}
	ts.waitDestroyed(v.ChatID)
	wantCode(t, op.Accept(ctx, v.ChatID), connect.CodeNotFound)
}

func TestTransferChat_ToOfflineOperatorIsFailedPrecondition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	admin := ts.admin()
	bob := ts.createOperator(admin, "bob@example.com", "Bob") // signed in, no console open
	v := ts.startChat("Xan", "", "first")
	if err := admin.Accept(ctx, v.ChatID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, admin.Transfer(ctx, v.ChatID, bob.Me.Id), connect.CodeFailedPrecondition)
	// Still the admin's chat.
	if _, err := admin.Send(ctx, v.ChatID, "still here"); err != nil {
		t.Fatalf("Send after a refused transfer: %v", err)
	}
}

func TestTransferChat_ToUnknownOperatorIsNotFound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	admin := ts.admin()
	v := ts.startChat("Yul", "", "first")
	if err := admin.Accept(ctx, v.ChatID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, admin.Transfer(ctx, v.ChatID, "nosuchoperator00"), connect.CodeNotFound)
	wantCode(t, admin.Transfer(ctx, v.ChatID, admin.Me.Id), connect.CodeInvalidArgument)
	if _, err := admin.Send(ctx, v.ChatID, "still here"); err != nil {
		t.Fatalf("Send after a refused transfer: %v", err)
	}
}

// The proto promises FAILED_PRECONDITION for a disabled target.
func TestTransferChat_ToDisabledOperatorIsFailedPrecondition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	admin := ts.admin()
	bob := ts.createOperator(admin, "bob@example.com", "Bob")
	watchInbox(t, bob)
	v := ts.startChat("Zed", "", "first")
	if err := admin.Accept(ctx, v.ChatID); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Account.SetOperatorDisabled(ctx, connect.NewRequest(&accountv1.SetOperatorDisabledRequest{OperatorId: bob.Me.Id, Disabled: true})); err != nil {
		t.Fatal(err)
	}
	wantCode(t, admin.Transfer(ctx, v.ChatID, bob.Me.Id), connect.CodeFailedPrecondition)
}

func TestTransferChat_ToOnlineOperatorMovesChatWithHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	admin := ts.admin()
	bob := ts.createOperator(admin, "bob@example.com", "Bob")
	adminInbox := watchInbox(t, admin)
	bobInbox := watchInbox(t, bob)
	// The admin's inbox learns that Bob is online.
	adminInbox.next("Bob online", func(r *chatv1.WatchInboxResponse) bool {
		p := r.GetPresence()
		return p.GetOperatorId() == bob.Me.Id && p.Status == chatv1.OperatorStatus_OPERATOR_STATUS_ONLINE
	})

	v := ts.startChat("Amy", "amy@example.com", "first")
	vs := watchChat(t, v, 0)
	if err := admin.Accept(ctx, v.ChatID); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Send(ctx, "from the visitor"); err != nil { // seq 4
		t.Fatal(err)
	}
	if _, err := admin.Send(ctx, v.ChatID, "from the admin"); err != nil { // seq 5
		t.Fatal(err)
	}
	adminInbox.next("admin sees seq 5", inboxEvent(v.ChatID, 5))
	// Bob saw it waiting, then taken by someone else.
	bobInbox.next("waiting in Bob's queue", chatUpdated(v.ChatID, chatv1.ChatState_CHAT_STATE_WAITING))
	bobInbox.next("removed from Bob's queue", chatRemoved(v.ChatID))
	for _, r := range bobInbox.rest() {
		if r.GetEvent().GetSeq() > 0 {
			t.Fatalf("Bob saw an event of a chat that is not his: %v", r)
		}
	}

	if err := admin.Transfer(ctx, v.ChatID, bob.Me.Id); err != nil {
		t.Fatalf("Transfer: %v", err)
	}
	// Bob's inbox gets the chat with its whole history, in order.
	sum := bobInbox.next("chat in Bob's list", chatUpdated(v.ChatID, chatv1.ChatState_CHAT_STATE_ACTIVE)).GetChatUpdated()
	if sum.OperatorId != bob.Me.Id || sum.VisitorEmail != "amy@example.com" {
		t.Fatalf("Bob's summary = %v", sum)
	}
	var bobEvents []*chatv1.ChatEvent
	for seq := int64(1); seq <= 7; seq++ {
		bobEvents = append(bobEvents, bobInbox.next("history for Bob", inboxEvent(v.ChatID, seq)).GetEvent())
	}
	if got := texts(bobEvents); !slices.Equal(got, []string{"first", "from the visitor", "from the admin"}) {
		t.Fatalf("Bob's history texts = %q", got)
	}
	if bobEvents[5].GetOperatorLeft().GetOperatorId() != admin.Me.Id || bobEvents[6].GetOperatorJoined().GetOperatorId() != bob.Me.Id {
		t.Fatalf("seqs 6, 7 = %v, %v; want admin left, Bob joined", bobEvents[5], bobEvents[6])
	}
	// The admin's inbox drops it.
	adminInbox.next("chat removed from the admin's list", chatRemoved(v.ChatID))
	// The visitor sees the hand-over.
	left := vs.next("operator left", isSeq(6)).Event.GetOperatorLeft()
	joined := vs.next("operator joined", isSeq(7)).Event.GetOperatorJoined()
	if left.GetOperatorName() != "Admin" || joined.GetOperatorName() != "Bob" {
		t.Fatalf("visitor saw left %v, joined %v", left, joined)
	}

	// Now Bob answers and the admin may not.
	if ev, err := bob.Send(ctx, v.ChatID, "Bob here"); err != nil || ev.Seq != 8 {
		t.Fatalf("Bob Send = %v, %v", ev, err)
	}
	if m := vs.next("Bob's message", isSeq(8)).Event.GetMessage(); m.GetAuthorName() != "Bob" {
		t.Fatalf("seq 8 = %v", m)
	}
	_, err := admin.Send(ctx, v.ChatID, "me too")
	wantCode(t, err, connect.CodePermissionDenied)
	for _, r := range adminInbox.rest() {
		if e := r.GetEvent(); e.GetChatId() == v.ChatID && e.Seq > 7 {
			t.Fatalf("the admin still gets events of the transferred chat: %v", e)
		}
	}
}

// An operator's inbox stream that reconnects (SDK resume) gets only what it
// missed of its chats.
func TestWatchInbox_ResumeDeliversOnlyMissedEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t, withHubBuffer(2))
	op := ts.admin()
	v := ts.startChat("Bea", "", "first")
	if err := op.Accept(ctx, v.ChatID); err != nil {
		t.Fatal(err)
	}
	// An inbox on a small-window connection whose reader stalls after the
	// history, so the server cuts it off and the SDK resumes.
	slowOp := lethe.NewOperator(ts.smallWindowClient(), ts.URL)
	if err := slowOp.Login(ctx, adminEmail, adminPassword); err != nil {
		t.Fatal(err)
	}
	block := make(chan struct{})
	progress := make(chan int64, 1024)
	var got []int64
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- slowOp.WatchInbox(wctx, func(r *chatv1.WatchInboxResponse) error {
			if e := r.GetEvent(); e.GetChatId() == v.ChatID && e.Seq > 0 {
				if e.Seq == 3 {
					<-block
				}
				got = append(got, e.Seq)
				progress <- e.Seq
			}
			return nil
		})
	}()
	const n = 60
	for range n {
		if _, err := op.Send(ctx, v.ChatID, randomText(3000)); err != nil {
			t.Fatal(err)
		}
	}
	close(block)
	timeout := time.After(waitTimeout * 2)
	for caughtUp := false; !caughtUp; {
		select {
		case seq := <-progress:
			caughtUp = seq == 3+n
		case err := <-errc:
			t.Fatalf("WatchInbox ended: %v", err)
		case <-timeout:
			t.Fatal("WatchInbox did not catch up")
		}
	}
	cancel()
	<-errc
	want := make([]int64, 3+n)
	for i := range want {
		want[i] = int64(i + 1)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("inbox got seqs %v, want 1..%d once each", got, 3+n)
	}
	if !strings.Contains(ts.logs.String(), "procedure=/lethe.chat.v1.ChatService/WatchInbox code=unavailable") {
		t.Fatal("the stalled inbox was never cut off")
	}
}
