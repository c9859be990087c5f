package main

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lethehq/lethe/server/chat/chattest"
	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/mail/mailtest"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	lethe "github.com/lethehq/lethe/sdk/go"
)

// P10 against the real binary killed with SIGKILL: no open chat and no
// pending mail is lost, and nothing destroyed comes back.

func TestCrash_Kill9KeepsOpenChatAndNeverResurrectsDestroyedOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := t.TempDir()
	p := startBinary(t, binOpts{dataDir: data}) // no mail: a closed chat is destroyed at once
	admin := p.admin()

	// A chat closed and destroyed before the crash.
	deadTag := newTag()
	dead := p.visitor()
	if err := dead.Start(ctx, lethe.StartChat{AccountID: demoAccount, Name: "Dead " + deadTag, FirstMessage: "gone " + deadTag}); err != nil {
		t.Fatal(err)
	}
	if _, err := dead.Send(ctx, "more "+deadTag); err != nil {
		t.Fatal(err)
	}
	if err := dead.End(ctx); err != nil {
		t.Fatal(err)
	}
	p.waitDestroyed(dead.ChatID)
	if hits := testkit.FilesContaining(t, data, deadTag); len(hits) > 0 {
		t.Fatalf("the destroyed chat is on disk before the crash: %v", hits)
	}

	// An open chat with a few messages both ways.
	tag := newTag()
	v := p.visitor()
	if err := v.Start(ctx, lethe.StartChat{AccountID: demoAccount, Name: "Open " + tag, FirstMessage: "open 1 " + tag}); err != nil {
		t.Fatal(err)
	}
	if err := admin.Accept(ctx, v.ChatID); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Send(ctx, "open 2 "+tag); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Send(ctx, v.ChatID, "open reply "+tag); err != nil {
		t.Fatal(err)
	}
	if ev, err := v.Send(ctx, "open 3 "+tag); err != nil || ev.Seq != 6 {
		t.Fatalf("Send = %v, %v; want seq 6", ev, err)
	}
	wantTexts := []string{"open 1 " + tag, "open 2 " + tag, "open reply " + tag, "open 3 " + tag}

	p.kill()

	p2 := startBinary(t, binOpts{dataDir: data})
	// The visitor's token still works, with the whole history.
	v2 := p2.visitor()
	v2.Token, v2.ChatID = v.Token, v.ChatID
	evs := history(t, v2, 6)
	checkSeqs(t, evs, 1, 6)
	if got := texts(evs); !slices.Equal(got, wantTexts) {
		t.Fatalf("history after the crash = %q, want %q", got, wantTexts)
	}
	// The operator signs in again and finds the chat in the inbox.
	admin2 := p2.admin()
	inbox := watchInbox(t, admin2)
	found, lastSeq := false, int64(0)
	for _, r := range inbox.Seen {
		if u := r.GetChatUpdated(); u != nil && u.ChatId == v.ChatID && u.State == chatv1.ChatState_CHAT_STATE_ACTIVE && u.OperatorId == admin2.Me.Id {
			found = true
		}
		if e := r.GetEvent(); e != nil && e.ChatId == v.ChatID {
			lastSeq = max(lastSeq, e.Seq)
		}
		if r.GetChatUpdated().GetChatId() == dead.ChatID || r.GetEvent().GetChatId() == dead.ChatID {
			t.Fatal("the destroyed chat is back in the operator's inbox")
		}
	}
	if !found || lastSeq != 6 {
		t.Fatalf("the inbox after the crash shows the chat: %v, up to seq %d; want it active and assigned, up to seq 6", found, lastSeq)
	}
	// And both sides carry on.
	vs := watchChat(t, v2, 6)
	if ev, err := admin2.Send(ctx, v.ChatID, "after the crash"); err != nil || ev.Seq != 7 {
		t.Fatalf("operator Send after the crash = %v, %v; want seq 7", ev, err)
	}
	if m := vs.Next("operator message", chattest.IsSeq(7)).Event.GetMessage(); m.GetText() != "after the crash" {
		t.Fatalf("visitor got %v", m)
	}
	if ev, err := v2.Send(ctx, "me too"); err != nil || ev.Seq != 8 {
		t.Fatalf("visitor Send after the crash = %v, %v; want seq 8", ev, err)
	}
	if m := inbox.Next("visitor message", chattest.InboxEvent(v.ChatID, 8)).GetEvent().GetMessage(); m.GetText() != "me too" {
		t.Fatalf("operator got %v", m)
	}

	// The destroyed chat stays destroyed: not on disk, and its token opens
	// nothing.
	if hits := testkit.FilesContaining(t, data, deadTag); len(hits) > 0 {
		t.Fatalf("the destroyed chat is on disk after the crash and restart: %v", hits)
	}
	d2 := p2.visitor()
	d2.Token, d2.ChatID = dead.Token, dead.ChatID
	if _, err := d2.Send(ctx, "hello?"); !oneOf(err, connect.CodeUnauthenticated, connect.CodeFailedPrecondition) {
		t.Fatalf("Send with the destroyed chat's token = %v, want Unauthenticated or FailedPrecondition", err)
	}
	wctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	stream, err := d2.Chat.WatchChat(wctx, connect.NewRequest(&chatv1.WatchChatRequest{ChatId: dead.ChatID}))
	if err != nil {
		t.Fatal(err)
	}
	for stream.Receive() {
		if ev := stream.Msg().Event; ev.GetSeq() > 0 || ev.GetMessage() != nil {
			t.Fatalf("the destroyed chat's history came back: %v", ev)
		}
	}
	if err := stream.Err(); err != nil && !oneOf(err, connect.CodeUnauthenticated, connect.CodeFailedPrecondition) {
		t.Fatalf("WatchChat with the destroyed chat's token: %v", err)
	}
	stream.Close()
	if out := p.output() + p2.output(); strings.Contains(out, tag) || strings.Contains(out, deadTag) {
		t.Fatal("the binary's output contains chat content")
	}
}

