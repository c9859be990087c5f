package chat

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/store"
)

func newTestStore(t *testing.T, batch int) *Store {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "scratch.db"), store.Options{SecureDelete: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := NewStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	st.setBatch(batch)
	t.Cleanup(func() { st.Close() })
	return st
}

func message(text string) []*chatv1.ChatEvent {
	return []*chatv1.ChatEvent{{Kind: &chatv1.ChatEvent_Message{Message: &chatv1.Message{Text: text}}}}
}

// Changes from many goroutines into a few chats share transactions; every
// third one is refused by its check. Each refused change gets its own error
// and leaves nothing; every other one is stored, and each chat's sequence
// numbers run 1..n without a gap, published in that order.
func TestWriter_RefusedChangeRolledBackAloneOthersCommitInOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newTestStore(t, 16)
	ids := []string{"c1", "c2", "c3"}
	for i, id := range ids {
		if _, _, err := st.Create(ctx, NewChat{ChatID: id, VisitorID: "v" + id, AccountID: "a", TokenHash: []byte{byte(i)}, Name: "n", FirstMessage: "first"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	refusal := errs.Precondition("refused")
	var mu sync.Mutex
	published := map[string][]int64{}
	var stored, refused atomic.Int64
	var wg sync.WaitGroup
	for g := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 30 {
				id := ids[(g+n)%len(ids)]
				refuse := (g*30+n)%3 == 0
				_, evs, err := st.Change(ctx, id, func(c *Chat, _ *sql.Tx) ([]*chatv1.ChatEvent, error) {
					if refuse {
						return nil, refusal
					}
					return message("m"), nil
				}, func(c *Chat, evs []*chatv1.ChatEvent) {
					mu.Lock()
					for _, ev := range evs {
						published[c.ID] = append(published[c.ID], ev.Seq)
					}
					mu.Unlock()
				})
				switch {
				case refuse && err != refusal:
					t.Errorf("refused change answered %v, want its own refusal", err)
				case refuse:
					refused.Add(1)
				case err != nil || len(evs) != 1:
					t.Errorf("change answered %v, %v", evs, err)
				default:
					stored.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	total := int64(0)
	for _, id := range ids {
		evs, err := st.Events(ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i, ev := range evs {
			if ev.Seq != int64(i+1) {
				t.Fatalf("chat %s: event %d has seq %d", id, i, ev.Seq)
			}
		}
		total += int64(len(evs)) - 2
		pub := published[id]
		for i, s := range pub {
			if s != int64(i+3) {
				t.Fatalf("chat %s: published seqs %v, want 3..%d in order", id, pub, len(evs))
			}
		}
	}
	if total != stored.Load() || refused.Load() == 0 {
		t.Fatalf("%d messages stored, %d acknowledged, %d refused", total, stored.Load(), refused.Load())
	}
}

// A caller whose context ends while its change is queued leaves at once;
// the writer skips the change and carries on with the next.
func TestWriter_CallerLeavingWhileQueuedDoesNotBlockTheWriter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newTestStore(t, 16)
	if _, _, err := st.Create(ctx, NewChat{ChatID: "c", VisitorID: "v", AccountID: "a", TokenHash: []byte("h"), Name: "n", FirstMessage: "first"}, nil); err != nil {
		t.Fatal(err)
	}
	// Hold the write connection: the writer waits to begin its next
	// transaction.
	conn, err := st.db.W.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() {
		_, _, err := st.Change(ctx, "c", func(*Chat, *sql.Tx) ([]*chatv1.ChatEvent, error) { return message("kept"), nil }, nil)
		first <- err
	}()
	time.Sleep(50 * time.Millisecond) // the writer took it and waits for the connection
	applied := atomic.Bool{}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, _, err = st.Change(short, "c", func(*Chat, *sql.Tx) ([]*chatv1.ChatEvent, error) {
		applied.Store(true)
		return message("abandoned"), nil
	}, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("queued change whose caller left answered %v, want DeadlineExceeded", err)
	}
	conn.Close()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Change(ctx, "c", func(*Chat, *sql.Tx) ([]*chatv1.ChatEvent, error) { return message("after"), nil }, nil); err != nil {
		t.Fatal(err)
	}
	evs, err := st.Events(ctx, "c", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := texts(evs); len(got) != 3 || got[1] != "kept" || got[2] != "after" || applied.Load() {
		t.Fatalf("messages %q (abandoned change applied: %v), want first, kept, after", got, applied.Load())
	}
}

// Create builds the new chat without reading it back: what it returns, and
// the events it numbered, are what the store holds, and the next change
// goes on from there.
func TestCreate_ReturnsWhatIsStored(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t, 0)
	for _, consent := range []int32{0, 3} {
		n := NewChat{ChatID: "c" + string(rune('a'+consent)), VisitorID: "v" + string(rune('a'+consent)), AccountID: "acct",
			TokenHash: []byte{byte(consent), 1}, Name: "Ann", Email: "ann@example.com", FirstMessage: "hello", MessageID: "m1",
			IP: "192.0.2.1", Host: "host.example", ConsentVersion: consent, ConsentLocale: "en"}
		c, evs, err := st.Create(ctx, n, nil)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := st.Chat(ctx, n.ChatID)
		if err != nil {
			t.Fatal(err)
		}
		if *stored != *c {
			t.Fatalf("Create returned\n%+v\nthe store holds\n%+v", *c, *stored)
		}
		held, err := st.Events(ctx, n.ChatID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(held) != 2 || len(evs) != 2 {
			t.Fatalf("%d events held, %d returned, want 2", len(held), len(evs))
		}
		for i := range evs {
			if evs[i].Seq != int64(i+1) || held[i].Seq != evs[i].Seq || held[i].GetTime().AsTime() != evs[i].GetTime().AsTime() {
				t.Fatalf("event %d: returned seq %d at %v, held seq %d at %v", i, evs[i].Seq, evs[i].GetTime().AsTime(), held[i].Seq, held[i].GetTime().AsTime())
			}
		}
		_, next, err := st.Change(ctx, n.ChatID, func(*Chat, *sql.Tx) ([]*chatv1.ChatEvent, error) { return message("next"), nil }, nil)
		if err != nil {
			t.Fatal(err)
		}
		if next[0].Seq != 3 {
			t.Fatalf("the next event got seq %d, want 3", next[0].Seq)
		}
	}
}
