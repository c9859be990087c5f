package account

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/alexedwards/argon2id"

	lethe "github.com/lethehq/lethe/sdk/go"
	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/limit"
)

// gate holds argon2id computations inside their slots once shut, so that a
// test can fill the hasher without depending on how long a hash takes.
type gate struct {
	shut atomic.Bool
	open chan struct{}
}

func newGate() *gate { return &gate{open: make(chan struct{})} }

func (g *gate) hook() {
	if g.shut.Load() {
		<-g.open
	}
}

func (g *gate) release() { g.shut.Store(false); close(g.open) }

// hashing returns an env whose hasher runs concurrency computations at once
// with queue waiting up to wait, held by g (shut once the env has started).
func hashing(t *testing.T, g *gate, concurrency, queue int, wait time.Duration, more ...func(*Options)) *env {
	t.Helper()
	e := newEnv(t, withOptions(func(o *Options) {
		o.HashConcurrency, o.HashQueue, o.HashWait, o.hashHook = concurrency, queue, wait, g.hook
		for _, fn := range more {
			fn(o)
		}
	}))
	g.shut.Store(true)
	// Registered after the server's cleanup, so run before it: a failed
	// test must not leave handlers held.
	t.Cleanup(func() {
		if g.shut.Load() {
			g.release()
		}
	})
	return e
}

// P14: however many sign-ins arrive at once, at most the configured number
// of argon2id computations run, a few wait, and the rest are told at once
// that sign-in is busy and when to try again.
func TestLogin_HashingIsBoundedAndTheOverflowIsBusy(t *testing.T) {
	t.Parallel()
	const concurrency, queue, logins = 2, 3, 12
	g := newGate()
	e := hashing(t, g, concurrency, queue, testkit.Wait)
	results := make(chan error, logins)
	for i := range logins {
		// Each from its own address: the throttle has nothing to say.
		o := e.newOperatorAt(fmt.Sprintf("198.51.100.%d", i+1))
		go func() { results <- o.login(DefaultAdminEmail, "wrong-password-1") }()
	}
	// Those that found neither a slot nor room in the queue are answered
	// while the others are still held.
	for range logins - concurrency - queue {
		select {
		case err := <-results:
			wantCode(t, "login beyond the slots and the queue", err, connect.CodeResourceExhausted)
			if !strings.Contains(messageOf(err), fmt.Sprintf("at most %d at once", concurrency)) {
				t.Fatalf("busy message %q does not name the limit", messageOf(err))
			}
			if lethe.RetryHint(err) <= 0 {
				t.Fatalf("busy answer %v has no retry hint", err)
			}
		case <-time.After(testkit.Wait):
			t.Fatal("the overflow was not answered while the slots were held")
		}
	}
	testkit.Eventually(t, testkit.Wait, "slots and queue full", func() bool {
		st := e.svc.hasher.stats()
		return st.running == concurrency && st.waiting == queue
	})
	g.release()
	for range concurrency + queue {
		wantCode(t, "login that got a slot", <-results, connect.CodeUnauthenticated)
	}
	if st := e.svc.hasher.stats(); st.peak != concurrency {
		t.Fatalf("at most %d computations ran at once, want exactly the bound %d", st.peak, concurrency)
	}
	// The server is not stuck: the admin signs in.
	if err := e.newOperatorAt("192.0.2.1").login(DefaultAdminEmail, adminPassword); err != nil {
		t.Fatalf("admin login after the flood: %v", err)
	}
}

// A sign-in waits in the queue for a while, not forever.
func TestLogin_WaitingTooLongForHashingIsBusy(t *testing.T) {
	t.Parallel()
	g := newGate()
	e := hashing(t, g, 1, 1, 50*time.Millisecond)
	held := make(chan error, 1)
	go func() { held <- e.newOperatorAt("198.51.100.1").login(DefaultAdminEmail, adminPassword) }()
	testkit.Eventually(t, testkit.Wait, "one computation running", func() bool { return e.svc.hasher.stats().running == 1 })
	err := e.newOperatorAt("198.51.100.2").login(DefaultAdminEmail, adminPassword)
	wantCode(t, "login that waited past its time", err, connect.CodeResourceExhausted)
	if lethe.RetryHint(err) <= 0 {
		t.Fatalf("busy answer %v has no retry hint", err)
	}
	g.release()
	if err := <-held; err != nil {
		t.Fatalf("the held login: %v", err)
	}
	// Being busy is no failure of the address: it signs in next.
	if err := e.newOperatorAt("198.51.100.2").login(DefaultAdminEmail, adminPassword); err != nil {
		t.Fatalf("login after a busy answer: %v", err)
	}
}

