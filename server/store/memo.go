package store

import "sync"

// MaxMemoKeys bounds a Memo: past it, values are read from the database
// every time instead of being remembered.
const MaxMemoKeys = 10_000

// Memo remembers values read from a database by key, for rows that only the
// owning package writes (an account's settings, its consent texts) and that
// every chat start reads. The package calls Forget after each write of a
// key's rows commits, so a read after a write always sees it; a load that
// raced with a write is not remembered (a generation counter). Errors are
// never remembered (an unknown key costs a read each time, and is not kept).
// It assumes one process per data directory, as the rest of Lethe does.
type Memo[V any] struct {
	mu    sync.Mutex
	m     map[string]V
	gen   uint64
	clone func(V) V
}

// NewMemo returns an empty memo; clone copies a value so that a caller can
// never change what the memo holds (nil: values are shared as they are).
func NewMemo[V any](clone func(V) V) *Memo[V] {
	if clone == nil {
		clone = func(v V) V { return v }
	}
	return &Memo[V]{m: map[string]V{}, clone: clone}
}

// Get returns the value of key, calling load when it is not remembered.
func (m *Memo[V]) Get(key string, load func() (V, error)) (V, error) {
	m.mu.Lock()
	v, ok := m.m[key]
	gen := m.gen
	m.mu.Unlock()
	if ok {
		return m.clone(v), nil
	}
	v, err := load()
	if err != nil {
		return v, err
	}
	m.mu.Lock()
	if m.gen == gen && len(m.m) < MaxMemoKeys {
		m.m[key] = m.clone(v)
	}
	m.mu.Unlock()
	return v, nil
}

// Forget drops key; call it after a write of the key's rows committed.
func (m *Memo[V]) Forget(key string) {
	m.mu.Lock()
	delete(m.m, key)
	m.gen++
	m.mu.Unlock()
}
