package lethe_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	"github.com/lethehq/lethe/gen/go/lethe/account/v1/accountv1connect"
	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/gen/go/lethe/chat/v1/chatv1connect"
	lethe "github.com/lethehq/lethe/sdk/go"
)

func TestBackoff_StaysWithinBounds(t *testing.T) {
	t.Parallel()
	// The base doubles from 250 ms up to 5 s; the wait is within its upper half.
	bases := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second}
	for n := 1; n <= 40; n++ {
		base := bases[min(n, len(bases))-1]
		for range 200 {
			if d := lethe.Backoff(n); d < base/2 || d > base {
				t.Fatalf("Backoff(%d) = %v, want within [%v, %v]", n, d, base/2, base)
			}
		}
	}
	for _, n := range []int{0, -1, 1 << 30} {
		if d := lethe.Backoff(n); d <= 0 || d > 5*time.Second {
			t.Fatalf("Backoff(%d) = %v, want within (0, 5s]", n, d)
		}
	}
}

func TestBackoff_IsJittered(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 3, 10} {
		seen := map[time.Duration]bool{}
		for range 50 {
			seen[lethe.Backoff(n)] = true
		}
		if len(seen) < 10 {
			t.Fatalf("Backoff(%d) gave %d distinct waits in 50 draws: reconnecting clients would stampede", n, len(seen))
		}
	}
}

func TestFinal_Codes(t *testing.T) {
	t.Parallel()
	final := map[connect.Code]bool{
		connect.CodeUnauthenticated:    true,
		connect.CodePermissionDenied:   true,
		connect.CodeNotFound:           true,
		connect.CodeInvalidArgument:    true,
		connect.CodeFailedPrecondition: true,
		connect.CodeUnimplemented:      true,
	}
	for code := connect.CodeCanceled; code <= connect.CodeUnauthenticated; code++ {
		if got := lethe.Final(connect.NewError(code, errors.New("x"))); got != final[code] {
			t.Errorf("Final(%v) = %v, want %v", code, got, final[code])
		}
	}
	if got := lethe.FinalCodes(); len(got) != len(final) {
		t.Errorf("FinalCodes() = %v, want the %d final codes", got, len(final))
	}
	for _, c := range lethe.FinalCodes() {
		if !final[c] {
			t.Errorf("FinalCodes() lists %v", c)
		}
	}
	if lethe.Final(errors.New("connection reset")) {
		t.Error("Final(plain network error) = true, want false (worth retrying)")
	}
	if lethe.Final(nil) {
		t.Error("Final(nil) = true")
	}
}

func TestFinalCodes_CannotBeChangedByCaller(t *testing.T) {
	t.Parallel()
	lethe.FinalCodes()[0] = connect.CodeUnavailable
	if lethe.Final(connect.NewError(connect.CodeUnavailable, errors.New("x"))) {
		t.Fatal("changing the slice FinalCodes returned made Unavailable final")
	}
}

