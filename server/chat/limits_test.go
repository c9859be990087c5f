package chat

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	lethe "github.com/lethehq/lethe/sdk/go"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/guard"
	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/limit"
	"github.com/lethehq/lethe/server/mail/mailtest"
)

// Limits on anonymous clients, per client address (behind a trusted proxy
// each forwarded address is a client of its own) and per visitor.

const (
	addrA = "203.0.113.10"
	addrB = "198.51.100.20"
)

// from returns a visitor with no chat yet whose requests come from addr.
func (e *env) from(addr string) *visitor {
	v := e.visitor()
	v.xff = addr
	return v
}

func (v *visitor) startFirst(ctx context.Context, first string) error {
	return v.start(ctx, &chatv1.StartChatRequest{AccountId: acct, VisitorName: "Vic", FirstMessage: first})
}

// wantThrottled fails unless err is ResourceExhausted naming want, with a
// retry hint.
func wantThrottled(t *testing.T, what string, err error, want string) {
	t.Helper()
	wantExhausted(t, what, err, want)
	if lethe.RetryHint(err) <= 0 {
		t.Fatalf("%s: no retry hint in %v", what, err)
	}
}

// wantExhausted fails unless err is ResourceExhausted naming want.
func wantExhausted(t *testing.T, what string, err error, want string) {
	t.Helper()
	wantCode(t, err, connect.CodeResourceExhausted)
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("%s: %q does not name the limit %q", what, err, want)
	}
}

func TestStartChat_ChatsStartedPerAddressAreRateLimited(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, behindProxy(), withLimits(func(l *Limits) { l.StartsPerAddr = limit.Rate{N: 3, Per: time.Hour} }))
	for i := range 3 {
		v := e.from(addrA)
		if err := v.startFirst(ctx, "hello"); err != nil {
			t.Fatalf("chat %d of 3: %v", i+1, err)
		}
		// Ended chats count too: the limit is on starting them.
		if err := v.end(ctx); err != nil {
			t.Fatal(err)
		}
	}
	err := e.from(addrA).startFirst(ctx, "hello")
	wantThrottled(t, "fourth chat from one address", err, "chats started (at most 3 per 1h per client address)")
	if r := lethe.RetryHint(err); r < 10*time.Minute || r > 20*time.Minute {
		t.Fatalf("retry hint %v, want the 20 minutes one more start takes to refill", r)
	}
	if err := e.from(addrB).startFirst(ctx, "hello"); err != nil {
		t.Fatalf("another address after one was limited: %v", err)
	}
}

func TestStartChat_OpenChatsPerAddressAreCappedUntilOneCloses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, behindProxy(), withLimits(func(l *Limits) { l.OpenPerAddr = 3 }))
	admin := e.operator(opAdmin)
	var open []*visitor
	for range 3 {
		v := e.from(addrA)
		if err := v.startFirst(ctx, "hello"); err != nil {
			t.Fatal(err)
		}
		open = append(open, v)
	}
	wantExhausted(t, "fourth open chat", e.from(addrA).startFirst(ctx, "hello"), "at most 3 open chats per client address")
	if err := e.from(addrB).startFirst(ctx, "hello"); err != nil {
		t.Fatalf("another address after one reached its ceiling: %v", err)
	}

	// The visitor ends one: a slot is free, and only one.
	if err := open[0].end(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.from(addrA).startFirst(ctx, "after an end"); err != nil {
		t.Fatalf("start after a chat ended: %v", err)
	}
	wantExhausted(t, "past the ceiling again", e.from(addrA).startFirst(ctx, "hello"), "open chats")

	// An operator closes one, after accepting it: so is a slot.
	if err := admin.accept(ctx, open[1].chatID); err != nil {
		t.Fatal(err)
	}
	if err := admin.close(ctx, open[1].chatID); err != nil {
		t.Fatal(err)
	}
	e.waitDestroyed(open[1].chatID)
	if err := e.from(addrA).startFirst(ctx, "after a close"); err != nil {
		t.Fatalf("start after an operator closed a chat: %v", err)
	}
	if n := e.svc.open.len(); n != 4 {
		t.Fatalf("%d chats hold a slot, want the 4 open ones (3 of one address, 1 of another)", n)
	}
}

// A flood of chats from one address puts no more than its ceiling into the
// operators' queue, and a real visitor from elsewhere is still seen.
func TestStartChat_FloodFromOneAddressLeavesOnlyTheCeilingQueued(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, behindProxy(), withLimits(func(l *Limits) { *l = DefaultLimits() }))
	ceiling := DefaultLimits().OpenPerAddr
	var accepted, refused atomic.Int64
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range 16 {
		wg.Go(func() {
			for range jobs {
				err := e.from(addrA).startFirst(ctx, "flood")
				switch {
				case err == nil:
					accepted.Add(1)
				case errs.CodeOf(err) == connect.CodeResourceExhausted || connect.CodeOf(err) == connect.CodeResourceExhausted:
					refused.Add(1)
				default:
					t.Errorf("StartChat: %v", err)
				}
			}
		})
	}
	for i := range 1000 {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if accepted.Load() != int64(ceiling) || refused.Load() != 1000-int64(ceiling) {
		t.Fatalf("1,000 starts from one address: %d accepted, %d refused; want %d accepted", accepted.Load(), refused.Load(), ceiling)
	}
	real := e.from(addrB)
	if err := real.startFirst(ctx, "a real question"); err != nil {
		t.Fatal(err)
	}
	// An operator's queue, as a console opening now shows it.
	inbox := watchInbox(t, e.operator(opBob))
	waiting := map[string]bool{}
	for _, m := range inbox.Seen {
		if s := m.GetChatUpdated(); s != nil && s.State == chatv1.ChatState_CHAT_STATE_WAITING {
			waiting[s.ChatId] = true
		}
	}
	if len(waiting) != ceiling+1 || !waiting[real.chatID] {
		t.Fatalf("the queue holds %d chats (the real visitor's: %v), want the %d of the flood and the real one", len(waiting), waiting[real.chatID], ceiling)
	}
}

