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
type tombstones struct {
	mu sync.Mutex
	m  map[string]tombstone
}

type tombstone struct {
	v     *auth.Visitor
	until time.Time
}

func newTombstones() *tombstones { return &tombstones{m: map[string]tombstone{}} }

// add remembers v's closed chat under the hash of its token, and forgets
// tombstones past their time.
func (t *tombstones) add(tokenHash []byte, v *auth.Visitor) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	for k, ts := range t.m {
		if now.After(ts.until) {
			delete(t.m, k)
		}
	}
	t.m[string(tokenHash)] = tombstone{v: v, until: now.Add(tombstoneTTL)}
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
