package chat

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	consentv1 "github.com/lethehq/lethe/gen/go/lethe/consent/v1"
	privacyv1 "github.com/lethehq/lethe/gen/go/lethe/privacy/v1"
	"github.com/lethehq/lethe/server/audit"
	"github.com/lethehq/lethe/server/chat/chattest"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/mail/mailtest"
	"github.com/lethehq/lethe/server/privacy"
)

// The chat side of lethe.privacy.v1 (privacy.Chats), on the real store,
// consent checker, mail queue and an in-process SMTP relay.

var _ privacy.Chats = (*Service)(nil)

// auditCounts records what the service counts in the audit trail (the
// audit.Recorder interface; the trail's storage is the audit package's).
type auditCounts struct {
	mu sync.Mutex
	n  map[[2]string]int64
}

func (a *auditCounts) Record(context.Context, audit.Entry) {}

func (a *auditCounts) Count(_ context.Context, accountID, action string, n int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n == nil {
		a.n = map[[2]string]int64{}
	}
	a.n[[2]string{accountID, action}] += n
}

func (a *auditCounts) get(accountID, action string) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n[[2]string{accountID, action}]
}

// startFull opens a chat giving a name, an e-mail address and a consent
// version (0: none).
func (e *env) startFull(account, name, email, first string, consentVersion int32) *visitor {
	e.t.Helper()
	v := e.visitor()
	if err := v.start(context.Background(), &chatv1.StartChatRequest{AccountId: account, VisitorName: name, VisitorEmail: email,
		FirstMessage: first, Locale: "en-GB", ConsentVersion: consentVersion}); err != nil {
		e.t.Fatalf("StartChat: %v", err)
	}
	return v
}

func (v *visitor) requestTranscript(t testing.TB, email string) {
	t.Helper()
	if _, err := v.chat.RequestTranscript(context.Background(), connect.NewRequest(&chatv1.RequestTranscriptRequest{ChatId: v.chatID, Email: email})); err != nil {
		t.Fatalf("RequestTranscript: %v", err)
	}
}

// postFile shares a file in v's chat as v.
func (e *env) postFile(v *visitor, name string) {
	e.t.Helper()
	p, err := e.svc.Participant(e.asVisitor(v), v.chatID)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.svc.PostFile(context.Background(), p, sharedFile(name, 2048)); err != nil {
		e.t.Fatal(err)
	}
}

func counts(dc []*privacyv1.DestroyedCount) map[string]int64 {
	m := map[string]int64{}
	for _, c := range dc {
		m[c.Category] += c.Count
	}
	return m
}

func wantGone(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, errs.ErrNotFound) || errs.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("%s: %v, want errs.ErrNotFound with code NotFound", what, err)
	}
}

