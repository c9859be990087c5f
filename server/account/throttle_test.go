package account

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	lethe "github.com/lethehq/lethe/sdk/go"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/internal/testkit"
)

// wantThrottled fails unless err is ResourceExhausted with a retry hint.
func wantThrottled(t *testing.T, what string, err error) time.Duration {
	t.Helper()
	wantCode(t, what, err, connect.CodeResourceExhausted)
	retry := lethe.RetryHint(err)
	if retry <= 0 || !strings.Contains(messageOf(err), "retry in") {
		t.Fatalf("%s: %q carries no retry hint (RetryInfo %v)", what, messageOf(err), retry)
	}
	return retry
}

// The attack of issue 9: an attacker's wrong passwords for the admin must
// not lock the admin out. They slow the attacker's address only.
func TestLogin_FailuresFromOneAddressNeverBlockAnother(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	attacker := e.newOperatorAt("203.0.113.66")
	var throttled int
	for range 100 {
		err := attacker.login(DefaultAdminEmail, "wrong-password-1")
		if connect.CodeOf(err) == connect.CodeResourceExhausted {
			wantThrottled(t, "attacker", err)
			throttled++
			continue
		}
		wantCode(t, "attacker's guess", err, connect.CodeUnauthenticated)
	}
	if want := 100 - DefaultLoginLimits().FreeFailures; throttled != want {
		t.Fatalf("%d of 100 guesses throttled, want all but the %d free ones (%d)", throttled, DefaultLoginLimits().FreeFailures, want)
	}
	// The admin, from an address that has not failed, signs in at once.
	if err := e.newOperatorAt("198.51.100.20").login(DefaultAdminEmail, adminPassword); err != nil {
		t.Fatalf("admin's first try from a clean address after 100 failures elsewhere: %v", err)
	}
	// The attacker's address waits even with the right password.
	wantThrottled(t, "right password from the failing address", attacker.login(DefaultAdminEmail, adminPassword))
}

// Backoff: free failures, then a wait that doubles; a right password after
// the wait signs in and clears the record.
func TestLogin_BackoffDoublesAndARightPasswordResetsIt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	free := DefaultLoginLimits().FreeFailures
	o := e.newOperatorAt("203.0.113.5")
	fail := func(n int) {
		t.Helper()
		for i := range n {
			wantCode(t, fmt.Sprintf("failure %d", i+1), o.login(DefaultAdminEmail, "wrong-password-1"), connect.CodeUnauthenticated)
		}
	}
	fail(free)
	if retry := wantThrottled(t, "after the free failures", o.login(DefaultAdminEmail, "wrong-password-1")); retry != time.Second {
		t.Fatalf("first wait %v, want 1s", retry)
	}
	e.clock.add(time.Second)
	fail(1)
	if retry := wantThrottled(t, "after one more failure", o.login(DefaultAdminEmail, adminPassword)); retry != 2*time.Second {
		t.Fatalf("second wait %v, want 2s (doubled)", retry)
	}
	e.clock.add(2 * time.Second)
	if err := o.login(DefaultAdminEmail, adminPassword); err != nil {
		t.Fatalf("right password after the wait: %v", err)
	}
	// Afresh: the free failures again, then the first wait.
	fail(free)
	if retry := wantThrottled(t, "after the free failures again", o.login(DefaultAdminEmail, "wrong-password-1")); retry != time.Second {
		t.Fatalf("wait after a reset %v, want 1s", retry)
	}
}

// The wait is capped.
func TestLogin_BackoffIsCapped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withOptions(func(o *Options) {
		o.Login = DefaultLoginLimits()
		o.Login.FreeFailures, o.Login.BackoffMax = 0, 5*time.Second
	}))
	o := e.newOperatorAt("203.0.113.5")
	var last time.Duration
	for i := range 8 {
		wantCode(t, "failure", o.login(DefaultAdminEmail, "wrong-password-1"), connect.CodeUnauthenticated)
		last = wantThrottled(t, fmt.Sprintf("after failure %d", i+1), o.login(DefaultAdminEmail, "wrong-password-1"))
		e.clock.add(last)
	}
	if last != 5*time.Second {
		t.Fatalf("wait after 8 failures %v, want the 5s cap", last)
	}
}

