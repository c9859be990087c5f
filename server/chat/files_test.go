package chat

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/files"
	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/limit"
	"github.com/lethehq/lethe/server/mail/mailtest"
	"github.com/lethehq/lethe/server/netinfo"
)

// The chat side of files in chats (files.Chats): who is a participant, the
// limits on uploads, the FileShared event, and the destruction of a chat's
// files when it closes (P6). The files domain is stood in for by
// recordingFiles, the one method chat calls on it.

// recordingFiles records the chats whose files it was told to destroy;
// fail makes the next calls fail.
type recordingFiles struct {
	mu    sync.Mutex
	calls []string
	fail  int
}

func (r *recordingFiles) DestroyChat(_ context.Context, chatID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, chatID)
	if r.fail > 0 {
		r.fail--
		return errors.New("disk on fire")
	}
	return nil
}

// count is how often chatID's files were destroyed.
func (r *recordingFiles) count(chatID string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, id := range r.calls {
		if id == chatID {
			n++
		}
	}
	return n
}

func (e *env) withFiles() *recordingFiles {
	r := &recordingFiles{}
	e.svc.SetFiles(r)
	return r
}

// The other account and its operator.
const acctB = "acct-b"

var opOther = auth.Operator{ID: "op-other", AccountID: acctB, Name: "Olaf", Admin: true}

// addAccountB adds the other account (another tenant on the same server).
func (e *env) addAccountB() {
	e.accounts.mu.Lock()
	defer e.accounts.mu.Unlock()
	e.accounts.settings[acctB] = AccountSettings{IdleTimeout: 10 * time.Minute}
	e.accounts.ops[opOther.ID] = opOther
}

// asVisitor is the context of a call made with v's token, as the auth
// interceptor resolves it.
func (e *env) asVisitor(v *visitor) context.Context {
	e.t.Helper()
	who, err := e.svc.VisitorByToken(context.Background(), v.token)
	if err != nil {
		e.t.Fatalf("VisitorByToken: %v", err)
	}
	return auth.WithVisitor(context.Background(), who)
}

func asOperator(op auth.Operator) context.Context {
	return auth.WithOperator(context.Background(), &op)
}

// sharedFile is what the files domain posts when an upload finishes.
func sharedFile(name string, size int64) *chatv1.FileShared {
	return &chatv1.FileShared{FileId: "file-" + name, Name: name, Size: size, ContentType: "application/pdf",
		Sha256: strings.Repeat("ab", 32)}
}

// acceptedChat starts a chat of Ana that Bob accepts (seqs 1–3).
func acceptedChat(t *testing.T, e *env) *visitor {
	t.Helper()
	v := e.startChat("Ana", "", "first")
	if err := e.operator(opBob).accept(context.Background(), v.chatID); err != nil {
		t.Fatalf("Accept: %v", err)
	}
	return v
}

