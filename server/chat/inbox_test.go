package chat

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/gen/go/lethe/chat/v1/chatv1connect"
	lethe "github.com/lethehq/lethe/sdk/go"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/internal/testkit"
)

// inboxView is what a console makes of its WatchInbox stream: the chats it
// lists (latest summary each) and the stored events it was given per chat.
type inboxView struct {
	me string

	mu      sync.Mutex
	chats   map[string]*chatv1.ChatSummary
	seqs    map[string][]int64
	updates int  // chat_updated messages received
	ready   bool // the first snapshot is complete
}

func newInboxView(me string) *inboxView {
	return &inboxView{me: me, chats: map[string]*chatv1.ChatSummary{}, seqs: map[string][]int64{}}
}

func (v *inboxView) apply(r *chatv1.WatchInboxResponse) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch k := r.Kind.(type) {
	case *chatv1.WatchInboxResponse_SnapshotDone:
		v.ready = true
	case *chatv1.WatchInboxResponse_ChatUpdated:
		v.updates++
		s := k.ChatUpdated
		if s.State == chatv1.ChatState_CHAT_STATE_WAITING || (s.State == chatv1.ChatState_CHAT_STATE_ACTIVE && s.OperatorId == v.me) {
			v.chats[s.ChatId] = s
		} else {
			delete(v.chats, s.ChatId)
		}
	case *chatv1.WatchInboxResponse_ChatRemoved:
		delete(v.chats, k.ChatRemoved.ChatId)
	case *chatv1.WatchInboxResponse_Event:
		if k.Event.Seq > 0 {
			v.seqs[k.Event.ChatId] = append(v.seqs[k.Event.ChatId], k.Event.Seq)
		}
	}
}

func (v *inboxView) isReady() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.ready
}

// matches tells whether the view lists exactly the chats of want, each with
// the same summary.
func (v *inboxView) matches(want map[string]*chatv1.ChatSummary) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return maps.EqualFunc(v.chats, want, func(a, b *chatv1.ChatSummary) bool { return proto.Equal(a, b) })
}

func (v *inboxView) diff(want map[string]*chatv1.ChatSummary) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var missing, extra, stale int
	for id, w := range want {
		switch g, ok := v.chats[id]; {
		case !ok:
			missing++
		case !proto.Equal(g, w):
			stale++
		}
	}
	for id := range v.chats {
		if _, ok := want[id]; !ok {
			extra++
		}
	}
	return fmt.Sprintf("%d chats missing, %d extra, %d stale of %d", missing, extra, stale, len(want))
}

// checkEvents fails unless the view got each stored event of each chat it
// lists as the operator's exactly once, in order, from seq 1 to the last.
func (v *inboxView) checkEvents(t *testing.T, want map[string]*chatv1.ChatSummary) {
	t.Helper()
	v.mu.Lock()
	defer v.mu.Unlock()
	mine := 0
	for id, s := range want {
		if s.State != chatv1.ChatState_CHAT_STATE_ACTIVE {
			continue
		}
		mine++
		got := v.seqs[id]
		for i, seq := range got {
			if seq != int64(i+1) {
				t.Fatalf("chat %s: events arrived as seqs %v; want 1..%d, each once, in order", id, got, s.LastSeq)
			}
		}
		if int64(len(got)) != s.LastSeq {
			t.Fatalf("chat %s: got events up to seq %d, want up to %d", id, len(got), s.LastSeq)
		}
	}
	if mine == 0 {
		t.Fatal("the operator has no chat of their own: the test checks no events")
	}
}

// inboxTruth reads a fresh WatchInbox snapshot: what the console should
// show once it has caught up.
func (e *env) inboxTruth(op auth.Operator) map[string]*chatv1.ChatSummary {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Wait)
	defer cancel()
	s, err := e.operator(op).chat.WatchInbox(ctx, connect.NewRequest(&chatv1.WatchInboxRequest{}))
	if err != nil {
		e.t.Fatal(err)
	}
	defer s.Close()
	v := newInboxView(op.ID)
	for s.Receive() {
		v.apply(s.Msg())
		if v.ready {
			return v.chats
		}
	}
	e.t.Fatalf("fresh inbox snapshot: %v", s.Err())
	return nil
}