func TestChatData_WhatTheServerHolds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, port := mailtest.FreeAddr(t) // transcript requests need a mail server; nothing is sent here
	e := newEnv(t, withMail(port, mailtest.NewCA(t)))
	consentText := "We keep this chat while it lasts. " + newTag()
	version := e.setConsentText(consentv1.ConsentForm_CONSENT_FORM_PRECHAT, consentText)
	before := time.Now().Add(-time.Second)
	v := e.startFull(acct, "Ana", "ana@example.com", "hello", version)
	bob := e.operator(opBob)
	if err := bob.accept(ctx, v.chatID); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.send(ctx, v.chatID, "how can I help"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.send(ctx, "my order"); err != nil {
		t.Fatal(err)
	}
	e.postFile(v, "invoice.pdf")
	v.requestTranscript(t, "copy@example.org")

	d, err := e.svc.ChatData(ctx, v.chatID)
	if err != nil {
		t.Fatal(err)
	}
	if d.ChatId != v.chatID || d.State != "active" || d.VisitorName != "Ana" || d.VisitorEmail != "ana@example.com" ||
		d.TranscriptEmail != "copy@example.org" || d.OperatorName != "Bob" {
		t.Errorf("chat data %v", d)
	}
	if d.Ip != "127.0.0.1" || d.IpHidden {
		t.Errorf("ip %q hidden %v; want the client's address, not hidden", d.Ip, d.IpHidden)
	}
	if st := d.StartedAt.AsTime(); st.Before(before) || st.After(time.Now()) {
		t.Errorf("started at %v", st)
	}
	c := d.Consent
	if c.GetVersion() != version || c.GetLocale() != "en" || c.GetText() != consentText || c.GetAcceptedAt().AsTime().Before(before) {
		t.Errorf("consent receipt %v; want version %d, en, the text accepted and when", c, version)
	}
	if d.MessageCount != 3 || d.FileCount != 1 {
		t.Errorf("%d messages, %d files; want 3 and 1", d.MessageCount, d.FileCount)
	}
	var got []string
	for _, m := range d.Messages {
		got = append(got, m.Author+"|"+m.AuthorName+"|"+m.Text)
		if m.SentAt == nil {
			t.Errorf("message %q without time", m.Text)
		}
	}
	want := []string{"visitor|Ana|hello", "system||Bob joined the chat", "operator|Bob|how can I help", "visitor|Ana|my order"}
	if !slices.Equal(got, want) {
		t.Errorf("messages\n%q\nwant\n%q", got, want)
	}
	if len(d.Files) != 1 || d.Files[0].Name != "invoice.pdf" || d.Files[0].Size != 2048 || d.Files[0].ContentType != "application/pdf" ||
		d.Files[0].Author != "visitor" || d.Files[0].SentAt == nil {
		t.Errorf("files %v", d.Files)
	}
	// Away (no stream open): destroyed when the chat ends, at the latest
	// at the idle close.
	if d.Destruction.GetRule() != "when the chat ends" {
		t.Errorf("destruction rule %q", d.Destruction.GetRule())
	}
	if na := d.Destruction.GetNotAfter().AsTime(); na.Before(before.Add(10*time.Minute)) || na.After(time.Now().Add(10*time.Minute)) {
		t.Errorf("not after %v, want the idle close about 10 minutes from now", na)
	}
	// Watching: no idle deadline.
	vs := watchChat(t, v, 0)
	vs.Next("backlog", isSeq(1))
	if d, err := e.svc.ChatData(ctx, v.chatID); err != nil || d.Destruction.GetNotAfter() != nil {
		t.Errorf("while the visitor watches: not after %v, %v; want none", d.GetDestruction().GetNotAfter(), err)
	}

	// An account that hides IP addresses: none held, and said so.
	e.accounts.update(func(s *AccountSettings) { s.HideVisitorIP = true })
	h := e.startFull(acct, "Hidden", "", "hi", version)
	if d, err := e.svc.ChatData(ctx, h.chatID); err != nil || d.Ip != "" || d.Host != "" || !d.IpHidden || d.State != "waiting" {
		t.Errorf("hidden: ip %q host %q hidden %v state %q, %v", d.GetIp(), d.GetHost(), d.GetIpHidden(), d.GetState(), err)
	}

	_, err = e.svc.ChatData(ctx, "no-such-chat")
	wantGone(t, "ChatData of an unknown chat", err)
}

