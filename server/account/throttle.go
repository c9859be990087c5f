package account

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/limit"
)

// LoginLimits slow password guessing without locking the operator out.
// Only failures count; a correct password clears its (e-mail, address)
// record. Failures from other addresses never stop an address that has not
// failed.
type LoginLimits struct {
	// PerAddress is how many failed sign-ins one client address may make,
	// whatever the e-mail addresses ("30/10m"; off: unlimited), so that one
	// address cannot try many accounts.
	PerAddress limit.Rate
	// PerAccount is the ceiling of failed sign-ins for one e-mail address
	// from all client addresses together ("20/10m"). Beyond it the account
	// is under attack: addresses that have failed on it lose their free
	// failures and back off from their first one, while an address that
	// has not failed on it still gets through.
	PerAccount limit.Rate
	// FreeFailures is how many failures one address may make on one e-mail
	// address before it must wait.
	FreeFailures int
	// BackoffMax caps that wait, which starts at a second and doubles
	// with each further failure.
	BackoffMax time.Duration
}

// DefaultLoginLimits are the limits unless configured.
func DefaultLoginLimits() LoginLimits {
	return LoginLimits{
		PerAddress:   limit.Rate{N: 30, Per: 10 * time.Minute},
		PerAccount:   limit.Rate{N: 20, Per: 10 * time.Minute},
		FreeFailures: 5,
		BackoffMax:   5 * time.Minute,
	}
}

// backoffBase is the first wait after the free failures.
const backoffBase = time.Second

// throttle keeps the failure records of sign-in: a failure budget per
// client address, one per e-mail address (the ceiling), and a backoff per
// (e-mail address, client address). Keys are hashes; each table is bounded
// and swept.
type throttle struct {
	lim LoginLimits
	now func() time.Time

	mu       sync.Mutex
	addrs    *failTable // spent failure budget per client address
	subjects *failTable // spent failure budget per e-mail address
	pairs    *failTable // failures per (e-mail, client address)
	// busy: client addresses told "busy" lately. They lose their place in
	// the hasher's first lane, so that a flood from many fresh addresses,
	// retrying after each busy answer, cannot fill it for good.
	busy *failTable
}

// busyMemory is how long an address told "busy" stays out of the first lane.
const busyMemory = 10 * time.Minute

func newThrottle(lim LoginLimits, now func() time.Time, maxKeys int) *throttle {
	if now == nil {
		now = time.Now
	}
	if maxKeys < 1 {
		maxKeys = limit.DefaultMaxKeys
	}
	// A pair's failures are forgotten after a quiet while: an hour, or two
	// of the longest waits.
	forget := max(time.Hour, 2*lim.BackoffMax)
	return &throttle{lim: lim, now: now,
		addrs:    newFailTable(maxKeys, budgetExpired(lim.PerAddress)),
		subjects: newFailTable(maxKeys, budgetExpired(lim.PerAccount)),
		pairs:    newFailTable(maxKeys, func(e *failEntry, now time.Time) bool { return now.Sub(e.last) >= forget }),
		busy:     newFailTable(maxKeys, func(e *failEntry, now time.Time) bool { return now.Sub(e.last) >= busyMemory }),
	}
}

// attempt is a sign-in let through: counted as a failure until it is known
// to be one (so that concurrent guesses cannot slip past the count), and
// taken back when it turns out not to be.
type attempt struct {
	addr, subject, pair string
	// clean: no failed sign-in from this address is on record (its
	// password check goes first, see hasher).
	clean bool
}

// begin lets a sign-in for subject (an operator, or an e-mail address that
// is none) from addr (netinfo.AddrKey) through, or says how long to wait.
func (t *throttle) begin(subject, addr string) (attempt, error) {
	a := attempt{addr: addr, subject: hashKey("s", subject), pair: hashKey("p", subject, addr)}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if wait := t.addrs.budgetWait(a.addr, t.lim.PerAddress, now); wait > 0 {
		return a, errs.Throttled(wait, "too many failed sign-ins from your address (at most %s)", t.lim.PerAddress.Describe())
	}
	free := t.lim.FreeFailures
	under := t.subjects.budgetWait(a.subject, t.lim.PerAccount, now) > 0
	if under {
		free = 0
	}
	if p := t.pairs.get(a.pair); p != nil && p.n > 0 && p.n >= free {
		if wait := p.last.Add(t.backoff(p.n - free)).Sub(now); wait > 0 {
			if under && p.n < t.lim.FreeFailures {
				return a, errs.Throttled(wait, "too many failed sign-ins for this e-mail address (more than %s); "+
					"addresses that failed on it wait, doubling up to %s", t.lim.PerAccount.Describe(), shortDuration(t.lim.BackoffMax))
			}
			return a, errs.Throttled(wait, "too many failed sign-ins from your address for this e-mail address "+
				"(%d free, then a wait doubling up to %s)", t.lim.FreeFailures, shortDuration(t.lim.BackoffMax))
		}
	}
	b := t.busy.get(a.addr)
	a.clean = t.pairs.get(a.pair) == nil && spentNow(t.addrs.get(a.addr), t.lim.PerAddress, now) == 0 &&
		(b == nil || now.Sub(b.last) >= busyMemory)
	if !t.lim.PerAddress.Off() {
		t.addrs.spend(a.addr, t.lim.PerAddress, now, 1)
	}
	if !t.lim.PerAccount.Off() {
		t.subjects.spend(a.subject, t.lim.PerAccount, now, 1)
	}
	p := t.pairs.put(a.pair, now)
	p.n++
	p.last = now
	return a, nil
}

