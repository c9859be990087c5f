// Package chattest reads and checks chat histories for tests, once, for the
// chat package's own tests and the system tests alike.
package chattest

import (
	"context"
	"strings"
	"testing"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/mail/mailtest"
)

// History reads a chat with a fresh WatchChat stream (opened by watch, from
// the start) until the stored event seq until (or the chat's close), and
// returns the stored events.
func History(t testing.TB, watch func(context.Context) (*connect.ServerStreamForClient[chatv1.WatchChatResponse], error), until int64) []*chatv1.ChatEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Wait)
	defer cancel()
	stream, err := watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	var out []*chatv1.ChatEvent
	for stream.Receive() {
		ev := stream.Msg().Event
		if ev.GetSeq() == 0 {
			continue
		}
		out = append(out, ev)
		if ev.Seq == until || ev.GetClosed() != nil {
			return out
		}
	}
	t.Fatalf("history stream ended early after %d events: %v", len(out), stream.Err())
	return nil
}

// Texts returns the texts of the message events.
func Texts(evs []*chatv1.ChatEvent) []string {
	var out []string
	for _, ev := range evs {
		if m := ev.GetMessage(); m != nil {
			out = append(out, m.Text)
		}
	}
	return out
}

// CheckSeqs fails unless evs carry exactly the sequence numbers from..to,
// in order, without gaps or repeats.
func CheckSeqs(t testing.TB, evs []*chatv1.ChatEvent, from, to int64) {
	t.Helper()
	var got []int64
	for _, ev := range evs {
		got = append(got, ev.Seq)
	}
	if int64(len(got)) != to-from+1 {
		t.Fatalf("got %d events %v, want seqs %d..%d", len(got), got, from, to)
	}
	for i, s := range got {
		if s != from+int64(i) {
			t.Fatalf("seqs %v, want %d..%d without gaps or repeats", got, from, to)
		}
	}
}

// Predicates on stream messages, for testkit.Stream.Next.

// IsSeq matches the chat event with sequence number n.
func IsSeq(n int64) func(*chatv1.WatchChatResponse) bool {
	return func(r *chatv1.WatchChatResponse) bool { return r.Event.GetSeq() == n }
}

// IsClosed matches the chat's closed event.
func IsClosed(r *chatv1.WatchChatResponse) bool { return r.Event.GetClosed() != nil }

// ChatUpdated matches an inbox summary of chatID in state st.
func ChatUpdated(chatID string, st chatv1.ChatState) func(*chatv1.WatchInboxResponse) bool {
	return func(r *chatv1.WatchInboxResponse) bool {
		u := r.GetChatUpdated()
		return u != nil && u.ChatId == chatID && u.State == st
	}
}

// ChatRemoved matches the inbox's removal of chatID.
func ChatRemoved(chatID string) func(*chatv1.WatchInboxResponse) bool {
	return func(r *chatv1.WatchInboxResponse) bool { return r.GetChatRemoved().GetChatId() == chatID }
}

// InboxEvent matches chatID's event with sequence number seq on an inbox.
func InboxEvent(chatID string, seq int64) func(*chatv1.WatchInboxResponse) bool {
	return func(r *chatv1.WatchInboxResponse) bool {
		e := r.GetEvent()
		return e != nil && e.ChatId == chatID && e.Seq == seq
	}
}

// SnapshotDone matches the end of an inbox's snapshot.
func SnapshotDone(r *chatv1.WatchInboxResponse) bool { return r.GetSnapshotDone() != nil }

// Canary is a chat in which every field a visitor or operator fills carries
// one tag, so that a byte search for the tag finds any of them.
type Canary struct {
	Tag                                    string
	Name, Email, First, FromVisitor, Reply string
}

// CanaryOf returns the content of a canary chat tagged tag (testkit.Tag).
func CanaryOf(tag string) Canary {
	return Canary{Tag: tag, Name: "Visitor " + tag, Email: tag + "@example.com", First: "first message " + tag,
		FromVisitor: "visitor message " + tag, Reply: "operator reply " + tag}
}

// CheckTranscript fails unless m is the transcript of the canary chat c,
// sent to to: text and HTML alternatives, both carrying all of it.
func CheckTranscript(t testing.TB, m mailtest.Mail, to string, c Canary) {
	t.Helper()
	m.CheckAlternative(t, to, c.Name, c.Email, c.First, c.FromVisitor, c.Reply)
	if html := m.Parse(t).Bodies["text/html"]; !strings.Contains(html, "<table") {
		t.Errorf("the HTML transcript has no table:\n%s", html)
	}
}
