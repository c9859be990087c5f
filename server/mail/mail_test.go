package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"database/sql"
	"encoding/hex"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/mail/mailtest"
	"github.com/lethehq/lethe/server/store"
)

// ---- helpers ----

type doneCall struct {
	ref            string
	delivered      bool
	pendingAtDone  bool // Pending(ref) inside the callback: the row must be gone
	rowsAtDoneTime int
}

type doneRecorder struct {
	mu    sync.Mutex
	calls []doneCall
}

func (r *doneRecorder) get() []doneCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]doneCall(nil), r.calls...)
}

type harness struct {
	t    *testing.T
	dir  string
	path string
	db   *store.DB
	q    *Queue
	done *doneRecorder
	logs *testkit.LogBuffer
}

func testConfig(port int, pool *tls.Config) Config {
	return Config{
		Host:      "127.0.0.1",
		Port:      port,
		From:      "Lethe <lethe@example.test>",
		MaxHold:   time.Minute,
		RetryMin:  5 * time.Millisecond,
		RetryMax:  40 * time.Millisecond,
		Timeout:   5 * time.Second,
		TLSConfig: pool,
	}
}

func openDB(t *testing.T, path string) *store.DB {
	t.Helper()
	db, err := store.Open(path, store.Options{SecureDelete: true})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// newHarness opens scratch.db in a fresh directory and a queue on it.
func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, dir: dir, path: filepath.Join(dir, "scratch.db"), done: &doneRecorder{}, logs: &testkit.LogBuffer{}}
	h.db = openDB(t, h.path)
	t.Cleanup(func() { h.db.Close() })
	h.q = h.newQueue(cfg)
	return h
}

func (h *harness) newQueue(cfg Config) *Queue {
	h.t.Helper()
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	q, err := NewQueue(context.Background(), h.db, cfg, log)
	if err != nil {
		h.t.Fatal(err)
	}
	return q
}

// onDone records each DoneFunc call with what the queue held at that moment.
func (h *harness) onDone(ctx context.Context, ref string, delivered bool) {
	p, err := h.q.Pending(ctx, ref)
	if err != nil {
		h.t.Errorf("Pending in DoneFunc: %v", err)
	}
	h.done.mu.Lock()
	h.done.calls = append(h.done.calls, doneCall{ref: ref, delivered: delivered, pendingAtDone: p, rowsAtDoneTime: h.rows()})
	h.done.mu.Unlock()
}

// run starts the dispatcher until the end of the test or until the returned
// stop is called.
func (h *harness) run() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		h.q.Run(ctx, h.onDone)
	}()
	stop = func() {
		cancel()
		<-stopped
	}
	h.t.Cleanup(stop)
	return stop
}

func (h *harness) enqueue(m Message) {
	h.t.Helper()
	ctx := context.Background()
	if err := h.db.Tx(ctx, func(tx *sql.Tx) error { return h.q.Enqueue(ctx, tx, m) }); err != nil {
		h.t.Fatalf("Enqueue: %v", err)
	}
	h.q.Kick()
}

func (h *harness) rows() int {
	var n int
	if err := h.db.R.QueryRow(`SELECT count(*) FROM mail_queue`).Scan(&n); err != nil {
		h.t.Errorf("count: %v", err)
	}
	return n
}