// backoff is the wait after the k-th failure past the free ones (k from 0).
func (t *throttle) backoff(k int) time.Duration {
	if k > 30 {
		return t.lim.BackoffMax
	}
	return min(backoffBase<<k, t.lim.BackoffMax)
}

// succeeded: the password was right. The attempt is no failure, and the
// pair starts afresh.
func (t *throttle) succeeded(a attempt) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refund(a)
	t.pairs.remove(a.pair)
}

// aborted: the password could not be checked (busy, canceled). The attempt
// counts for no failure, but the address has had its turn in the first lane.
func (t *throttle) aborted(a attempt) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refund(a)
	t.busy.put(a.addr, t.now()).last = t.now()
	if p := t.pairs.get(a.pair); p != nil {
		if p.n--; p.n <= 0 {
			t.pairs.remove(a.pair)
		}
	}
}

func (t *throttle) refund(a attempt) {
	now := t.now()
	t.addrs.spend(a.addr, t.lim.PerAddress, now, -1)
	t.subjects.spend(a.subject, t.lim.PerAccount, now, -1)
}

// sizes are the number of keys each table holds (tests).
func (t *throttle) sizes() (addrs, subjects, pairs int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.addrs.len(), t.subjects.len(), t.pairs.len()
}

// hashKey keys the tables: no e-mail address or operator id is kept as such.
func hashKey(kind string, parts ...string) string {
	h := sha256.New()
	h.Write([]byte(kind))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return string(h.Sum(nil)[:16])
}

// failEntry is one key's record: failures n (pairs) or the failure budget
// spent (addresses, e-mail addresses), as of last.
type failEntry struct {
	n     int
	spent float64
	last  time.Time
}

// failTable is a limit.Table of failure records, swept once a minute.
type failTable struct{ t *limit.Table[failEntry] }

func newFailTable(maxKeys int, expired func(*failEntry, time.Time) bool) *failTable {
	return &failTable{limit.NewTable(maxKeys, time.Minute, func(e *failEntry, _, now time.Time) bool { return expired(e, now) })}
}

func (t *failTable) get(key string) *failEntry { return t.t.Get(key) }

func (t *failTable) remove(key string) { t.t.Remove(key) }

func (t *failTable) len() int { return t.t.Len() }

// put returns key's record, made (as of now) when there is none.
func (t *failTable) put(key string, now time.Time) *failEntry {
	e, created := t.t.Put(key, now)
	if created {
		e.last = now
	}
	return e
}

// spentNow is the budget spent as of now: it drains at r.N per r.Per.
func spentNow(e *failEntry, r limit.Rate, now time.Time) float64 {
	if e == nil || r.Off() {
		return 0
	}
	drained := now.Sub(e.last).Seconds() * float64(r.N) / r.Per.Seconds()
	return max(e.spent-drained, 0)
}

func budgetExpired(r limit.Rate) func(*failEntry, time.Time) bool {
	return func(e *failEntry, now time.Time) bool { return spentNow(e, r, now) == 0 }
}

// budgetWait is how long until key may fail once more under r (0: now).
func (t *failTable) budgetWait(key string, r limit.Rate, now time.Time) time.Duration {
	if r.Off() {
		return 0
	}
	over := spentNow(t.get(key), r, now) + 1 - float64(r.N)
	if over <= 0 {
		return 0
	}
	return time.Duration(over * float64(r.Per) / float64(r.N))
}

// spend adds d to key's spent budget (a refund when negative).
func (t *failTable) spend(key string, r limit.Rate, now time.Time, d float64) {
	if r.Off() {
		return
	}
	if d < 0 && t.get(key) == nil {
		return
	}
	e := t.put(key, now)
	e.spent = max(spentNow(e, r, now)+d, 0)
	e.last = now
}

// shortDuration prints 5m rather than 5m0s.
func shortDuration(d time.Duration) string {
	return limit.Rate{N: 1, Per: d}.String()[2:]
}
