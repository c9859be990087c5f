package account

import (
	"context"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/alexedwards/argon2id"

	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/limit"
)

// Defaults of the hasher.
const (
	// DefaultHashQueue is how many sign-ins may wait for a hashing slot.
	DefaultHashQueue = 32
	// DefaultHashWait is how long a sign-in waits for a slot at most.
	DefaultHashWait = 5 * time.Second
)

// DefaultHashFailedRate is how many password checks sign-ins from
// addresses that already failed get, all together: 4 at once, then 2 a
// second. A check is about 60 ms of one processor alone, and more when the
// machine is busy (argon2id is bound by memory bandwidth), so this keeps a
// guessing flood to about a fifth of a processor, whatever its size.
var DefaultHashFailedRate = limit.Rate{N: 4, Per: 2 * time.Second}

// DefaultHashConcurrency is how many argon2id computations run at once
// unless configured: half the processors, 1 to 4. Each holds the
// parameters' memory (64 MiB by default) while it runs, so this bounds what
// sign-in can take from the machine (4 × 64 MiB at most), and with
// DefaultPasswordParams (one thread per hash) a flood of sign-ins never
// takes more than half the processors from the chat.
func DefaultHashConcurrency() int { return min(4, max(1, runtime.GOMAXPROCS(0)/2)) }