func TestSendMessage_MessagesPerAddressCountEveryVisitorToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, behindProxy(), withLimits(func(l *Limits) { l.MessagesPerAddr = limit.Rate{N: 12, Per: time.Minute} }))
	var vs []*visitor
	for range 4 {
		v := e.from(addrA)
		if err := v.startFirst(ctx, "hello"); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	// Four tokens, three messages each: the address's twelve.
	for i := range 12 {
		if _, err := vs[i%4].send(ctx, fmt.Sprint("message ", i)); err != nil {
			t.Fatalf("message %d of 12: %v", i+1, err)
		}
	}
	_, err := vs[0].send(ctx, "one more")
	wantThrottled(t, "thirteenth message from one address", err, "messages (at most 12 per 1m per client address)")
	// The same visitor from another address is not limited by it, nor is
	// a visitor of another address.
	vs[0].xff = addrB
	if _, err := vs[0].send(ctx, "from the other address"); err != nil {
		t.Fatalf("the visitor moved to another address: %v", err)
	}
	// The refused message was not stored.
	want := []string{"hello", "message 0", "message 4", "message 8", "from the other address"}
	if got := texts(history(t, vs[0], 6)); !slices.Equal(got, want) {
		t.Fatalf("history = %q, want %q", got, want)
	}
	w := e.from(addrB)
	if err := w.startFirst(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.send(ctx, "unaffected"); err != nil {
		t.Fatalf("another address: %v", err)
	}
}

func TestSendMessage_PerVisitorRefusalNamesTheLimitAndWhenToRetry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, withLimits(func(l *Limits) { l.MessagesPerVisitor = limit.Rate{N: 2, Per: time.Minute} }))
	v := e.startChat("Val", "", "first")
	for range 2 {
		if _, err := v.send(ctx, "hi"); err != nil {
			t.Fatal(err)
		}
	}
	_, err := v.send(ctx, "hi")
	wantThrottled(t, "third message", err, "messages (at most 2 per 1m per visitor)")
}

func TestLeaveOfflineMessage_LimitIsConfigurableAndSaysWhenToRetry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ca := mailtest.NewCA(t)
	relay := mailtest.Start(t, mailtest.Options{TLS: ca.ServerTLS()})
	e := newEnv(t, behindProxy(), withMail(relay.Port, ca), withLimits(func(l *Limits) { l.OfflinePerAddr = limit.Rate{N: 2, Per: time.Hour} }))
	e.accounts.update(transcriptsTo)
	for range 2 {
		if err := e.from(addrA).leaveOffline(ctx, "Olga", "olga@example.com", "hello", 0); err != nil {
			t.Fatal(err)
		}
	}
	err := e.from(addrA).leaveOffline(ctx, "Olga", "olga@example.com", "hello", 0)
	wantThrottled(t, "third offline message", err, "offline messages (at most 2 per 1h per client address)")
	if err := e.from(addrB).leaveOffline(ctx, "Olga", "olga@example.com", "hello", 0); err != nil {
		t.Fatalf("another address: %v", err)
	}
}

func TestWatchChat_StreamsPerTokenAreCappedAndFreedWhenOneEnds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withStreamLimits(guard.Limits{PerToken: 4}))
	v := e.startChat("Wes", "", "first")
	var streams []*chatStream
	for range 4 {
		s := watchChat(t, v, 0)
		s.Next("the first message", isSeq(1))
		streams = append(streams, s)
	}
	fifth := watchChat(t, v, 0)
	err := fifth.Wait()
	wantExhausted(t, "fifth stream on one token", err, "at most 4 open WatchChat streams per token")
	// Another visitor's token is not affected.
	watchChat(t, e.startChat("Xia", "", "first"), 0).Next("another visitor's stream", isSeq(1))

	streams[0].Stop()
	testkit.Eventually(t, testkit.Wait, "a slot freed by the stream's end", func() bool {
		end, err := tryWatch(v)
		if err == nil {
			t.Cleanup(end)
		}
		return err == nil
	})
	end, err := tryWatch(v)
	if err == nil {
		end()
	}
	wantExhausted(t, "past the ceiling again", err, "per token")
}

// tryWatch opens a stream of the visitor's chat and waits for its first
// message (or its refusal); end closes it.
func tryWatch(v *visitor) (end func(), err error) {
	return testkit.Held(func(ctx context.Context) (*connect.ServerStreamForClient[chatv1.WatchChatResponse], error) {
		return v.watch(ctx, 0)
	})
}