func (h *harness) pending(ref string) bool {
	h.t.Helper()
	p, err := h.q.Pending(context.Background(), ref)
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func canary(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	rand.Read(b)
	return "CANARY" + hex.EncodeToString(b)
}

func transcript(ref string) Message {
	return Message{
		Ref: ref, AccountID: "acc1", To: []string{"visitor@example.org"},
		Subject: "Your chat transcript",
		Text:    "plain part of the transcript",
		HTML:    "<p>html part of the transcript</p>",
	}
}

// ---- tests ----

func TestDeliver_STARTTLS(t *testing.T) {
	t.Parallel()
	cert := mailtest.NewCA(t)
	srv := mailtest.Start(t, mailtest.Options{TLS: cert.ServerTLS()})
	h := newHarness(t, testConfig(srv.Port, cert.ClientTLS()))
	h.run()
	h.enqueue(transcript("chat:1"))

	testkit.Eventually(t, 10*time.Second, "OnDone", func() bool { return len(h.done.get()) == 1 })
	time.Sleep(100 * time.Millisecond) // a duplicate would show up now

	got := srv.Received()
	if len(got) != 1 {
		t.Fatalf("server received %d messages, want 1", len(got))
	}
	m := got[0]
	if !m.TLS {
		t.Error("message was not received over TLS")
	}
	if len(m.To) != 1 || m.To[0] != "visitor@example.org" || m.From != "lethe@example.test" {
		t.Errorf("envelope from %q to %q", m.From, m.To)
	}
	body := string(m.Data)
	for _, want := range []string{"multipart/alternative", "text/plain", "text/html",
		"plain part of the transcript", "<p>html part of the transcript</p>", "Subject: Your chat transcript",
		"Auto-Submitted: auto-generated", "Message-ID: <"} {
		if !strings.Contains(body, want) {
			t.Errorf("message lacks %q:\n%s", want, body)
		}
	}
	d := h.done.get()[0]
	if d.ref != "chat:1" || !d.delivered {
		t.Errorf("OnDone(%q, %v), want (chat:1, true)", d.ref, d.delivered)
	}
	if d.pendingAtDone || d.rowsAtDoneTime != 0 {
		t.Errorf("OnDone ran before the row was deleted (pending=%v rows=%d)", d.pendingAtDone, d.rowsAtDoneTime)
	}
	if h.rows() != 0 || h.pending("chat:1") {
		t.Error("row still queued after delivery")
	}
	if s := h.q.Stats(); s.Sent != 1 || s.Failed != 0 || s.Dropped != 0 {
		t.Errorf("stats %+v", s)
	}
	if !strings.Contains(h.logs.String(), "tls=true") {
		t.Errorf("delivery log does not say tls=true:\n%s", h.logs.String())
	}
}

func TestDeliver_NoSTARTTLS_OpportunisticSendsInClear(t *testing.T) {
	t.Parallel()
	srv := mailtest.Start(t, mailtest.Options{})
	h := newHarness(t, testConfig(srv.Port, nil))
	h.run()
	h.enqueue(transcript("offline:1"))

	testkit.Eventually(t, 10*time.Second, "OnDone", func() bool { return len(h.done.get()) == 1 })
	got := srv.Received()
	if len(got) != 1 {
		t.Fatalf("server received %d messages, want 1", len(got))
	}
	if got[0].TLS {
		t.Error("connection was TLS although the server offers no STARTTLS")
	}
	if d := h.done.get()[0]; d.ref != "offline:1" || !d.delivered {
		t.Errorf("OnDone(%q, %v)", d.ref, d.delivered)
	}
	if h.rows() != 0 {
		t.Error("row still queued")
	}
}

func TestRequireTLS_NoSTARTTLS_NeverSentThenDropped(t *testing.T) {
	t.Parallel()
	srv := mailtest.Start(t, mailtest.Options{})
	cfg := testConfig(srv.Port, nil)
	cfg.MaxHold = 1500 * time.Millisecond
	h := newHarness(t, cfg)
	h.run()
	m := transcript("chat:tls")
	m.RequireTLS = true
	h.enqueue(m)

	// It retries and stays queued.
	testkit.Eventually(t, 10*time.Second, "three failed attempts", func() bool { return h.q.Stats().Failed >= 3 })
	if !h.pending("chat:tls") {
		t.Fatal("message left the queue before max hold")
	}
	if len(h.done.get()) != 0 {
		t.Fatal("OnDone called before max hold")
	}
	if srv.Greetings() < 3 {
		t.Errorf("server saw %d sessions; the attempts did not reach it", srv.Greetings())
	}

	// After max hold it is destroyed and counted.
	testkit.Eventually(t, 10*time.Second, "drop", func() bool { return len(h.done.get()) == 1 })
	d := h.done.get()[0]
	if d.ref != "chat:tls" || d.delivered {
		t.Errorf("OnDone(%q, %v), want (chat:tls, false)", d.ref, d.delivered)
	}
	if d.pendingAtDone || h.rows() != 0 {
		t.Error("row not deleted before OnDone")
	}
	if s := h.q.Stats(); s.Dropped != 1 || s.Sent != 0 {
		t.Errorf("stats %+v, want Dropped 1", s)
	}
	if n := len(srv.MailFroms()); n != 0 {
		t.Errorf("server received %d MAIL FROM", n)
	}
	if n := len(srv.Received()); n != 0 {
		t.Errorf("server received %d messages", n)
	}
	for _, verb := range []string{"MAIL", "RCPT", "DATA", "AUTH"} {
		if srv.SawCommand(verb) {
			t.Errorf("%s sent in clear text:\n%s", verb, srv.Transcript())
		}
	}
	if !strings.Contains(h.logs.String(), "stage="+stageSTARTTLSAbsent) {
		t.Errorf("failure stage not logged:\n%s", h.logs.String())
	}
}

func TestSTARTTLSHandshakeFails_NeverClearText(t *testing.T) {
	t.Parallel()
	for _, requireTLS := range []bool{false, true} {
		name := "opportunistic"
		if requireTLS {
			name = "mandatory"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// The server offers STARTTLS with a certificate the client
			// does not trust.
			untrusted, trusted := mailtest.NewCA(t), mailtest.NewCA(t)
			srv := mailtest.Start(t, mailtest.Options{TLS: untrusted.ServerTLS()})
			h := newHarness(t, testConfig(srv.Port, trusted.ClientTLS()))
			h.run()
			m := transcript("chat:hs")
			m.RequireTLS = requireTLS
			h.enqueue(m)

			testkit.Eventually(t, 10*time.Second, "three failed attempts", func() bool { return h.q.Stats().Failed >= 3 })
			if !h.pending("chat:hs") || len(h.done.get()) != 0 {
				t.Fatal("message left the queue")
			}
			if !srv.SawCommand("STARTTLS") {
				t.Fatalf("client never tried STARTTLS:\n%s", srv.Transcript())
			}
			if n := len(srv.MailFroms()); n != 0 {
				t.Errorf("server received %d MAIL FROM", n)
			}
			if n := len(srv.Received()); n != 0 {
				t.Errorf("server received %d messages", n)
			}
			for _, verb := range []string{"MAIL", "RCPT", "DATA", "AUTH"} {
				if srv.SawCommand(verb) {
					t.Errorf("%s sent in clear text after a failed handshake:\n%s", verb, srv.Transcript())
				}
			}
			if !strings.Contains(h.logs.String(), "stage="+stageTLS) {
				t.Errorf("failure stage not logged as %s:\n%s", stageTLS, h.logs.String())
			}
		})
	}
}

