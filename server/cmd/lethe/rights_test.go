package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/santhosh-tekuri/jsonschema/v6"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	monitorv1 "github.com/lethehq/lethe/gen/go/lethe/monitor/v1"
	"github.com/lethehq/lethe/gen/go/lethe/monitor/v1/monitorv1connect"
	privacyv1 "github.com/lethehq/lethe/gen/go/lethe/privacy/v1"
	lethe "github.com/lethehq/lethe/sdk/go"
	"github.com/lethehq/lethe/server/chat/chattest"
	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/mail/mailtest"
	"github.com/lethehq/lethe/server/privacy"
)

// P12 and P13 against the real server: a visitor sees, downloads, corrects
// and erases what the server holds about them; an admin answers a request
// by e-mail address; the inventory follows the live settings; the audit
// trail says who did what, never what was said.

// visit starts a monitored visit with a page and custom data carrying tag,
// and returns its token.
func visit(t *testing.T, ts *testServer, tag string, h http.Header) (mon monitorv1connect.MonitorServiceClient, token string, res *monitorv1.TrackResponse) {
	t.Helper()
	ctx := context.Background()
	mon = monitorv1connect.NewMonitorServiceClient(ts.client(), ts.URL)
	req := connect.NewRequest(&monitorv1.TrackRequest{AccountId: demoAccount,
		Page: &monitorv1.Page{Url: "https://shop.example/p/" + tag, Title: "Page " + tag}})
	for k, v := range h {
		req.Header()[k] = v
	}
	r, err := mon.Track(ctx, req)
	if err != nil {
		t.Fatalf("Track: %v", err)
	}
	if r.Msg.VisitToken == "" {
		return mon, "", r.Msg
	}
	sd := connect.NewRequest(&monitorv1.SetCustomDataRequest{Data: map[string]string{"plan": "plan-" + tag}})
	sd.Header().Set("Authorization", "Bearer "+r.Msg.VisitToken)
	if _, err := mon.SetCustomData(ctx, sd); err != nil {
		t.Fatalf("SetCustomData: %v", err)
	}
	return mon, r.Msg.VisitToken, r.Msg
}

// schema is the documented schema of the visitor's download.
func schema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	path, err := filepath.Abs("../../../docs/privacy/visitor-data.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	s, err := jsonschema.NewCompiler().Compile(path)
	if err != nil {
		t.Fatalf("compile the schema: %v", err)
	}
	return s
}

// myDataJSON fetches GetMyData in the Connect JSON encoding, as the widget
// downloads it, and returns the VisitorData document.
func myDataJSON(t *testing.T, ts *testServer, chatToken, visitToken string) []byte {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"visitToken": visitToken})
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/lethe.privacy.v1.PrivacyService/GetMyData", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connect-Protocol-Version", "1")
	if chatToken != "" {
		req.Header.Set("Authorization", "Bearer "+chatToken)
	}
	res, err := ts.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GetMyData: %d %s", res.StatusCode, b)
	}
	var wrap struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &wrap); err != nil {
		t.Fatal(err)
	}
	return wrap.Data
}

func counts(r *privacyv1.DeletionReceipt) map[string]int64 {
	m := map[string]int64{}
	for _, c := range r.GetDestroyed() {
		m[c.Category] += c.Count
	}
	return m
}

