package lethe_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	consentv1 "github.com/lethehq/lethe/gen/go/lethe/consent/v1"
	lethe "github.com/lethehq/lethe/sdk/go"
	"github.com/lethehq/lethe/sdk/go/internal/lethetest"
)

// These tests run the SDK against the real lethe binary.

var adminOf = lethetest.Admin

func requireConsent(ctx context.Context, t *testing.T, admin *lethe.Operator, form consentv1.ConsentForm, text string) int32 {
	t.Helper()
	res, err := admin.Consent.SetConsentText(ctx, connect.NewRequest(&consentv1.SetConsentTextRequest{
		Form: form, Locale: "en", Text: text, Required: true}))
	if err != nil {
		t.Fatal(err)
	}
	return res.Msg.Text.Version
}

func TestVisitorStart_OnAccountRequiringConsent(t *testing.T) {
	t.Parallel()
	base := lethetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := adminOf(ctx, t, base)
	requireConsent(ctx, t, admin, consentv1.ConsentForm_CONSENT_FORM_PRECHAT, "This chat is deleted when it ends.")

	form := lethe.StartChat{AccountID: lethetest.Account, Name: "Ada", FirstMessage: "Hello"}
	if err := lethe.NewVisitor(http.DefaultClient, base).Start(ctx, form); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("Start without consent = %v, want FailedPrecondition", err)
	}

	v := lethe.NewVisitor(http.DefaultClient, base)
	texts, err := v.ConsentTexts(ctx, lethetest.Account, "en-GB")
	if err != nil {
		t.Fatal(err)
	}
	pre := texts.Prechat
	if !pre.GetRequired() || pre.GetVersion() != 1 || pre.GetText() != "This chat is deleted when it ends." {
		t.Fatalf("pre-chat consent = %v, want the required text, version 1", pre)
	}
	if texts.Offline.GetRequired() || texts.Offline.GetVersion() != 0 {
		t.Fatalf("offline consent = %v, want none", texts.Offline)
	}
	form.Locale, form.ConsentVersion = "en-GB", pre.Version
	if err := v.Start(ctx, form); err != nil {
		t.Fatalf("Start with the accepted consent: %v", err)
	}
	if v.Token == "" || v.ChatID == "" {
		t.Fatalf("Start kept token %q, chat %q", v.Token, v.ChatID)
	}

	// Withdrawing ends the chat; its stream says closed and Watch returns.
	if err := v.WithdrawConsent(ctx); err != nil {
		t.Fatal(err)
	}
	var last *lethe.WatchChatResponse
	if err := v.Watch(ctx, 0, func(r *lethe.WatchChatResponse) error { last = r; return nil }); err != nil {
		t.Fatalf("Watch after withdrawal = %v, want nil", err)
	}
	if last.GetState() != chatv1.ChatState_CHAT_STATE_CLOSED || last.GetEvent().GetClosed() == nil {
		t.Fatalf("last item after withdrawal = %v, want the closed event", last)
	}

	// A visitor who accepted an older version must accept the new one.
	requireConsent(ctx, t, admin, consentv1.ConsentForm_CONSENT_FORM_PRECHAT, "New wording.")
	if err := lethe.NewVisitor(http.DefaultClient, base).Start(ctx, form); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("Start with a stale consent version = %v, want FailedPrecondition", err)
	}
}

