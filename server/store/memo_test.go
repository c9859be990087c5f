package store

import (
	"errors"
	"testing"
)

// A value is read once, handed out as a copy, forgotten on Forget; errors
// are not remembered; a load that raced with a write is not remembered.
func TestMemo_RemembersUntilForgottenAndNeverAStaleRace(t *testing.T) {
	loads := 0
	db := map[string][]string{"a": {"x"}}
	m := NewMemo(func(v []string) []string { return append([]string(nil), v...) })
	load := func(k string) func() ([]string, error) {
		return func() ([]string, error) {
			loads++
			v, ok := db[k]
			if !ok {
				return nil, errors.New("not found")
			}
			return append([]string(nil), v...), nil
		}
	}
	v, _ := m.Get("a", load("a"))
	v[0] = "changed by a caller"
	if v, _ := m.Get("a", load("a")); v[0] != "x" || loads != 1 {
		t.Fatalf("second Get = %v after %d loads, want [x] from memory (a copy)", v, loads)
	}
	db["a"] = []string{"y"}
	m.Forget("a")
	if v, _ := m.Get("a", load("a")); v[0] != "y" || loads != 2 {
		t.Fatalf("after Forget: %v after %d loads, want [y] read again", v, loads)
	}
	for range 2 {
		if _, err := m.Get("missing", load("missing")); err == nil {
			t.Fatal("an unknown key has no value")
		}
	}
	if loads != 4 {
		t.Fatalf("%d loads, want an unknown key read every time (4)", loads)
	}
	// A write commits and forgets while a load of the old value is under way.
	raced := func() ([]string, error) {
		db["b"] = []string{"new"}
		m.Forget("b")
		return []string{"old"}, nil
	}
	if v, _ := m.Get("b", raced); v[0] != "old" {
		t.Fatalf("the racing Get returns what it read, got %v", v)
	}
	if v, _ := m.Get("b", load("b")); v[0] != "new" {
		t.Fatalf("after the race: %v, want the write's value, not the stale load", v)
	}
}