func TestParticipant_OnlyTheChatsVisitorAndItsOperator(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addAccountB()
	ana := acceptedChat(t, e)
	waiting := e.startChat("Wendy", "", "nobody took me")
	other := e.startChat("Otto", "", "another chat")
	foreign := e.visitor()
	if err := foreign.start(context.Background(), &chatv1.StartChatRequest{AccountId: acctB, VisitorName: "Fritz", FirstMessage: "hi"}); err != nil {
		t.Fatalf("StartChat in the other account: %v", err)
	}
	anaID := func() string {
		c, err := e.svc.store.Chat(context.Background(), ana.chatID)
		if err != nil {
			t.Fatal(err)
		}
		return c.VisitorID
	}()

	for _, tc := range []struct {
		name   string
		ctx    context.Context
		chatID string
		want   files.Participant
		code   connect.Code
	}{
		{name: "own visitor", ctx: e.asVisitor(ana), chatID: ana.chatID,
			want: files.Participant{ChatID: ana.chatID, AccountID: acct, Kind: chatv1.AuthorKind_AUTHOR_KIND_VISITOR, ID: anaID, Name: "Ana"}},
		{name: "assigned operator", ctx: asOperator(opBob), chatID: ana.chatID,
			want: files.Participant{ChatID: ana.chatID, AccountID: acct, Kind: chatv1.AuthorKind_AUTHOR_KIND_OPERATOR, ID: opBob.ID, Name: "Bob"}},
		{name: "other visitor of the account", ctx: e.asVisitor(other), chatID: ana.chatID, code: connect.CodePermissionDenied},
		{name: "admin not in the chat", ctx: asOperator(opAdmin), chatID: ana.chatID, code: connect.CodePermissionDenied},
		{name: "operator of a waiting chat", ctx: asOperator(opBob), chatID: waiting.chatID, code: connect.CodePermissionDenied},
		{name: "visitor of the other account", ctx: e.asVisitor(foreign), chatID: ana.chatID, code: connect.CodeNotFound},
		{name: "operator of the other account", ctx: asOperator(opOther), chatID: ana.chatID, code: connect.CodeNotFound},
		{name: "visitor asking for an unknown chat", ctx: e.asVisitor(ana), chatID: "no-such-chat", code: connect.CodeNotFound},
		{name: "operator asking for an unknown chat", ctx: asOperator(opBob), chatID: "no-such-chat", code: connect.CodeNotFound},
		{name: "API key", ctx: auth.WithAPIKey(context.Background(), &auth.Key{ID: "k", AccountID: acct}), chatID: ana.chatID, code: connect.CodePermissionDenied},
		{name: "nobody", ctx: context.Background(), chatID: ana.chatID, code: connect.CodePermissionDenied},
		{name: "no chat id", ctx: e.asVisitor(ana), chatID: "", code: connect.CodeInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.svc.Participant(tc.ctx, tc.chatID)
			if tc.code != 0 {
				testkit.WantCode(t, "Participant", err, tc.code)
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Participant = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// After a transfer the new operator takes part and the old one does not;
// a file the old one finishes after the transfer is refused.
func TestParticipant_TransferMovesTheRight(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	ana := acceptedChat(t, e)
	bob := e.operator(opBob)
	adminInbox := watchInbox(t, e.operator(opAdmin))
	watchInbox(t, bob)
	adminInbox.Next("admin's inbox", presenceOnline(opAdmin.ID))
	old, err := e.svc.Participant(asOperator(opBob), ana.chatID)
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.transfer(ctx, ana.chatID, opAdmin.ID); err != nil {
		t.Fatalf("Transfer: %v", err)
	}
	_, err = e.svc.Participant(asOperator(opBob), ana.chatID)
	testkit.WantCode(t, "old operator", err, connect.CodePermissionDenied)
	p, err := e.svc.Participant(asOperator(opAdmin), ana.chatID)
	if err != nil || p.ID != opAdmin.ID || p.Name != "Admin" {
		t.Fatalf("new operator: %+v, %v", p, err)
	}
	_, err = e.svc.PostFile(ctx, old, sharedFile("late.pdf", 10))
	testkit.WantCode(t, "PostFile by the old operator", err, connect.CodePermissionDenied)
	if _, err := e.svc.PostFile(ctx, p, sharedFile("on-time.pdf", 10)); err != nil {
		t.Fatalf("PostFile by the new operator: %v", err)
	}
}

// presenceOnline matches an operator's presence turning online.
func presenceOnline(id string) func(*chatv1.WatchInboxResponse) bool {
	return func(r *chatv1.WatchInboxResponse) bool {
		p := r.GetPresence()
		return p.GetOperatorId() == id && p.Status == chatv1.OperatorStatus_OPERATOR_STATUS_ONLINE
	}
}

// A closed chat has no participants any more: FailedPrecondition while it
// waits for its transcript, and once it is destroyed the visitor still
// hears "closed" while an operator finds nothing.
func TestParticipant_ClosedChatIsFailedPrecondition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, port := mailtest.FreeAddr(t) // the relay is down: the chat stays closing
	e := newEnv(t, withMail(port, mailtest.NewCA(t)))
	e.accounts.update(transcriptsTo)
	rec := e.withFiles()
	ana := acceptedChat(t, e)
	vp, err := e.svc.Participant(e.asVisitor(ana), ana.chatID)
	if err != nil {
		t.Fatal(err)
	}
	if err := ana.end(ctx); err != nil {
		t.Fatalf("EndChat: %v", err)
	}
	_, err = e.svc.Participant(e.asVisitor(ana), ana.chatID)
	testkit.WantCode(t, "visitor of the closed chat", err, connect.CodeFailedPrecondition)
	_, err = e.svc.Participant(asOperator(opBob), ana.chatID)
	testkit.WantCode(t, "operator of the closed chat", err, connect.CodeFailedPrecondition)
	_, err = e.svc.PostFile(ctx, vp, sharedFile("late.pdf", 10))
	testkit.WantCode(t, "PostFile into the closed chat", err, connect.CodeFailedPrecondition)
	if open, err := e.svc.Open(ctx, ana.chatID); err != nil || open {
		t.Fatalf("Open = %v, %v for a closed chat", open, err)
	}
	// Files die at close, while the transcript still waits for the relay.
	if rec.count(ana.chatID) == 0 {
		t.Fatal("the close did not destroy the chat's files")
	}
	if strings.Contains(e.logs.String(), `msg="chat destroyed"`) {
		t.Fatal("the chat was destroyed although its transcript is pending: the test proves nothing")
	}
}

func TestParticipant_DestroyedChat(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	ana := acceptedChat(t, e)
	if err := ana.end(ctx); err != nil {
		t.Fatal(err)
	}
	e.waitDestroyed(ana.chatID)
	_, err := e.svc.Participant(e.asVisitor(ana), ana.chatID)
	testkit.WantCode(t, "visitor of the destroyed chat", err, connect.CodeFailedPrecondition)
	_, err = e.svc.Participant(asOperator(opBob), ana.chatID)
	testkit.WantCode(t, "operator of the destroyed chat", err, connect.CodeNotFound)
	if open, err := e.svc.Open(ctx, ana.chatID); err != nil || open {
		t.Fatalf("Open = %v, %v for a destroyed chat", open, err)
	}
	if open, err := e.svc.Open(ctx, "no-such-chat"); err != nil || open {
		t.Fatalf("Open = %v, %v for an unknown chat", open, err)
	}
}

func TestOpen_WaitingAndActiveChatsAreOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	waiting := e.startChat("Wendy", "", "first")
	active := acceptedChat(t, e)
	for _, id := range []string{waiting.chatID, active.chatID} {
		if open, err := e.svc.Open(ctx, id); err != nil || !open {
			t.Fatalf("Open(%s) = %v, %v", id, open, err)
		}
	}
}

// wantRetry fails unless err is a throttling refusal naming want.
func wantRetry(t *testing.T, what string, err error, want string) {
	t.Helper()
	testkit.WantCode(t, what, err, connect.CodeResourceExhausted)
	var e *errs.Error
	if !errors.As(err, &e) || e.Retry <= 0 || !strings.Contains(e.Msg, want) {
		t.Fatalf("%s: %v, want a retry hint and %q", what, err, want)
	}
}

// An upload takes from the visitor's message limit: uploads and messages
// share it, in both directions.
func TestChargeUpload_TakesFromTheVisitorsMessageLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, withLimits(func(l *Limits) { l.MessagesPerVisitor = limit.Rate{N: 3, Per: time.Hour} }))
	ana := acceptedChat(t, e)
	vctx := e.asVisitor(ana)
	p, err := e.svc.Participant(vctx, ana.chatID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ana.send(ctx, "one message"); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := e.svc.ChargeUpload(vctx, p); err != nil {
			t.Fatalf("upload %d: %v", i+1, err)
		}
	}
	wantRetry(t, "fourth upload or message", e.svc.ChargeUpload(vctx, p), "per visitor")
	_, err = ana.send(ctx, "one more")
	testkit.WantCode(t, "message after the uploads", err, connect.CodeResourceExhausted)
	// Another visitor is not touched, nor is the operator.
	otto := e.startChat("Otto", "", "first")
	op, err := e.svc.Participant(e.asVisitor(otto), otto.chatID)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.ChargeUpload(e.asVisitor(otto), op); err != nil {
		t.Fatalf("another visitor's upload: %v", err)
	}
	bob, err := e.svc.Participant(asOperator(opBob), ana.chatID)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := e.svc.ChargeUpload(asOperator(opBob), bob); err != nil {
			t.Fatalf("operator upload %d: %v", i+1, err)
		}
	}
}