func TestVisitorLeaveOfflineMessage_OnAccountRequiringConsent(t *testing.T) {
	t.Parallel()
	// Mail goes nowhere (port 1 refuses): the message is queued, which is
	// all this test needs; the server's own tests follow it to the relay.
	base := lethetest.Start(t, "--smtp-host", "127.0.0.1", "--smtp-port", "1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := adminOf(ctx, t, base)
	set, err := admin.Account.GetSettings(ctx, connect.NewRequest(&accountv1.GetSettingsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	set.Msg.Settings.Recipients = []string{"support@example.com"}
	if _, err := admin.Account.UpdateSettings(ctx, connect.NewRequest(&accountv1.UpdateSettingsRequest{Settings: set.Msg.Settings})); err != nil {
		t.Fatal(err)
	}
	requireConsent(ctx, t, admin, consentv1.ConsentForm_CONSENT_FORM_OFFLINE, "We mail this to our support team.")

	v := lethe.NewVisitor(http.DefaultClient, base)
	msg := lethe.OfflineMessage{AccountID: lethetest.Account, Name: "Ada", Email: "ada@example.com", Message: "Call me back", Locale: "en"}
	if err := v.LeaveOfflineMessage(ctx, msg); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("LeaveOfflineMessage without consent = %v, want FailedPrecondition", err)
	}
	texts, err := v.ConsentTexts(ctx, lethetest.Account, "en")
	if err != nil {
		t.Fatal(err)
	}
	msg.ConsentVersion = texts.Offline.GetVersion()
	if err := v.LeaveOfflineMessage(ctx, msg); err != nil {
		t.Fatalf("LeaveOfflineMessage with the accepted consent: %v", err)
	}
}

// A whole chat through the real server: both resuming streams, and the end
// of the visitor's stream when the chat closes.
func TestVisitorAndOperator_ChatThroughRealServer(t *testing.T) {
	t.Parallel()
	base := lethetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	op := adminOf(ctx, t, base)
	if err := op.SetStatus(ctx, chatv1.OperatorStatus_OPERATOR_STATUS_ONLINE); err != nil {
		t.Fatal(err)
	}
	type inboxItem struct {
		chat, text string
		removed    bool
	}
	inbox := make(chan inboxItem, 100)
	inboxCtx, stopInbox := context.WithCancel(ctx)
	inboxDone := make(chan error, 1)
	go func() {
		inboxDone <- op.WatchInbox(inboxCtx, func(r *chatv1.WatchInboxResponse) error {
			switch k := r.Kind.(type) {
			case *chatv1.WatchInboxResponse_ChatUpdated:
				if k.ChatUpdated.State == chatv1.ChatState_CHAT_STATE_WAITING {
					inbox <- inboxItem{chat: k.ChatUpdated.ChatId}
				}
			case *chatv1.WatchInboxResponse_Event:
				if m := k.Event.GetMessage(); m != nil {
					inbox <- inboxItem{chat: k.Event.ChatId, text: m.Text}
				}
			case *chatv1.WatchInboxResponse_ChatRemoved:
				inbox <- inboxItem{chat: k.ChatRemoved.ChatId, removed: true}
			}
			return nil
		})
	}()

	v := lethe.NewVisitor(http.DefaultClient, base)
	if err := v.Start(ctx, lethe.StartChat{AccountID: lethetest.Account, Name: "Ada", FirstMessage: "Hello"}); err != nil {
		t.Fatal(err)
	}
	next := func(want func(inboxItem) bool) {
		t.Helper()
		for {
			select {
			case it := <-inbox:
				if it.chat == v.ChatID && want(it) {
					return
				}
			case <-ctx.Done():
				t.Fatal("the operator's inbox never showed it")
			}
		}
	}
	next(func(it inboxItem) bool { return !it.removed && it.text == "" }) // queued
	if err := op.Accept(ctx, v.ChatID); err != nil {
		t.Fatal(err)
	}
	next(func(it inboxItem) bool { return it.text == "Hello" }) // adopted with its history
	if _, err := op.Send(ctx, v.ChatID, "Hi Ada, how can I help?"); err != nil {
		t.Fatal(err)
	}

	var texts []string
	seqs := map[int64]bool{}
	err := v.Watch(ctx, 0, func(r *lethe.WatchChatResponse) error {
		if s := r.Event.GetSeq(); s > 0 {
			if seqs[s] {
				t.Errorf("seq %d delivered twice", s)
			}
			seqs[s] = true
		}
		if m := r.Event.GetMessage(); m != nil {
			texts = append(texts, m.Text)
			if m.Text == "Hi Ada, how can I help?" {
				return v.End(ctx)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Watch = %v, want nil once the chat closed", err)
	}
	if len(texts) != 2 || texts[0] != "Hello" {
		t.Fatalf("visitor saw %q", texts)
	}
	next(func(it inboxItem) bool { return it.removed })
	stopInbox()
	if err := <-inboxDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("WatchInbox = %v, want context.Canceled", err)
	}
}

// The gRPC recipe of the README: gRPC over h2c against a server without TLS.
func TestVisitor_SpeaksGRPCOverH2C(t *testing.T) {
	t.Parallel()
	base := lethetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{Protocols: &p}}
	v := lethe.NewVisitor(h2c, base, connect.WithGRPC())

	if _, err := v.ConsentTexts(ctx, lethetest.Account, "en"); err != nil {
		t.Fatalf("ConsentTexts over gRPC: %v", err)
	}
	if err := v.Start(ctx, lethe.StartChat{AccountID: lethetest.Account, Name: "Ada", FirstMessage: "Hello"}); err != nil {
		t.Fatal(err)
	}
	if err := v.End(ctx); err != nil {
		t.Fatal(err)
	}
	if err := v.Watch(ctx, 0, func(*lethe.WatchChatResponse) error { return nil }); err != nil {
		t.Fatalf("Watch over gRPC = %v, want nil after the closed event", err)
	}
}

func TestMain(m *testing.M) { lethetest.Main(m) }
