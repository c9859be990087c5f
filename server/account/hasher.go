package account

import (
	"context"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/alexedwards/argon2id"

	"github.com/lethehq/lethe/server/errs"
)

// Defaults of the hasher.
const (
	// DefaultHashQueue is how many sign-ins may wait for a hashing slot.
	DefaultHashQueue = 32
	// DefaultHashWait is how long a sign-in waits for a slot at most.
	DefaultHashWait = 5 * time.Second
)

// DefaultHashConcurrency is how many argon2id computations run at once
// unless configured: 2 to 4, following the processors. Each holds the
// parameters' memory (64 MiB by default) while it runs, so this bounds what
// sign-in can take from the machine: 4 × 64 MiB at most.
func DefaultHashConcurrency() int { return min(4, max(2, runtime.GOMAXPROCS(0))) }

// hasher runs every argon2id computation of the service (checking a
// password at sign-in, hashing a new one), at most max at once. A
// computation that finds every slot taken waits in a short queue, for a
// while; beyond that the caller is told the server is busy, so a flood of
// sign-ins costs a bounded amount of memory and CPU instead of all of it.
// When the last computation ends, the memory is handed back to the system.
type hasher struct {
	params *argon2id.Params
	max    int
	queue  int
	wait   time.Duration
	slots  chan struct{}
	// idle runs when no computation runs or waits any more
	// (debug.FreeOSMemory: argon2id's buffers are large and the runtime
	// returns freed memory only slowly).
	idle func()
	// started, when set, runs inside each computation's slot (tests hold
	// computations there to fill the slots).
	started func()

	mu       sync.Mutex
	running  int
	waiting  int
	peak     int   // the most computations ever running at once
	computed int64 // computations run
	avg      time.Duration
	freeing  bool
	idles    int // times memory was handed back
}

// hasherConfig configures a hasher; zero fields take the defaults.
type hasherConfig struct {
	concurrency, queue int
	wait               time.Duration
	idle, started      func()
}

func newHasher(p *argon2id.Params, c hasherConfig) *hasher {
	if c.concurrency < 1 {
		c.concurrency = DefaultHashConcurrency()
	}
	if c.queue < 1 {
		c.queue = DefaultHashQueue
	}
	if c.wait <= 0 {
		c.wait = DefaultHashWait
	}
	if c.idle == nil {
		c.idle = debug.FreeOSMemory
	}
	if c.started == nil {
		c.started = func() {}
	}
	return &hasher{params: p, max: c.concurrency, queue: c.queue, wait: c.wait, slots: make(chan struct{}, c.concurrency),
		idle: c.idle, started: c.started}
}

// Create hashes a new password with the service's parameters.
func (h *hasher) Create(ctx context.Context, password string) (string, error) {
	var hash string
	err := h.run(ctx, func() (err error) {
		hash, err = argon2id.CreateHash(password, h.params)
		return err
	})
	return hash, err
}

// Compare checks password against an encoded hash (whose own parameters
// apply).
func (h *hasher) Compare(ctx context.Context, password, hash string) (bool, error) {
	var ok bool
	err := h.run(ctx, func() (err error) {
		ok, err = argon2id.ComparePasswordAndHash(password, hash)
		return err
	})
	return ok, err
}

// run runs compute in a slot: at once when one is free, after a wait in the
// queue when the queue has room, otherwise not at all (errs.Throttled).
func (h *hasher) run(ctx context.Context, compute func() error) error {
	if err := h.acquire(ctx); err != nil {
		return err
	}
	start := time.Now()
	h.started()
	err := compute()
	h.release(time.Since(start))
	return err
}

func (h *hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		h.begin(false)
		return nil
	default:
	}
	h.mu.Lock()
	if h.waiting >= h.queue {
		retry := h.retryLocked()
		h.mu.Unlock()
		return h.busy(retry)
	}
	h.waiting++
	h.mu.Unlock()
	t := time.NewTimer(h.wait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		h.begin(true)
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	h.mu.Lock()
	h.waiting--
	retry := h.retryLocked()
	h.mu.Unlock()
	h.maybeIdle()
	if err := ctx.Err(); err != nil {
		return err
	}
	return h.busy(retry)
}

func (h *hasher) busy(retry time.Duration) error {
	return errs.Throttled(retry, "sign-in is busy; at most %d at once", h.max)
}

// retryLocked is a guess at when a slot will be free for one more: the
// queue ahead of it, worked off max at a time at the recent pace. Call with
// mu held.
func (h *hasher) retryLocked() time.Duration {
	per := max(h.avg, 100*time.Millisecond)
	return min(per*time.Duration(h.waiting/h.max+1), 30*time.Second)
}

func (h *hasher) begin(queued bool) {
	h.mu.Lock()
	if queued {
		h.waiting--
	}
	h.running++
	h.peak = max(h.peak, h.running)
	h.mu.Unlock()
}

func (h *hasher) release(took time.Duration) {
	h.mu.Lock()
	h.running--
	h.computed++
	if h.avg == 0 {
		h.avg = took
	} else {
		h.avg = (7*h.avg + took) / 8
	}
	h.mu.Unlock()
	<-h.slots
	h.maybeIdle()
}

// maybeIdle hands memory back when nothing runs or waits: in the
// background (a full collection should not delay the answer), once at a
// time.
func (h *hasher) maybeIdle() {
	h.mu.Lock()
	idle := h.running == 0 && h.waiting == 0 && !h.freeing
	if idle {
		h.freeing = true
	}
	h.mu.Unlock()
	if !idle {
		return
	}
	go func() {
		h.idle()
		h.mu.Lock()
		h.freeing = false
		h.idles++
		h.mu.Unlock()
	}()
}

// hasherStats is what the hasher counted.
type hasherStats struct {
	running, waiting, peak, idles int
	computed                      int64
	freeing                       bool
}

func (h *hasher) stats() hasherStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return hasherStats{running: h.running, waiting: h.waiting, peak: h.peak, idles: h.idles, computed: h.computed, freeing: h.freeing}
}
