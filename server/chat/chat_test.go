package chat

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	lethe "github.com/lethehq/lethe/sdk/go"
	"github.com/lethehq/lethe/server/internal/testkit"
)

func TestChat_FullFlowBetweenVisitorAndOperator(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	op := e.operator(opAdmin)
	inbox := watchInbox(t, op)

	v := e.startChat("Ada", "ada@example.com", "Hello, is anyone there?")
	queued := inbox.Next("waiting chat in the inbox", chatUpdated(v.chatID, chatv1.ChatState_CHAT_STATE_WAITING)).GetChatUpdated()
	if queued.VisitorName != "Ada" || queued.VisitorEmail != "ada@example.com" || queued.LastSeq != 2 {
		t.Fatalf("queued summary = %v", queued)
	}

	vs := watchChat(t, v, 0)
	started := vs.Next("seq 1", isSeq(1))
	if started.Event.GetStarted().GetVisitorName() != "Ada" || started.State != chatv1.ChatState_CHAT_STATE_WAITING {
		t.Fatalf("first event = %v", started)
	}
	if m := vs.Next("seq 2", isSeq(2)).Event.GetMessage(); m.GetText() != "Hello, is anyone there?" || m.AuthorKind != chatv1.AuthorKind_AUTHOR_KIND_VISITOR {
		t.Fatalf("second event = %v", m)
	}

	if err := op.accept(ctx, v.chatID); err != nil {
		t.Fatalf("Accept: %v", err)
	}
	joined := vs.Next("operator joined", isSeq(3))
	if joined.Event.GetOperatorJoined().GetOperatorName() != "Admin" || joined.State != chatv1.ChatState_CHAT_STATE_ACTIVE {
		t.Fatalf("seq 3 = %v, want operator_joined with state ACTIVE", joined)
	}
	inbox.Next("chat active in the inbox", chatUpdated(v.chatID, chatv1.ChatState_CHAT_STATE_ACTIVE))
	// Adopting the chat replays its history into the inbox.
	for seq := int64(1); seq <= 3; seq++ {
		inbox.Next("history event", inboxEvent(v.chatID, seq))
	}

	// Messages both ways reach both streams with increasing seq.
	ev, err := v.send(ctx, "I have a question")
	if err != nil || ev.Seq != 4 {
		t.Fatalf("visitor Send = %v, %v; want seq 4", ev, err)
	}
	ev, err = op.send(ctx, v.chatID, "Ask away")
	if err != nil || ev.Seq != 5 {
		t.Fatalf("operator Send = %v, %v; want seq 5", ev, err)
	}
	for _, want := range []struct {
		seq  int64
		text string
		kind chatv1.AuthorKind
	}{{4, "I have a question", chatv1.AuthorKind_AUTHOR_KIND_VISITOR}, {5, "Ask away", chatv1.AuthorKind_AUTHOR_KIND_OPERATOR}} {
		vm := vs.Next("message on the visitor stream", isSeq(want.seq)).Event.GetMessage()
		im := inbox.Next("message on the inbox", inboxEvent(v.chatID, want.seq)).GetEvent().GetMessage()
		for _, m := range []*chatv1.Message{vm, im} {
			if m.GetText() != want.text || m.GetAuthorKind() != want.kind {
				t.Fatalf("seq %d = %v, want %q by %v", want.seq, m, want.text, want.kind)
			}
		}
	}

	// Typing reaches the other side, unsequenced.
	if err := v.typing(ctx, true); err != nil {
		t.Fatalf("visitor Typing: %v", err)
	}
	typing := inbox.Next("visitor typing", func(r *chatv1.WatchInboxResponse) bool {
		return r.GetEvent().GetTyping().GetAuthorKind() == chatv1.AuthorKind_AUTHOR_KIND_VISITOR
	}).GetEvent()
	if typing.Seq != 0 || !typing.GetTyping().Typing || typing.ChatId != v.chatID {
		t.Fatalf("visitor typing on the inbox = %v", typing)
	}
	if err := op.typing(ctx, v.chatID, true); err != nil {
		t.Fatalf("operator Typing: %v", err)
	}
	otyping := vs.Next("operator typing", func(r *chatv1.WatchChatResponse) bool {
		return r.Event.GetTyping().GetAuthorKind() == chatv1.AuthorKind_AUTHOR_KIND_OPERATOR
	}).Event
	if otyping.Seq != 0 || !otyping.GetTyping().Typing || otyping.GetTyping().AuthorName != "Admin" {
		t.Fatalf("operator typing on the visitor stream = %v", otyping)
	}

	// The operator closes: the visitor's stream ends (cleanly) after the
	// closed event.
	if err := op.close(ctx, v.chatID); err != nil {
		t.Fatalf("Close: %v", err)
	}
	closed := vs.Next("closed event", isClosed)
	if closed.Event.Seq != 6 || closed.State != chatv1.ChatState_CHAT_STATE_CLOSED ||
		closed.Event.GetClosed().ClosedBy != chatv1.AuthorKind_AUTHOR_KIND_OPERATOR {
		t.Fatalf("closed event = %v", closed)
	}
	if err := vs.Wait(); err != nil {
		t.Fatalf("visitor Watch after close = %v, want nil", err)
	}
	inbox.Next("chat removed from the inbox", isRemoved(v.chatID))

	// Then the chat is destroyed; the token can no longer send.
	e.waitDestroyed(v.chatID)
	cfg, err := v.chat.GetWidgetConfig(ctx, connect.NewRequest(&chatv1.GetWidgetConfigRequest{AccountId: acct}))
	if err != nil || cfg.Msg.AccountName != accountName {
		t.Fatalf("GetWidgetConfig after destruction = %v, %v", cfg, err)
	}
	_, err = v.send(ctx, "are you still there?")
	wantCode(t, err, connect.CodeFailedPrecondition)
	// Watching a destroyed chat says it is closed and ends.
	after := watchChat(t, v, 0)
	if r := after.Next("closed", isClosed); r.State != chatv1.ChatState_CHAT_STATE_CLOSED {
		t.Fatalf("watch of a destroyed chat = %v", r)
	}
	if err := after.Wait(); err != nil {
		t.Fatalf("watch of a destroyed chat = %v, want nil", err)
	}
	// The operator cannot reach it either.
	_, err = op.send(ctx, v.chatID, "hello?")
	wantCode(t, err, connect.CodeNotFound)
}