// The two SDKs must agree on when a stream is over: the TypeScript list in
// sdk/ts/src/retry.ts names the same codes.
func TestFinalCodes_SameAsTypeScriptSDK(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("../ts/src/retry.ts")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)export const FINAL_CODES[^=]*=\s*\[(.*?)\]`).FindSubmatch(src)
	if m == nil {
		t.Fatal("no FINAL_CODES array in sdk/ts/src/retry.ts")
	}
	var ts []string
	for _, c := range regexp.MustCompile(`Code\.(\w+)`).FindAllSubmatch(m[1], -1) {
		ts = append(ts, strings.ToLower(string(c[1])))
	}
	var goCodes []string
	for _, c := range lethe.FinalCodes() {
		// connect.Code.String is snake case ("permission_denied"); the TS enum is PermissionDenied.
		goCodes = append(goCodes, strings.ReplaceAll(c.String(), "_", ""))
	}
	slices.Sort(ts)
	slices.Sort(goCodes)
	if !slices.Equal(ts, goCodes) {
		t.Fatalf("final codes differ: TypeScript %v, Go %v", ts, goCodes)
	}
}

// fakeChat is a ChatService that replays a scripted chat, to check what the
// SDK sends and how it resumes. (The real server is exercised by the
// server's tests through this SDK.)
type fakeChat struct {
	chatv1connect.UnimplementedChatServiceHandler
	mu       sync.Mutex
	auth     []string
	afterSeq []int64
}

func event(seq int64) *chatv1.WatchChatResponse {
	ev := &chatv1.ChatEvent{ChatId: "c1", Seq: seq, Kind: &chatv1.ChatEvent_Message{Message: &chatv1.Message{Text: "m"}}}
	return &chatv1.WatchChatResponse{Event: ev, State: chatv1.ChatState_CHAT_STATE_ACTIVE}
}

func (f *fakeChat) SendMessage(_ context.Context, req *connect.Request[chatv1.SendMessageRequest]) (*connect.Response[chatv1.SendMessageResponse], error) {
	f.mu.Lock()
	f.auth = append(f.auth, req.Header().Get("Authorization"))
	f.mu.Unlock()
	return connect.NewResponse(&chatv1.SendMessageResponse{Event: event(9).Event}), nil
}

// WatchChat: the first connection sends 1..3 and breaks; the second
// repeats 3 (as a careless server might), sends 4 and a typing event, then
// the chat closes.
func (f *fakeChat) WatchChat(_ context.Context, req *connect.Request[chatv1.WatchChatRequest], stream *connect.ServerStream[chatv1.WatchChatResponse]) error {
	f.mu.Lock()
	f.auth = append(f.auth, req.Header().Get("Authorization"))
	f.afterSeq = append(f.afterSeq, req.Msg.AfterSeq)
	attempt := len(f.afterSeq)
	f.mu.Unlock()
	var script []*chatv1.WatchChatResponse
	var end error
	switch attempt {
	case 1:
		script = []*chatv1.WatchChatResponse{event(1), event(2), event(3)}
		end = connect.NewError(connect.CodeUnavailable, errors.New("cut off"))
	default:
		typing := &chatv1.WatchChatResponse{Event: &chatv1.ChatEvent{ChatId: "c1", Kind: &chatv1.ChatEvent_Typing{Typing: &chatv1.Typing{Typing: true}}}}
		closed := &chatv1.WatchChatResponse{State: chatv1.ChatState_CHAT_STATE_CLOSED,
			Event: &chatv1.ChatEvent{ChatId: "c1", Seq: 5, Kind: &chatv1.ChatEvent_Closed{Closed: &chatv1.ChatClosed{}}}}
		script = []*chatv1.WatchChatResponse{event(3), event(4), typing, closed}
	}
	for _, m := range script {
		if err := stream.Send(m); err != nil {
			return err
		}
	}
	return end
}

func fakeServer(t *testing.T, h *fakeChat) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(chatv1connect.NewChatServiceHandler(h))
	mux.Handle(accountv1connect.NewAccountServiceHandler(&fakeAccount{}))
	srv := httptest.NewUnstartedServer(mux)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestVisitor_SendsBearerToken(t *testing.T) {
	t.Parallel()
	h := &fakeChat{}
	srv := fakeServer(t, h)
	v := lethe.NewVisitor(srv.Client(), srv.URL)
	v.Token, v.ChatID = "tok-123", "c1"
	if _, err := v.Send(context.Background(), "hi"); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.auth) != 1 || h.auth[0] != "Bearer tok-123" {
		t.Fatalf("Authorization headers = %q, want [Bearer tok-123]", h.auth)
	}
}

func TestVisitorWatch_ResumesFromLastSeqWithoutDuplicates(t *testing.T) {
	t.Parallel()
	h := &fakeChat{}
	srv := fakeServer(t, h)
	v := lethe.NewVisitor(srv.Client(), srv.URL)
	v.Token, v.ChatID = "tok-123", "c1"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var seqs []int64
	typing := 0
	err := v.Watch(ctx, 0, func(r *chatv1.WatchChatResponse) error {
		if r.Event.GetTyping() != nil {
			typing++
			return nil
		}
		seqs = append(seqs, r.Event.Seq)
		return nil
	})
	if err != nil {
		t.Fatalf("Watch = %v, want nil after the closed event", err)
	}
	want := []int64{1, 2, 3, 4, 5}
	if len(seqs) != len(want) {
		t.Fatalf("seqs = %v, want %v", seqs, want)
	}
	for i := range want {
		if seqs[i] != want[i] {
			t.Fatalf("seqs = %v, want %v", seqs, want)
		}
	}
	if typing != 1 {
		t.Fatalf("%d typing events passed on, want 1", typing)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.afterSeq) != 2 || h.afterSeq[0] != 0 || h.afterSeq[1] != 3 {
		t.Fatalf("WatchChat after_seq per attempt = %v, want [0 3]", h.afterSeq)
	}
	for _, a := range h.auth {
		if a != "Bearer tok-123" {
			t.Fatalf("a stream was opened without the token: %q", h.auth)
		}
	}
}

func TestVisitorWatch_StopsOnFinalError(t *testing.T) {
	t.Parallel()
	srv := fakeServer(t, &fakeChat{})
	// No ChatService under this path: HTTP 404, which Connect reports as
	// Unimplemented, a final code. Watch must not retry it forever.
	v := lethe.NewVisitor(srv.Client(), srv.URL+"/nothing-here")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := v.Watch(ctx, 0, func(*chatv1.WatchChatResponse) error { return nil })
	if err == nil || ctx.Err() != nil {
		t.Fatalf("Watch = %v (ctx %v), want a final error returned at once", err, ctx.Err())
	}
	if !lethe.Final(err) {
		t.Fatalf("Watch returned %v, which is not final", err)
	}
}

func TestVisitorWatch_ReturnsCallbackError(t *testing.T) {
	t.Parallel()
	srv := fakeServer(t, &fakeChat{})
	v := lethe.NewVisitor(srv.Client(), srv.URL)
	v.ChatID = "c1"
	stop := errors.New("stop")
	err := v.Watch(context.Background(), 0, func(*chatv1.WatchChatResponse) error { return stop })
	if !errors.Is(err, stop) {
		t.Fatalf("Watch = %v, want the callback's error", err)
	}
}

// fakeAccount sets a cookie on Login and wants it back on GetMe.
type fakeAccount struct {
	accountv1connect.UnimplementedAccountServiceHandler
}

func (fakeAccount) Login(_ context.Context, req *connect.Request[accountv1.LoginRequest]) (*connect.Response[accountv1.LoginResponse], error) {
	res := connect.NewResponse(&accountv1.LoginResponse{Operator: &accountv1.Operator{Id: "op1", Email: req.Msg.Email}})
	res.Header().Add("Set-Cookie", (&http.Cookie{Name: "lethe_session", Value: "s3cret", Path: "/", HttpOnly: true}).String())
	return res, nil
}

func (fakeAccount) GetMe(_ context.Context, req *connect.Request[accountv1.GetMeRequest]) (*connect.Response[accountv1.GetMeResponse], error) {
	r := &http.Request{Header: req.Header()}
	c, err := r.Cookie("lethe_session")
	if err != nil || c.Value != "s3cret" {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("no session"))
	}
	return connect.NewResponse(&accountv1.GetMeResponse{Operator: &accountv1.Operator{Id: "op1"}}), nil
}

func TestOperator_KeepsSessionCookie(t *testing.T) {
	t.Parallel()
	srv := fakeServer(t, &fakeChat{})
	ctx := context.Background()
	o := lethe.NewOperator(srv.Client(), srv.URL)
	if _, err := o.Account.GetMe(ctx, connect.NewRequest(&accountv1.GetMeRequest{})); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("GetMe before Login = %v, want Unauthenticated", err)
	}
	if err := o.Login(ctx, "a@example.com", "pw"); err != nil {
		t.Fatal(err)
	}
	if o.Me.GetId() != "op1" {
		t.Fatalf("Me = %v", o.Me)
	}
	if _, err := o.Account.GetMe(ctx, connect.NewRequest(&accountv1.GetMeRequest{})); err != nil {
		t.Fatalf("GetMe after Login: %v", err)
	}
	// The caller's client is not changed: another operator has no session.
	o2 := lethe.NewOperator(srv.Client(), srv.URL)
	if _, err := o2.Account.GetMe(ctx, connect.NewRequest(&accountv1.GetMeRequest{})); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("a second operator shares the first one's session: %v", err)
	}
}

// failingChat answers WatchChat with errs[0], errs[1], … (one per attempt)
// and, once they are used up, with the chat's closed event.
type failingChat struct {
	chatv1connect.UnimplementedChatServiceHandler
	errs     []error
	mu       sync.Mutex
	attempts int
}

func (f *failingChat) WatchChat(_ context.Context, _ *connect.Request[chatv1.WatchChatRequest], stream *connect.ServerStream[chatv1.WatchChatResponse]) error {
	f.mu.Lock()
	f.attempts++
	n := f.attempts
	f.mu.Unlock()
	if n <= len(f.errs) {
		return f.errs[n-1]
	}
	return stream.Send(&chatv1.WatchChatResponse{State: chatv1.ChatState_CHAT_STATE_CLOSED,
		Event: &chatv1.ChatEvent{ChatId: "c1", Kind: &chatv1.ChatEvent_Closed{Closed: &chatv1.ChatClosed{}}}})
}

func serve(t *testing.T, chat chatv1connect.ChatServiceHandler) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(chatv1connect.NewChatServiceHandler(chat))
	srv := httptest.NewUnstartedServer(mux)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestVisitorWatch_StopsOnEachFinalCode(t *testing.T) {
	t.Parallel()
	for _, code := range lethe.FinalCodes() {
		t.Run(code.String(), func(t *testing.T) {
			t.Parallel()
			h := &failingChat{errs: []error{connect.NewError(code, errors.New("no"))}}
			srv := serve(t, h)
			v := lethe.NewVisitor(srv.Client(), srv.URL)
			v.ChatID = "c1"
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := v.Watch(ctx, 0, func(*chatv1.WatchChatResponse) error { return nil })
			if connect.CodeOf(err) != code {
				t.Fatalf("Watch = %v, want the %v error", err, code)
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.attempts != 1 {
				t.Fatalf("WatchChat opened %d times, want 1: a final code must not be retried", h.attempts)
			}
		})
	}
}

func TestVisitorWatch_RetriesOtherCodes(t *testing.T) {
	t.Parallel()
	for _, code := range []connect.Code{connect.CodeUnavailable, connect.CodeInternal, connect.CodeUnknown,
		connect.CodeDeadlineExceeded, connect.CodeResourceExhausted, connect.CodeAborted} {
		t.Run(code.String(), func(t *testing.T) {
			t.Parallel()
			h := &failingChat{errs: []error{connect.NewError(code, errors.New("try again")), connect.NewError(code, errors.New("try again"))}}
			srv := serve(t, h)
			v := lethe.NewVisitor(srv.Client(), srv.URL)
			v.ChatID = "c1"
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			closed := false
			err := v.Watch(ctx, 0, func(r *chatv1.WatchChatResponse) error {
				closed = r.Event.GetClosed() != nil
				return nil
			})
			if err != nil || !closed {
				t.Fatalf("Watch = %v (closed event seen: %v), want nil after the closed event", err, closed)
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.attempts != 3 {
				t.Fatalf("WatchChat opened %d times, want 3 (two %v, then the stream)", h.attempts, code)
			}
		})
	}
}

func TestVisitorWatch_ReturnsWhenContextEnds(t *testing.T) {
	t.Parallel()
	h := &failingChat{errs: slices.Repeat([]error{connect.NewError(connect.CodeUnavailable, errors.New("down"))}, 1000)}
	srv := serve(t, h)
	v := lethe.NewVisitor(srv.Client(), srv.URL)
	v.ChatID = "c1"
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := v.Watch(ctx, 0, func(*chatv1.WatchChatResponse) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Watch = %v, want the context's error", err)
	}
}

// inboxChat plays one scripted WatchInbox connection per call: its
// messages, then a cut-off (Unavailable), or a clean end for the last.
type inboxChat struct {
	chatv1connect.UnimplementedChatServiceHandler
	conns [][]*chatv1.WatchInboxResponse
	mu    sync.Mutex
	after []map[string]int64
}

func inboxEvent(chat string, seq int64) *chatv1.WatchInboxResponse {
	return &chatv1.WatchInboxResponse{Kind: &chatv1.WatchInboxResponse_Event{Event: &chatv1.ChatEvent{ChatId: chat, Seq: seq,
		Kind: &chatv1.ChatEvent_Message{Message: &chatv1.Message{Text: "m"}}}}}
}

func inboxChatUpdated(chat string) *chatv1.WatchInboxResponse {
	return &chatv1.WatchInboxResponse{Kind: &chatv1.WatchInboxResponse_ChatUpdated{ChatUpdated: &chatv1.ChatSummary{ChatId: chat}}}
}

func inboxRemoved(chat string) *chatv1.WatchInboxResponse {
	return &chatv1.WatchInboxResponse{Kind: &chatv1.WatchInboxResponse_ChatRemoved{ChatRemoved: &chatv1.ChatRemoved{ChatId: chat}}}
}

func inboxSnapshotDone() *chatv1.WatchInboxResponse {
	return &chatv1.WatchInboxResponse{Kind: &chatv1.WatchInboxResponse_SnapshotDone{SnapshotDone: &chatv1.SnapshotDone{}}}
}

func (f *inboxChat) WatchInbox(_ context.Context, req *connect.Request[chatv1.WatchInboxRequest], stream *connect.ServerStream[chatv1.WatchInboxResponse]) error {
	f.mu.Lock()
	f.after = append(f.after, req.Msg.AfterSeq)
	n := len(f.after)
	f.mu.Unlock()
	for _, m := range f.conns[n-1] {
		if err := stream.Send(m); err != nil {
			return err
		}
	}
	if n < len(f.conns) {
		return connect.NewError(connect.CodeUnavailable, errors.New("stream fell behind"))
	}
	return nil
}

// watchInbox runs WatchInbox until the n-th SnapshotDone and returns what
// it delivered, and the after_seq of every connection.
func watchInbox(t *testing.T, h *inboxChat, n int) ([]string, []map[string]int64) {
	t.Helper()
	srv := serve(t, h)
	o := lethe.NewOperator(srv.Client(), srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	stop := errors.New("stop")
	err := o.WatchInbox(ctx, func(r *chatv1.WatchInboxResponse) error {
		switch k := r.Kind.(type) {
		case *chatv1.WatchInboxResponse_Event:
			got = append(got, fmt.Sprintf("%s:%d", k.Event.ChatId, k.Event.Seq))
		case *chatv1.WatchInboxResponse_ChatUpdated:
			got = append(got, "updated "+k.ChatUpdated.ChatId)
		case *chatv1.WatchInboxResponse_ChatRemoved:
			got = append(got, "removed "+k.ChatRemoved.ChatId)
		case *chatv1.WatchInboxResponse_SnapshotDone:
			got = append(got, "snapshot done")
			if n--; n == 0 {
				return stop
			}
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("WatchInbox = %v, want the callback's error", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return got, h.after
}

func TestOperatorWatchInbox_ResumesEveryChatFromItsLastSeq(t *testing.T) {
	t.Parallel()
	h := &inboxChat{conns: [][]*chatv1.WatchInboxResponse{
		{inboxChatUpdated("c1"), inboxEvent("c1", 1), inboxEvent("c1", 2), inboxChatUpdated("c2"), inboxEvent("c2", 1)},
		// A careless server repeats c1:2.
		{inboxChatUpdated("c1"), inboxEvent("c1", 2), inboxEvent("c1", 3), inboxRemoved("c2")},
		{inboxChatUpdated("c1"), inboxSnapshotDone()},
	}}
	got, after := watchInbox(t, h, 1)
	want := []string{"updated c1", "c1:1", "c1:2", "updated c2", "c2:1", "updated c1", "c1:3", "removed c2", "updated c1", "snapshot done"}
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %q,\nwant %q (each event once, in order)", got, want)
	}
	wantAfter := []map[string]int64{{}, {"c1": 2, "c2": 1}, {"c1": 3}}
	if len(after) != len(wantAfter) {
		t.Fatalf("WatchInbox opened %d times, want %d", len(after), len(wantAfter))
	}
	for i := range wantAfter {
		if !maps.Equal(after[i], wantAfter[i]) {
			t.Fatalf("after_seq of connection %d = %v, want %v (all: %v)", i+1, after[i], wantAfter[i], after)
		}
	}
}

// A chat that closed while the stream was down is missing from the new
// snapshot, and the server has no removal to send: the SDK sends it.
func TestOperatorWatchInbox_RemovesChatsTheNewSnapshotLacks(t *testing.T) {
	t.Parallel()
	h := &inboxChat{conns: [][]*chatv1.WatchInboxResponse{
		{inboxChatUpdated("c1"), inboxChatUpdated("c2"), inboxEvent("c2", 1), inboxChatUpdated("c3"), inboxSnapshotDone()},
		{inboxChatUpdated("c2"), inboxSnapshotDone(), inboxChatUpdated("c4")},
		{inboxChatUpdated("c2"), inboxChatUpdated("c4"), inboxSnapshotDone()},
	}}
	got, after := watchInbox(t, h, 3)
	want := []string{"updated c1", "updated c2", "c2:1", "updated c3", "snapshot done",
		"updated c2", "removed c1", "removed c3", "snapshot done", "updated c4",
		"updated c2", "updated c4", "snapshot done"}
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %q,\nwant %q", got, want)
	}
	if !maps.Equal(after[1], map[string]int64{"c2": 1}) {
		t.Fatalf("after_seq of the second connection = %v, want only c2's", after[1])
	}
}
