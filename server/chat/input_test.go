package chat

import (
	"context"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/server/auth"
)

// Rejected messages change nothing, and everything accepted before and
// after them is in the chat's history.
func TestSendMessage_RejectsBadTextAndKeepsHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	v := e.startChat("Ida", "", "first")
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
		_, err := v.send(ctx, tc.text)
		if connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("%s: Send = %v, want InvalidArgument", tc.name, err)
		}
		ok := "after " + tc.name
		if _, err := v.send(ctx, ok); err != nil {
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
	e := newEnv(t)
	op := e.operator(opAdmin)
	v := e.startChat("Jo", "", strings.Repeat("ü", 4000))
	for _, text := range []string{strings.Repeat("é", 4000), "  " + strings.Repeat("日", 4000) + "  "} {
		ev, err := v.send(ctx, text)
		if err != nil {
			t.Fatalf("Send of 4000 characters: %v", err)
		}
		if got := ev.GetMessage().GetText(); got != strings.TrimSpace(text) {
			t.Fatalf("stored text is %d bytes, want the trimmed %d", len(got), len(strings.TrimSpace(text)))
		}
	}
	if err := op.accept(ctx, v.chatID); err != nil {
		t.Fatal(err)
	}
	if _, err := op.send(ctx, v.chatID, strings.Repeat("é", 4000)); err != nil {
		t.Fatalf("operator Send of 4000 characters: %v", err)
	}
	_, err := op.send(ctx, v.chatID, strings.Repeat("é", 4001))
	wantCode(t, err, connect.CodeInvalidArgument)
}

func TestSendMessage_ToClosedChatIsFailedPrecondition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	op := e.operator(opAdmin)
	v := e.startChat("Kai", "", "first")
	if err := op.close(ctx, v.chatID); err != nil {
		t.Fatal(err)
	}
	// Closed but maybe not destroyed yet, and after destruction: both refuse.
	_, err := v.send(ctx, "late")
	wantCode(t, err, connect.CodeFailedPrecondition)
	e.waitDestroyed(v.chatID)
	_, err = v.send(ctx, "later")
	wantCode(t, err, connect.CodeFailedPrecondition)
	wantCode(t, v.typing(ctx, true), connect.CodeFailedPrecondition)
}

func TestSendMessage_OtherVisitorsChatIsPermissionDenied(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	a := e.startChat("Lee", "", "a's first")
	b := e.startChat("Max", "", "b's first")
	intruder := e.visitor()
	intruder.token, intruder.chatID = a.token, b.chatID
	_, err := intruder.send(ctx, "injected")
	wantCode(t, err, connect.CodePermissionDenied)
	wantCode(t, intruder.typing(ctx, true), connect.CodePermissionDenied)
	wantCode(t, intruder.end(ctx), connect.CodePermissionDenied)
	stream, err := intruder.watch(ctx, 0)
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
	if _, err := b.send(ctx, "still open"); err != nil {
		t.Fatalf("b Send: %v", err)
	}
}

func TestOperatorRPC_WithoutSessionIsUnauthenticated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	v := e.startChat("Ned", "", "first")
	o := e.operator(auth.Operator{}) // signed in as nobody
	wantCode(t, o.accept(ctx, v.chatID), connect.CodeUnauthenticated)
	_, err := o.send(ctx, v.chatID, "x")
	wantCode(t, err, connect.CodeUnauthenticated)
	wantCode(t, o.close(ctx, v.chatID), connect.CodeUnauthenticated)
	wantCode(t, o.setStatus(ctx, chatv1.OperatorStatus_OPERATOR_STATUS_ONLINE), connect.CodeUnauthenticated)
	wantCode(t, openInbox(t, o).Wait(), connect.CodeUnauthenticated)
	// A visitor token is no operator session either.
	_, err = v.chat.AcceptChat(ctx, connect.NewRequest(&chatv1.AcceptChatRequest{ChatId: v.chatID}))
	wantCode(t, err, connect.CodeUnauthenticated)
	// The chat is still waiting.
	if err := e.operator(opAdmin).accept(ctx, v.chatID); err != nil {
		t.Fatalf("Accept after the refused calls: %v", err)
	}
}

