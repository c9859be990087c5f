package chat

import (
	"sync"
	"time"

	"github.com/lethehq/lethe/server/auth"
)

// tombstoneTTL is how long a destroyed chat's token is still recognised.
const tombstoneTTL = time.Hour

// tombstones remember, without any content, that a token's chat has ended
// and been destroyed, so that late calls get FailedPrecondition ("the chat is
// closed") rather than a confusing Unauthenticated. They live in memory only,
// keyed by the token's hash, for an hour.
//
// Adding is O(1) (amortised): every tombstone lives as long, so they expire
// in the order they were added and a FIFO queue says which to forget.
type tombstones struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]tombstone
	q   []queued // in order of expiry
}

type tombstone struct {
	v     *auth.Visitor
	until time.Time
}

type queued struct {
	key   string
	until time.Time
}

func newTombstones() *tombstones { return &tombstones{ttl: tombstoneTTL, m: map[string]tombstone{}} }

// add remembers v's closed chat under the hash of its token, and forgets
// tombstones past their time.
func (t *tombstones) add(tokenHash []byte, v *auth.Visitor) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	n := 0
	for n < len(t.q) && now.After(t.q[n].until) {
		if ts, ok := t.m[t.q[n].key]; ok && ts.until.Equal(t.q[n].until) {
			delete(t.m, t.q[n].key)
		}
		t.q[n] = queued{}
		n++
	}
	t.q = t.q[n:]
	key, until := string(tokenHash), now.Add(t.ttl)
	t.m[key] = tombstone{v: v, until: until}
	t.q = append(t.q, queued{key: key, until: until})
}

// len is how many tombstones are held.
func (t *tombstones) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// get returns the closed chat's visitor for a token hash, if remembered.
func (t *tombstones) get(tokenHash []byte) (*auth.Visitor, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ts, ok := t.m[string(tokenHash)]
	if !ok || time.Now().After(ts.until) {
		return nil, false
	}
	v := *ts.v
	return &v, true
}