func TestCorrectVisitor_OperatorSeesItAndAClosedChatRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, port := mailtest.FreeAddr(t) // down: the closed chat's transcript waits
	e := newEnv(t, withMail(port, mailtest.NewCA(t)))
	e.accounts.update(transcriptsTo)
	v := acceptedChat(t, e) // Ana, Bob
	if _, err := v.send(ctx, "typo in my name"); err != nil {
		t.Fatal(err)
	}
	inbox := watchInbox(t, e.operator(opBob))
	vs := watchChat(t, v, 0)

	for _, c := range []struct{ name, email string }{{"", "a@example.com"}, {strings.Repeat("x", MaxNameChars+1), ""}, {"Anna", "not an address"}} {
		_, err := e.svc.CorrectVisitor(e.asVisitor(v), v.chatID, c.name, c.email)
		wantCode(t, err, connect.CodeInvalidArgument)
	}
	d, err := e.svc.CorrectVisitor(e.asVisitor(v), v.chatID, "  Anna Smith ", " anna@example.com ")
	if err != nil {
		t.Fatalf("CorrectVisitor: %v", err)
	}
	if d.VisitorName != "Anna Smith" || d.VisitorEmail != "anna@example.com" {
		t.Errorf("answered %q <%s>", d.VisitorName, d.VisitorEmail)
	}
	for _, m := range d.Messages {
		if m.Author == "visitor" && m.AuthorName != "Anna Smith" {
			t.Errorf("a visitor message still names %q", m.AuthorName)
		}
	}
	// The operator's stream: the event, then the chat's summary.
	ev := inbox.Next("visitor updated", func(r *chatv1.WatchInboxResponse) bool { return r.GetEvent().GetVisitorUpdated() != nil }).GetEvent()
	if u := ev.GetVisitorUpdated(); ev.ChatId != v.chatID || ev.Seq == 0 || u.VisitorName != "Anna Smith" || u.VisitorEmail != "anna@example.com" {
		t.Errorf("event %v", ev)
	}
	sum := inbox.Next("summary", chattest.ChatUpdated(v.chatID, chatv1.ChatState_CHAT_STATE_ACTIVE)).GetChatUpdated()
	if sum.VisitorName != "Anna Smith" || sum.VisitorEmail != "anna@example.com" {
		t.Errorf("summary after the change: %q <%s>", sum.VisitorName, sum.VisitorEmail)
	}
	// The visitor's own stream, and an inbox opened later.
	vs.Next("visitor updated", func(r *chatv1.WatchChatResponse) bool {
		return r.Event.GetVisitorUpdated().GetVisitorName() == "Anna Smith"
	})
	later := openInbox(t, e.operator(opBob))
	sum = later.Next("snapshot", chattest.ChatUpdated(v.chatID, chatv1.ChatState_CHAT_STATE_ACTIVE)).GetChatUpdated()
	if sum.VisitorName != "Anna Smith" || sum.VisitorEmail != "anna@example.com" {
		t.Errorf("a new inbox shows %q <%s>", sum.VisitorName, sum.VisitorEmail)
	}
	// New messages carry the new name.
	if ev, err := v.send(ctx, "thanks"); err != nil || ev.GetMessage().GetAuthorName() != "Anna Smith" {
		t.Errorf("message after the correction: %v, %v", ev, err)
	}
	// The chat is closed (its transcript waits): too late.
	if err := e.operator(opBob).close(ctx, v.chatID); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.CorrectVisitor(context.Background(), v.chatID, "Other", "")
	wantCode(t, err, connect.CodeFailedPrecondition)
	if d, err := e.svc.ChatData(ctx, v.chatID); err != nil || d.VisitorName != "Anna Smith" {
		t.Errorf("after the refused correction: %q, %v", d.GetVisitorName(), err)
	}
	_, err = e.svc.CorrectVisitor(ctx, "no-such-chat", "Other", "")
	wantGone(t, "CorrectVisitor of an unknown chat", err)
}