func TestVisitorRPC_WithoutTokenIsUnauthenticated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	v := e.startChat("Ola", "", "first")
	anon := e.visitor()
	anon.chatID = v.chatID
	_, err := anon.send(ctx, "x")
	wantCode(t, err, connect.CodeUnauthenticated)
	wantCode(t, anon.typing(ctx, true), connect.CodeUnauthenticated)
	wantCode(t, anon.end(ctx), connect.CodeUnauthenticated)
	wantCode(t, watchChat(t, anon, 0).Wait(), connect.CodeUnauthenticated)
	// A made-up token is no better.
	anon.token = "made-up-token"
	_, err = anon.send(ctx, "x")
	wantCode(t, err, connect.CodeUnauthenticated)
	if err := v.end(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestAcceptChat_UnknownChatIsNotFound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	op := e.operator(opAdmin)
	wantCode(t, op.accept(ctx, "nosuchchat000000"), connect.CodeNotFound)
	wantCode(t, op.close(ctx, "nosuchchat000000"), connect.CodeNotFound)
	wantCode(t, op.typing(ctx, "nosuchchat000000", true), connect.CodeNotFound)
	_, err := op.send(ctx, "nosuchchat000000", "x")
	wantCode(t, err, connect.CodeNotFound)
	wantCode(t, op.accept(ctx, ""), connect.CodeInvalidArgument)
}

func TestVisitorRPC_UnknownChatIsNotFound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	v := e.startChat("Pia", "", "first")
	other := e.visitor()
	other.token, other.chatID = v.token, "nosuchchat000000"
	_, err := other.send(ctx, "x")
	wantCode(t, err, connect.CodeNotFound)
	wantCode(t, other.typing(ctx, true), connect.CodeNotFound)
	if _, err := v.send(ctx, "own chat still works"); err != nil {
		t.Fatal(err)
	}
}

func TestStartChat_RejectsBadForm(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		form *chatv1.StartChatRequest
		code connect.Code
	}{
		{"malformed e-mail", &chatv1.StartChatRequest{AccountId: acct, VisitorName: "Q", VisitorEmail: "not-an-address", FirstMessage: "hi"}, connect.CodeInvalidArgument},
		{"e-mail with display name", &chatv1.StartChatRequest{AccountId: acct, VisitorName: "Q", VisitorEmail: "Q <q@example.com>", FirstMessage: "hi"}, connect.CodeInvalidArgument},
		{"e-mail over 254", &chatv1.StartChatRequest{AccountId: acct, VisitorName: "Q", VisitorEmail: strings.Repeat("a", 250) + "@example.com", FirstMessage: "hi"}, connect.CodeInvalidArgument},
		{"missing name", &chatv1.StartChatRequest{AccountId: acct, VisitorName: "  ", FirstMessage: "hi"}, connect.CodeInvalidArgument},
		{"name of 101 characters", &chatv1.StartChatRequest{AccountId: acct, VisitorName: strings.Repeat("é", 101), FirstMessage: "hi"}, connect.CodeInvalidArgument},
		{"empty first message", &chatv1.StartChatRequest{AccountId: acct, VisitorName: "Q", FirstMessage: " "}, connect.CodeInvalidArgument},
		{"first message of 4001 characters", &chatv1.StartChatRequest{AccountId: acct, VisitorName: "Q", FirstMessage: strings.Repeat("é", 4001)}, connect.CodeInvalidArgument},
		{"unknown account", &chatv1.StartChatRequest{AccountId: "no-such-account", VisitorName: "Q", FirstMessage: "hi"}, connect.CodeNotFound},
		{"missing account", &chatv1.StartChatRequest{VisitorName: "Q", FirstMessage: "hi"}, connect.CodeInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := e.visitor()
			wantCode(t, v.start(ctx, tc.form), tc.code)
			if v.token != "" {
				t.Fatal("a refused StartChat issued a token")
			}
		})
	}
	// The refused forms opened no chat: an operator sees an empty queue.
	inbox := watchInbox(t, e.operator(opAdmin))
	for _, r := range inbox.Seen {
		if r.GetChatUpdated() != nil {
			t.Fatalf("a refused StartChat queued a chat: %v", r)
		}
	}
	// The limits themselves are accepted.
	v := e.visitor()
	if err := v.start(ctx, &chatv1.StartChatRequest{AccountId: acct, VisitorName: strings.Repeat("é", 100),
		VisitorEmail: "q@example.com", FirstMessage: "hi"}); err != nil {
		t.Fatalf("Start with a 100-character name: %v", err)
	}
}