// Uploads count per client address too, across visitor tokens.
func TestChargeUpload_TakesFromTheAddressMessageLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withLimits(func(l *Limits) { l.MessagesPerAddr = limit.Rate{N: 2, Per: time.Hour} }))
	from := func(ctx context.Context, addr string) context.Context {
		return netinfo.WithClientAddr(ctx, netip.MustParseAddr(addr))
	}
	ana, otto := e.startChat("Ana", "", "first"), e.startChat("Otto", "", "first")
	pa, err := e.svc.Participant(e.asVisitor(ana), ana.chatID)
	if err != nil {
		t.Fatal(err)
	}
	po, err := e.svc.Participant(e.asVisitor(otto), otto.chatID)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.ChargeUpload(from(e.asVisitor(ana), addrA), pa); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.ChargeUpload(from(e.asVisitor(otto), addrA), po); err != nil {
		t.Fatal(err)
	}
	wantRetry(t, "third upload from the address", e.svc.ChargeUpload(from(e.asVisitor(ana), addrA), pa), "per client address")
	if err := e.svc.ChargeUpload(from(e.asVisitor(ana), addrB), pa); err != nil {
		t.Fatalf("upload from another address: %v", err)
	}
}

// PostFile stores the event with the chat's next sequence number and fans
// it out to the visitor's stream and the operator's inbox; the author is
// the participant, whatever the file says.
func TestPostFile_ReachesVisitorAndOperatorWithItsSeq(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	ana := acceptedChat(t, e)
	vs := watchChat(t, ana, 0)
	inbox := watchInbox(t, e.operator(opBob))
	vp, err := e.svc.Participant(e.asVisitor(ana), ana.chatID)
	if err != nil {
		t.Fatal(err)
	}
	f := sharedFile("report.pdf", 1234567)
	f.AuthorName, f.AuthorKind = "Mallory", chatv1.AuthorKind_AUTHOR_KIND_OPERATOR
	ev, err := e.svc.PostFile(ctx, vp, f)
	if err != nil {
		t.Fatalf("PostFile: %v", err)
	}
	if ev.Seq != 4 || ev.ChatId != ana.chatID || ev.Time == nil {
		t.Fatalf("PostFile = %v, want seq 4 of the chat", ev)
	}
	check := func(where string, got *chatv1.FileShared) {
		t.Helper()
		if got.GetFileId() != "file-report.pdf" || got.Name != "report.pdf" || got.Size != 1234567 || got.Sha256 != f.Sha256 ||
			got.ContentType != "application/pdf" || got.AuthorName != "Ana" || got.AuthorKind != chatv1.AuthorKind_AUTHOR_KIND_VISITOR {
			t.Fatalf("%s: file %v", where, got)
		}
	}
	check("response", ev.GetFile())
	check("visitor stream", vs.Next("file on the visitor's stream", isSeq(4)).Event.GetFile())
	check("operator inbox", inbox.Next("file on the inbox", inboxEvent(ana.chatID, 4)).GetEvent().GetFile())

	// The operator shares one back: seq 5 on both.
	bp, err := e.svc.Participant(asOperator(opBob), ana.chatID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.PostFile(ctx, bp, sharedFile("answer.pdf", 10)); err != nil {
		t.Fatal(err)
	}
	if got := vs.Next("operator's file", isSeq(5)).Event.GetFile(); got.GetAuthorName() != "Bob" || got.Name != "answer.pdf" {
		t.Fatalf("visitor saw %v", got)
	}
	inbox.Next("operator's file on the inbox", inboxEvent(ana.chatID, 5))
	// A resumed stream gets them from the store, in order.
	evs := history(t, ana, 5)
	checkSeqs(t, evs, 1, 5)
	if evs[3].GetFile().GetName() != "report.pdf" || evs[4].GetFile().GetName() != "answer.pdf" {
		t.Fatalf("history = %v", evs)
	}
	// Messages go on after files.
	if ev, err := ana.send(ctx, "thanks"); err != nil || ev.Seq != 6 {
		t.Fatalf("Send after files = %v, %v", ev, err)
	}
}

// A visitor who shares a file is present: the idle timeout starts again.
func TestPostFile_ByVisitorTouchesSeenTime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	ana := acceptedChat(t, e)
	long := time.Now().Add(-time.Hour)
	if err := e.svc.store.Touch(ctx, ana.chatID, long); err != nil {
		t.Fatal(err)
	}
	seen := func() time.Time {
		c, err := e.svc.store.Chat(ctx, ana.chatID)
		if err != nil {
			t.Fatal(err)
		}
		return c.SeenAt
	}
	bp, err := e.svc.Participant(asOperator(opBob), ana.chatID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.PostFile(ctx, bp, sharedFile("op.pdf", 1)); err != nil {
		t.Fatal(err)
	}
	if !seen().Equal(long.Truncate(time.Millisecond)) {
		t.Fatalf("an operator's file touched the visitor's seen time: %v", seen())
	}
	vp, err := e.svc.Participant(e.asVisitor(ana), ana.chatID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.PostFile(ctx, vp, sharedFile("v.pdf", 1)); err != nil {
		t.Fatal(err)
	}
	if time.Since(seen()) > time.Minute {
		t.Fatalf("seen at %v after the visitor's file", seen())
	}
}

// Without mail the chat is destroyed right after it closes: its files are
// destroyed at the close and again before the rows go (idempotent).
func TestClose_DestroysTheChatsFilesAndDestroyRepeats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	rec := e.withFiles()
	ana, otto := acceptedChat(t, e), e.startChat("Otto", "", "first")
	if err := e.operator(opBob).close(ctx, ana.chatID); err != nil {
		t.Fatal(err)
	}
	if rec.count(ana.chatID) == 0 {
		t.Fatal("CloseChat returned before the chat's files were destroyed")
	}
	e.waitDestroyed(ana.chatID)
	if n := rec.count(ana.chatID); n != 2 {
		t.Fatalf("files destroyed %d times, want at close and at destruction", n)
	}
	if n := rec.count(otto.chatID); n != 0 {
		t.Fatalf("the files of an open chat were destroyed %d times", n)
	}
}

// A failing destruction of files is logged with the chat id, and does not
// stop the chat's own destruction, which tries the files again.
func TestClose_FilesFailureIsLoggedAndRetriedAtDestruction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	rec := e.withFiles()
	rec.fail = 1
	ana := acceptedChat(t, e)
	if err := ana.end(ctx); err != nil {
		t.Fatalf("EndChat with failing files: %v", err)
	}
	e.waitDestroyed(ana.chatID)
	if !strings.Contains(e.logs.String(), `msg="destroy chat files" chat=`+ana.chatID) {
		t.Fatalf("the failure is not logged with the chat id:\n%s", e.logs)
	}
	if n := rec.count(ana.chatID); n != 2 {
		t.Fatalf("files destroyed %d times, want 2 (the failed one and the retry)", n)
	}
}