func TestServerDownThenUp_DeliveredOnce(t *testing.T) {
	t.Parallel()
	cert := mailtest.NewCA(t)
	addr, port := mailtest.FreeAddr(t)
	h := newHarness(t, testConfig(port, cert.ClientTLS()))
	h.run()
	h.enqueue(transcript("chat:down"))

	testkit.Eventually(t, 10*time.Second, "failed attempts while down", func() bool { return h.q.Stats().Failed >= 2 })
	if len(h.done.get()) != 0 || !h.pending("chat:down") {
		t.Fatal("message left the queue while the server was down")
	}
	if !strings.Contains(h.logs.String(), "stage="+stageConnect) {
		t.Errorf("connect failure not logged:\n%s", h.logs.String())
	}

	srv := mailtest.Start(t, mailtest.Options{Addr: addr, TLS: cert.ServerTLS()})
	testkit.Eventually(t, 10*time.Second, "delivery", func() bool { return len(h.done.get()) == 1 })
	time.Sleep(150 * time.Millisecond)
	if n := len(srv.Received()); n != 1 {
		t.Fatalf("server received %d messages, want exactly 1", n)
	}
	if !srv.Received()[0].TLS {
		t.Error("not over TLS")
	}
	calls := h.done.get()
	if len(calls) != 1 || calls[0].ref != "chat:down" || !calls[0].delivered {
		t.Errorf("OnDone calls %+v", calls)
	}
	if h.rows() != 0 {
		t.Error("row still queued")
	}
	if s := h.q.Stats(); s.Sent != 1 || s.Failed < 2 {
		t.Errorf("stats %+v", s)
	}
}

