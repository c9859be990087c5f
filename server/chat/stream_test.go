package chat

import (
	"context"
	"net/http"
	"testing"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/server/internal/testkit"
)

type chatStream = testkit.Stream[*chatv1.WatchChatResponse]
type inboxStream = testkit.Stream[*chatv1.WatchInboxResponse]

// watchChat follows the visitor's chat from afterSeq.
func watchChat(t testing.TB, v *visitor, afterSeq int64) *chatStream {
	return testkit.FollowServer(t, func(ctx context.Context) (*connect.ServerStreamForClient[chatv1.WatchChatResponse], error) {
		return v.watch(ctx, afterSeq)
	})
}

// openInbox follows the operator's inbox.
func openInbox(t testing.TB, o *operator) *inboxStream {
	return testkit.FollowServer(t, func(ctx context.Context) (*connect.ServerStreamForClient[chatv1.WatchInboxResponse], error) {
		return o.chat.WatchInbox(ctx, connect.NewRequest(&chatv1.WatchInboxRequest{}))
	})
}

// watchInbox follows the operator's inbox and waits for the end of its
// snapshot.
func watchInbox(t testing.TB, o *operator) *inboxStream {
	t.Helper()
	s := openInbox(t, o)
	s.Next("inbox snapshot", func(r *chatv1.WatchInboxResponse) bool { return r.GetSnapshotDone() != nil })
	return s
}

// Predicates.

func isSeq(n int64) func(*chatv1.WatchChatResponse) bool {
	return func(r *chatv1.WatchChatResponse) bool { return r.Event.GetSeq() == n }
}

func isClosed(r *chatv1.WatchChatResponse) bool { return r.Event.GetClosed() != nil }

func chatUpdated(chatID string, st chatv1.ChatState) func(*chatv1.WatchInboxResponse) bool {
	return func(r *chatv1.WatchInboxResponse) bool {
		u := r.GetChatUpdated()
		return u != nil && u.ChatId == chatID && u.State == st
	}
}

func isRemoved(chatID string) func(*chatv1.WatchInboxResponse) bool {
	return func(r *chatv1.WatchInboxResponse) bool { return r.GetChatRemoved().GetChatId() == chatID }
}

func inboxEvent(chatID string, seq int64) func(*chatv1.WatchInboxResponse) bool {
	return func(r *chatv1.WatchInboxResponse) bool {
		e := r.GetEvent()
		return e != nil && e.ChatId == chatID && e.Seq == seq
	}
}

// history reads the visitor's chat with a fresh stream until the stored
// event seq `until` (or the chat closes), and returns the stored events.
func history(t testing.TB, v *visitor, until int64) []*chatv1.ChatEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Wait)
	defer cancel()
	stream, err := v.watch(ctx, 0)
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

// texts returns the texts of the message events.
func texts(evs []*chatv1.ChatEvent) []string {
	var out []string
	for _, ev := range evs {
		if m := ev.GetMessage(); m != nil {
			out = append(out, m.Text)
		}
	}
	return out
}

// checkSeqs fails unless evs carry exactly the sequence numbers from..to.
func checkSeqs(t testing.TB, evs []*chatv1.ChatEvent, from, to int64) {
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

// smallWindowClient is a client on its own HTTP/2 connection whose
// per-stream receive window is small, so that a stream it does not read
// makes the server's writes block soon (the default window is 4 MiB).
func (e *env) smallWindowClient() *http.Client {
	tr := e.srv.Client().Transport.(*http.Transport).Clone()
	tr.HTTP2 = &http.HTTP2Config{MaxReceiveBufferPerStream: 16 << 10}
	tr.ForceAttemptHTTP2 = true
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}
