package lethe_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
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
	for n := 1; n <= 30; n++ {
		base := min(100*time.Millisecond<<min(n-1, 6), 5*time.Second)
		for range 200 {
			d := lethe.Backoff(n)
			if d < base/2 || d > base {
				t.Fatalf("Backoff(%d) = %v, want within [%v, %v]", n, d, base/2, base)
			}
		}
	}
	if d := lethe.Backoff(100); d > 5*time.Second {
		t.Fatalf("Backoff(100) = %v, want at most 5s", d)
	}
}

func TestBackoff_IsJittered(t *testing.T) {
	t.Parallel()
	seen := map[time.Duration]bool{}
	for range 50 {
		seen[lethe.Backoff(3)] = true
	}
	if len(seen) < 2 {
		t.Fatal("Backoff gives the same wait every time: reconnecting clients would stampede")
	}
}

func TestFinal_Codes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code  connect.Code
		final bool
	}{
		{connect.CodeUnauthenticated, true},
		{connect.CodePermissionDenied, true},
		{connect.CodeNotFound, true},
		{connect.CodeInvalidArgument, true},
		{connect.CodeFailedPrecondition, true},
		{connect.CodeUnimplemented, true},
		{connect.CodeUnavailable, false},
		{connect.CodeInternal, false},
		{connect.CodeDeadlineExceeded, false},
		{connect.CodeResourceExhausted, false},
		{connect.CodeUnknown, false},
	} {
		if got := lethe.Final(connect.NewError(tc.code, errors.New("x"))); got != tc.final {
			t.Errorf("Final(%v) = %v, want %v", tc.code, got, tc.final)
		}
	}
	if lethe.Final(errors.New("connection reset")) {
		t.Error("Final(plain network error) = true, want false (worth retrying)")
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