// The per-account ceiling: a spray from many addresses costs each failing
// address its free failures, but an address that has not failed still
// signs in on its first try.
func TestLogin_AccountCeilingSlowsSpraysButNotACleanAddress(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ceiling := DefaultLoginLimits().PerAccount.N
	for i := range ceiling {
		o := e.newOperatorAt(fmt.Sprintf("203.0.113.%d", i+1))
		wantCode(t, "one guess from each address", o.login(DefaultAdminEmail, "wrong-password-1"), connect.CodeUnauthenticated)
	}
	// Below the ceiling, an address has free failures left after one; past
	// it, a second guess from an address that failed must wait.
	err := e.newOperatorAt("203.0.113.1").login(DefaultAdminEmail, "wrong-password-1")
	wantThrottled(t, "second guess past the ceiling", err)
	if !strings.Contains(messageOf(err), "for this e-mail address (more than 20 per 10m)") {
		t.Fatalf("ceiling answer %q does not name the ceiling", messageOf(err))
	}
	// A new address still gets its try: wrong, then right from another.
	wantCode(t, "a new address's guess", e.newOperatorAt("203.0.113.200").login(DefaultAdminEmail, "wrong-password-1"), connect.CodeUnauthenticated)
	if err := e.newOperatorAt("198.51.100.7").login(DefaultAdminEmail, adminPassword); err != nil {
		t.Fatalf("admin from a clean address while the account is under attack: %v", err)
	}
	// Slowed, never blocked: after its wait the failed address tries again.
	e.clock.add(2 * time.Second)
	if err := e.newOperatorAt("203.0.113.1").login(DefaultAdminEmail, adminPassword); err != nil {
		t.Fatalf("a failed address after its wait, right password: %v", err)
	}
	// Other accounts are not under attack: their free failures remain.
	e.createOperator(e.admin(), "bob@example.com", "Bob")
	for i := range DefaultLoginLimits().FreeFailures {
		wantCode(t, fmt.Sprintf("bob's failure %d", i+1), e.newOperatorAt("203.0.113.2").login("bob@example.com", "wrong-password-1"),
			connect.CodeUnauthenticated)
	}
}

// One address cannot try many accounts: failures per address across all
// e-mail addresses are limited too.
func TestLogin_OneAddressCannotSprayManyAccounts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rate := DefaultLoginLimits().PerAddress
	o := e.newOperatorAt("2001:db8::66")
	for i := range rate.N {
		wantCode(t, "spray", o.login(fmt.Sprintf("user%d@example.com", i), "wrong-password-1"), connect.CodeUnauthenticated)
	}
	err := o.login("another@example.com", "wrong-password-1")
	wantThrottled(t, "spray past the per-address rate", err)
	if !strings.Contains(messageOf(err), "at most "+rate.Describe()) {
		t.Fatalf("answer %q does not name the limit %s", messageOf(err), rate.Describe())
	}
	wantThrottled(t, "the admin's password from the spraying address", o.login(DefaultAdminEmail, adminPassword))
	if err := e.newOperatorAt("2001:db8:1::1").login(DefaultAdminEmail, adminPassword); err != nil {
		t.Fatalf("admin from another address: %v", err)
	}
	// The budget comes back with time.
	e.clock.add(rate.Per / time.Duration(rate.N))
	if err := o.login(DefaultAdminEmail, adminPassword); err != nil {
		t.Fatalf("right password after the address's wait: %v", err)
	}
}

// Successes are not failures: many operators behind one address (an
// office) sign in as often as they like.
func TestLogin_SuccessesDoNotCount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i := range 3 * DefaultLoginLimits().PerAddress.N {
		if err := e.newOperatorAt("192.0.2.10").login(DefaultAdminEmail, adminPassword); err != nil {
			t.Fatalf("sign-in %d from one address: %v", i+1, err)
		}
	}
}

