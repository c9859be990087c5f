package limit

import "sync"

// Gauge counts things held open per key (streams on a token, connections or
// open chats from an address) against a ceiling. A key is held only while
// its count is above zero, so the table is bounded by what is open. A
// ceiling below 1 turns the gauge off.
type Gauge struct {
	max int
	mu  sync.Mutex
	m   map[string]int
}

// NewGauge returns a gauge allowing max held per key.
func NewGauge(max int) *Gauge { return &Gauge{max: max, m: map[string]int{}} }

// Max is the ceiling per key (0: off).
func (g *Gauge) Max() int { return max(g.max, 0) }

// Acquire holds one more for key if the ceiling allows it. The release
// function gives it back; calling it more than once is harmless.
func (g *Gauge) Acquire(key string) (release func(), ok bool) {
	if g.max < 1 {
		return func() {}, true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m[key] >= g.max {
		return nil, false
	}
	g.m[key]++
	var once sync.Once
	return func() { once.Do(func() { g.release(key) }) }, true
}

func (g *Gauge) release(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m[key]--; g.m[key] <= 0 {
		delete(g.m, key)
	}
}

// Count is how many key holds now.
func (g *Gauge) Count(key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.m[key]
}

// Len is the number of keys holding anything.
func (g *Gauge) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.m)
}