func TestGetWidgetConfig_UnknownAccountIsNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := e.visitor().chat.GetWidgetConfig(context.Background(), connect.NewRequest(&chatv1.GetWidgetConfigRequest{AccountId: "no-such-account"}))
	wantCode(t, err, connect.CodeNotFound)
}

func TestStartChat_SecondChatWithOpenOneIsFailedPrecondition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	v := e.startChat("Rae", "", "first")
	token, chatID := v.token, v.chatID
	err := v.start(ctx, &chatv1.StartChatRequest{AccountId: acct, VisitorName: "Rae", FirstMessage: "again"})
	wantCode(t, err, connect.CodeFailedPrecondition)
	if v.token != token || v.chatID != chatID {
		t.Fatal("the refused Start replaced the token")
	}
}

func TestSendMessage_RateLimitRefusesAndKeepsEarlierMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	v := e.startChat("Sam", "", "first")
	accepted := []string{"first"}
	limited := false
	for i := range 60 {
		text := "burst " + string(rune('A'+i%26)) + string(rune('a'+i/26))
		_, err := v.send(ctx, text)
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
	w := e.startChat("Tia", "", "first")
	if _, err := w.send(ctx, "unaffected"); err != nil {
		t.Fatalf("other visitor: %v", err)
	}
}

// GetWidgetConfig and StartChat need no authentication: a stale token left
// in the panel's storage (its chat long gone, or the server restarted) must
// not lock the visitor out of starting a new chat.
func TestPublicRPC_StaleVisitorTokenIsIgnored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	v := e.visitor()
	v.token = "stale-token-from-an-earlier-chat"
	cfg, err := v.chat.GetWidgetConfig(ctx, connect.NewRequest(&chatv1.GetWidgetConfigRequest{AccountId: acct}))
	if err != nil {
		t.Fatalf("GetWidgetConfig with a stale token: %v", err)
	}
	if cfg.Msg.AccountName != accountName {
		t.Fatalf("account name = %q", cfg.Msg.AccountName)
	}
	if err := v.start(ctx, &chatv1.StartChatRequest{AccountId: acct, VisitorName: "Uli", FirstMessage: "hi"}); err != nil {
		t.Fatalf("StartChat with a stale token: %v", err)
	}
}

// After its chat ended, the same visitor (same panel, same token) may start
// a new chat.
func TestStartChat_AfterChatEndedStartsNewChat(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	v := e.startChat("Val", "", "first chat")
	first := v.chatID
	if err := v.end(ctx); err != nil {
		t.Fatal(err)
	}
	e.waitDestroyed(first)
	if err := v.start(ctx, &chatv1.StartChatRequest{AccountId: acct, VisitorName: "Val", FirstMessage: "second chat"}); err != nil {
		t.Fatalf("Start after the first chat ended: %v", err)
	}
	if v.chatID == first {
		t.Fatal("the new chat reuses the old chat's id")
	}
	got := texts(history(t, v, 2))
	if len(got) != 1 || got[0] != "second chat" {
		t.Fatalf("new chat history = %q", got)
	}
}
