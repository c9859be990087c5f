package mail

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/mail/mailtest"
)

// What the privacy service reads and destroys in the queue: the mail held
// under refs or about an address, and Drop, which destroys it unsent.

// about is a message of account acc about the visitor at subject, whose
// text carries c.
func about(ref, acc, subject, c string) Message {
	return Message{Ref: ref, AccountID: acc, To: []string{"inbox@example.org", "copy@example.org"}, Subject: "Offline message",
		Text: "the visitor wrote " + c, HTML: "<p>the visitor wrote " + c + "</p>", DataSubject: subject}
}

// refsOf is the sorted refs of held mail, joined by commas.
func refsOf(held []Held) string {
	var refs []string
	for _, m := range held {
		refs = append(refs, m.Ref)
	}
	slices.Sort(refs)
	return strings.Join(refs, ",")
}

func TestHeld_ByRefAndByDataSubject(t *testing.T) {
	t.Parallel()
	_, port := mailtest.FreeAddr(t) // a relay that is down: everything waits
	h := newHarness(t, testConfig(port, nil))
	c := canary(t)
	// The address is never stored, only its hash: it appears in no body
	// or recipient here, so on disk it would be the column.
	local := "subject-" + strings.ToLower(canary(t))
	addr := local + "@Example.org"
	before := time.Now().Add(-time.Second)
	h.enqueue(about("offline:one", "acc1", "  "+strings.ToUpper(addr)+" ", c))
	h.enqueue(about("chat:two", "acc1", addr, c))
	h.enqueue(about("chat:other-account", "acc2", addr, c))
	h.enqueue(about("chat:nobody", "acc1", "", c))
	ctx := context.Background()

	held, err := h.q.Held(ctx, "offline:one", "chat:nobody", "chat:unknown")
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 2 || refsOf(held) != "chat:nobody,offline:one" {
		t.Fatalf("Held = %+v, want offline:one and chat:nobody", held)
	}
	m := held[slices.IndexFunc(held, func(h Held) bool { return h.Ref == "offline:one" })]
	if m.AccountID != "acc1" || m.Subject != "Offline message" || m.Text != "the visitor wrote "+c || m.Recipients != 2 || m.ID == "" {
		t.Errorf("held mail %+v", m)
	}
	if m.CreatedAt.Before(before) || m.CreatedAt.After(time.Now()) {
		t.Errorf("created at %v", m.CreatedAt)
	}
	if want := m.CreatedAt.Add(time.Minute); !m.NotAfter.Equal(want) {
		t.Errorf("not after %v, want created + max hold (%v)", m.NotAfter, want)
	}
	if held, err := h.q.Held(ctx); err != nil || len(held) != 0 {
		t.Errorf("Held() = %v, %v; want nothing", held, err)
	}

	for _, q := range []string{addr, strings.ToLower(addr), " " + strings.ToUpper(addr)} {
		held, err := h.q.HeldFor(ctx, "acc1", q)
		if err != nil {
			t.Fatal(err)
		}
		if refs := refsOf(held); refs != "chat:two,offline:one" {
			t.Errorf("HeldFor(acc1, %q) = %v, want offline:one and chat:two (not the other account's, not the mail about nobody)", q, refs)
		}
	}
	for _, q := range []string{"", "other@example.org"} {
		if held, err := h.q.HeldFor(ctx, "acc1", q); err != nil || len(held) != 0 {
			t.Errorf("HeldFor(acc1, %q) = %v, %v; want nothing", q, held, err)
		}
	}
	if hits := testkit.FilesContaining(t, h.dir, local); len(hits) != 0 {
		t.Errorf("the data subject's address is stored in %v; only its hash may be", hits)
	}
	// The lookup by address is an index search, not a scan of the queue.
	var plan strings.Builder
	rows, err := h.db.R.Query(`EXPLAIN QUERY PLAN SELECT `+heldCols+` FROM mail_queue WHERE account_id = ? AND data_subject = ?`, "acc1", "x")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(detail + "\n")
	}
	rows.Close()
	if !strings.Contains(plan.String(), "mail_queue_subject") {
		t.Errorf("HeldFor does not use the data subject index:\n%s", plan.String())
	}
}

// During a relay outage, dropped mail is gone from every file and is never
// sent once the relay is back.
func TestDrop_DuringOutageNeverSent(t *testing.T) {
	t.Parallel()
	addr, port := mailtest.FreeAddr(t)
	h := newHarness(t, testConfig(port, nil))
	h.run()
	c := canary(t)
	h.enqueue(about("offline:drop", "acc1", "visitor@example.org", c))
	h.enqueue(about("offline:drop", "acc1", "visitor@example.org", c))
	testkit.Eventually(t, 10*time.Second, "failed attempts while down", func() bool { return h.q.Stats().Failed >= 2 })

	n, err := h.q.Drop(context.Background(), "offline:drop")
	if err != nil || n != 2 {
		t.Fatalf("Drop = %d, %v; want 2", n, err)
	}
	if held, _ := h.q.Held(context.Background(), "offline:drop"); len(held) != 0 {
		t.Errorf("still held after Drop: %d", len(held))
	}
	if hits := testkit.FilesContaining(t, h.dir, c); len(hits) != 0 {
		t.Errorf("dropped mail still on disk in %v", hits)
	}
	if n, err := h.q.Drop(context.Background(), "offline:drop"); err != nil || n != 0 {
		t.Errorf("second Drop = %d, %v; want 0", n, err)
	}

	srv := mailtest.Start(t, mailtest.Options{Addr: addr})
	marker := canary(t)
	h.enqueue(about("offline:marker", "acc1", "", marker))
	srv.WaitMail(t, marker)
	for _, m := range srv.Received() {
		if strings.Contains(m.All(t), c) {
			t.Fatal("the relay received the dropped mail")
		}
	}
	testkit.Eventually(t, testkit.Wait, "the marker's delivery", func() bool { return len(h.done.get()) >= 1 })
	if calls := h.done.get(); len(calls) != 1 || calls[0].ref != "offline:marker" {
		t.Errorf("DoneFunc calls %+v; dropped mail must not be reported", calls)
	}
}