// No user enumeration by timing: an e-mail address that is nobody's costs a
// computation with the same parameters, through the same bounded hasher.
func TestLogin_UnknownEmailCostsAComputationLikeAKnownOne(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	before := e.svc.hasher.stats().computed
	wantCode(t, "unknown e-mail", e.newOperator().login("nobody@example.com", "wrong-password-1"), connect.CodeUnauthenticated)
	if got := e.svc.hasher.stats().computed - before; got != 1 {
		t.Fatalf("a sign-in with an unknown e-mail ran %d computations, want 1", got)
	}
	wantCode(t, "wrong password", e.newOperator().login(DefaultAdminEmail, "wrong-password-1"), connect.CodeUnauthenticated)
	if got := e.svc.hasher.stats().computed - before; got != 2 {
		t.Fatalf("a sign-in with a known e-mail ran %d computations, want 1", got-1)
	}
	dummy, _, _, err := argon2id.DecodeHash(e.svc.dummy)
	if err != nil {
		t.Fatal(err)
	}
	if *dummy != *testkit.CheapPasswords {
		t.Fatalf("the unknown e-mail's hash has parameters %+v, new passwords get %+v", *dummy, *testkit.CheapPasswords)
	}
}

// Memory is handed back: when the last computation ends, the hasher calls
// its idle function (debug.FreeOSMemory in production), and not before.
func TestLogin_HasherHandsMemoryBackWhenIdle(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var idles int
	g := newGate()
	e := hashing(t, g, 2, 1, testkit.Wait, func(o *Options) {
		o.hashIdle = func() { mu.Lock(); idles++; mu.Unlock() }
	})
	count := func() int { mu.Lock(); defer mu.Unlock(); return idles }
	// Starting hashed the dummy and the admin's password.
	testkit.Eventually(t, testkit.Wait, "idle after the start", func() bool { return !e.svc.hasher.stats().freeing })
	n0 := count()
	if n0 < 1 {
		t.Fatal("memory was not handed back after the start")
	}
	done := make(chan error, 2)
	for i := range 2 {
		o := e.newOperatorAt(fmt.Sprintf("198.51.100.%d", i+1))
		go func() { done <- o.login(DefaultAdminEmail, adminPassword) }()
	}
	testkit.Eventually(t, testkit.Wait, "two computations running", func() bool { return e.svc.hasher.stats().running == 2 })
	if n := count(); n != n0 {
		t.Fatalf("memory handed back %d times while computations ran", n-n0)
	}
	g.release()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, testkit.Wait, "memory handed back after the computations", func() bool { return count() > n0 })
}

// Operators created by an admin are hashed by the same hasher.
func TestCreateOperator_HashesThroughTheHasher(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	before := e.svc.hasher.stats().computed
	e.createOperator(admin, "bob@example.com", "Bob") // create + sign-in
	if got := e.svc.hasher.stats().computed - before; got != 2 {
		t.Fatalf("creating and signing in an operator ran %d computations through the hasher, want 2", got)
	}
}

// A sign-in from an address with no failure on record goes before the
// guesses of addresses that already failed, however many wait: a flood of
// guesses cannot keep the real operator waiting behind it.
func TestHasher_CleanAddressesGoFirst(t *testing.T) {
	t.Parallel()
	g := newGate()
	g.shut.Store(true)
	defer func() {
		if g.shut.Load() {
			g.release()
		}
	}()
	h := newHasher(testkit.CheapPasswords, hasherConfig{concurrency: 1, queue: 8, wait: testkit.Wait, started: g.hook})
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	run := func(name string, urgent bool) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.run(context.Background(), urgent, func() error {
				mu.Lock()
				order = append(order, name)
				mu.Unlock()
				return nil
			}); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}()
	}
	waitFor := func(running, waiting int) {
		testkit.Eventually(t, testkit.Wait, fmt.Sprintf("%d running, %d waiting", running, waiting), func() bool {
			s := h.stats()
			return s.running == running && s.waiting == waiting
		})
	}
	run("first", false) // holds the one slot at the gate
	waitFor(1, 0)
	run("guess 1", false)
	waitFor(1, 1)
	run("guess 2", false)
	waitFor(1, 2)
	run("clean", true)
	waitFor(1, 3)
	g.release()
	wg.Wait()
	if want := []string{"first", "clean", "guess 1", "guess 2"}; !slices.Equal(order, want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	if s := h.stats(); s.running != 0 || s.waiting != 0 || s.peak != 1 {
		t.Fatalf("after all: %+v, want nothing running or waiting and a peak of 1", s)
	}
}