// A chat closed with transcripts on while the relay is down, then a crash:
// after the restart, with the relay up, the transcript is delivered once and
// only then is the chat destroyed.
func TestCrash_Kill9WithPendingTranscriptDeliversOnceAfterRestart(t *testing.T) {
	t.Parallel()
	ca := mailtest.NewCA(t)
	_, port := mailtest.FreeAddr(t)
	data := t.TempDir()
	p := startBinary(t, binOpts{dataDir: data, smtpPort: port, ca: ca})
	admin := p.admin()
	updateSettings(t, admin, transcriptsTo)
	tag := newTag()
	v, vs := canaryChat(t, p.visitor(), admin, tag)
	closeChat(t, admin, v, vs)
	p.waitLog(`msg="mail attempt failed"`, 1)
	p.kill()
	if strings.Contains(p.stderr.String(), `msg="chat destroyed"`) {
		t.Fatal("the chat was destroyed although its transcript was never delivered")
	}
	if len(testkit.FilesContaining(t, data, tag)) == 0 {
		t.Fatal("the closed chat's content did not survive the crash while its transcript was pending")
	}

	relay := startRelay(t, ca, true, port)
	p2 := startBinary(t, binOpts{dataDir: data, smtpPort: port, ca: ca})
	p2.waitDestroyed(v.ChatID)
	mails := relay.Received()
	if len(mails) != 1 {
		t.Fatalf("the relay received %d messages, want exactly 1", len(mails))
	}
	checkTranscript(t, mails[0], tag)
	if hits := testkit.FilesContaining(t, data, tag); len(hits) > 0 {
		t.Fatalf("the canary is on disk after delivery and destruction: %v", hits)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(relay.Received()); n != 1 {
		t.Fatalf("the relay received %d messages after destruction, want 1", n)
	}
}

// crashAt runs the binary with transcripts on, closes a canary chat and
// lets the relay kill the server (SIGKILL) when the client first sends verb
// while delivering the transcript — a crash at an exact point of the SMTP
// dialogue. It restarts the server on the same data directory and waits
// until the chat is destroyed.
func crashAt(t *testing.T, verb string) (relay *mailtest.Relay, data, tag string) {
	t.Helper()
	ca := mailtest.NewCA(t)
	data = t.TempDir()
	var victim atomic.Pointer[proc]
	var once sync.Once
	relay = mailtest.Start(t, mailtest.Options{TLS: ca.ServerTLS(), OnCommand: func(v string) {
		if v == verb {
			once.Do(func() { victim.Load().kill() })
		}
	}})
	p := startBinary(t, binOpts{dataDir: data, smtpPort: relay.Port, ca: ca})
	victim.Store(p)
	admin := p.admin()
	updateSettings(t, admin, transcriptsTo)
	tag = newTag()
	v, _ := canaryChat(t, p.visitor(), admin, tag)
	if err := admin.Close(context.Background(), v.ChatID); err != nil {
		t.Fatal(err)
	}
	<-p.done
	if n := len(relay.Received()); n != 1 {
		t.Fatalf("the relay has %d messages at the crash, want 1", n)
	}
	p2 := startBinary(t, binOpts{dataDir: data, smtpPort: relay.Port, ca: ca})
	p2.waitDestroyed(v.ChatID)
	return relay, data, tag
}

// The relay accepted the transcript (250 after DATA) and the server died
// before it could forget it (at the RSET that follows): after the restart
// the transcript goes out again — delivery is at least once — carrying the
// same Message-ID, so mail clients fold the copies; then the chat is
// destroyed.
func TestCrash_Kill9AfterRelayAcceptedResendsWithSameMessageID(t *testing.T) {
	t.Parallel()
	relay, data, tag := crashAt(t, "RSET")
	mails := relay.Received()
	if len(mails) != 2 {
		t.Fatalf("the relay received %d messages, want the accepted one and one repeat", len(mails))
	}
	id1, id2 := mails[0].Parse(t).Header.Get("Message-Id"), mails[1].Parse(t).Header.Get("Message-Id")
	if id1 == "" || id1 != id2 {
		t.Fatalf("the repeat carries Message-ID %q, the first %q: mail clients cannot fold them", id2, id1)
	}
	checkTranscript(t, mails[1], tag)
	if hits := testkit.FilesContaining(t, data, tag); len(hits) > 0 {
		t.Fatalf("the canary is on disk after delivery and destruction: %v", hits)
	}
}

// The queue forgets a delivered transcript as soon as the relay accepted it,
// not after closing the connection: a crash at QUIT sends nothing twice, and
// the restarted server destroys the chat.
func TestCrash_Kill9AtQuitDoesNotSendTwice(t *testing.T) {
	t.Parallel()
	relay, data, tag := crashAt(t, "QUIT")
	time.Sleep(300 * time.Millisecond)
	if n := len(relay.Received()); n != 1 {
		t.Fatalf("the relay received %d messages, want exactly 1", n)
	}
	if hits := testkit.FilesContaining(t, data, tag); len(hits) > 0 {
		t.Fatalf("the canary is on disk after destruction: %v", hits)
	}
}
