// Package limit is the one keyed rate limiter every domain uses: a token
// bucket per key (a hashed client address, a visitor id, an e-mail address),
// bounded in memory. Keys whose bucket has refilled are indistinguishable
// from new ones and are swept; beyond the table's size the oldest-seen keys
// are dropped, so no amount of distinct keys can grow it without bound
// (Table, which the sign-in throttle's records use too). Rate is a limit as
// configured ("N/period"); Gauge is a ceiling on things held open.
package limit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxKeys bounds a limiter's table unless Keyed.MaxKeys says otherwise.
const DefaultMaxKeys = 100_000

// Keyed limits events per key: a burst, then one event every Every.
type Keyed struct {
	every time.Duration
	burst int

	mu  sync.Mutex
	t   *Table[*rate.Limiter]
	now func() time.Time
}

// New returns a limiter allowing burst events at once per key, then one
// every every, keeping at most DefaultMaxKeys keys.
func New(every time.Duration, burst int) *Keyed {
	k := &Keyed{every: every, burst: burst, now: time.Now}
	k.t = k.table(DefaultMaxKeys)
	return k
}

// table is the limiter's table: a key whose bucket has refilled is
// indistinguishable from a new one, so it expires then, and the table is
// swept once per refill period.
func (k *Keyed) table(maxKeys int) *Table[*rate.Limiter] {
	refill := k.every * time.Duration(k.burst)
	return NewTable(maxKeys, refill, func(_ **rate.Limiter, seen, now time.Time) bool { return now.Sub(seen) >= refill })
}

// WithMaxKeys bounds the table at n keys (tests, or tables that should be small).
func (k *Keyed) WithMaxKeys(n int) *Keyed {
	k.t = k.table(n)
	return k
}

// Allow reports whether an event for key may happen now, and counts it.
func (k *Keyed) Allow(key string) bool {
	ok, _ := k.Take(key)
	return ok
}

// Take counts an event for key if one may happen now. When it may not, it
// says how long until one may: the retry hint for the client. A limiter
// with a burst below 1 is off and allows everything.
func (k *Keyed) Take(key string) (ok bool, retry time.Duration) {
	if k.burst < 1 {
		return true, 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	l, created := k.t.Put(key, now)
	if created {
		*l = rate.NewLimiter(rate.Every(k.every), k.burst)
	}
	r := (*l).ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Forget drops key's bucket (its owner is gone: a destroyed chat).
func (k *Keyed) Forget(key string) {
	k.mu.Lock()
	k.t.Remove(key)
	k.mu.Unlock()
}

// Len is the number of keys held.
func (k *Keyed) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.t.Len()
}