// The throttle tells the hasher which sign-ins come from a clean address:
// none failed from it (for any e-mail address).
func TestThrottle_CleanUntilAnAddressFails(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Now()}
	th := newThrottle(DefaultLoginLimits(), c.now, 100)
	a, err := th.begin("operator\x00a", "addr-1")
	if err != nil || !a.clean {
		t.Fatalf("first attempt from a fresh address: clean=%v err=%v, want clean", a.clean, err)
	}
	// a failed (it stays counted); the same address is no longer clean,
	// for this e-mail address or another.
	if b, _ := th.begin("operator\x00a", "addr-1"); b.clean {
		t.Fatal("second attempt after a failure is clean")
	}
	if b, _ := th.begin("operator\x00b", "addr-1"); b.clean {
		t.Fatal("an address that failed on one account is clean for another")
	}
	b, _ := th.begin("operator\x00a", "addr-2")
	if !b.clean {
		t.Fatal("another address is not clean")
	}
	// Told "busy", an address has had its turn in the first lane, for a
	// while: a flood retrying after each busy answer cannot hold it.
	th.aborted(b)
	if b, _ := th.begin("operator\x00a", "addr-2"); b.clean {
		t.Fatal("an address told busy is still clean")
	}
	c.add(busyMemory)
	if b, _ := th.begin("operator\x00c", "addr-2"); !b.clean {
		t.Fatal("an address told busy long ago is not clean again")
	}
}

// A correct password whose hash was made with other parameters (argon2id's
// all-processor default of earlier versions) is rehashed with the
// service's, and still signs in afterwards.
func TestLogin_RehashesWithTheCurrentParameters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	old := *testkit.CheapPasswords
	old.Parallelism = 2
	hash, err := argon2id.CreateHash("old-params-password", &old)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateOperator(context.Background(), Operator{ID: "op-old", AccountID: DemoAccountID, Email: "old@example.com",
		Name: "Old", PasswordHash: hash, Role: RoleOperator, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := e.newOperator().login("old@example.com", "old-params-password"); err != nil {
		t.Fatalf("sign-in with the old hash: %v", err)
	}
	o, err := e.store.Operator(context.Background(), "op-old")
	if err != nil {
		t.Fatal(err)
	}
	p, _, _, err := argon2id.DecodeHash(o.PasswordHash)
	if err != nil || *p != *testkit.CheapPasswords {
		t.Fatalf("stored hash has params %+v (%v), want the service's %+v", p, err, testkit.CheapPasswords)
	}
	if err := e.newOperator().login("old@example.com", "old-params-password"); err != nil {
		t.Fatalf("sign-in with the new hash: %v", err)
	}
	if err := e.newOperator().login("old@example.com", "wrong-password-1"); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("wrong password after the rehash: %v", err)
	}
}

// Guesses from addresses that already failed share a small budget of
// password checks, so that a flood of them takes a bounded part of the
// processors; a sign-in from a clean address is not counted against it.
func TestLogin_FailedAddressesShareABudgetOfChecks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withOptions(func(o *Options) { o.HashFailedRate = &limit.Rate{N: 2, Per: time.Hour} }))
	// Three attackers fail once each (clean then: not counted).
	var attackers []*operator
	for i := range 3 {
		a := e.newOperatorAt(fmt.Sprintf("198.51.100.%d", i+1))
		wantCode(t, "first guess", a.login(DefaultAdminEmail, "wrong-password-1"), connect.CodeUnauthenticated)
		attackers = append(attackers, a)
	}
	// Their second guesses: two are checked, the third is busy at once.
	wantCode(t, "second guess 1", attackers[0].login(DefaultAdminEmail, "wrong-password-2"), connect.CodeUnauthenticated)
	wantCode(t, "second guess 2", attackers[1].login(DefaultAdminEmail, "wrong-password-2"), connect.CodeUnauthenticated)
	err := attackers[2].login(DefaultAdminEmail, "wrong-password-2")
	wantCode(t, "second guess 3", err, connect.CodeResourceExhausted)
	if !strings.Contains(messageOf(err), "at most 2 per 1h password checks") || lethe.RetryHint(err) <= 0 {
		t.Fatalf("busy answer %q (retry %v) does not name the budget or say when", messageOf(err), lethe.RetryHint(err))
	}
	// The real admin, from an address that has not failed, is checked.
	if err := e.newOperatorAt("203.0.113.77").login(DefaultAdminEmail, e.adminPassword); err != nil {
		t.Fatalf("admin from a clean address: %v", err)
	}
}