func TestRestart_NewQueueResumes(t *testing.T) {
	t.Parallel()
	srv := mailtest.Start(t, mailtest.Options{})
	dir := t.TempDir()
	path := filepath.Join(dir, "scratch.db")

	// Queue A: enqueues, never runs, and the process "stops".
	dbA := openDB(t, path)
	qa, err := NewQueue(context.Background(), dbA, testConfig(srv.Port, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := dbA.Tx(ctx, func(tx *sql.Tx) error { return qa.Enqueue(ctx, tx, transcript("chat:restart")) }); err != nil {
		t.Fatal(err)
	}
	if err := dbA.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Received()); n != 0 {
		t.Fatalf("queue A sent %d messages without running", n)
	}

	// Queue B on the same file.
	h := &harness{t: t, dir: dir, path: path, done: &doneRecorder{}, logs: &testkit.LogBuffer{}}
	h.db = openDB(t, path)
	t.Cleanup(func() { h.db.Close() })
	h.q = h.newQueue(testConfig(srv.Port, nil))
	if !h.pending("chat:restart") {
		t.Fatal("message lost across restart")
	}
	h.run()
	testkit.Eventually(t, 10*time.Second, "delivery", func() bool { return len(h.done.get()) == 1 })
	time.Sleep(100 * time.Millisecond)
	if n := len(srv.Received()); n != 1 {
		t.Fatalf("server received %d messages, want 1", n)
	}
	if d := h.done.get()[0]; d.ref != "chat:restart" || !d.delivered {
		t.Errorf("OnDone(%q, %v)", d.ref, d.delivered)
	}
}

func TestForensic_CanaryGoneAfterDelivery(t *testing.T) {
	t.Parallel()
	srv := mailtest.Start(t, mailtest.Options{})
	h := newHarness(t, testConfig(srv.Port, nil))
	c := canary(t)
	addrCanary := strings.ToLower(canary(t))
	rcpt := addrCanary + "@example.org"
	// A body large enough to need overflow pages.
	var big strings.Builder
	for i := range 200 {
		big.WriteString("<p>line ")
		big.WriteString(strings.Repeat("x", i%50))
		big.WriteString(" " + c + "</p>\n")
	}
	h.enqueue(Message{
		Ref: "chat:forensic", To: []string{rcpt},
		Subject: "transcript " + c, Text: "you said: " + c, HTML: big.String(),
	})

	for _, needle := range []string{c, addrCanary} {
		if hits := testkit.FilesContaining(t, h.dir, needle); len(hits) == 0 {
			t.Fatalf("precondition: %s not on disk before delivery", needle)
		}
	}

	stop := h.run()
	testkit.Eventually(t, 10*time.Second, "delivery", func() bool { return len(h.done.get()) == 1 })
	if got := srv.Received(); len(got) != 1 || !bytes.Contains(got[0].Data, []byte(c)) {
		t.Fatal("the canary was not delivered")
	}
	for _, needle := range []string{c, addrCanary} {
		if hits := testkit.FilesContaining(t, h.dir, needle); len(hits) != 0 {
			t.Errorf("%s still on disk after delivery in %v", needle, hits)
		}
	}
	// And still not after the queue stopped and the database is closed
	// (connections in use when the pools close are closed after Close
	// returns: stop the queue first).
	stop()
	h.db.Close()
	for _, needle := range []string{c, addrCanary} {
		if hits := testkit.FilesContaining(t, h.dir, needle); len(hits) != 0 {
			t.Errorf("%s on disk after close in %v", needle, hits)
		}
	}
}

func TestLogs_NoAddressesNoContent(t *testing.T) {
	t.Parallel()
	c := canary(t)
	local := "visitor-" + strings.ToLower(c)
	rcpt := local + "@example.org"
	// The server rejects the first two RCPTs with a reply quoting the
	// address and the canary, as real servers do.
	srv := mailtest.Start(t, mailtest.Options{
		RejectRcpt: &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "mailbox {rcpt} busy " + c},
		RejectN:    2,
	})
	cfg := testConfig(srv.Port, nil)
	cfg.MaxHold = time.Second
	h := newHarness(t, cfg)
	h.run()
	h.enqueue(Message{Ref: "offline:logs", To: []string{rcpt}, Subject: "subject " + c, Text: "body " + c, HTML: "<b>" + c + "</b>"})
	// And one that can never leave (TLS required, none offered): dropped.
	h.enqueue(Message{Ref: "chat:logs", To: []string{rcpt}, Subject: "subject " + c, Text: "body " + c, RequireTLS: true})

	testkit.Eventually(t, 10*time.Second, "delivery and drop", func() bool { return len(h.done.get()) == 2 })
	if len(srv.Received()) != 1 {
		t.Fatalf("received %d", len(srv.Received()))
	}
	logs := h.logs.String()
	for _, secret := range []string{c, strings.ToLower(c), rcpt, local, "example.org", "subject", "body"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q:\n%s", secret, logs)
		}
	}
	for _, want := range []string{"mail delivered", "mail attempt failed", "mail dropped undelivered",
		"stage=" + stageRcptTo, "smtp_code=450", "smtp_enhanced=4.2.1", "ref=offline:logs", "ref=chat:logs"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

func TestEnqueue_RolledBackLeavesNothing(t *testing.T) {
	t.Parallel()
	srv := mailtest.Start(t, mailtest.Options{})
	h := newHarness(t, testConfig(srv.Port, nil))
	ctx := context.Background()
	tx, err := h.db.W.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.q.Enqueue(ctx, tx, transcript("chat:rb")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if h.rows() != 0 || h.pending("chat:rb") {
		t.Fatal("rolled-back enqueue left a row")
	}
	h.run()
	h.q.Kick()
	time.Sleep(100 * time.Millisecond)
	if n := len(srv.Received()); n != 0 || srv.Greetings() != 0 {
		t.Errorf("server got %d messages, %d sessions", n, srv.Greetings())
	}
	if s := h.q.Stats(); s != (Stats{}) || len(h.done.get()) != 0 {
		t.Errorf("stats %+v, done %v", s, h.done.get())
	}
}

func TestDeleteRef_RemovesWithoutSending(t *testing.T) {
	t.Parallel()
	_, port := mailtest.FreeAddr(t) // nobody listens: nothing could be sent anyway
	h := newHarness(t, testConfig(port, nil))
	c := canary(t)
	m := transcript("chat:withdraw")
	m.Text = "secret " + c
	h.enqueue(m)
	h.enqueue(m)
	h.enqueue(transcript("chat:other"))
	if err := h.q.DeleteRef(context.Background(), "chat:withdraw"); err != nil {
		t.Fatal(err)
	}
	if h.pending("chat:withdraw") || !h.pending("chat:other") {
		t.Error("DeleteRef removed the wrong rows")
	}
	if hits := testkit.FilesContaining(t, h.dir, c); len(hits) != 0 {
		t.Errorf("withdrawn content still on disk in %v", hits)
	}
	if err := h.q.DeleteRef(context.Background(), "chat:none"); err != nil {
		t.Errorf("DeleteRef of an unknown ref: %v", err)
	}
	if len(h.done.get()) != 0 {
		t.Error("OnDone called for a withdrawn message")
	}
}

func TestNoRelay_DropsAtOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	if h.q.Enabled() {
		t.Fatal("Enabled without a host")
	}
	h.enqueue(transcript("chat:norelay"))
	h.run()
	testkit.Eventually(t, 10*time.Second, "drop", func() bool { return len(h.done.get()) == 1 })
	if d := h.done.get()[0]; d.ref != "chat:norelay" || d.delivered {
		t.Errorf("OnDone(%q, %v)", d.ref, d.delivered)
	}
	if h.rows() != 0 || h.q.Stats().Dropped != 1 {
		t.Errorf("rows %d stats %+v", h.rows(), h.q.Stats())
	}
}

func TestEnqueue_Validation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, testConfig(25, nil))
	ctx := context.Background()
	bad := "not an address <<" + canary(t)
	for name, m := range map[string]Message{
		"no ref":      {To: []string{"a@example.org"}},
		"no rcpt":     {Ref: "chat:x"},
		"bad address": {Ref: "chat:x", To: []string{bad}},
	} {
		err := h.db.Tx(ctx, func(tx *sql.Tx) error { return h.q.Enqueue(ctx, tx, m) })
		if !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("%s: err %v, want ErrInvalidMessage", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "CANARY") {
			t.Errorf("%s: error quotes the address: %v", name, err)
		}
	}
	if h.rows() != 0 {
		t.Error("invalid messages stored")
	}
	// Header injection through the subject is neutralised.
	m := transcript("chat:inj")
	m.Subject = "hi\r\nBcc: evil@example.org"
	if err := h.db.Tx(ctx, func(tx *sql.Tx) error { return h.q.Enqueue(ctx, tx, m) }); err != nil {
		t.Fatal(err)
	}
	var subj string
	h.db.R.QueryRow(`SELECT subject FROM mail_queue`).Scan(&subj)
	if strings.ContainsAny(subj, "\r\n") {
		t.Errorf("subject stored with line breaks: %q", subj)
	}
}

