package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// due is how many of the sends paced at rate per second are due once
// elapsed has passed since the first, which is due at once.
func due(elapsed time.Duration, rate float64) int {
	if elapsed < 0 {
		return 0
	}
	return int(elapsed.Seconds()*rate) + 1
}

// pace calls fire(i) for i = 0 … n-1, n = rate × d, open loop: send i is
// due at i/rate after the start whatever became of the earlier ones, each in
// its own goroutine. A send due while maxInflight sends are still
// unanswered is not made and counts as skipped (the server is not keeping
// up; the loop stays bounded). pace returns once every send it made has
// returned, or early when ctx ends (n is then the sends due so far).
func pace(ctx context.Context, rate float64, d time.Duration, maxInflight int, fire func(i int)) (n, skipped int) {
	n = int(math.Round(rate * d.Seconds()))
	sem := make(chan struct{}, maxInflight)
	start := time.Now()
	launched := 0
	for launched < n && ctx.Err() == nil {
		for k := min(due(time.Since(start), rate), n); launched < k; launched++ {
			select {
			case sem <- struct{}{}:
				go func(i int) {
					defer func() { <-sem }()
					fire(i)
				}(launched)
			default:
				skipped++
			}
		}
		if launched < n {
			next := time.Duration(float64(launched) / rate * float64(time.Second))
			time.Sleep(max(next-time.Since(start), 50*time.Microsecond))
		}
	}
	for range maxInflight {
		sem <- struct{}{}
	}
	return launched, skipped
}

// quantile is the nearest-rank q-quantile of sorted (0 when empty).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// dist is a latency distribution: count, p50, p99, max.
type dist struct {
	n             int
	p50, p99, max time.Duration
}

func distOf(lat []time.Duration) dist {
	s := slices.Clone(lat)
	slices.Sort(s)
	d := dist{n: len(s), p50: quantile(s, 0.5), p99: quantile(s, 0.99)}
	if len(s) > 0 {
		d.max = s[len(s)-1]
	}
	return d
}

func (d dist) String() string {
	r := func(t time.Duration) string { return ms(t) }
	return fmt.Sprintf("n=%d p50=%s p99=%s max=%s", d.n, r(d.p50), r(d.p99), r(d.max))
}

// ms writes a duration in milliseconds with two decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// step is one offered rate of scenario throughput and what came of it.
type step struct {
	rate      float64       // offered per second
	d         time.Duration // how long it was offered
	offered   int           // sends due (made or skipped)
	delivered int           // persisted (answered OK) and delivered
	failed    int           // answered with an error, or skipped
	lat       dist          // send → delivered
}

func (s step) achieved() float64 { return float64(s.delivered) / s.d.Seconds() }

// passes: at least 99 % of what was offered was delivered and its p99 is
// within p99Max.
func (s step) passes(p99Max time.Duration) bool {
	return s.offered > 0 && float64(s.delivered) >= 0.99*float64(s.offered) && s.lat.p99 <= p99Max
}

// best is the highest offered rate that passes (ok false if none does).
func best(steps []step, p99Max time.Duration) (step, bool) {
	var b step
	ok := false
	for _, s := range steps {
		if s.passes(p99Max) && (!ok || s.rate > b.rate) {
			b, ok = s, true
		}
	}
	return b, ok
}

func (s step) String() string {
	return fmt.Sprintf("offered %6.0f/s for %v: achieved %7.1f/s (%d of %d delivered, %d failed), send → delivered %v",
		s.rate, s.d, s.achieved(), s.delivered, s.offered, s.failed, s.lat)
}

// parseRates reads a comma-separated list of positive rates.
func parseRates(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("-rates: %q is not a positive rate", f)
		}
		out = append(out, r)
	}
	return out, nil
}