// burst starts n chats from `workers` goroutines while the operator's own
// chat gets a steady conversation. Each chat's visitor writes once more;
// some chats are then accepted by the operator (who writes in them), some
// taken by a colleague, some ended by the visitor. It returns how many
// summaries the account topic carried at least.
func burst(t *testing.T, e *env, n, workers int, own string) int {
	t.Helper()
	ctx := context.Background()
	admin, bob := e.operator(opAdmin), e.operator(opBob)
	var wg sync.WaitGroup
	errc := make(chan error, workers+1)
	stop := make(chan struct{})
	var ownDone sync.WaitGroup
	ownDone.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if _, err := admin.send(ctx, own, fmt.Sprintf("own %d", i)); err != nil {
				errc <- err
				return
			}
			if i%5 == 0 {
				_ = admin.typing(ctx, own, i%10 == 0)
			}
		}
	})
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				v := e.visitor()
				err := v.start(ctx, &chatv1.StartChatRequest{AccountId: acct, VisitorName: fmt.Sprintf("V%d", i), FirstMessage: "hello"})
				if err == nil {
					_, err = v.send(ctx, "still there?")
				}
				if err == nil {
					switch i % 10 {
					case 0:
						if err = admin.accept(ctx, v.chatID); err == nil {
							if _, err = v.send(ctx, "thanks"); err == nil {
								_, err = admin.send(ctx, v.chatID, "welcome")
							}
						}
					case 1:
						err = bob.accept(ctx, v.chatID)
					case 2:
						err = v.end(ctx)
					}
				}
				if err != nil {
					errc <- fmt.Errorf("chat %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	ownDone.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	// Two summaries for each chat (started, second message), more for
	// those accepted, taken or ended.
	return 2*n + 3*(n/10) + n/10 + n/10
}

// Thousands of chats starting at once do not cut off an operator's console
// that reads slowly: the queue is merged per chat while it catches up, it
// ends with every chat's latest state, and the operator's own chats still
// get every event, once, in order.
func TestWatchInbox_BurstOfChatsNeverCutsOffASlowConsole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t) // the default hub buffer
	admin := e.operator(opAdmin)
	own := e.startChat("Own", "", "first")
	if err := admin.accept(ctx, own.chatID); err != nil {
		t.Fatal(err)
	}

	// The console: a small HTTP/2 window, so the server's writes block as
	// soon as it stops reading, and a reader that takes 20 ms over each
	// message while the chats pour in (a browser busy drawing), far slower
	// than they come. A stream that queued every event and summary of
	// every chat would pass the hub's 256 within seconds.
	slow := chatv1connect.NewChatServiceClient(e.smallWindowClient(), e.srv.URL, connect.WithInterceptors(signedIn(opAdmin.ID)))
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := slow.WatchInbox(sctx, connect.NewRequest(&chatv1.WatchInboxRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	view := newInboxView(opAdmin.ID)
	var rush atomic.Bool
	rush.Store(true)
	ended := make(chan error, 1)
	go func() {
		for stream.Receive() {
			view.apply(stream.Msg())
			if rush.Load() {
				time.Sleep(20 * time.Millisecond)
			}
		}
		ended <- stream.Err()
	}()
	testkit.Eventually(t, testkit.Wait, "the console's snapshot", view.isReady)

	const n = 1000
	start := time.Now()
	summaries := burst(t, e, n, 8, own.chatID)
	t.Logf("%d chats started in %v", n, time.Since(start))
	rush.Store(false)

	truth := e.inboxTruth(opAdmin)
	if len(truth) < n/2 {
		t.Fatalf("the fresh snapshot lists %d chats, want over %d", len(truth), n/2)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for !view.matches(truth) {
		select {
		case err := <-ended:
			t.Fatalf("the console's stream ended: %v (%s)", err, view.diff(truth))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the console did not catch up: %s", view.diff(truth))
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case err := <-ended:
		t.Fatalf("the console's stream ended: %v", err)
	default:
	}
	if n := e.logs.Count("procedure=/lethe.chat.v1.ChatService/WatchInbox code=unavailable"); n != 0 {
		t.Fatalf("a WatchInbox stream was cut off %d times", n)
	}
	t.Logf("caught up %v after the burst began", time.Since(start))
	view.checkEvents(t, truth)
	view.mu.Lock()
	updates := view.updates
	view.mu.Unlock()
	t.Logf("%d chats, over %d summaries published, %d chat updates sent to the slow console", n, summaries, updates)
	// The console really fell behind (else this test proves nothing): it
	// was sent fewer updates than were published, the rest merged away.
	if updates >= summaries {
		t.Fatalf("the console got %d updates for %d summaries: it never fell behind", updates, summaries)
	}
}

// A console that stops reading altogether is cut off once its own chats'
// events pass the hub's buffer. Reconnecting (the SDK's resume: a fresh
// snapshot, after the seqs it saw) brings it back to the right state:
// chats that ended or were taken meanwhile are gone, new ones listed, and
// its own chats' events complete, once each, in order.
func TestWatchInbox_StalledConsoleIsCutOffAndResumes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, withHubBuffer(16))
	admin := e.operator(opAdmin)
	own := e.startChat("Own", "", "first")
	if err := admin.accept(ctx, own.chatID); err != nil {
		t.Fatal(err)
	}
	// Chats the console sees before it stalls; some end or are taken
	// while it is stalled.
	var early []*visitor
	for i := range 30 {
		early = append(early, e.startChat(fmt.Sprintf("E%d", i), "", "hello"))
	}

	sdk := lethe.NewOperator(e.smallWindowClient(), e.srv.URL, connect.WithInterceptors(signedIn(opAdmin.ID)))
	view := newInboxView(opAdmin.ID)
	block := make(chan struct{})
	stalled := make(chan struct{})
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		first := true
		errc <- sdk.WatchInbox(wctx, func(r *chatv1.WatchInboxResponse) error {
			view.apply(r)
			if first && r.GetSnapshotDone() != nil {
				first = false
				close(stalled)
				<-block
			}
			return nil
		})
	}()
	select {
	case <-stalled:
	case <-time.After(testkit.Wait):
		t.Fatal("no snapshot")
	}
	// While it does not read: its own chat floods (big messages fill the
	// window, then the hub's buffer), chats come, go and change hands.
	for range 40 {
		if _, err := admin.send(ctx, own.chatID, randomText(3000)); err != nil {
			t.Fatal(err)
		}
	}
	for i, v := range early {
		var err error
		switch i % 3 {
		case 0:
			err = v.end(ctx)
		case 1:
			err = e.operator(opBob).accept(ctx, v.chatID)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 30 {
		v := e.startChat(fmt.Sprintf("L%d", i), "", "hello")
		if i%5 == 0 {
			if err := admin.accept(ctx, v.chatID); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Cut off: its subscription is gone from the account's topic (the
	// handler itself ends once its blocked write gets through).
	testkit.Eventually(t, testkit.Wait, "the stalled console to be cut off", func() bool {
		return e.hub.Subscribers(accountTopic(acct)) == 0
	})
	close(block)
	testkit.WaitLog(t, e.logs, "procedure=/lethe.chat.v1.ChatService/WatchInbox code=unavailable", 1)

	truth := e.inboxTruth(opAdmin)
	testkit.Eventually(t, testkit.Wait, "the resumed console to catch up", func() bool { return view.matches(truth) })
	view.checkEvents(t, truth)
	cancel()
	if err := <-errc; err != nil && ctx.Err() == nil && wctx.Err() == nil {
		t.Fatalf("WatchInbox: %v", err)
	}
}

// The feed keeps only the latest change of each chat, the events of the
// operator's chats only, and refuses (cutting the stream off) past its
// bounds.
func TestInboxFeed_MergesPerChatAndBoundsWhatWaits(t *testing.T) {
	t.Parallel()
	f := newInboxFeed("me", 3)
	f.maxChats = 4
	sum := func(id string, st chatv1.ChatState, op string, seq int64) *chatv1.ChatSummary {
		return &chatv1.ChatSummary{ChatId: id, State: st, OperatorId: op, LastSeq: seq}
	}
	ev := func(id string, seq int64) *chatv1.ChatEvent { return &chatv1.ChatEvent{ChatId: id, Seq: seq} }
	const waiting, active = chatv1.ChatState_CHAT_STATE_WAITING, chatv1.ChatState_CHAT_STATE_ACTIVE
	steps := []any{
		ev("a", 1), sum("a", waiting, "", 1), ev("a", 2), sum("a", waiting, "", 2), // a: events dropped, latest summary
		sum("b", waiting, "", 1), sum("b", active, "me", 2), ev("b", 3), sum("b", active, "me", 3), // b: mine from its summary on
		sum("c", waiting, "", 1), chatRemoved{chatID: "c"}, // c: removed wins
		&chatv1.OperatorPresence{OperatorId: "x", Status: chatv1.OperatorStatus_OPERATOR_STATUS_AWAY},
		&chatv1.OperatorPresence{OperatorId: "x", Status: chatv1.OperatorStatus_OPERATOR_STATUS_ONLINE},
	}
	for i, m := range steps {
		if !f.merge(m) {
			t.Fatalf("step %d refused", i)
		}
	}
	b := f.take()
	if !slices.Equal(b.order, []string{"a", "b", "c"}) {
		t.Fatalf("order %v", b.order)
	}
	if s := b.chats["a"].(*chatv1.ChatSummary); s.LastSeq != 2 {
		t.Fatalf("a: summary at seq %d, want the latest (2)", s.LastSeq)
	}
	if s := b.chats["b"].(*chatv1.ChatSummary); s.LastSeq != 3 || s.State != active {
		t.Fatalf("b: %v, want the latest", s)
	}
	if _, ok := b.chats["c"].(chatRemoved); !ok {
		t.Fatalf("c: %v, want removed", b.chats["c"])
	}
	if len(b.events) != 1 || b.events[0].ChatId != "b" || b.events[0].Seq != 3 {
		t.Fatalf("events %v, want only b's seq 3", b.events)
	}
	if p := b.presence["x"]; len(b.presence) != 1 || p.Status != chatv1.OperatorStatus_OPERATOR_STATUS_ONLINE {
		t.Fatalf("presence %v, want x's latest", b.presence)
	}
	if b2 := f.take(); b2.events != nil || b2.chats != nil || b2.order != nil {
		t.Fatalf("a second take found %+v", b2)
	}

	// A chat adopted from the snapshot is followed, unless a change of it
	// waits (which decided already).
	f.follow("s")
	f.merge(sum("t", waiting, "", 1))
	f.follow("t")
	if !f.merge(ev("s", 5)) || !f.merge(ev("t", 2)) {
		t.Fatal("refused")
	}
	if b := f.take(); len(b.events) != 1 || b.events[0].ChatId != "s" {
		t.Fatalf("events %v, want only s's", b.events)
	}

	// Bounds: events of own chats beyond maxEvents, chats beyond maxChats.
	for i := range 3 {
		if !f.merge(ev("b", int64(10+i))) {
			t.Fatalf("event %d refused below the bound", i)
		}
	}
	if f.merge(ev("b", 13)) {
		t.Fatal("an event beyond the bound was accepted")
	}
	g := newInboxFeed("me", 3)
	g.maxChats = 2
	for i, id := range []string{"p", "q", "p", "q"} {
		if !g.merge(sum(id, waiting, "", int64(i))) {
			t.Fatalf("change %d of a waiting chat refused", i)
		}
	}
	if g.merge(sum("r", waiting, "", 1)) {
		t.Fatal("a third chat was accepted beyond the bound of 2")
	}
}