func TestVisitorEndChat_ClosesAndDestroys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	v := e.startChat("Bo", "", "hi")
	vs := watchChat(t, v, 0)
	vs.Next("seq 2", isSeq(2))
	if err := v.end(ctx); err != nil {
		t.Fatalf("End: %v", err)
	}
	closed := vs.Next("closed", isClosed)
	if closed.Event.Seq != 3 || closed.Event.GetClosed().ClosedBy != chatv1.AuthorKind_AUTHOR_KIND_VISITOR {
		t.Fatalf("closed = %v", closed)
	}
	if err := vs.Wait(); err != nil {
		t.Fatalf("Watch = %v, want nil", err)
	}
	e.waitDestroyed(v.chatID)
	// Ending again is a no-op.
	if err := v.end(ctx); err != nil {
		t.Fatalf("second End = %v, want nil", err)
	}
}

func TestWatchChat_ResumeDeliversExactlyWhatWasMissed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	op := e.operator(opAdmin)
	v := e.startChat("Cy", "", "first")
	if err := op.accept(ctx, v.chatID); err != nil {
		t.Fatal(err)
	}
	send := func(i int) {
		t.Helper()
		var err error
		if i%2 == 0 {
			_, err = v.send(ctx, "visitor "+string(rune('a'+i)))
		} else {
			_, err = op.send(ctx, v.chatID, "operator "+string(rune('a'+i)))
		}
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	for i := range 4 {
		send(i)
	} // seqs 1..7

	// A stream reads part of the chat, then the connection drops.
	sctx, cancel := context.WithCancel(ctx)
	stream, err := v.watch(sctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []*chatv1.ChatEvent
	for stream.Receive() {
		if ev := stream.Msg().Event; ev.Seq > 0 {
			got = append(got, ev)
			if ev.Seq == 5 {
				break
			}
		}
	}
	cancel()
	stream.Close()
	last := got[len(got)-1].Seq

	for i := 4; i < 10; i++ {
		send(i)
	} // seqs 8..13 while disconnected

	stream, err = v.watch(ctx, last)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	var resumed []*chatv1.ChatEvent
	for stream.Receive() {
		if ev := stream.Msg().Event; ev.Seq > 0 {
			resumed = append(resumed, ev)
			if ev.Seq == 13 {
				// Everything missed has arrived; now the chat goes on live.
				if err := op.close(ctx, v.chatID); err != nil { // seq 14
					t.Fatal(err)
				}
			}
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("resumed stream ended with %v, want a clean end after the closed event", err)
	}
	checkSeqs(t, resumed, last+1, 14)
	checkSeqs(t, append(got, resumed...), 1, 14)
	if resumed[len(resumed)-1].GetClosed() == nil {
		t.Fatalf("last event = %v, want closed", resumed[len(resumed)-1])
	}
}

func TestWatchChat_LiveEventsFollowBacklogWithoutGapOrRepeat(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	op := e.operator(opAdmin)
	v := e.startChat("Di", "", "first")
	if err := op.accept(ctx, v.chatID); err != nil {
		t.Fatal(err)
	}
	// Messages are sent while streams connect, so each stream sees some of
	// them in the backlog and some live: every stream must see 1..N once.
	const n = 40
	const last = 3 + n
	const streams = 4
	results := make(chan []*chatv1.ChatEvent, streams)
	errc := make(chan error, streams)
	wctx, cancel := context.WithTimeout(ctx, testkit.Wait*2)
	defer cancel()
	for range streams {
		go func() {
			stream, err := v.watch(wctx, 0)
			if err != nil {
				errc <- err
				return
			}
			defer stream.Close()
			var evs []*chatv1.ChatEvent
			for stream.Receive() {
				if ev := stream.Msg().Event; ev.Seq > 0 {
					evs = append(evs, ev)
					if ev.Seq == last {
						results <- evs
						return
					}
				}
			}
			errc <- fmt.Errorf("stream ended after %d events: %w", len(evs), stream.Err())
		}()
	}
	for range n {
		if _, err := op.send(ctx, v.chatID, "m"); err != nil {
			t.Fatal(err)
		}
	}
	for range streams {
		select {
		case evs := <-results:
			checkSeqs(t, evs, 1, last)
		case err := <-errc:
			t.Fatalf("stream: %v", err)
		}
	}
}

// A stream that stops reading must not hold up the chat: it is cut off and
// resumes from its last sequence number.
func TestWatchChat_SlowSubscriberDoesNotBlockSenderAndResumes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, withHubBuffer(4))
	op := e.operator(opAdmin)
	v := e.startChat("Ed", "", "first")
	if err := op.accept(ctx, v.chatID); err != nil {
		t.Fatal(err)
	}

	// The stalled stream gets its own connection with a small HTTP/2
	// receive window, so the server's writes block once it is full.
	slow := e.visitor(e.smallWindowClient())
	slow.token, slow.chatID = v.token, v.chatID
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stalled, err := slow.watch(sctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	// Wait until the server has subscribed the stream to the chat.
	if !stalled.Receive() {
		t.Fatalf("stalled stream: %v", stalled.Err())
	}
	received := []*chatv1.ChatEvent{stalled.Msg().Event}

	// Operators have no rate limit. Big messages fill the window quickly.
	const n = 200
	text := randomText(4000) // incompressible, so the window fills
	sendCtx, sendCancel := context.WithTimeout(ctx, 90*time.Second)
	defer sendCancel()
	for i := range n {
		if _, err := op.send(sendCtx, v.chatID, text); err != nil {
			t.Fatalf("send %d with a stalled subscriber: %v", i, err)
		}
	}
	const last = 3 + n

	// Reading the stalled stream now gives what was buffered, then the cut.
	for stalled.Receive() {
		received = append(received, stalled.Msg().Event)
	}
	if err := stalled.Err(); connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("stalled stream ended with %v, want Unavailable", err)
	}
	if len(received) == 0 || received[len(received)-1].Seq >= last {
		t.Fatalf("stalled stream got %d events up to the end: it was never cut off", len(received))
	}
	stalled.Close()

	// Resume after the last seq seen.
	rctx, rcancel := context.WithTimeout(ctx, testkit.Wait*2)
	defer rcancel()
	resume, err := v.watch(rctx, received[len(received)-1].Seq)
	if err != nil {
		t.Fatal(err)
	}
	defer resume.Close()
	for resume.Receive() {
		ev := resume.Msg().Event
		received = append(received, ev)
		if ev.Seq == last {
			break
		}
	}
	checkSeqs(t, received, 1, last)
	for _, ev := range received[3:] {
		if ev.GetMessage().GetText() != text {
			t.Fatalf("seq %d lost its text", ev.Seq)
		}
	}
}

