package account

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/lethehq/lethe/server/errs"
)

// DefaultTarpit is how long a refused sign-in is held before its answer
// unless configured.
const DefaultTarpit = 2 * time.Second

// maxHeld bounds the sign-ins held at once (each is an idle goroutine and
// a timer); beyond it, refusals are answered at once.
const maxHeld = 4096

// tarpit holds a refused sign-in (throttled or busy) for its retry hint, at
// most max, before answering. A guesser that ignores the hint and asks
// again the moment it is answered (one attempt in flight per connection)
// is slowed to one attempt per max instead of as many as the server can
// refuse: refusals cost little each, but thousands a second still take the
// processors from the chat. An operator who mistyped waits no longer than
// the hint told them to anyway.
type tarpit struct {
	max  time.Duration
	held atomic.Int64
}

// hold returns err after holding it (err without a retry hint at once).
func (t *tarpit) hold(ctx context.Context, err error) error {
	var ae *errs.Error
	if t.max <= 0 || !errors.As(err, &ae) || ae.Retry <= 0 {
		return err
	}
	if t.held.Add(1) > maxHeld {
		t.held.Add(-1)
		return err
	}
	defer t.held.Add(-1)
	timer := time.NewTimer(min(ae.Retry, t.max))
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
	return err
}
