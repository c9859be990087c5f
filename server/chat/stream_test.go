package chat

import (
	"context"
	"net/http"
	"testing"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/server/chat/chattest"
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
	s.Next("inbox snapshot", chattest.SnapshotDone)
	return s
}

// Predicates on stream messages (chattest).
var (
	isSeq       = chattest.IsSeq
	isClosed    = chattest.IsClosed
	chatUpdated = chattest.ChatUpdated
	inboxEvent  = chattest.InboxEvent
	isRemoved   = chattest.ChatRemoved
)

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

// history reads the visitor's chat from the start until seq until.
func history(t testing.TB, v *visitor, until int64) []*chatv1.ChatEvent {
	t.Helper()
	return chattest.History(t, func(ctx context.Context) (*connect.ServerStreamForClient[chatv1.WatchChatResponse], error) {
		return v.watch(ctx, 0)
	}, until)
}

var (
	texts     = chattest.Texts
	checkSeqs = chattest.CheckSeqs
)