// The SDK's Watch hides the cut-off: it resumes by itself and passes each
// stored event once.
func TestVisitorWatch_SDKResumesAfterCutOff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, withHubBuffer(2))
	op := e.operator(opAdmin)
	v := e.startChat("Flo", "", "first")
	if err := op.accept(ctx, v.chatID); err != nil {
		t.Fatal(err)
	}
	// An SDK visitor on a connection with a small receive window, whose
	// handler stalls after the history while messages pile up.
	sv := lethe.NewVisitor(e.smallWindowClient(), e.srv.URL)
	sv.Token, sv.ChatID = v.token, v.chatID
	block := make(chan struct{})
	var got []*chatv1.ChatEvent
	progress := make(chan int64, 1024)
	errc := make(chan error, 1)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		errc <- sv.Watch(wctx, 0, func(r *chatv1.WatchChatResponse) error {
			if r.Event.Seq == 3 {
				<-block
			}
			if r.Event.Seq > 0 {
				got = append(got, r.Event)
				progress <- r.Event.Seq
			}
			return nil
		})
	}()
	const n = 60
	// Close only once the watcher caught up: a closed chat is destroyed at
	// once, so there would be nothing left to resume from.
	floodWhileBlocked(t, op, v.chatID, n, block, progress, errc, "Watch")
	if err := op.close(ctx, v.chatID); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Watch = %v, want nil after the closed event", err)
		}
	case <-time.After(testkit.Wait):
		t.Fatal("Watch did not end")
	}
	checkSeqs(t, got, 1, 3+n+1)
	// The scenario really cut the stream off (else this test proves nothing).
	if !strings.Contains(e.logs.String(), "procedure=/lethe.chat.v1.ChatService/WatchChat code=unavailable") {
		t.Fatal("the stalled Watch was never cut off")
	}
}