func TestEraseChat_DestroysNowAndTellsTheOperator(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ca := mailtest.NewCA(t)
	relay := mailtest.Start(t, mailtest.Options{TLS: ca.ServerTLS()})
	rec := &auditCounts{}
	e := newEnv(t, withMail(relay.Port, ca), withAudit(rec))
	e.accounts.update(transcriptsTo) // a transcript would be mailed at a normal close
	files := e.withFiles()
	tag := newTag()
	v, vs := canaryChat(t, e, tag)
	e.postFile(v, "report-"+tag+".pdf")
	inbox := watchInbox(t, e.operator(opAdmin))
	if len(e.filesContaining(tag)) == 0 {
		t.Fatal("the canary is not on disk while the chat is open")
	}

	const reason = "the visitor erased their data"
	got, err := e.svc.EraseChat(e.asVisitor(v), v.chatID, reason)
	if err != nil {
		t.Fatalf("EraseChat: %v", err)
	}
	// Before it returned: every row, the WAL, the files, the count.
	if hits := e.filesContaining(tag); len(hits) > 0 {
		t.Fatalf("the canary is on disk after EraseChat returned: %v", hits)
	}
	if files.count(v.chatID) == 0 {
		t.Error("the chat's files were not destroyed")
	}
	if n := rec.get(acct, audit.ChatsDestroyed); n != 1 {
		t.Errorf("chats destroyed counted %d times, want 1", n)
	}
	want := map[string]int64{"chat": 1, "messages": 3, "files": 1, "transcript e-mails": 0}
	if c := counts(got); len(c) != len(want) || c["chat"] != 1 || c["messages"] != 3 || c["files"] != 1 || c["transcript e-mails"] != 0 {
		t.Errorf("destroyed %v, want %v", c, want)
	}
	ev := inbox.Next("closed with the reason", inboxEvent(v.chatID, 7)).GetEvent()
	if cl := ev.GetClosed(); cl.GetReason() != reason || cl.GetClosedBy() != chatv1.AuthorKind_AUTHOR_KIND_VISITOR {
		t.Errorf("the operator saw %v", ev)
	}
	inbox.Next("removed", isRemoved(v.chatID))
	vs.Next("closed", isClosed)
	_, err = e.svc.ChatData(ctx, v.chatID)
	wantGone(t, "ChatData after EraseChat", err)
	if again, err := e.svc.EraseChat(ctx, v.chatID, reason); err != nil || len(again) != 0 {
		t.Errorf("EraseChat of a gone chat = %v, %v; want nothing", again, err)
	}
	// No transcript: the relay never hears of the chat.
	if n := len(relay.Received()); n != 0 {
		t.Errorf("the relay received %d mails", n)
	}
	if n := rec.get(acct, audit.ChatsDestroyed); n != 1 {
		t.Errorf("chats destroyed counted %d times after a second erase, want 1", n)
	}
}

// A closed chat whose transcript waits for the mail server (an outage):
// ChatData says so; EraseChat drops the mail and destroys the chat; the
// relay, back up, never gets it.
func TestEraseChat_ClosedWithTranscriptWaiting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ca := mailtest.NewCA(t)
	addr, port := mailtest.FreeAddr(t)
	rec := &auditCounts{}
	e := newEnv(t, withMail(port, ca), withAudit(rec))
	e.accounts.update(transcriptsTo)
	tag := newTag()
	c := chattest.CanaryOf(tag)
	v, vs := canaryChat(t, e, tag)
	v.requestTranscript(t, c.Email) // a copy to the visitor: two mails
	closeChat(t, e, v, vs)
	testkit.WaitLog(t, e.logs, `msg="mail attempt failed"`, 1)

	d, err := e.svc.ChatData(ctx, v.chatID)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != "closed" || d.Destruction.GetRule() != "when the mail server accepts the transcript" {
		t.Errorf("state %q, rule %q", d.State, d.Destruction.GetRule())
	}
	if na := d.Destruction.GetNotAfter().AsTime(); na.Before(time.Now().Add(50*time.Minute)) || na.After(time.Now().Add(time.Hour)) {
		t.Errorf("not after %v, want the maximum hold (an hour) from the close", na)
	}
	// The mail is found by the visitor's address (its hash), whatever case.
	if held, err := e.queue.HeldFor(ctx, acct, strings.ToUpper(c.Email)); err != nil || len(held) != 2 || held[0].Ref != e.svc.MailRef(v.chatID) {
		t.Fatalf("HeldFor the visitor's address = %v, %v; want the 2 transcripts", held, err)
	}

	got, err := e.svc.EraseChat(ctx, v.chatID, "erased at the data subject's request")
	if err != nil {
		t.Fatalf("EraseChat: %v", err)
	}
	if c := counts(got); c["chat"] != 1 || c["messages"] != 3 || c["files"] != 0 || c["transcript e-mails"] != 2 {
		t.Errorf("destroyed %v", c)
	}
	if hits := e.filesContaining(tag); len(hits) > 0 {
		t.Fatalf("the canary is on disk after EraseChat returned: %v", hits)
	}
	if n := rec.get(acct, audit.ChatsDestroyed); n != 1 {
		t.Errorf("chats destroyed counted %d times, want 1", n)
	}
	if held, err := e.queue.Held(ctx, e.svc.MailRef(v.chatID)); err != nil || len(held) != 0 {
		t.Errorf("still held: %v, %v", held, err)
	}

	// The relay comes back: a later chat's transcript arrives, never the
	// erased one.
	relay := mailtest.Start(t, mailtest.Options{Addr: addr, TLS: ca.ServerTLS()})
	marker := newTag()
	m := e.startFull(acct, "Marker", "", "marker "+marker, 0)
	if err := m.end(ctx); err != nil {
		t.Fatal(err)
	}
	relay.WaitMail(t, marker)
	for _, mail := range relay.Received() {
		if strings.Contains(mail.All(t), tag) {
			t.Fatal("the relay received the erased chat's transcript")
		}
	}
}

