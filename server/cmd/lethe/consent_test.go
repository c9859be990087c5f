package main

import (
	"context"
	"net/http/cookiejar"
	"strings"
	"testing"

	"github.com/lethehq/lethe/server/chat/chattest"
	"github.com/lethehq/lethe/server/mail/mailtest"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	consentv1 "github.com/lethehq/lethe/gen/go/lethe/consent/v1"
	"github.com/lethehq/lethe/gen/go/lethe/consent/v1/consentv1connect"
	lethe "github.com/lethehq/lethe/sdk/go"
)

// P7: withdrawal of consent ends the chat and destroys it at once (the
// refusal of chats and offline messages without consent is tested in
// server/chat).

// adminWithConsent signs the admin in and returns it with a consent client
// sharing its session cookie.
func (ts *testServer) adminWithConsent() (*lethe.Operator, consentv1connect.ConsentServiceClient) {
	ts.t.Helper()
	c := *ts.client()
	c.Jar, _ = cookiejar.New(nil)
	op := lethe.NewOperator(&c, ts.URL)
	if err := op.Login(context.Background(), adminEmail, adminPassword); err != nil {
		ts.t.Fatalf("login: %v", err)
	}
	return op, consentv1connect.NewConsentServiceClient(&c, ts.URL)
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

func setConsentText(t *testing.T, cc consentv1connect.ConsentServiceClient, form consentv1.ConsentForm, text string) int32 {
	t.Helper()
	res, err := cc.SetConsentText(context.Background(), connect.NewRequest(&consentv1.SetConsentTextRequest{
		Form: form, Locale: "en", Text: text, Required: true}))
	if err != nil {
		t.Fatalf("SetConsentText: %v", err)
	}
	return res.Msg.Text.Version
}

// startWithConsent starts a chat accepting consent version `version`.
func startWithConsent(ctx context.Context, ts *testServer, name, first string, version int32) (*lethe.Visitor, error) {
	v := ts.visitor()
	res, err := v.Chat.StartChat(ctx, connect.NewRequest(&chatv1.StartChatRequest{AccountId: demoAccount, VisitorName: name,
		FirstMessage: first, Locale: "en-GB", ConsentVersion: version}))
	if err != nil {
		return nil, err
	}
	v.Token, v.ChatID = res.Msg.VisitorToken, res.Msg.ChatId
	return v, nil
}

// leaveOffline leaves an offline message as v (any visitor client: the call
// needs no token).
func leaveOffline(ctx context.Context, v *lethe.Visitor, name, email, text string, version int32) error {
	_, err := v.Chat.LeaveOfflineMessage(ctx, connect.NewRequest(&chatv1.LeaveOfflineMessageRequest{AccountId: demoAccount,
		VisitorName: name, VisitorEmail: email, Message: text, Locale: "en", ConsentVersion: version}))
	return err
}

func TestConsent_WithdrawEndsChatAndDestroysAtOnceWithoutTranscript(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ca := mailtest.NewCA(t)
	relay := startRelay(t, ca, true, 0)
	ts := newTestServer(t, withSMTP(relay.Port, ca))
	admin, cc := ts.adminWithConsent()
	updateSettings(t, admin, transcriptsTo)
	ver := setConsentText(t, cc, consentv1.ConsentForm_CONSENT_FORM_PRECHAT, "You may withdraw consent at any time.")
	tag := newTag()

	v, err := startWithConsent(ctx, ts, "Visitor "+tag, "first message "+tag, ver)
	if err != nil {
		t.Fatal(err)
	}
	vs := watchChat(t, v, 0)
	if err := admin.Accept(ctx, v.ChatID); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Send(ctx, v.ChatID, "operator reply "+tag); err != nil {
		t.Fatal(err)
	}
	vs.Next("operator reply", chattest.IsSeq(4))
	if len(ts.filesContaining(tag)) == 0 {
		t.Fatal("the canary is not on disk while the chat is open")
	}

	vc := consentv1connect.NewConsentServiceClient(ts.client(), ts.URL, connect.WithInterceptors(bearerHeader(v.Token)))
	if _, err := vc.WithdrawConsent(ctx, connect.NewRequest(&consentv1.WithdrawConsentRequest{ChatId: v.ChatID})); err != nil {
		t.Fatalf("WithdrawConsent: %v", err)
	}
	// Destroyed before the call returned: no waiting.
	if hits := ts.filesContaining(tag); len(hits) > 0 {
		t.Fatalf("the canary is on disk right after WithdrawConsent returned: %v", hits)
	}
	closed := vs.Next("closed event", chattest.IsClosed).Event.GetClosed()
	if closed.Reason != "consent withdrawn" || closed.ClosedBy != chatv1.AuthorKind_AUTHOR_KIND_SYSTEM {
		t.Fatalf("closed event = %v, want reason \"consent withdrawn\" by SYSTEM", closed)
	}
	if err := vs.Wait(); err != nil {
		t.Fatalf("the visitor's stream ended with %v, want a clean end after the closed event", err)
	}
	if _, err := v.Send(ctx, "hello?"); !oneOf(err, connect.CodeFailedPrecondition, connect.CodeUnauthenticated) {
		t.Fatalf("Send after withdrawal = %v, want FailedPrecondition or Unauthenticated", err)
	}

	// No transcript: a chat closed afterwards is mailed, the withdrawn one
	// never is.
	ctrl := newTag()
	c, err := startWithConsent(ctx, ts, "Control", "control "+ctrl, ver)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Close(ctx, c.ChatID); err != nil {
		t.Fatal(err)
	}
	ts.waitDestroyed(c.ChatID)
	mails := relay.Received()
	if len(mails) != 1 || !strings.Contains(mails[0].All(t), "control "+ctrl) {
		t.Fatalf("the relay received %d messages, want only the control chat's transcript", len(mails))
	}
	if strings.Contains(mails[0].All(t), tag) {
		t.Fatal("the withdrawn chat's content was mailed")
	}
	if strings.Contains(ts.logs.String(), tag) {
		t.Fatal("the log contains the withdrawn chat's content")
	}
}