// DefaultPasswordParams are the argon2id parameters of new password hashes:
// 64 MiB, one pass, one thread (above OWASP's 46 MiB/1/1). One thread, so
// that hashing is bounded by DefaultHashConcurrency in processors too;
// argon2id.DefaultParams uses every processor for each hash. Hashes made
// with other parameters are rehashed at the next successful sign-in.
var DefaultPasswordParams = &argon2id.Params{Memory: 64 * 1024, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// hasher runs every argon2id computation of the service (checking a
// password at sign-in, hashing a new one), at most max at once. A
// computation that finds every slot taken waits in a short queue, for a
// while; beyond that the caller is told the server is busy, so a flood of
// sign-ins costs a bounded amount of memory and CPU instead of all of it.
// When the last computation ends, the memory is handed back to the system.
//
// Callers come in two lanes: urgent ones (sign-ins from an address with no
// failed sign-in on record) are served before all others, each lane in
// order, so that a flood of guesses from addresses that already failed
// cannot keep a real operator waiting behind it.
type hasher struct {
	params *argon2id.Params
	max    int
	queue  int
	wait   time.Duration
	// idle runs when no computation runs or waits any more
	// (debug.FreeOSMemory: argon2id's buffers are large and the runtime
	// returns freed memory only slowly).
	idle func()
	// started, when set, runs inside each computation's slot (tests hold
	// computations there to fill the slots).
	started func()
	// failed limits the computations of the second lane (addresses that
	// already failed), all together (see admit).
	failed     *limit.Keyed
	failedRate limit.Rate

	mu       sync.Mutex
	running  int
	waiting  int
	lanes    [2][]chan struct{} // waiting callers: [0] urgent, [1] the rest
	peak     int                // the most computations ever running at once
	computed int64              // computations run
	avg      time.Duration
	freeing  bool
	// collecting: a collection after a computation is under way
	collecting bool
	idles      int // times memory was handed back
}

// hasherConfig configures a hasher; zero fields take the defaults.
type hasherConfig struct {
	concurrency, queue int
	wait               time.Duration
	failedRate         *limit.Rate
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
	if c.failedRate == nil {
		c.failedRate = &DefaultHashFailedRate
	}
	return &hasher{params: p, max: c.concurrency, queue: c.queue, wait: c.wait, idle: c.idle, started: c.started,
		failed: limit.NewRate(*c.failedRate), failedRate: *c.failedRate}
}

// Create hashes a new password with the service's parameters.
func (h *hasher) Create(ctx context.Context, password string) (string, error) {
	var hash string
	err := h.run(ctx, true, func() (err error) {
		hash, err = argon2id.CreateHash(password, h.params)
		return err
	})
	return hash, err
}

// Compare checks password against an encoded hash (whose own parameters
// apply); urgent callers go before the others.
func (h *hasher) Compare(ctx context.Context, urgent bool, password, hash string) (bool, error) {
	var ok bool
	err := h.run(ctx, urgent, func() (err error) {
		ok, err = argon2id.ComparePasswordAndHash(password, hash)
		return err
	})
	return ok, err
}

// run runs compute in a slot: at once when one is free, after a wait in the
// queue when the queue has room, otherwise not at all (errs.Throttled).
func (h *hasher) run(ctx context.Context, urgent bool, compute func() error) error {
	if err := h.acquire(ctx, urgent); err != nil {
		return err
	}
	start := time.Now()
	h.started()
	err := compute()
	h.release(time.Since(start))
	return err
}

// admit counts a password check from an address that already failed
// (urgent: from a clean one, not counted) against the budget of such checks
// shared by all: call it before any other work for the sign-in, so that a
// flood of guesses is refused as cheaply as possible.
func (h *hasher) admit(urgent bool) error {
	if urgent {
		return nil
	}
	if ok, retry := h.failed.Take(""); !ok {
		return errs.Throttled(retry, "sign-in is busy: too many failed sign-ins lately (at most %s password checks for them)",
			h.failedRate.Describe())
	}
	return nil
}

func (h *hasher) acquire(ctx context.Context, urgent bool) error {
	lane := 1
	if urgent {
		lane = 0
	}
	h.mu.Lock()
	// A free slot is taken at once unless someone who goes first waits.
	if h.running < h.max && len(h.lanes[0]) == 0 && (urgent || len(h.lanes[1]) == 0) {
		h.running++
		h.peak = max(h.peak, h.running)
		h.mu.Unlock()
		return nil
	}
	if len(h.lanes[lane]) >= h.queue {
		retry := h.retryLocked()
		h.mu.Unlock()
		return h.busy(retry)
	}
	granted := make(chan struct{})
	h.lanes[lane] = append(h.lanes[lane], granted)
	h.waiting++
	h.mu.Unlock()
	t := time.NewTimer(h.wait)
	defer t.Stop()
	select {
	case <-granted:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	h.mu.Lock()
	i := slices.Index(h.lanes[lane], granted)
	if i < 0 {
		// Granted while giving up: the slot is ours after all.
		h.mu.Unlock()
		return nil
	}
	h.lanes[lane] = slices.Delete(h.lanes[lane], i, i+1)
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

// release ends a computation: its slot goes to the first urgent waiter, or
// the first other one, or back to the free slots.
func (h *hasher) release(took time.Duration) {
	h.mu.Lock()
	h.computed++
	if h.avg == 0 {
		h.avg = took
	} else {
		h.avg = (7*h.avg + took) / 8
	}
	handed := false
	for lane := range h.lanes {
		if len(h.lanes[lane]) > 0 {
			close(h.lanes[lane][0])
			h.lanes[lane] = h.lanes[lane][1:]
			h.waiting--
			handed = true
			break
		}
	}
	if !handed {
		h.running--
	}
	h.mu.Unlock()
	h.maybeIdle()
}

// maybeIdle hands memory back when nothing runs or waits: in the
// background (a full collection should not delay the answer), once at a
// time. While others run or wait, it collects the finished computation's
// buffer at once instead (a collection, without handing memory to the
// system), so that the next computation reuses it rather than growing the
// heap by another 64 MiB until the collector's own pace gets to it.
func (h *hasher) maybeIdle() {
	h.mu.Lock()
	busy := h.running > 0 || h.waiting > 0
	idle := !busy && !h.freeing
	collect := busy && !h.collecting
	if idle {
		h.freeing = true
	}
	if collect {
		h.collecting = true
	}
	h.mu.Unlock()
	if collect {
		go func() {
			runtime.GC()
			h.mu.Lock()
			h.collecting = false
			h.mu.Unlock()
		}()
	}
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
