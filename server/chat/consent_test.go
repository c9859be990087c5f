package chat

import (
	"context"
	"strings"
	"testing"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	consentv1 "github.com/lethehq/lethe/gen/go/lethe/consent/v1"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/mail/mailtest"
)

// P7: where the account requires consent, chat refuses chats and offline
// messages without the current version (checked by the real consent
// checker against the texts an admin set).

// setConsentText has the admin set a required English text for form and
// returns its version.
func (e *env) setConsentText(form consentv1.ConsentForm, text string) int32 {
	e.t.Helper()
	res, err := e.consents.SetConsentText(auth.WithOperator(context.Background(), &opAdmin), connect.NewRequest(&consentv1.SetConsentTextRequest{
		Form: form, Locale: "en", Text: text, Required: true}))
	if err != nil {
		e.t.Fatalf("SetConsentText: %v", err)
	}
	return res.Msg.Text.Version
}

// acceptedCount is the current version of form's English text and how often
// it was accepted, as the admin sees them.
func (e *env) acceptedCount(form consentv1.ConsentForm) (version int32, accepted int64) {
	e.t.Helper()
	res, err := e.consents.ListConsentTexts(auth.WithOperator(context.Background(), &opAdmin), connect.NewRequest(&consentv1.ListConsentTextsRequest{}))
	if err != nil {
		e.t.Fatalf("ListConsentTexts: %v", err)
	}
	for _, tx := range res.Msg.Texts {
		if tx.Form == form && tx.Locale == "en" {
			return tx.Version, tx.AcceptedCount
		}
	}
	e.t.Fatalf("no %v text listed", form)
	return 0, 0
}

// startWithConsent starts a chat accepting consent version `version`.
func (e *env) startWithConsent(ctx context.Context, name, first string, version int32) (*visitor, error) {
	v := e.visitor()
	return v, v.start(ctx, &chatv1.StartChatRequest{AccountId: acct, VisitorName: name, FirstMessage: first,
		Locale: "en-GB", ConsentVersion: version})
}

func TestConsent_ServerRefusesChatAndOfflineMessageWithoutCurrentVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ca := mailtest.NewCA(t)
	relay := mailtest.Start(t, mailtest.Options{TLS: ca.ServerTLS()})
	e := newEnv(t, withMail(relay.Port, ca))
	e.accounts.update(func(s *AccountSettings) { s.Recipients = []string{recipient} })
	tag := newTag()

	// Pre-chat form: no acceptance, then a stale one.
	v1 := e.setConsentText(consentv1.ConsentForm_CONSENT_FORM_PRECHAT, "We keep this chat only while it lasts (v1).")
	_, err := e.startWithConsent(ctx, "Refused", "refused without consent "+tag, 0)
	wantCode(t, err, connect.CodeFailedPrecondition)
	v2 := e.setConsentText(consentv1.ConsentForm_CONSENT_FORM_PRECHAT, "We keep this chat only while it lasts (v2).")
	if v2 != v1+1 {
		t.Fatalf("changed text has version %d, want %d", v2, v1+1)
	}
	_, err = e.startWithConsent(ctx, "Refused", "refused with stale consent "+tag, v1)
	wantCode(t, err, connect.CodeFailedPrecondition)
	// Nothing was created: no queued chat, nothing on disk, nothing counted.
	inbox := watchInbox(t, e.operator(opAdmin))
	for _, r := range inbox.Seen {
		if u := r.GetChatUpdated(); u != nil {
			t.Fatalf("a refused chat is in the operator's inbox: %v", u)
		}
	}
	if hits := e.filesContaining(tag); len(hits) > 0 {
		t.Fatalf("a refused chat's text is on disk: %v", hits)
	}
	if ver, n := e.acceptedCount(consentv1.ConsentForm_CONSENT_FORM_PRECHAT); ver != v2 || n != 0 {
		t.Fatalf("pre-chat text: version %d accepted %d times, want version %d accepted 0 times", ver, n, v2)
	}

	// The current version opens the chat and is counted.
	v, err := e.startWithConsent(ctx, "Accepted", "accepted "+tag, v2)
	if err != nil {
		t.Fatalf("StartChat with the current consent version: %v", err)
	}
	inbox.Next("queued chat", chatUpdated(v.chatID, chatv1.ChatState_CHAT_STATE_WAITING))
	if ver, n := e.acceptedCount(consentv1.ConsentForm_CONSENT_FORM_PRECHAT); ver != v2 || n != 1 {
		t.Fatalf("pre-chat text: version %d accepted %d times, want version %d accepted once", ver, n, v2)
	}

	// Offline form, likewise (operators being online does not matter).
	o1 := e.setConsentText(consentv1.ConsentForm_CONSENT_FORM_OFFLINE, "We mail your message and delete it.")
	err = e.visitor().leaveOffline(ctx, "Olga", "olga@example.com", "offline refused "+tag, 0)
	wantCode(t, err, connect.CodeFailedPrecondition)
	err = e.visitor().leaveOffline(ctx, "Olga", "olga@example.com", "offline stale "+tag, o1+7)
	wantCode(t, err, connect.CodeFailedPrecondition)
	if err := e.visitor().leaveOffline(ctx, "Olga", "olga@example.com", "offline accepted "+tag, o1); err != nil {
		t.Fatalf("LeaveOfflineMessage with the current consent version: %v", err)
	}
	relay.WaitMail(t, "offline accepted "+tag)
	testkit.WaitLog(t, e.logs, `msg="mail delivered"`, 1)
	if n := e.logs.Count(`msg="offline message queued"`); n != 1 {
		t.Fatalf("%d offline messages were queued, want only the accepted one", n)
	}
	for _, m := range relay.Received() {
		if all := m.All(t); strings.Contains(all, "offline refused") || strings.Contains(all, "offline stale") {
			t.Fatal("an offline message without current consent was mailed")
		}
	}
	if ver, n := e.acceptedCount(consentv1.ConsentForm_CONSENT_FORM_OFFLINE); ver != o1 || n != 1 {
		t.Fatalf("offline text: version %d accepted %d times, want version %d accepted once", ver, n, o1)
	}
}
