package main

import (
	"context"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	lethe "github.com/lethehq/lethe/sdk/go"
)

// Rejected messages change nothing, and everything accepted before and
// after them is in the chat's history.
func TestSendMessage_RejectsBadTextAndKeepsHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	v := ts.startChat("Ida", "", "first")
	accepted := []string{"first"}
	for _, tc := range []struct {
		name string
		text string
	}{
		{"empty", ""},
		{"only white space", " \t\n "},
		{"4001 characters", strings.Repeat("é", 4001)},
		{"4001 ASCII characters", strings.Repeat("a", 4001)},
	} {
		_, err := v.Send(ctx, tc.text)
		if connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("%s: Send = %v, want InvalidArgument", tc.name, err)
		}
		ok := "after " + tc.name
		if _, err := v.Send(ctx, ok); err != nil {
			t.Fatalf("Send after %s: %v", tc.name, err)
		}
		accepted = append(accepted, ok)
	}
	got := texts(history(t, v, int64(1+len(accepted))))
	if !slices.Equal(got, accepted) {
		t.Fatalf("history = %q, want %q", got, accepted)
	}
}

// The limit counts characters (code points), not bytes: 4,000 "é" are
// 8,000 bytes and accepted.
func TestSendMessage_AcceptsExactly4000Characters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	op := ts.admin()
	v := ts.startChat("Jo", "", strings.Repeat("ü", 4000))
	for _, text := range []string{strings.Repeat("é", 4000), "  " + strings.Repeat("日", 4000) + "  "} {
		ev, err := v.Send(ctx, text)
		if err != nil {
			t.Fatalf("Send of 4000 characters: %v", err)
		}
		if got := ev.GetMessage().GetText(); got != strings.TrimSpace(text) {
			t.Fatalf("stored text is %d bytes, want the trimmed %d", len(got), len(strings.TrimSpace(text)))
		}
	}
	if err := op.Accept(ctx, v.ChatID); err != nil {
		t.Fatal(err)
	}
	if _, err := op.Send(ctx, v.ChatID, strings.Repeat("é", 4000)); err != nil {
		t.Fatalf("operator Send of 4000 characters: %v", err)
	}
	_, err := op.Send(ctx, v.ChatID, strings.Repeat("é", 4001))
	wantCode(t, err, connect.CodeInvalidArgument)
}

func TestSendMessage_ToClosedChatIsFailedPrecondition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	op := ts.admin()
	v := ts.startChat("Kai", "", "first")
	if err := op.Close(ctx, v.ChatID); err != nil {
		t.Fatal(err)
	}
	// Closed but maybe not destroyed yet, and after destruction: both refuse.
	_, err := v.Send(ctx, "late")
	wantCode(t, err, connect.CodeFailedPrecondition)
	ts.waitDestroyed(v.ChatID)
	_, err = v.Send(ctx, "later")
	wantCode(t, err, connect.CodeFailedPrecondition)
	err = v.Typing(ctx, true)
	wantCode(t, err, connect.CodeFailedPrecondition)
}

func TestSendMessage_OtherVisitorsChatIsPermissionDenied(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	a := ts.startChat("Lee", "", "a's first")
	b := ts.startChat("Max", "", "b's first")
	intruder := ts.visitor()
	intruder.Token, intruder.ChatID = a.Token, b.ChatID
	_, err := intruder.Send(ctx, "injected")
	wantCode(t, err, connect.CodePermissionDenied)
	err = intruder.Typing(ctx, true)
	wantCode(t, err, connect.CodePermissionDenied)
	err = intruder.End(ctx)
	wantCode(t, err, connect.CodePermissionDenied)
	stream, err := intruder.Chat.WatchChat(ctx, connect.NewRequest(&chatv1.WatchChatRequest{ChatId: b.ChatID}))
	if err != nil {
		t.Fatal(err)
	}
	if stream.Receive() {
		t.Fatalf("watching another visitor's chat delivered %v", stream.Msg())
	}
	wantCode(t, stream.Err(), connect.CodePermissionDenied)
	stream.Close()
	// b's chat is untouched and still open.
	got := texts(history(t, b, 2))
	if !slices.Equal(got, []string{"b's first"}) {
		t.Fatalf("b's history = %q", got)
	}
	if _, err := b.Send(ctx, "still open"); err != nil {
		t.Fatalf("b Send: %v", err)
	}
}