// blockAt returns a relay hook that holds the relay at the first command
// verb until release is called; entered is closed when it holds.
func blockAt(verb string) (hook func(string), entered <-chan struct{}, release func()) {
	in, out := make(chan struct{}), make(chan struct{})
	var once, rel sync.Once
	hook = func(v string) {
		if v != verb {
			return
		}
		first := false
		once.Do(func() { first = true })
		if first {
			close(in)
			<-out
		}
	}
	return hook, in, func() { rel.Do(func() { close(out) }) }
}

// A message in flight when Drop is called (the relay is slow to answer)
// is cancelled and Drop waits for the attempt to end: the relay never gets
// its content, and Drop does not wait for the relay.
func TestDrop_InFlightIsCancelledBeforeDropReturns(t *testing.T) {
	t.Parallel()
	hook, entered, release := blockAt("DATA")
	srv := mailtest.Start(t, mailtest.Options{OnCommand: hook})
	t.Cleanup(release)
	h := newHarness(t, testConfig(srv.Port, nil))
	h.run()
	c := canary(t)
	h.enqueue(about("chat:inflight", "acc1", "visitor@example.org", c))
	select {
	case <-entered:
	case <-time.After(testkit.Wait):
		t.Fatal("the message never reached DATA")
	}
	type result struct {
		n   int
		err error
	}
	dropped := make(chan result, 1)
	go func() {
		n, err := h.q.Drop(context.Background(), "chat:inflight")
		dropped <- result{n, err}
	}()
	var r result
	select {
	case r = <-dropped:
	case <-time.After(testkit.Wait):
		t.Fatal("Drop waits for the relay")
	}
	if r.err != nil || r.n != 1 {
		t.Fatalf("Drop = %d, %v; want 1", r.n, r.err)
	}
	release()
	marker := canary(t)
	h.enqueue(about("chat:marker", "acc1", "", marker))
	srv.WaitMail(t, marker)
	for _, m := range srv.Received() {
		if strings.Contains(m.All(t), c) {
			t.Fatal("the relay received the mail dropped in flight")
		}
	}
	if hits := testkit.FilesContaining(t, h.dir, c); len(hits) != 0 {
		t.Errorf("dropped mail still on disk in %v", hits)
	}
}

// A message that the dispatcher read before Drop but had not started
// sending (every sending slot busy with a slow relay) is not sent after
// Drop returns.
func TestDrop_ReadButNotStartedIsNeverSent(t *testing.T) {
	t.Parallel()
	hook, entered, release := blockAt("DATA")
	srv := mailtest.Start(t, mailtest.Options{OnCommand: hook})
	t.Cleanup(release)
	h := newHarness(t, testConfig(srv.Port, nil))
	ctx := context.Background()
	// Enough mail to fill every sending slot, then the one to drop, due
	// last; all read by the dispatcher's first round.
	if err := h.db.Tx(ctx, func(tx *sql.Tx) error {
		for range concurrency {
			if err := h.q.Enqueue(ctx, tx, about("chat:busy", "acc1", "", "busy")); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // a later next_attempt
	c := canary(t)
	h.enqueue(about("offline:late", "acc1", "visitor@example.org", c))
	h.run()
	select {
	case <-entered:
	case <-time.After(testkit.Wait):
		t.Fatal("no message reached DATA")
	}
	if n, err := h.q.Drop(ctx, "offline:late"); err != nil || n != 1 {
		t.Fatalf("Drop = %d, %v; want 1", n, err)
	}
	release()
	srv.WaitMails(t, concurrency)
	// The dispatcher gets to the dropped mail once a slot is free, and
	// skips it.
	testkit.Eventually(t, testkit.Wait, "the dropped mail skipped or sent", func() bool {
		return h.logs.Count(`msg="mail attempt skipped: dropped"`) > 0 || len(srv.Received()) > concurrency
	})
	for _, m := range srv.Received() {
		if strings.Contains(m.All(t), c) {
			t.Fatal("the relay received a mail read before Drop and sent after it")
		}
	}
	skipped := false
	for line := range strings.Lines(h.logs.String()) {
		skipped = skipped || strings.Contains(line, "skipped") && strings.Contains(line, "ref=offline:late")
	}
	if !skipped {
		t.Errorf("the skipped attempt is not the dropped mail's:\n%s", h.logs.String())
	}
}