func TestRights_VisitorSeesDownloadsCorrectsAndForgets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	admin := ts.admin()
	inbox := watchInbox(t, admin)
	c := newCanaries()
	tag := strings.ToLower(randomText(8))
	_, visitToken, _ := visit(t, ts, tag, nil)

	v := ts.visitor()
	if err := v.Start(ctx, lethe.StartChat{AccountID: demoAccount, Name: c.name, Email: c.email, FirstMessage: c.text}); err != nil {
		t.Fatal(err)
	}
	inbox.Next("queued", chattest.ChatUpdated(v.ChatID, chatv1.ChatState_CHAT_STATE_WAITING))
	if err := admin.Accept(ctx, v.ChatID); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Send(ctx, v.ChatID, c.reply); err != nil {
		t.Fatal(err)
	}

	// See: everything, read live.
	d, err := v.MyData(ctx, visitToken)
	if err != nil {
		t.Fatal(err)
	}
	if d.Chat == nil || d.Chat.VisitorName != c.name || d.Chat.VisitorEmail != c.email || d.Chat.MessageCount < 2 {
		t.Fatalf("the chat as the visitor sees it: %+v", d.Chat)
	}
	var said []string
	for _, m := range d.Chat.Messages {
		said = append(said, m.Text)
	}
	if !slices.Contains(said, c.text) || !slices.Contains(said, c.reply) {
		t.Errorf("the messages are not all there: %q", said)
	}
	if d.Chat.Destruction.GetRule() == "" {
		t.Error("the chat does not say when it is destroyed")
	}
	if d.Visit == nil || len(d.Visit.Pages) == 0 || !strings.Contains(d.Visit.Pages[0].Url, tag) {
		t.Fatalf("the visit as the visitor sees it: %+v", d.Visit)
	}
	if !slices.ContainsFunc(d.Visit.CustomData, func(x *privacyv1.CustomDatum) bool { return x.Value == "plan-"+tag }) {
		t.Errorf("the custom data is missing: %v", d.Visit.CustomData)
	}
	if d.Visit.Destruction.GetRule() == "" {
		t.Error("the visit does not say when it is destroyed")
	}

	// Download: the JSON document matches its documented schema.
	doc := myDataJSON(t, ts, v.Token, visitToken)
	var inst any
	if err := json.Unmarshal(doc, &inst); err != nil {
		t.Fatal(err)
	}
	if err := schema(t).Validate(inst); err != nil {
		t.Fatalf("the download does not match docs/privacy/visitor-data.schema.json: %v\n%s", err, doc)
	}
	if !bytes.Contains(doc, []byte(c.text)) {
		t.Error("the download lacks the visitor's message")
	}

	// Correct: the operator sees the new name at once.
	newName := c.name + "-corrected"
	res, err := v.Privacy.CorrectMyData(ctx, connect.NewRequest(&privacyv1.CorrectMyDataRequest{VisitorName: newName, VisitorEmail: c.email}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Msg.Chat.VisitorName != newName {
		t.Errorf("CorrectMyData answered %q", res.Msg.Chat.VisitorName)
	}
	inbox.Next("the corrected name", func(r *chatv1.WatchInboxResponse) bool {
		if e := r.GetEvent(); e != nil && e.GetVisitorUpdated().GetVisitorName() == newName {
			return true
		}
		return r.GetChatUpdated().GetVisitorName() == newName
	})
	_, err = v.Privacy.CorrectMyData(ctx, connect.NewRequest(&privacyv1.CorrectMyDataRequest{VisitorName: "", VisitorEmail: c.email}))
	wantCode(t, err, connect.CodeInvalidArgument)

	// Forget me now: a receipt with counts, the operator told, nothing left.
	rcpt, err := v.ForgetMe(ctx, visitToken)
	if err != nil {
		t.Fatal(err)
	}
	got := counts(rcpt)
	if rcpt.ReceiptId == "" || got["chat"] != 1 || got["messages"] < 2 || got["visit"] != 1 || got["pages"] < 1 || got["custom data"] < 1 {
		t.Fatalf("receipt %s: %v", rcpt.ReceiptId, got)
	}
	inbox.Next("the erasure", func(r *chatv1.WatchInboxResponse) bool {
		return r.GetEvent().GetClosed().GetReason() == privacy.ReasonVisitor
	})
	for _, s := range append(c.all(), newName, tag) {
		if hits := ts.filesContaining(s); len(hits) > 0 {
			t.Errorf("%q is still on disk after ForgetMe: %v", s, hits)
		}
	}
	d, err = v.MyData(ctx, visitToken)
	if err != nil {
		t.Fatal(err)
	}
	if d.Chat != nil || d.Visit != nil || len(d.Mail) > 0 {
		t.Fatalf("after ForgetMe the server still holds %v", d)
	}
	// The receipt is in the audit trail, by id and count.
	entries, err := admin.Privacy.ListAuditEntries(ctx, connect.NewRequest(&privacyv1.ListAuditEntriesRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(entries.Msg.Entries, func(e *privacyv1.AuditEntry) bool {
		return e.Action == "visitor_erased" && e.ReceiptId == rcpt.ReceiptId && e.Count > 0
	}) {
		t.Errorf("the receipt %s is not in the audit trail", rcpt.ReceiptId)
	}
}

func TestRights_VisitorSeesOnlyTheirOwn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	a := ts.startChat("Alice Visitor", "alice@example.com", "hello from alice")
	b := ts.startChat("Bob Visitor", "bob@example.com", "hello from bob")
	_, aVisit, _ := visit(t, ts, "alicevisit", nil)

	nobody := ts.visitor()
	_, err := nobody.MyData(ctx, "")
	wantCode(t, err, connect.CodeUnauthenticated)
	// Made-up secrets find nothing (and never someone else's data).
	d, err := nobody.MyData(ctx, "not-a-token")
	if err != nil {
		t.Fatal(err)
	}
	if d.Chat != nil || d.Visit != nil {
		t.Fatalf("made-up tokens found %v", d)
	}
	// Bob's token sees Bob's chat, never Alice's.
	d, err = b.MyData(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if d.Chat.GetChatId() != b.ChatID || d.Chat.VisitorName != "Bob Visitor" {
		t.Fatalf("Bob sees %v", d.Chat)
	}
	// Correcting needs a chat token; the visit token alone is not one.
	_, err = nobody.Privacy.CorrectMyData(ctx, connect.NewRequest(&privacyv1.CorrectMyDataRequest{VisitorName: "X"}))
	wantCode(t, err, connect.CodeUnauthenticated)
	// Bob's ForgetMe destroys Bob only.
	if _, err := b.ForgetMe(ctx, ""); err != nil {
		t.Fatal(err)
	}
	d, err = a.MyData(ctx, aVisit)
	if err != nil {
		t.Fatal(err)
	}
	if d.Chat.GetVisitorName() != "Alice Visitor" || d.Visit == nil {
		t.Fatalf("Alice lost data when Bob erased his: %v", d)
	}
	// Operators cannot use the admin RPCs; another account's admin finds
	// nothing of this account.
	op := ts.createOperator(ts.admin(), "plain@lethe.local", "Plain Operator")
	_, err = op.Privacy.FindDataSubject(ctx, connect.NewRequest(&privacyv1.FindDataSubjectRequest{Email: "alice@example.com"}))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = op.Privacy.EraseDataSubject(ctx, connect.NewRequest(&privacyv1.EraseDataSubjectRequest{Email: "alice@example.com"}))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = op.Privacy.ListAuditEntries(ctx, connect.NewRequest(&privacyv1.ListAuditEntriesRequest{}))
	wantCode(t, err, connect.CodePermissionDenied)
	other := addTenant(t, ts)
	found, err := other.Privacy.FindDataSubject(ctx, connect.NewRequest(&privacyv1.FindDataSubjectRequest{Email: "alice@example.com"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(found.Msg.Data.Chats)+len(found.Msg.Data.Mail)+len(found.Msg.Data.Visits) != 0 {
		t.Fatalf("another account's admin found %v", found.Msg.Data)
	}
	if _, err := other.Privacy.EraseDataSubject(ctx, connect.NewRequest(&privacyv1.EraseDataSubjectRequest{Email: "alice@example.com"})); err != nil {
		t.Fatal(err)
	}
	if d, err := a.MyData(ctx, ""); err != nil || d.Chat == nil {
		t.Fatalf("another account's erasure reached this account's chat: %v %v", d, err)
	}
}

// A person writes to the business during a mail outage: the admin finds
// their offline message by address, exports it, erases it, and it is never
// sent when the relay comes back.
func TestRights_AdminErasesAHeldOfflineMessageByEmail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ca := mailtest.NewCA(t)
	_, port := mailtest.FreeAddr(t)
	ts := newTestServer(t, withSMTP(port, ca))
	admin := ts.admin()
	updateSettings(t, admin, transcriptsTo)
	if err := admin.SetStatus(ctx, chatv1.OperatorStatus_OPERATOR_STATUS_AWAY); err != nil {
		t.Fatal(err)
	}
	c := newCanaries()
	v := ts.visitor()
	if err := v.LeaveOfflineMessage(ctx, lethe.OfflineMessage{AccountID: demoAccount, Name: c.name, Email: c.email, Message: c.text}); err != nil {
		t.Fatal(err)
	}
	ts.waitLogCount(`msg="mail attempt failed"`, 1)

	// The visitor sees it too, with its offline token.
	d, err := v.MyData(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Mail) != 1 || d.Mail[0].Kind != privacyv1.MailKind_MAIL_KIND_OFFLINE_MESSAGE || !strings.Contains(d.Mail[0].Text, c.text) {
		t.Fatalf("the visitor's waiting mail: %v", d.Mail)
	}

	// The same person also has a chat open (a visitor can chat while no
	// operator is online; it waits in the queue).
	chatted := ts.startChat(c.name, c.email, c.reply)

	found, err := admin.Privacy.FindDataSubject(ctx, connect.NewRequest(&privacyv1.FindDataSubjectRequest{Email: strings.ToUpper(c.email)}))
	if err != nil {
		t.Fatal(err)
	}
	if len(found.Msg.Data.Mail) != 1 || !strings.Contains(found.Msg.Data.Mail[0].Text, c.text) {
		t.Fatalf("the admin's export: %v", found.Msg.Data)
	}
	if len(found.Msg.Data.Chats) != 1 || found.Msg.Data.Chats[0].ChatId != chatted.ChatID {
		t.Fatalf("the admin's export lacks the open chat: %v", found.Msg.Data.Chats)
	}
	erased, err := admin.Privacy.EraseDataSubject(ctx, connect.NewRequest(&privacyv1.EraseDataSubjectRequest{Email: c.email}))
	if err != nil {
		t.Fatal(err)
	}
	if got := counts(erased.Msg.Receipt); got["offline messages"] != 1 || got["chat"] != 1 || got["messages"] < 1 {
		t.Fatalf("receipt: %v", erased.Msg.Receipt)
	}
	if d, err := chatted.MyData(ctx, ""); err != nil || d.Chat != nil {
		t.Fatalf("the erased chat is still held: %v (%v)", d, err)
	}
	for _, s := range c.all() {
		if hits := ts.filesContaining(s); len(hits) > 0 {
			t.Errorf("%q is still on disk after the erasure: %v", s, hits)
		}
	}
	// The relay comes back: nothing is sent.
	relay := startRelay(t, ca, true, port)
	time.Sleep(time.Second) // retries run every 20–200 ms
	if n := len(relay.Received()); n != 0 {
		t.Fatalf("the relay received %d messages after the erasure", n)
	}
	if d, err := v.MyData(ctx, ""); err != nil || len(d.Mail) != 0 {
		t.Fatalf("the visitor still sees %v (%v)", d, err)
	}
	_, err = admin.Privacy.FindDataSubject(ctx, connect.NewRequest(&privacyv1.FindDataSubjectRequest{Email: "not an address"}))
	wantCode(t, err, connect.CodeInvalidArgument)
}

// page fetches the public inventory.
func page(t *testing.T, ts *testServer, query string) string {
	t.Helper()
	res, err := ts.client().Get(ts.URL + "/privacy" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/privacy%s: %d %s", query, res.StatusCode, b)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type %q", ct)
	}
	if strings.Contains(strings.ToLower(string(b)), "<script") {
		t.Error("the public inventory carries a script")
	}
	return string(b)
}

func TestInventory_FollowsTheLiveSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ca := mailtest.NewCA(t)
	_, port := mailtest.FreeAddr(t)
	ts := newTestServer(t, withSMTP(port, ca))
	admin := ts.admin()
	_, _, _ = visit(t, ts, "keys", nil)

	html := page(t, ts, "")
	if !strings.Contains(html, "stored with the chat and the visit") || !strings.Contains(html, "Transcripts by e-mail: off") ||
		!strings.Contains(html, "<code>plan</code>") {
		t.Fatalf("default inventory:\n%s", html)
	}
	updateSettings(t, admin, func(s *accountv1.Settings) {
		transcriptsTo(s)
		s.HideVisitorIp = true
		s.AuditRetentionDays = 30
		s.GpcIgnored, s.GpcIgnoredReason = true, "Fraud prevention on the checkout pages <script>alert(1)</script>"
	})
	html = page(t, ts, "?account="+demoAccount) // page() fails on any <script
	if !strings.Contains(html, "&lt;script&gt;") {
		t.Error("the admin's reason is not shown escaped")
	}
	for _, want := range []string{"not stored (hidden)", "Transcripts by e-mail: on", "30 days", "Fraud prevention on the checkout pages", "127.0.0.1"} {
		if !strings.Contains(html, want) {
			t.Errorf("after the change the page lacks %q", want)
		}
	}
	if strings.Contains(html, recipient) {
		t.Error("the public page shows the recipients' addresses (domains only)")
	}
	inv, err := admin.Privacy.GetDataInventory(ctx, connect.NewRequest(&privacyv1.GetDataInventoryRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	i := inv.Msg.Inventory
	if !i.IpHidden || !i.TranscriptsEnabled || i.AuditRetentionDays != 30 || i.GpcHonoured || !slices.Contains(i.MailRecipients, recipient) {
		t.Fatalf("the inventory over the API: %v", i)
	}
	updateSettings(t, admin, func(s *accountv1.Settings) { s.HideVisitorIp, s.TranscriptsEnabled = false, false })
	html = page(t, ts, "")
	if !strings.Contains(html, "stored with the chat and the visit") || !strings.Contains(html, "Transcripts by e-mail: off") {
		t.Error("the page did not follow the settings back")
	}
	res, err := ts.client().Get(ts.URL + "/privacy?account=nobody")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown account: %d", res.StatusCode)
	}
}

// jsonLines downloads the audit trail with o's session.
func jsonLines(t *testing.T, ts *testServer, o *lethe.Operator) (int, []map[string]any, string) {
	t.Helper()
	res, err := o.HTTPClient.Get(ts.URL + privacy.AuditPath)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var lines []map[string]any
	if res.StatusCode == http.StatusOK {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			lines = append(lines, m)
		}
	}
	return res.StatusCode, lines, string(b)
}

func TestAudit_SaysWhoDidWhatNeverWhatWasSaid(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	admin := ts.admin()
	if err := ts.operator().Login(ctx, adminEmail, "wrong-password-1"); err == nil {
		t.Fatal("a wrong password signed in")
	}
	updateSettings(t, admin, func(s *accountv1.Settings) { s.HideVisitorIp = true })
	op := ts.createOperator(admin, "second@lethe.local", "Second Operator")
	c := newCanaries()
	runCanaryChat(t, ts, c, func() {})
	v := ts.startChat(c.name+"2", c.email, c.text+"2")
	if _, err := v.ForgetMe(ctx, ""); err != nil {
		t.Fatal(err)
	}

	code, _, _ := jsonLines(t, ts, op)
	if code != http.StatusForbidden {
		t.Errorf("an operator downloaded the audit trail: %d", code)
	}
	code, lines, raw := jsonLines(t, ts, admin)
	if code != http.StatusOK {
		t.Fatalf("audit.jsonl: %d %s", code, raw)
	}
	seen := map[string]bool{}
	for _, l := range lines {
		a, _ := l["action"].(string)
		seen[a] = true
	}
	for _, want := range []string{"login", "login_failed", "settings_changed", "operator_created", "visitor_erased", "chats_destroyed"} {
		if !seen[want] {
			t.Errorf("the audit trail lacks %q: %v", want, seen)
		}
	}
	if !strings.Contains(raw, "hide_visitor_ip") {
		t.Error("settings_changed does not name the setting")
	}
	for _, s := range append(c.all(), c.name+"2") {
		if strings.Contains(raw, s) {
			t.Errorf("the audit trail holds %q", s)
		}
	}
	// The durable database (where the trail lives) holds none either.
	db, err := os.ReadFile(filepath.Join(ts.dir, "lethe.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range c.all() {
		if bytes.Contains(db, []byte(s)) {
			t.Errorf("lethe.db holds %q", s)
		}
	}
}

func TestRights_OperatorExportsCorrectsRevokesAndDeletes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	admin := ts.admin()
	op := ts.createOperator(admin, "op@lethe.local", "Op One")
	second := ts.login("op@lethe.local", "operator-password-1")

	ss, err := op.Privacy.ListMySessions(ctx, connect.NewRequest(&privacyv1.ListMySessionsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(ss.Msg.Sessions) != 2 {
		t.Fatalf("%d sessions, want 2", len(ss.Msg.Sessions))
	}
	var other string
	for _, s := range ss.Msg.Sessions {
		if !s.Current {
			other = s.Id
		}
	}
	if _, err := op.Privacy.RevokeSession(ctx, connect.NewRequest(&privacyv1.RevokeSessionRequest{SessionId: other})); err != nil {
		t.Fatal(err)
	}
	_, err = second.Privacy.ListMySessions(ctx, connect.NewRequest(&privacyv1.ListMySessionsRequest{}))
	wantCode(t, err, connect.CodeUnauthenticated)

	_, err = op.Privacy.UpdateMyProfile(ctx, connect.NewRequest(&privacyv1.UpdateMyProfileRequest{Name: "Op Renamed", Email: "op@lethe.local", CurrentPassword: "wrong-password-1"}))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = op.Privacy.UpdateMyProfile(ctx, connect.NewRequest(&privacyv1.UpdateMyProfileRequest{Name: "Op Renamed", Email: adminEmail, CurrentPassword: "operator-password-1"}))
	wantCode(t, err, connect.CodeAlreadyExists)
	up, err := op.Privacy.UpdateMyProfile(ctx, connect.NewRequest(&privacyv1.UpdateMyProfileRequest{Name: "Op Renamed", Email: "op2@lethe.local", CurrentPassword: "operator-password-1"}))
	if err != nil {
		t.Fatal(err)
	}
	if up.Msg.Operator.Name != "Op Renamed" || up.Msg.Operator.Email != "op2@lethe.local" {
		t.Fatalf("UpdateMyProfile: %v", up.Msg.Operator)
	}
	x, err := op.Privacy.ExportMyAccount(ctx, connect.NewRequest(&privacyv1.ExportMyAccountRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	e := x.Msg.Export
	if e.Operator.GetEmail() != "op2@lethe.local" || len(e.Sessions) != 1 ||
		!slices.ContainsFunc(e.Audit, func(a *privacyv1.AuditEntry) bool { return a.Action == "session_revoked" }) {
		t.Fatalf("export: %v", e)
	}

	// The last admin cannot delete themself; an operator can.
	_, err = admin.Privacy.DeleteMyAccount(ctx, connect.NewRequest(&privacyv1.DeleteMyAccountRequest{CurrentPassword: adminPassword}))
	wantCode(t, err, connect.CodeFailedPrecondition)
	_, err = op.Privacy.DeleteMyAccount(ctx, connect.NewRequest(&privacyv1.DeleteMyAccountRequest{CurrentPassword: "wrong-password-1"}))
	wantCode(t, err, connect.CodePermissionDenied)
	// The wrong passwords above count against the sign-in throttle: the
	// right one may have to wait for its retry hint.
	for {
		_, err := op.Privacy.DeleteMyAccount(ctx, connect.NewRequest(&privacyv1.DeleteMyAccountRequest{CurrentPassword: "operator-password-1"}))
		if testkit.CodeOf(err) == connect.CodeResourceExhausted {
			time.Sleep(lethe.RetryHint(err))
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		break
	}
	_, err = op.Privacy.ListMySessions(ctx, connect.NewRequest(&privacyv1.ListMySessionsRequest{}))
	wantCode(t, err, connect.CodeUnauthenticated)
	if err := ts.operator().Login(ctx, "op2@lethe.local", "operator-password-1"); err == nil {
		t.Fatal("a deleted operator signed in")
	}
	list, err := admin.Account.ListOperators(ctx, connect.NewRequest(&accountv1.ListOperatorsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range list.Msg.Operators {
		if o.Email == "op2@lethe.local" {
			t.Fatal("the deleted operator is still listed")
		}
	}
}

// Global Privacy Control: no monitoring record, unless the account says why
// it ignores it.
func TestGPC_NoVisitUnlessTheAccountStatesWhy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	admin := ts.admin()
	gpc := http.Header{"Sec-Gpc": []string{"1"}}
	_, tok, res := visit(t, ts, "gpc", gpc)
	if tok != "" || res.VisitorId != "" || !res.GpcHonoured {
		t.Fatalf("Track with GPC: %v", res)
	}
	if hits := ts.filesContaining("/p/gpc"); len(hits) > 0 {
		t.Fatalf("the page of a GPC visitor reached storage: %v", hits)
	}
	_, err := admin.Account.UpdateSettings(ctx, connect.NewRequest(&accountv1.UpdateSettingsRequest{Settings: &accountv1.Settings{
		IdleTimeoutSeconds: 600, AllowedOrigins: []string{"self"}, GpcIgnored: true}}))
	wantCode(t, err, connect.CodeInvalidArgument)
	updateSettings(t, admin, func(s *accountv1.Settings) {
		s.GpcIgnored, s.GpcIgnoredReason = true, "Fraud prevention on the checkout pages"
	})
	_, tok, res = visit(t, ts, "gpc2", gpc)
	if tok == "" || res.GpcHonoured {
		t.Fatalf("Track with GPC ignored by the account: %v", res)
	}
}