// The transcript lists a file by name and size, never more; the name is
// escaped in HTML.
func TestTranscript_ListsFileNameAndSizeOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ca := mailtest.NewCA(t)
	relay := mailtest.Start(t, mailtest.Options{TLS: ca.ServerTLS()})
	e := newEnv(t, withMail(relay.Port, ca))
	e.accounts.update(transcriptsTo)
	ana := acceptedChat(t, e)
	vp, err := e.svc.Participant(e.asVisitor(ana), ana.chatID)
	if err != nil {
		t.Fatal(err)
	}
	f := sharedFile("<b>report</b>.pdf", 1234567)
	f.FileId, f.Sha256 = "file-id-"+newTag(), "sha-"+newTag()
	if _, err := e.svc.PostFile(ctx, vp, f); err != nil {
		t.Fatal(err)
	}
	if err := ana.end(ctx); err != nil {
		t.Fatal(err)
	}
	e.waitDestroyed(ana.chatID)
	mails := relay.Received()
	if len(mails) != 1 {
		t.Fatalf("%d mails, want the transcript", len(mails))
	}
	bodies := mails[0].Parse(t).Bodies
	text, html := bodies["text/plain"], bodies["text/html"]
	if !strings.Contains(text, "Ana sent a file: <b>report</b>.pdf (1.2 MB)") {
		t.Errorf("text transcript lacks the file line:\n%s", text)
	}
	if !strings.Contains(html, "Ana sent a file: &lt;b&gt;report&lt;/b&gt;.pdf (1.2 MB)") || strings.Contains(html, "<b>report") {
		t.Errorf("HTML transcript lacks the escaped file line:\n%s", html)
	}
	for _, s := range []string{f.FileId, f.Sha256, "application/pdf"} {
		if strings.Contains(text, s) || strings.Contains(html, s) {
			t.Errorf("the transcript carries %q", s)
		}
	}
}

func TestFormatSize(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{0: "0 bytes", 1: "1 byte", 999: "999 bytes", 1000: "1.0 kB", 1234567: "1.2 MB",
		10 << 20: "10.5 MB", 999_999: "1.0 MB", 50 << 30: "53.7 GB"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// Every stored event kind has a transcript line or is deliberately left
// out: a new kind is not silently dropped.
func TestTranscript_EveryEventKindIsConsidered(t *testing.T) {
	t.Parallel()
	ev := &chatv1.ChatEvent{}
	oneofs := ev.ProtoReflect().Descriptor().Oneofs().ByName("kind").Fields()
	var missing []string
	for i := range oneofs.Len() {
		name := string(oneofs.Get(i).Name())
		if slices.Contains([]string{"started", "typing"}, name) {
			continue // not in a transcript: the header says who started; typing is never stored
		}
		m := ev.ProtoReflect()
		m.Set(oneofs.Get(i), m.NewField(oneofs.Get(i)))
		if _, ok := lineOf(ev); !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("event kinds without a transcript line: %v", missing)
	}
}