func TestOperatorRPC_WithoutSessionIsUnauthenticated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	v := ts.startChat("Ned", "", "first")
	o := ts.operator()
	wantCode(t, o.Accept(ctx, v.ChatID), connect.CodeUnauthenticated)
	_, err := o.Send(ctx, v.ChatID, "x")
	wantCode(t, err, connect.CodeUnauthenticated)
	wantCode(t, o.Close(ctx, v.ChatID), connect.CodeUnauthenticated)
	wantCode(t, o.SetStatus(ctx, chatv1.OperatorStatus_OPERATOR_STATUS_ONLINE), connect.CodeUnauthenticated)
	err = o.WatchInbox(ctx, func(*chatv1.WatchInboxResponse) error { return nil })
	wantCode(t, err, connect.CodeUnauthenticated)
	// A visitor token is no operator session either.
	vo := lethe.NewOperator(ts.client(), ts.URL, connect.WithInterceptors(bearerHeader(v.Token)))
	wantCode(t, vo.Accept(ctx, v.ChatID), connect.CodeUnauthenticated)
	// The chat is still waiting.
	op := ts.admin()
	if err := op.Accept(ctx, v.ChatID); err != nil {
		t.Fatalf("Accept after the refused calls: %v", err)
	}
}

func TestVisitorRPC_WithoutTokenIsUnauthenticated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	v := ts.startChat("Ola", "", "first")
	anon := ts.visitor()
	anon.ChatID = v.ChatID
	_, err := anon.Send(ctx, "x")
	wantCode(t, err, connect.CodeUnauthenticated)
	wantCode(t, anon.Typing(ctx, true), connect.CodeUnauthenticated)
	wantCode(t, anon.End(ctx), connect.CodeUnauthenticated)
	wantCode(t, anon.Watch(ctx, 0, func(*chatv1.WatchChatResponse) error { return nil }), connect.CodeUnauthenticated)
	// A made-up token is no better.
	anon.Token = "made-up-token"
	_, err = anon.Send(ctx, "x")
	wantCode(t, err, connect.CodeUnauthenticated)
	if err := v.End(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestAcceptChat_UnknownChatIsNotFound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	op := ts.admin()
	wantCode(t, op.Accept(ctx, "nosuchchat000000"), connect.CodeNotFound)
	wantCode(t, op.Close(ctx, "nosuchchat000000"), connect.CodeNotFound)
	wantCode(t, op.Typing(ctx, "nosuchchat000000", true), connect.CodeNotFound)
	_, err := op.Send(ctx, "nosuchchat000000", "x")
	wantCode(t, err, connect.CodeNotFound)
	wantCode(t, op.Accept(ctx, ""), connect.CodeInvalidArgument)
}

func TestVisitorRPC_UnknownChatIsNotFound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	v := ts.startChat("Pia", "", "first")
	other := ts.visitor()
	other.Token, other.ChatID = v.Token, "nosuchchat000000"
	_, err := other.Send(ctx, "x")
	wantCode(t, err, connect.CodeNotFound)
	wantCode(t, other.Typing(ctx, true), connect.CodeNotFound)
	if _, err := v.Send(ctx, "own chat still works"); err != nil {
		t.Fatal(err)
	}
}

func TestStartChat_RejectsBadForm(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	for _, tc := range []struct {
		name string
		form lethe.StartChat
		code connect.Code
	}{
		{"malformed e-mail", lethe.StartChat{AccountID: demoAccount, Name: "Q", Email: "not-an-address", FirstMessage: "hi"}, connect.CodeInvalidArgument},
		{"e-mail with display name", lethe.StartChat{AccountID: demoAccount, Name: "Q", Email: "Q <q@example.com>", FirstMessage: "hi"}, connect.CodeInvalidArgument},
		{"e-mail over 254", lethe.StartChat{AccountID: demoAccount, Name: "Q", Email: strings.Repeat("a", 250) + "@example.com", FirstMessage: "hi"}, connect.CodeInvalidArgument},
		{"missing name", lethe.StartChat{AccountID: demoAccount, Name: "  ", FirstMessage: "hi"}, connect.CodeInvalidArgument},
		{"name of 101 characters", lethe.StartChat{AccountID: demoAccount, Name: strings.Repeat("é", 101), FirstMessage: "hi"}, connect.CodeInvalidArgument},
		{"empty first message", lethe.StartChat{AccountID: demoAccount, Name: "Q", FirstMessage: " "}, connect.CodeInvalidArgument},
		{"first message of 4001 characters", lethe.StartChat{AccountID: demoAccount, Name: "Q", FirstMessage: strings.Repeat("é", 4001)}, connect.CodeInvalidArgument},
		{"unknown account", lethe.StartChat{AccountID: "no-such-account", Name: "Q", FirstMessage: "hi"}, connect.CodeNotFound},
		{"missing account", lethe.StartChat{Name: "Q", FirstMessage: "hi"}, connect.CodeInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := ts.visitor()
			err := v.Start(ctx, tc.form)
			wantCode(t, err, tc.code)
			if v.Token != "" {
				t.Fatal("a refused StartChat issued a token")
			}
		})
	}
	// The refused forms opened no chat: an operator sees an empty queue.
	op := ts.admin()
	inbox := watchInbox(t, op)
	for _, r := range inbox.seen {
		if r.GetChatUpdated() != nil {
			t.Fatalf("a refused StartChat queued a chat: %v", r)
		}
	}
	// The limits themselves are accepted.
	v := ts.visitor()
	if err := v.Start(ctx, lethe.StartChat{AccountID: demoAccount, Name: strings.Repeat("é", 100),
		Email: "q@example.com", FirstMessage: "hi"}); err != nil {
		t.Fatalf("Start with a 100-character name: %v", err)
	}
}