func TestChatsByEmail_EitherAddressAnyCaseOneAccount(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, port := mailtest.FreeAddr(t)
	e := newEnv(t, withMail(port, mailtest.NewCA(t)))
	e.addAccountB()
	own := e.startFull(acct, "Own", "Mixed.Case@Example.com", "hi", 0)
	copyTo := e.startFull(acct, "Copy", "", "hi", 0)
	copyTo.requestTranscript(t, "mixed.case@example.com")
	e.startFull(acct, "Other", "other@example.com", "hi", 0)
	otherAccount := e.startFull(acctB, "B", "mixed.case@example.com", "hi", 0)

	got, err := e.svc.ChatsByEmail(ctx, acct, " MIXED.case@example.COM ")
	if err != nil {
		t.Fatal(err)
	}
	if want := slices.Sorted(slices.Values([]string{own.chatID, copyTo.chatID})); !slices.Equal(got, want) {
		t.Errorf("ChatsByEmail = %v, want %v", got, want)
	}
	if got, err := e.svc.ChatsByEmail(ctx, acctB, "mixed.case@example.com"); err != nil || !slices.Equal(got, []string{otherAccount.chatID}) {
		t.Errorf("account B: %v, %v", got, err)
	}
	for _, q := range []string{"", "  ", "nobody@example.com", "mixed.case"} {
		if got, err := e.svc.ChatsByEmail(ctx, acct, q); err != nil || len(got) != 0 {
			t.Errorf("ChatsByEmail(%q) = %v, %v; want nothing", q, got, err)
		}
	}

	// Both lookups search an index: no visitor or chat is read in full.
	rows, err := e.scratch.R.QueryContext(ctx, `EXPLAIN QUERY PLAN `+chatsByEmailQuery, acct, "x@example.com")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	all := strings.Join(plan, "\n")
	for _, line := range plan {
		if strings.HasPrefix(line, "SCAN ") {
			t.Errorf("the lookup scans a table:\n%s", all)
		}
	}
	for _, key := range []string{"(account_id=? AND email=?)", "(account_id=? AND transcript_email=?)"} {
		if !strings.Contains(all, key) {
			t.Errorf("no search on %s:\n%s", key, all)
		}
	}
	for _, idx := range []string{"visitors_account_email", "visitors_account_transcript_email", "chats_visitor"} {
		if !strings.Contains(all, idx) {
			t.Errorf("the lookup does not use %s:\n%s", idx, all)
		}
	}
}

