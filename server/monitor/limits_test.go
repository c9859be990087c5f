package monitor

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	monitorv1 "github.com/lethehq/lethe/gen/go/lethe/monitor/v1"
	lethe "github.com/lethehq/lethe/sdk/go"
	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/limit"
)

// Limits on anonymous clients: visitor calls per visit and per client
// address, new visits per address, streams per visit token.

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// throttled fails unless err is ResourceExhausted naming want, with a
// retry hint.
func throttled(t *testing.T, what string, err error, want string) {
	t.Helper()
	wantCode(t, what, err, connect.CodeResourceExhausted)
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("%s: %q does not name the limit %q", what, err, want)
	}
	if lethe.RetryHint(err) <= 0 {
		t.Fatalf("%s: no retry hint in %v", what, err)
	}
}

func (v *visitor) heartbeat() error {
	req := connect.NewRequest(&monitorv1.HeartbeatRequest{})
	v.header(req.Header())
	_, err := v.e.client.Heartbeat(context.Background(), req)
	return err
}

func limits(l Limits) Options { return Options{Limits: &l} }

func TestVisitorCalls_PerVisitAreRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, limits(Limits{CallsPerVisit: limit.Rate{N: 5, Per: time.Minute}}))
	v := &visitor{e: e}
	v.mustTrack("acct-a", "https://shop.example/") // starts the visit: no token yet
	for i := range 3 {
		if err := v.heartbeat(); err != nil {
			t.Fatalf("heartbeat %d: %v", i+1, err)
		}
	}
	if err := v.setData(map[string]string{"plan": "pro"}); err != nil {
		t.Fatal(err)
	}
	v.mustTrack("acct-a", "https://shop.example/cart")
	// Five calls on the visit; every kind counts.
	throttled(t, "sixth call: a heartbeat", v.heartbeat(), "visitor calls (at most 5 per 1m per visit)")
	throttled(t, "sixth call: custom data", v.setData(map[string]string{"plan": "pro"}), "per visit")
	_, err := v.track("acct-a", "https://shop.example/checkout")
	throttled(t, "sixth call: a page view", err, "per visit")
	// Another visit is not affected.
	w := &visitor{e: e}
	w.mustTrack("acct-a", "https://shop.example/")
	if err := w.heartbeat(); err != nil {
		t.Fatalf("another visit: %v", err)
	}
}

func TestVisitorCalls_PerAddressCountEveryVisit(t *testing.T) {
	t.Parallel()
	e := newEnvBehind(t, limits(Limits{CallsPerAddr: limit.Rate{N: 10, Per: time.Minute}}), loopback)
	var vs []*visitor
	for range 3 {
		v := &visitor{e: e, xff: "203.0.113.7"}
		v.mustTrack("acct-a", "https://shop.example/")
		vs = append(vs, v)
	}
	for i := range 7 {
		if err := vs[i%3].heartbeat(); err != nil {
			t.Fatalf("call %d of 10: %v", 4+i, err)
		}
	}
	throttled(t, "eleventh call from one address", vs[0].heartbeat(), "visitor calls (at most 10 per 1m per client address)")
	_, err := (&visitor{e: e, xff: "203.0.113.7"}).track("acct-a", "https://shop.example/")
	throttled(t, "a new visit from that address", err, "per client address")
	// Another address is not affected.
	w := &visitor{e: e, xff: "198.51.100.7"}
	w.mustTrack("acct-a", "https://shop.example/")
	if err := w.heartbeat(); err != nil {
		t.Fatalf("another address: %v", err)
	}
}

func TestTrack_NewVisitsPerAddressAreConfigurable(t *testing.T) {
	t.Parallel()
	e := newEnvBehind(t, limits(Limits{NewVisitsPerAddr: limit.Rate{N: 2, Per: time.Hour}}), loopback)
	for range 2 {
		(&visitor{e: e, xff: "203.0.113.8"}).mustTrack("acct-a", "https://shop.example/")
	}
	_, err := (&visitor{e: e, xff: "203.0.113.8"}).track("acct-a", "https://shop.example/")
	throttled(t, "third new visit", err, "new visits (at most 2 per 1h per client address)")
	(&visitor{e: e, xff: "198.51.100.8"}).mustTrack("acct-a", "https://shop.example/")
}

func TestWatchVisit_StreamsPerTokenAreCappedAndFreedWhenOneEnds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	v := &visitor{e: e}
	v.mustTrack("acct-a", "https://shop.example/")
	open := func() (end func(), err error) {
		req := connect.NewRequest(&monitorv1.WatchVisitRequest{})
		v.header(req.Header())
		return testkit.Held(func(ctx context.Context) (*connect.ServerStreamForClient[monitorv1.WatchVisitResponse], error) {
			return e.client.WatchVisit(ctx, req)
		})
	}
	testkit.StreamCeiling(t, 4, "at most 4 open WatchVisit streams per token", open)
}
