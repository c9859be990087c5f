package main

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lethehq/lethe/server/chat/chattest"
	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/mail/mailtest"

	_ "modernc.org/sqlite"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	lethe "github.com/lethehq/lethe/sdk/go"
)

// Forensic tests (P1, P2, P3, P9): a canary sent in a chat and in an
// offline message is in no byte of any file once the chat is closed and its
// mail dispatched.

// allFiles lists every file under dir with its size (for failure messages).
func allFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				rel, _ := filepath.Rel(dir, path)
				out = append(out, rel+" ("+strconv.FormatInt(fi.Size(), 10)+" B)")
			}
		}
		return nil
	})
	return out
}

// The real binary, its data directory and its temp directory: the canary is
// on disk while the chat is open and gone from every file once the chat is
// closed, its transcript and the offline message accepted by the relay.
func TestForensic_CanaryGoneFromDataDirAfterCloseAndDispatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ca := mailtest.NewCA(t)
	relay := startRelay(t, ca, true, 0)
	data, tmp := t.TempDir(), t.TempDir()
	p := startBinary(t, binOpts{dataDir: data, tmpDir: tmp, smtpPort: relay.Port, ca: ca})
	admin := p.admin()
	updateSettings(t, admin, transcriptsTo)
	inbox := watchInbox(t, admin) // an operator is online

	tag := newTag()
	email := tag + "@example.com"
	offlineEmail := "offline-" + tag + "@example.com"
	v := p.visitor()
	if err := v.Start(ctx, lethe.StartChat{AccountID: demoAccount, Name: "Visitor " + tag, Email: email,
		FirstMessage: "first message " + tag}); err != nil {
		t.Fatalf("StartChat: %v", err)
	}
	inbox.Next("queued chat", chattest.ChatUpdated(v.ChatID, chatv1.ChatState_CHAT_STATE_WAITING))
	vs := watchChat(t, v, 0)
	if err := admin.Accept(ctx, v.ChatID); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Send(ctx, "visitor message "+tag); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Send(ctx, v.ChatID, "operator reply "+tag); err != nil {
		t.Fatal(err)
	}
	vs.Next("operator reply", chattest.IsSeq(5))
	// Offline messages are taken even while operators are online.
	if err := leaveOffline(ctx, p.visitor(), "Offline "+tag, offlineEmail, "offline message "+tag, 0); err != nil {
		t.Fatalf("LeaveOfflineMessage: %v", err)
	}

	// While the chat is open its content is on disk: the check can fail.
	if hits := testkit.FilesContaining(t, data, tag); len(hits) == 0 {
		t.Fatalf("the canary is in no file while the chat is open; files: %v", allFiles(t, data))
	}

	if err := admin.Close(ctx, v.ChatID); err != nil {
		t.Fatal(err)
	}
	vs.Next("closed event", chattest.IsClosed)
	transcript := relay.WaitMail(t, "operator reply "+tag)
	checkTranscript(t, transcript, tag)
	relay.WaitMail(t, "offline message "+tag)
	p.waitDestroyed(v.ChatID)
	// Both mails accepted, their rows deleted and the WAL truncated.
	p.waitLog(`msg="mail delivered"`, 2)
	for _, m := range relay.Received() {
		if !m.TLS {
			t.Error("a mail went out in clear text although the relay offers STARTTLS")
		}
	}
	if n := len(relay.Received()); n != 2 {
		t.Errorf("the relay received %d messages, want the transcript and the offline message", n)
	}

	for _, dir := range []struct{ name, path string }{{"data", data}, {"temp", tmp}} {
		if hits := testkit.FilesContaining(t, dir.path, tag); len(hits) > 0 {
			t.Errorf("the canary is still in the %s directory, in %v (files: %v)", dir.name, hits, allFiles(t, dir.path))
		}
	}
	out := p.output()
	if !strings.Contains(out, `msg="chat destroyed"`) {
		t.Fatal("the output lacks the destruction log: the check below is vacuous")
	}
	for _, s := range []string{tag, email, offlineEmail, recipient} {
		if strings.Contains(out, s) {
			t.Errorf("the binary's output contains %q", s)
		}
	}
}

// Destruction is not claimed while a reader holds a snapshot that keeps the
// deleted pages in the WAL: the checkpoint is retried until it truncates,
// and only then is the chat logged as destroyed.
func TestForensic_DestructionWaitsForReaderSnapshot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	tag := newTag()
	v := ts.startChat("Visitor "+tag, tag+"@example.com", "first message "+tag)
	if _, err := v.Send(ctx, "visitor message "+tag); err != nil {
		t.Fatal(err)
	}

	// Another process (here: another connection) reads the scratch store
	// and keeps its read snapshot open.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(ts.dir, "scratch.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	released := false
	defer func() {
		if !released {
			tx.Rollback()
		}
	}()
	var body []byte
	if err := tx.QueryRowContext(ctx, `SELECT body FROM events WHERE chat_id = ? AND seq = 2`, v.ChatID).Scan(&body); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(body, []byte(tag)) {
		t.Fatal("the reader does not see the chat")
	}

	if err := v.End(ctx); err != nil {
		t.Fatal(err)
	}
	ts.waitLog(`msg="chat closed" chat=` + v.ChatID)
	time.Sleep(time.Second)
	if strings.Contains(ts.logs.String(), `msg="chat destroyed"`) {
		t.Fatal("the chat was logged destroyed while a reader's snapshot kept its pages in the WAL")
	}
	fi, err := os.Stat(filepath.Join(ts.dir, "scratch.db-wal"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() == 0 {
		t.Fatal("the WAL was truncated although a reader held a snapshot")
	}
	if len(ts.filesContaining(tag)) == 0 {
		t.Fatal("the canary is in no file while the reader holds its snapshot: this test cannot fail")
	}

	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	released = true
	db.Close()
	ts.waitDestroyed(v.ChatID)
	if hits := ts.filesContaining(tag); len(hits) > 0 {
		t.Fatalf("the canary is still on disk after the destruction: %v", hits)
	}
}
