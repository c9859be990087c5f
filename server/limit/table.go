package limit

import (
	"slices"
	"time"
)

// Table is a map of per-key records bounded at a number of keys, the one
// memory bound every limiter table shares: expired records are swept at
// most once per sweep period and whenever the table is full; if it is still
// full, the tenth of the keys seen longest ago go (they come back fresh,
// which only ever favours a real client). It is not safe for concurrent
// use: its owner locks.
type Table[V any] struct {
	m          map[string]*row[V]
	maxKeys    int
	sweepEvery time.Duration
	expired    func(v *V, seen, now time.Time) bool
	lastSweep  time.Time
}

type row[V any] struct {
	v    V
	seen time.Time
}

// NewTable returns a table of at most maxKeys keys whose records expire
// when expired says so (seen: when the key was last put), swept at most
// once per sweepEvery unless the table is full.
func NewTable[V any](maxKeys int, sweepEvery time.Duration, expired func(v *V, seen, now time.Time) bool) *Table[V] {
	return &Table[V]{m: map[string]*row[V]{}, maxKeys: max(maxKeys, 1), sweepEvery: sweepEvery, expired: expired}
}

// Get returns key's record, nil when there is none.
func (t *Table[V]) Get(key string) *V {
	if r := t.m[key]; r != nil {
		return &r.v
	}
	return nil
}

// Put returns key's record, made (zero) when there is none, and marks the
// key seen now; created says it was made.
func (t *Table[V]) Put(key string, now time.Time) (v *V, created bool) {
	r := t.m[key]
	if r == nil {
		t.makeRoom(now)
		r = &row[V]{}
		t.m[key] = r
		created = true
	}
	r.seen = now
	return &r.v, created
}

// Remove drops key's record.
func (t *Table[V]) Remove(key string) { delete(t.m, key) }

// Len is the number of keys held.
func (t *Table[V]) Len() int { return len(t.m) }

func (t *Table[V]) makeRoom(now time.Time) {
	full := len(t.m) >= t.maxKeys
	if !full && now.Sub(t.lastSweep) < t.sweepEvery {
		return
	}
	t.lastSweep = now
	for k, r := range t.m {
		if t.expired(&r.v, r.seen, now) {
			delete(t.m, k)
		}
	}
	if len(t.m) < t.maxKeys {
		return
	}
	seen := make([]time.Time, 0, len(t.m))
	for _, r := range t.m {
		seen = append(seen, r.seen)
	}
	slices.SortFunc(seen, time.Time.Compare)
	cut := seen[min(max(t.maxKeys/10, 1), len(seen))-1]
	for k, r := range t.m {
		if !r.seen.After(cut) {
			delete(t.m, k)
		}
	}
}