func TestGetWidgetConfig_UnknownAccountIsNotFound(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	v := ts.visitor()
	_, err := v.Chat.GetWidgetConfig(context.Background(), connect.NewRequest(&chatv1.GetWidgetConfigRequest{AccountId: "no-such-account"}))
	wantCode(t, err, connect.CodeNotFound)
}

func TestStartChat_SecondChatWithOpenOneIsFailedPrecondition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	v := ts.startChat("Rae", "", "first")
	token, chatID := v.Token, v.ChatID
	err := v.Start(ctx, startReq("Rae", "again"))
	wantCode(t, err, connect.CodeFailedPrecondition)
	if v.Token != token || v.ChatID != chatID {
		t.Fatal("the refused Start replaced the token")
	}
}

func TestSendMessage_RateLimitRefusesAndKeepsEarlierMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	v := ts.startChat("Sam", "", "first")
	accepted := []string{"first"}
	limited := false
	for i := range 60 {
		text := "burst " + string(rune('A'+i%26)) + string(rune('a'+i/26))
		_, err := v.Send(ctx, text)
		if err != nil {
			wantCode(t, err, connect.CodeResourceExhausted)
			limited = true
			break
		}
		accepted = append(accepted, text)
	}
	if !limited {
		t.Fatal("60 quick messages were all accepted; the rate limit does not work")
	}
	if n := len(accepted) - 1; n < 10 {
		t.Fatalf("only %d messages accepted before the limit, want the burst of 10", n)
	}
	// Everything accepted is stored, in order, and the refused one is not.
	got := texts(history(t, v, int64(1+len(accepted))))
	if !slices.Equal(got, accepted) {
		t.Fatalf("history = %q, want %q", got, accepted)
	}
	// Another visitor is not limited by the first one's burst.
	w := ts.startChat("Tia", "", "first")
	if _, err := w.Send(ctx, "unaffected"); err != nil {
		t.Fatalf("other visitor: %v", err)
	}
}

// bearerHeader adds an Authorization header to every call.
func bearerHeader(token string) connect.Interceptor {
	return connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+token)
			return next(ctx, req)
		}
	})
}

// GetWidgetConfig and StartChat need no authentication: a stale token left
// in the panel's storage (its chat long gone, or the server restarted) must
// not lock the visitor out of starting a new chat.
func TestPublicRPC_StaleVisitorTokenIsIgnored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	v := ts.visitor()
	v.Token = "stale-token-from-an-earlier-chat"
	cfg, err := v.Chat.GetWidgetConfig(ctx, connect.NewRequest(&chatv1.GetWidgetConfigRequest{AccountId: demoAccount}))
	if err != nil {
		t.Fatalf("GetWidgetConfig with a stale token: %v", err)
	}
	if cfg.Msg.AccountName != "Demo Company" {
		t.Fatalf("account name = %q", cfg.Msg.AccountName)
	}
	if err := v.Start(ctx, startReq("Uli", "hi")); err != nil {
		t.Fatalf("StartChat with a stale token: %v", err)
	}
}

// After its chat ended, the same visitor (same panel, same token) may start
// a new chat.
func TestStartChat_AfterChatEndedStartsNewChat(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	v := ts.startChat("Val", "", "first chat")
	first := v.ChatID
	if err := v.End(ctx); err != nil {
		t.Fatal(err)
	}
	ts.waitDestroyed(first)
	if err := v.Start(ctx, startReq("Val", "second chat")); err != nil {
		t.Fatalf("Start after the first chat ended: %v", err)
	}
	if v.ChatID == first {
		t.Fatal("the new chat reuses the old chat's id")
	}
	got := texts(history(t, v, 2))
	if len(got) != 1 || got[0] != "second chat" {
		t.Fatalf("new chat history = %q", got)
	}
}