func TestNewQueue_Config(t *testing.T) {
	t.Parallel()
	db := openDB(t, filepath.Join(t.TempDir(), "scratch.db"))
	defer db.Close()
	ctx := context.Background()
	for name, cfg := range map[string]Config{
		"insecure": {Host: "h", From: "a@example.org", TLSConfig: &tls.Config{InsecureSkipVerify: true}},
		"bad from": {Host: "h", From: "nope"},
		"port":     {Host: "h", From: "a@example.org", Port: 70000},
	} {
		if _, err := NewQueue(ctx, db, cfg, nil); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err %v, want ErrInvalidConfig", name, err)
		}
	}
	q, err := NewQueue(ctx, db, Config{Host: "smtp.example.org", From: "Lethe <lethe@example.org>"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := q.cfg
	if c.Port != 587 || c.MaxHold != 72*time.Hour || c.RetryMin != 5*time.Second || c.RetryMax != 10*time.Minute || c.Timeout != 30*time.Second {
		t.Errorf("defaults %+v", c)
	}
	if q.tls.ServerName != "smtp.example.org" || q.tls.MinVersion != tls.VersionTLS12 || q.tls.InsecureSkipVerify {
		t.Errorf("tls config: server name %q min %x", q.tls.ServerName, q.tls.MinVersion)
	}
	// Migrating twice (a second queue on the same db) is fine.
	if _, err := NewQueue(ctx, db, Config{}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestBackoff_Bounds(t *testing.T) {
	t.Parallel()
	q := &Queue{cfg: Config{RetryMin: 5 * time.Second, RetryMax: 10 * time.Minute}}
	for failures := 1; failures <= 40; failures++ {
		want := 5 * time.Second << (failures - 1)
		if failures > 10 || want > 10*time.Minute {
			want = 10 * time.Minute
		}
		for range 50 {
			d := q.backoff(failures)
			if d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", failures, d, want/2, want)
			}
		}
	}
}

func TestAuth_OverTLS(t *testing.T) {
	t.Parallel()
	cert := mailtest.NewCA(t)
	srv := mailtest.Start(t, mailtest.Options{TLS: cert.ServerTLS(), User: "relayuser", Pass: "relaypass"})
	cfg := testConfig(srv.Port, cert.ClientTLS())
	cfg.Username, cfg.Password = "relayuser", "relaypass"
	h := newHarness(t, cfg)
	h.run()
	h.enqueue(transcript("chat:auth"))
	testkit.Eventually(t, 10*time.Second, "delivery", func() bool { return len(h.done.get()) == 1 })
	if got := srv.Logins(); len(got) != 1 || !got[0] {
		t.Errorf("logins (tls per login) %v, want one over TLS", got)
	}
	if len(srv.Received()) != 1 {
		t.Error("not delivered")
	}
	if strings.Contains(h.logs.String(), "relaypass") {
		t.Error("password in logs")
	}
}

func TestAuth_NeverInClear(t *testing.T) {
	t.Parallel()
	// No STARTTLS, AUTH PLAIN offered in clear: the password must not leave.
	srv := mailtest.Start(t, mailtest.Options{User: "relayuser", Pass: "relaypass"})
	cfg := testConfig(srv.Port, nil)
	cfg.Username, cfg.Password = "relayuser", "relaypass"
	h := newHarness(t, cfg)
	h.run()
	h.enqueue(transcript("chat:authclear"))
	testkit.Eventually(t, 10*time.Second, "failed attempts", func() bool { return h.q.Stats().Failed >= 2 })
	if srv.SawCommand("AUTH") || len(srv.Logins()) != 0 {
		t.Errorf("credentials sent in clear:\n%s", srv.Transcript())
	}
	if len(srv.Received()) != 0 || !h.pending("chat:authclear") {
		t.Error("message left the queue")
	}
	if !strings.Contains(h.logs.String(), "stage="+stageAuth) {
		t.Errorf("auth stage not logged:\n%s", h.logs.String())
	}
}

// The queue forgets a message as soon as the relay accepted it, before it
// says QUIT: a crash after that cannot send it again.
func TestDeliver_ForgottenBeforeQuit(t *testing.T) {
	t.Parallel()
	var h *harness
	var mu sync.Mutex
	rowsAtQuit := -1
	srv := mailtest.Start(t, mailtest.Options{OnCommand: func(verb string) {
		if verb == "QUIT" {
			mu.Lock()
			defer mu.Unlock()
			if rowsAtQuit < 0 {
				rowsAtQuit = h.rows()
			}
		}
	}})
	mu.Lock()
	h = newHarness(t, testConfig(srv.Port, nil))
	mu.Unlock()
	h.run()
	h.enqueue(transcript("chat:quit"))
	testkit.Eventually(t, 10*time.Second, "delivery", func() bool { return len(h.done.get()) == 1 })
	mu.Lock()
	defer mu.Unlock()
	if rowsAtQuit != 0 {
		t.Fatalf("the queue held %d rows when it said QUIT, want 0", rowsAtQuit)
	}
}