// An offline message is held under the ref its token stands for (the token
// itself is never stored), found by the visitor's address, and, dropped
// during an outage, never sent.
func TestOffline_TokenHeldThenDroppedNeverSent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ca := mailtest.NewCA(t)
	addr, port := mailtest.FreeAddr(t)
	e := newEnv(t, withMail(port, ca))
	e.accounts.update(func(s *AccountSettings) { s.Recipients = []string{recipient} })
	tag := newTag()
	email := tag + "@example.com"
	leave := func(text string) string {
		t.Helper()
		res, err := e.visitor().chat.LeaveOfflineMessage(ctx, connect.NewRequest(&chatv1.LeaveOfflineMessageRequest{AccountId: acct,
			VisitorName: "Olga", VisitorEmail: email, Message: text, Locale: "en"}))
		if err != nil {
			t.Fatalf("LeaveOfflineMessage: %v", err)
		}
		if res.Msg.OfflineToken == "" {
			t.Fatal("no offline token")
		}
		return res.Msg.OfflineToken
	}
	token := leave("please call me back " + tag)
	testkit.WaitLog(t, e.logs, `msg="mail attempt failed"`, 1)

	ref := e.svc.OfflineRef(token)
	if !strings.HasPrefix(ref, "offline:") || ref == e.svc.OfflineRef(token+"x") || e.svc.OfflineRef("") != "" {
		t.Fatalf("OfflineRef(token) = %q", ref)
	}
	held, err := e.queue.Held(ctx, ref)
	if err != nil || len(held) != 1 || !strings.Contains(held[0].Text, "please call me back "+tag) || held[0].Recipients != 1 {
		t.Fatalf("Held(offline ref) = %+v, %v", held, err)
	}
	if byAddr, err := e.queue.HeldFor(ctx, acct, strings.ToUpper(email)); err != nil || len(byAddr) != 1 || byAddr[0].Ref != ref {
		t.Fatalf("HeldFor(the visitor's address) = %+v, %v", byAddr, err)
	}
	if hits := e.filesContaining(token); len(hits) > 0 {
		t.Fatalf("the offline token is stored: %v", hits)
	}

	if n, err := e.queue.Drop(ctx, ref); err != nil || n != 1 {
		t.Fatalf("Drop = %d, %v; want 1", n, err)
	}
	if hits := e.filesContaining(tag); len(hits) > 0 {
		t.Fatalf("the dropped message is on disk: %v", hits)
	}
	relay := mailtest.Start(t, mailtest.Options{Addr: addr, TLS: ca.ServerTLS()})
	marker := newTag()
	if _, err := e.visitor().chat.LeaveOfflineMessage(ctx, connect.NewRequest(&chatv1.LeaveOfflineMessageRequest{AccountId: acct,
		VisitorName: "Marker", VisitorEmail: "marker@example.com", Message: "marker " + marker, Locale: "en"})); err != nil {
		t.Fatal(err)
	}
	relay.WaitMail(t, marker)
	for _, m := range relay.Received() {
		if strings.Contains(m.All(t), tag) {
			t.Fatal("the relay received the dropped offline message")
		}
	}
}

func TestTranscript_CarriesTheConsentReceipt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ca := mailtest.NewCA(t)
	relay := mailtest.Start(t, mailtest.Options{TLS: ca.ServerTLS()})
	e := newEnv(t, withMail(relay.Port, ca))
	e.accounts.update(transcriptsTo)
	version := e.setConsentText(consentv1.ConsentForm_CONSENT_FORM_PRECHAT, "We keep this chat while it lasts.")
	tag := newTag()
	v := e.startFull(acct, "Ana", "", "consented "+tag, version)
	d, err := e.svc.ChatData(ctx, v.chatID)
	if err != nil {
		t.Fatal(err)
	}
	at := d.Consent.GetAcceptedAt().AsTime().UTC().Format(timeLayout)
	if err := v.end(ctx); err != nil {
		t.Fatal(err)
	}
	m := relay.WaitMail(t, tag)
	want := "Consent: pre-chat text version " + itoa(version) + " (en), accepted " + at
	m.CheckAlternative(t, recipient, want)

	// Without consent (an account without a consent text), no receipt.
	e = newEnv(t, withMail(relay.Port, ca))
	e.accounts.update(transcriptsTo)
	plain := e.startFull(acct, "Ben", "", "unconsented "+tag, 0)
	if err := plain.end(ctx); err != nil {
		t.Fatal(err)
	}
	if all := relay.WaitMail(t, "unconsented "+tag).All(t); strings.Contains(all, "Consent:") {
		t.Error("a chat without consent has a consent receipt in its transcript")
	}
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

// Every destruction, not only an erasure, is counted in the audit trail
// (per account, never which chat).
func TestDestroy_CountedInTheAuditTrail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rec := &auditCounts{}
	e := newEnv(t, withAudit(rec))
	for range 2 {
		v := e.startChat("Ana", "", "hi")
		if err := v.end(ctx); err != nil {
			t.Fatal(err)
		}
		e.waitDestroyed(v.chatID)
	}
	if n := rec.get(acct, audit.ChatsDestroyed); n != 2 {
		t.Errorf("chats destroyed counted %d, want 2", n)
	}
}
