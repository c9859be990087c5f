package chat

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/lethehq/lethe/server/store"
	"github.com/lethehq/lethe/server/store/storetest"
)

// Every statement the chat request path, the writer and the janitor run
// finds its rows through an index: EXPLAIN QUERY PLAN shows no full scan of
// visitors, chats or events, which grow with traffic. The list names the
// very constants the code runs.
func TestExplain_RequestPathUsesIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "scratch.db"), store.Options{SecureDelete: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := NewStore(ctx, db); err != nil {
		t.Fatal(err)
	}
	h := []byte("hash")
	for _, q := range []struct {
		name  string
		query string
		args  []any
	}{
		{"chat by id", qChatByID, []any{"c"}},
		{"visitor by token hash", qChatByTokenHash, []any{h}},
		{"chats of an account (inbox snapshot)", qChatsOfAccount, []any{"a", 1, 2, 0}},
		{"chats in states (start-up)", qChatsInStates, []any{3, 0, 0}},
		{"events after seq", qEventsAfter, []any{"c", 0}},
		{"append event", qInsertEvent, []any{"c", 1, h}},
		{"rewrite event", qUpdateEventBody, []any{h, "c", 1}},
		{"insert visitor", qInsertVisitor, []any{"v", "a", h, "n", "", "", "", 0}},
		{"insert chat", qInsertChat, []any{"c", "a", "v", 1, 0, 0, "", 0, 0, 2}},
		{"update chat state", qUpdateChat, []any{1, "", "", 0, 3, "c"}},
		{"touch", qTouch, []any{0, "c"}},
		{"update visitor", qUpdateVisitor, []any{"n", "e", "v"}},
		{"transcript address", qSetTranscriptEmail, []any{"e", "v"}},
		{"visitor token hash", qVisitorTokenHash, []any{"v"}},
		{"destroy: visitor of chat", qDestroyChatVisitor, []any{"c"}},
		{"destroy: events", qDestroyEvents, []any{"c"}},
		{"destroy: chat", qDestroyChat, []any{"c"}},
		{"destroy: visitor", qDestroyVisitor, []any{"v"}},
		{"janitor: closed chats", qClosedChatIDs, nil},
		{"janitor start-up: open chats", qOpenChatsSeen, nil},
		{"chats by e-mail", qChatsByEmailOrdered, []any{"a", "x@example.com"}},
	} {
		if err := store.CheckIndexed(ctx, db, q.query, nil, q.args...); err != nil {
			t.Errorf("%s: %v", q.name, err)
		}
	}
}

// The check itself catches a full scan: the query the issue found (visitor
// by token through an unindexed join) is reported.
func TestExplain_CheckCatchesScan(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "scratch.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := NewStore(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := store.CheckIndexed(ctx, db, `SELECT id FROM chats WHERE operator_name = ?`, nil, "x"); err == nil {
		t.Fatal("a query on an unindexed column passed the check")
	}
	if err := store.CheckIndexed(ctx, db, `SELECT id FROM chats WHERE operator_name = ?`, []string{"chats"}, "x"); err != nil {
		t.Fatalf("an allowed scan was reported: %v", err)
	}
}

// Every statement in the package's source (found by storetest, so one
// added later is checked too) uses an index.
func TestExplain_EveryStatementInTheSourceUsesIndexes(t *testing.T) {
	t.Parallel()
	db, err := store.Open(filepath.Join(t.TempDir(), "scratch.db"), store.Options{SecureDelete: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := NewStore(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	storetest.Check(t, db, ".", storetest.Options{})
}