// An operator's inbox stream that reconnects (SDK resume) gets only what it
// missed of its chats.
func TestWatchInbox_ResumeDeliversOnlyMissedEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, withHubBuffer(2))
	op := e.operator(opAdmin)
	v := e.startChat("Bea", "", "first")
	if err := op.accept(ctx, v.chatID); err != nil {
		t.Fatal(err)
	}
	// An SDK inbox on a small-window connection whose reader stalls after
	// the history, so the server cuts it off and the SDK resumes.
	slowOp := lethe.NewOperator(e.smallWindowClient(), e.srv.URL, connect.WithInterceptors(signedIn(opAdmin.ID)))
	block := make(chan struct{})
	progress := make(chan int64, 1024)
	var got []int64
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- slowOp.WatchInbox(wctx, func(r *chatv1.WatchInboxResponse) error {
			if ev := r.GetEvent(); ev.GetChatId() == v.chatID && ev.Seq > 0 {
				if ev.Seq == 3 {
					<-block
				}
				got = append(got, ev.Seq)
				progress <- ev.Seq
			}
			return nil
		})
	}()
	const n = 60 + 2*inboxEventsPerBuffer // past the inbox's bound on its own chats' events
	floodWhileBlocked(t, op, v.chatID, n, block, progress, errc, "WatchInbox")
	cancel()
	<-errc
	want := make([]int64, 3+n)
	for i := range want {
		want[i] = int64(i + 1)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("inbox got seqs %v, want 1..%d once each", got, 3+n)
	}
	if !strings.Contains(e.logs.String(), "procedure=/lethe.chat.v1.ChatService/WatchInbox code=unavailable") {
		t.Fatal("the stalled inbox was never cut off")
	}
}

// floodWhileBlocked has op send n long messages into a chat whose watcher
// is stalled (it waits on block after seq 3, so the server cuts it off),
// then unblocks it and waits until it reported seq 3+n through progress.
func floodWhileBlocked(t *testing.T, op *operator, chatID string, n int, block chan struct{}, progress <-chan int64, errc <-chan error, what string) {
	t.Helper()
	for range n {
		if _, err := op.send(context.Background(), chatID, randomText(3000)); err != nil {
			t.Fatal(err)
		}
	}
	close(block)
	timeout := time.After(testkit.Wait * 2)
	for caughtUp := false; !caughtUp; {
		select {
		case seq := <-progress:
			caughtUp = seq == int64(3+n)
		case err := <-errc:
			t.Fatalf("%s ended early: %v", what, err)
		case <-timeout:
			t.Fatalf("%s did not catch up", what)
		}
	}
}
