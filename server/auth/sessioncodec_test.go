package auth

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/lethehq/lethe/server/store"
)

// scs changes a loaded session's values in place: a remembered decoding
// must hand out a copy, or one request's change would leak into the next
// request's view of the stored session.
func TestMemoCodec_DecodeHandsOutACopy(t *testing.T) {
	t.Parallel()
	c := newMemoCodec(scs.GobCodec{}, 10)
	deadline := time.Now().Add(time.Hour).Round(0)
	b, err := c.Encode(deadline, map[string]any{SessionKey: "op-1"})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		d, values, err := c.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Equal(deadline) || values[SessionKey] != "op-1" || len(values) != 1 {
			t.Fatalf("decoded %v %v, want %v and the operator only", d, values, deadline)
		}
		values["flushed"] = "yes"
		delete(values, SessionKey)
	}
}

// A session holding a value that can change in place is decoded afresh
// each time.
func TestMemoCodec_MutableValuesAreNotRemembered(t *testing.T) {
	t.Parallel()
	c := newMemoCodec(scs.GobCodec{}, 10)
	b, err := c.Encode(time.Now(), map[string]any{"list": []byte("abc")})
	if err != nil {
		t.Fatal(err)
	}
	if _, v, err := c.Decode(b); err != nil || string(v["list"].([]byte)) != "abc" {
		t.Fatalf("decoded %v, %v", v, err)
	}
	if n := len(c.memo); n != 0 {
		t.Fatalf("%d sessions with mutable values remembered, want 0", n)
	}
}

// BenchmarkSessionLoad is what every operator request pays to load its
// session once it is cached (compare the SQLite read it replaced).
func BenchmarkSessionLoad(b *testing.B) {
	db, err := store.Open(filepath.Join(b.TempDir(), "lethe.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := Migrate(context.Background(), db); err != nil {
		b.Fatal(err)
	}
	sm := NewSessions(db, true)
	defer StopSessions(sm)
	ctx, _ := sm.Load(context.Background(), "")
	for k, v := range map[string]any{SessionKey: "op-123456789", "session_id": "abcdefghijkl", "signed_in_at": int64(1234567),
		"client": "Chrome 131 on Linux", "network": "203.0.113.0/24"} {
		sm.Put(ctx, k, v)
	}
	token, _, err := sm.Commit(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			c, err := sm.Load(context.Background(), token)
			if err != nil || sm.GetString(c, SessionKey) == "" {
				b.Fatal("session not found", err)
			}
		}
	})
	b.Run("sqlite+gob (before)", func(b *testing.B) {
		for b.Loop() {
			var data []byte
			if err := db.R.QueryRow(`SELECT data FROM sessions WHERE token = ? AND julianday('now') < expiry`, token).Scan(&data); err != nil {
				b.Fatal(err)
			}
			if _, _, err := (scs.GobCodec{}).Decode(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