// P14: no number of client addresses grows the throttle's tables past
// their bound, and records that have nothing left to say are swept.
func TestLogin_ThrottleTablesAreBounded(t *testing.T) {
	t.Parallel()
	const bound = 40
	e := newEnv(t, withOptions(func(o *Options) { o.maxKeys = bound }))
	for i := range 150 {
		e.clock.add(time.Millisecond)
		o := e.newOperatorAt(fmt.Sprintf("10.%d.%d.1", i/250, i%250))
		wantCode(t, "guess", o.login(fmt.Sprintf("u%d@example.com", i), "wrong-password-1"), connect.CodeUnauthenticated)
		if a, s, p := e.svc.throttle.sizes(); a > bound || s > bound || p > bound {
			t.Fatalf("after %d addresses the tables hold %d, %d, %d keys; bound %d", i+1, a, s, p, bound)
		}
	}
	// An hour later everything has been forgiven and is swept.
	e.clock.add(2 * time.Hour)
	wantCode(t, "guess", e.newOperatorAt("192.0.2.1").login("last@example.com", "wrong-password-1"), connect.CodeUnauthenticated)
	if a, s, p := e.svc.throttle.sizes(); a != 1 || s != 1 || p != 1 {
		t.Fatalf("after the records expired the tables hold %d, %d, %d keys, want only the last guess's", a, s, p)
	}
}

// Throttling answers alike for e-mail addresses that are an operator's and
// those that are nobody's: the answer does not enumerate operators.
func TestLogin_ThrottlingDoesNotTellKnownFromUnknownEmail(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	answers := map[string]string{}
	for _, email := range []string{DefaultAdminEmail, "nobody@example.com"} {
		o := e.newOperatorAt("203.0.113.9")
		var err error
		for range DefaultLoginLimits().FreeFailures + 1 {
			err = o.login(email, "wrong-password-1")
		}
		wantThrottled(t, email, err)
		answers[email] = messageOf(err)
	}
	if answers[DefaultAdminEmail] != answers["nobody@example.com"] {
		t.Fatalf("throttled answers differ: %q", answers)
	}
}

// A refused sign-in is held for its retry hint (at most the tarpit) before
// it is answered, so that a guesser asking again the moment it is answered
// is slowed to one guess per hold; an accepted one is answered at once.
func TestLogin_RefusalsAreHeldInTheTarpit(t *testing.T) {
	t.Parallel()
	const hold = 400 * time.Millisecond
	e := newEnv(t, withOptions(func(o *Options) { o.Tarpit = hold }))
	attacker := e.newOperatorAt("203.0.113.67")
	for range DefaultLoginLimits().FreeFailures {
		wantCode(t, "free guess", attacker.login(DefaultAdminEmail, "wrong-password-1"), connect.CodeUnauthenticated)
	}
	start := time.Now()
	err := attacker.login(DefaultAdminEmail, "wrong-password-1")
	held := time.Since(start)
	wantThrottled(t, "guess past the free ones", err)
	if held < hold {
		t.Fatalf("the refusal was answered after %v, want it held for %v", held, hold)
	}
	// Nothing stays held once answered.
	if e.svc.tarpit.held.Load() != 0 {
		t.Fatalf("%d sign-ins still held after their answers", e.svc.tarpit.held.Load())
	}
	if err := e.newOperatorAt("198.51.100.21").login(DefaultAdminEmail, adminPassword); err != nil {
		t.Fatalf("admin from a clean address: %v", err)
	}
}

// A held refusal ends when the caller gives up, and no more are held than
// the bound.
func TestTarpit_EndsWithTheCallerAndIsBounded(t *testing.T) {
	t.Parallel()
	tp := &tarpit{max: time.Hour}
	refusal := errs.Throttled(time.Hour, "throttled")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- tp.hold(ctx, refusal) }()
	testkit.Eventually(t, testkit.Wait, "one held", func() bool { return tp.held.Load() == 1 })
	cancel()
	if err := <-done; err != refusal {
		t.Fatalf("hold returned %v, want the refusal", err)
	}
	tp.held.Store(maxHeld)
	if err := tp.hold(context.Background(), refusal); err != refusal {
		t.Fatalf("over the bound: %v", err)
	}
	if plain := errs.Invalid("bad"); tp.hold(context.Background(), plain) != plain {
		t.Fatal("an error without a retry hint was not answered at once")
	}
}
