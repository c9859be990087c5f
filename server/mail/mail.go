// Package mail is Lethe's durable outgoing mail queue (chat transcripts and
// offline messages).
//
// A message is a row in scratch.db, written in the caller's transaction, so a
// chat's close and its transcript commit together and survive a restart (P10).
// The dispatcher sends due rows through the configured SMTP relay with
// github.com/wneessen/go-mail. When the relay accepts a message the row is
// deleted (secure_delete) and the WAL checkpointed before the owner is told,
// so the owner can destroy its own data next (P1, P2, P3). A relay outage
// only delays dispatch (exponential backoff with jitter) up to MaxHold, after
// which the row is destroyed and counted as dropped.
//
// TLS (P8): STARTTLS is used whenever the relay offers it, and a failed
// handshake fails the attempt (never a fall back to clear text); a message
// with RequireTLS is never sent unless STARTTLS succeeded. Certificates are
// verified. Independently of go-mail, every connection goes through a guard
// that refuses to write any command but EHLO/HELO/STARTTLS/RSET/NOOP/QUIT in
// clear text when TLS is required or was offered.
//
// Logs (P9) carry ids, refs, attempt numbers and SMTP status codes only:
// never addresses, subjects, bodies or the text of an SMTP reply.
package mail

import (
	"context"
	"crypto/tls"
	"database/sql"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	netmail "net/mail"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/lethehq/lethe/server/ids"
	"github.com/lethehq/lethe/server/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Defaults of Config.
const (
	DefaultPort     = 587
	DefaultMaxHold  = 72 * time.Hour
	DefaultRetryMin = 5 * time.Second
	DefaultRetryMax = 10 * time.Minute
	DefaultTimeout  = 30 * time.Second
)

// Errors returned by NewQueue and Enqueue. They never carry content.
var (
	ErrInvalidConfig  = errors.New("mail: invalid configuration")
	ErrInvalidMessage = errors.New("mail: invalid message")
)

// Config is the SMTP relay, from flags. Host "" means mail is not configured.
type Config struct {
	Host string
	// Port defaults to 587 (submission with STARTTLS). Implicit TLS (465) is
	// not supported.
	Port int
	// Username and Password enable SMTP AUTH; the mechanism is discovered
	// from the server, and PLAIN/LOGIN are only used over TLS.
	Username, Password string
	// From is the envelope and header From, e.g. "Lethe <lethe@example.com>".
	From string
	// MaxHold (default 72h): a message not accepted by then is destroyed and
	// counted as dropped.
	MaxHold time.Duration
	// RetryMin and RetryMax bound the exponential backoff (defaults 5s, 10m).
	RetryMin, RetryMax time.Duration
	// Timeout is per attempt (default 30s).
	Timeout time.Duration
	// TLSConfig is optional (e.g. RootCAs of a private relay). ServerName
	// defaults to Host, MinVersion is at least TLS 1.2, and certificate
	// verification cannot be switched off.
	TLSConfig *tls.Config
}

// Enabled reports whether a relay is configured.
func (c Config) Enabled() bool { return c.Host != "" }

func (c Config) withDefaults() Config {
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.MaxHold <= 0 {
		c.MaxHold = DefaultMaxHold
	}
	if c.RetryMin <= 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax <= 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = c.RetryMin
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// tlsConfig is the client TLS configuration for the relay.
func (c Config) tlsConfig() *tls.Config {
	var t *tls.Config
	if c.TLSConfig != nil {
		t = c.TLSConfig.Clone()
	} else {
		t = &tls.Config{}
	}
	if t.ServerName == "" {
		t.ServerName = c.Host
	}
	if t.MinVersion < tls.VersionTLS12 {
		t.MinVersion = tls.VersionTLS12
	}
	t.InsecureSkipVerify = false
	return t
}

// Message is one mail. Ref is the owner's reference ("chat:<id>",
// "offline:<id>") passed back in callbacks. All of To appear in the To
// header: use one Message per party when parties must not see each other.
type Message struct {
	Ref, AccountID string
	To             []string
	Subject        string
	// Text is the plain-text body; HTML, when set, is its alternative.
	Text, HTML string
	// RequireTLS: never send this message in clear text.
	RequireTLS bool
	// DataSubject is the e-mail address of the visitor the mail is about
	// ("" when
	// none): only its hash is stored, so that an admin's request by
	// e-mail address (lethe.privacy.v1) finds the mail while it waits.
	DataSubject string
}

// Held is a mail waiting in the queue, as the privacy service shows it to
// the person it is about (lethe.privacy.v1).
type Held struct {
	ID, Ref, AccountID string
	Subject, Text      string
	Recipients         int
	Attempts           int
	CreatedAt          time.Time
	// NotAfter is when the maximum hold drops it unsent.
	NotAfter time.Time
}

// Stats are counters since start (never content).
type Stats struct {
	Sent    int64 // messages accepted by the relay
	Failed  int64 // failed attempts (each retry counts)
	Dropped int64 // messages destroyed undelivered (max hold, or no relay configured)
}

// Queue is the durable mail queue in the scratch database.
type Queue struct {
	db       *store.DB
	cfg      Config
	log      *slog.Logger
	msgidDom string
	tls      *tls.Config

	kick    chan struct{}
	running atomic.Bool
	onDone  DoneFunc // set by Run

	sent, failed, dropped atomic.Int64

	mu       sync.Mutex
	inflight map[string]inflight // by message id
	// dropping counts the Drop calls running per ref: no attempt of the
	// ref starts meanwhile.
	dropping map[string]int
	dirty    bool // a checkpoint after a deletion failed; retry
}

type inflight struct {
	ref    string
	cancel context.CancelFunc
	// done is closed when the attempt ended and its outcome is recorded.
	done chan struct{}
}

// NewQueue migrates the queue table in db (the scratch database: mail holds
// visitor content) and returns the queue. It does not start sending.
func NewQueue(ctx context.Context, db *store.DB, cfg Config, log *slog.Logger) (*Queue, error) {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	q := &Queue{db: db, cfg: cfg, log: log.With("component", "mail"), kick: make(chan struct{}, 1),
		inflight: map[string]inflight{}, dropping: map[string]int{}}
	if cfg.Enabled() {
		if cfg.Port < 1 || cfg.Port > 65535 {
			return nil, fmt.Errorf("%w: port %d", ErrInvalidConfig, cfg.Port)
		}
		if cfg.TLSConfig != nil && cfg.TLSConfig.InsecureSkipVerify {
			return nil, fmt.Errorf("%w: certificate verification cannot be disabled", ErrInvalidConfig)
		}
		from, err := netmail.ParseAddress(cfg.From)
		if err != nil {
			return nil, fmt.Errorf("%w: from address does not parse", ErrInvalidConfig)
		}
		if _, dom, ok := strings.Cut(from.Address, "@"); ok && dom != "" {
			q.msgidDom = dom
		} else {
			return nil, fmt.Errorf("%w: from address has no domain", ErrInvalidConfig)
		}
		q.tls = cfg.tlsConfig()
	}
	sub, _ := fs.Sub(migrations, "migrations")
	if err := db.Migrate(ctx, "mail", sub); err != nil {
		return nil, err
	}
	return q, nil
}

// Enabled reports whether a relay is configured. Without one, Run destroys
// every queued message at once (counted as dropped, done(ref, false)), so a
// caller should rather not enqueue.
func (q *Queue) Enabled() bool { return q.cfg.Enabled() }

// Enqueue stores m inside the caller's transaction tx (so e.g. a chat's close
// and its transcript commit together). Call Kick after commit. It returns an
// error wrapping ErrInvalidMessage (without content) when m has no ref, no
// recipient or an address that does not parse.
func (q *Queue) Enqueue(ctx context.Context, tx *sql.Tx, m Message) error {
	if m.Ref == "" {
		return fmt.Errorf("%w: empty ref", ErrInvalidMessage)
	}
	if len(m.To) == 0 {
		return fmt.Errorf("%w: no recipient", ErrInvalidMessage)
	}
	// Validate exactly as the send will parse.
	if err := gomail.NewMsg().To(m.To...); err != nil {
		return fmt.Errorf("%w: recipient address does not parse", ErrInvalidMessage)
	}
	rcpts, err := json.Marshal(m.To)
	if err != nil {
		return fmt.Errorf("%w: recipients", ErrInvalidMessage)
	}
	now := time.Now().UnixMilli()
	_, err = tx.ExecContext(ctx, `INSERT INTO mail_queue
		(id, ref, account_id, recipients, subject, text_body, html_body, require_tls, created_at, attempts, next_attempt, data_subject)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)`,
		ids.New(), m.Ref, m.AccountID, string(rcpts), headerSafe(m.Subject), m.Text, m.HTML, m.RequireTLS, now, now, subjectHash(m.DataSubject))
	if err != nil {
		return fmt.Errorf("mail: enqueue: %w", err)
	}
	return nil
}

// headerSafe replaces control characters (CR, LF, ...) so a subject can never
// inject headers.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// Kick wakes the dispatcher.
func (q *Queue) Kick() {
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// DoneFunc is told when a message left the queue for good: delivered
// (accepted by the mail server) or dropped (max hold passed, or no relay
// configured). It runs after the row is deleted and the WAL checkpointed;
// it destroys the owner's data (e.g. the chat). It is called once per message
// (several messages may share a ref: use Pending to see whether others
// remain), never for messages removed by DeleteRef, from the dispatcher's
// goroutines (up to a few at once), with a context that the end of Run's
// context does not cancel (it has its own 30s timeout).
type DoneFunc func(ctx context.Context, ref string, delivered bool)

// Pending reports whether a message with this ref is still queued (used at
// startup to decide whether a closed chat may be destroyed yet).
func (q *Queue) Pending(ctx context.Context, ref string) (bool, error) {
	var n int
	err := q.db.R.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM mail_queue WHERE ref = ?)`, ref).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("mail: pending: %w", err)
	}
	return n == 1, nil
}

// Stats returns the counters since start.
func (q *Queue) Stats() Stats {
	return Stats{Sent: q.sent.Load(), Failed: q.failed.Load(), Dropped: q.dropped.Load()}
}

// DeleteRef removes queued messages of a ref without sending them (consent
// withdrawal), then checkpoints the WAL, as Drop does. The DoneFunc is not
// called.
func (q *Queue) DeleteRef(ctx context.Context, ref string) error {
	_, err := q.Drop(ctx, ref)
	return err
}

// Drop deletes the messages of a ref unsent and answers how many it
// deleted. An attempt in flight for the ref is cancelled and waited for,
// and no new one starts, before the rows are deleted (secure_delete) and
// the WAL checkpointed: once Drop returns, no message of the ref reaches
// the relay. (A message the relay accepted before the cancellation was
// delivered, not dropped, and is not counted.) The DoneFunc is not called
// for dropped messages.
func (q *Queue) Drop(ctx context.Context, ref string) (int, error) {
	if ref == "" {
		return 0, nil
	}
	q.mu.Lock()
	q.dropping[ref]++
	var attempts []chan struct{}
	for _, f := range q.inflight {
		if f.ref == ref {
			f.cancel()
			attempts = append(attempts, f.done)
		}
	}
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		if q.dropping[ref]--; q.dropping[ref] <= 0 {
			delete(q.dropping, ref)
		}
		q.mu.Unlock()
	}()
	for _, done := range attempts {
		select {
		case <-done:
		case <-ctx.Done():
			return 0, fmt.Errorf("mail: drop: %w", ctx.Err())
		}
	}
	res, err := q.db.W.ExecContext(ctx, `DELETE FROM mail_queue WHERE ref = ?`, ref)
	if err != nil {
		return 0, fmt.Errorf("mail: drop: %w", err)
	}
	n, _ := res.RowsAffected()
	if n == 0 {
		return 0, nil
	}
	q.log.Info("mail deleted unsent", "ref", ref, "count", n)
	if err := q.db.Checkpoint(ctx); err != nil {
		q.markDirty()
		return int(n), fmt.Errorf("mail: drop: %w", err)
	}
	return int(n), nil
}

// subjectHash is what the queue stores of a data subject's address: the hex
// SHA-256 of the address trimmed and lower-cased ("" for none).
func subjectHash(email string) string {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" {
		return ""
	}
	return hex.EncodeToString(ids.Hash(email))
}

const heldCols = `id, ref, account_id, subject, text_body, recipients, attempts, created_at`

// Held returns the messages waiting under these refs, oldest first.
func (q *Queue) Held(ctx context.Context, refs ...string) ([]Held, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	args := make([]any, len(refs))
	for i, r := range refs {
		args[i] = r
	}
	return q.held(ctx, `SELECT `+heldCols+` FROM mail_queue WHERE ref IN (?`+strings.Repeat(", ?", len(refs)-1)+`) ORDER BY created_at, id`, args...)
}

// HeldFor returns the account's waiting messages whose data subject
// (Message.DataSubject) is email, compared trimmed and case-insensitively,
// oldest first.
func (q *Queue) HeldFor(ctx context.Context, accountID, email string) ([]Held, error) {
	h := subjectHash(email)
	if h == "" || accountID == "" {
		return nil, nil
	}
	return q.held(ctx, `SELECT `+heldCols+` FROM mail_queue WHERE account_id = ? AND data_subject = ? ORDER BY created_at, id`, accountID, h)
}

func (q *Queue) held(ctx context.Context, query string, args ...any) ([]Held, error) {
	rows, err := q.db.R.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("mail: held: %w", err)
	}
	defer rows.Close()
	var out []Held
	for rows.Next() {
		var h Held
		var rcpts string
		var created int64
		if err := rows.Scan(&h.ID, &h.Ref, &h.AccountID, &h.Subject, &h.Text, &rcpts, &h.Attempts, &created); err != nil {
			return nil, fmt.Errorf("mail: held: %w", err)
		}
		var to []string
		if json.Unmarshal([]byte(rcpts), &to) == nil {
			h.Recipients = len(to)
		}
		h.CreatedAt = time.UnixMilli(created)
		h.NotAfter = h.CreatedAt.Add(q.cfg.MaxHold)
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("mail: held: %w", err)
	}
	return out, nil
}

func (q *Queue) markDirty() {
	q.mu.Lock()
	q.dirty = true
	q.mu.Unlock()
	q.Kick()
}
