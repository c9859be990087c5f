package audit

import (
	"context"
	"database/sql"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"strconv"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	privacyv1 "github.com/lethehq/lethe/gen/go/lethe/privacy/v1"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Defaults and limits.
const (
	// DefaultRetention is how long entries are kept when the account does
	// not say otherwise.
	DefaultRetention = 90 * 24 * time.Hour
	// DefaultJanitorInterval is how often entries past retention are
	// deleted.
	DefaultJanitorInterval = time.Hour
	// DefaultPageSize and MaxPageSize bound List.
	DefaultPageSize = 100
	MaxPageSize     = 500
)

// Options configure the audit log.
type Options struct {
	// Retention is how long the account's entries are kept (nil, zero or
	// errs.ErrNotFound: DefaultRetention). On another error the account's
	// entries are kept until the next round.
	Retention func(ctx context.Context, accountID string) (time.Duration, error)
	// JanitorInterval is how often expired entries are deleted (0:
	// DefaultJanitorInterval).
	JanitorInterval time.Duration
	// Now is the clock (nil: time.Now; tests move it).
	Now func() time.Time
}

// Log is the audit trail in lethe.db. It implements Recorder, and lists and
// exports an account's entries.
type Log struct {
	db   *store.DB
	log  *slog.Logger
	opts Options

	// stop ends the janitor (and a prune it is running); done is closed
	// when it has returned.
	stop context.CancelFunc
	done chan struct{}
}

var _ Recorder = (*Log)(nil)

// NewLog migrates the audit table and starts the janitor that deletes
// entries past their account's retention (stopped by Close).
func NewLog(ctx context.Context, db *store.DB, log *slog.Logger, o Options) (*Log, error) {
	sub, _ := fs.Sub(migrations, "migrations")
	if err := db.Migrate(ctx, "audit", sub); err != nil {
		return nil, err
	}
	if o.JanitorInterval <= 0 {
		o.JanitorInterval = DefaultJanitorInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Retention == nil {
		o.Retention = func(context.Context, string) (time.Duration, error) { return DefaultRetention, nil }
	}
	jctx, stop := context.WithCancel(context.Background())
	l := &Log{db: db, log: log, opts: o, stop: stop, done: make(chan struct{})}
	go l.janitor(jctx)
	return l, nil
}

// Close stops the janitor and waits for it. It may be called more than once.
func (l *Log) Close() error {
	l.stop()
	<-l.done
	return nil
}

// janitor prunes every JanitorInterval until ctx ends.
func (l *Log) janitor(ctx context.Context) {
	defer close(l.done)
	t := time.NewTicker(l.opts.JanitorInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := l.Prune(ctx); err != nil && ctx.Err() == nil {
			l.log.Warn("audit: prune", slog.String("error", err.Error()))
		} else if n > 0 {
			l.log.Info("audit: entries past retention deleted", slog.Int64("count", n))
		}
	}
}

// Record stores an entry; its actor and time are filled from ctx and the
// clock when unset (see By). It never fails the caller: an error is logged
// with the account and action only. The write outlives a cancelled ctx, so
// that a client hanging up does not erase the trace of what it did.
func (l *Log) Record(ctx context.Context, e Entry) {
	if e.At.IsZero() {
		e.At = l.opts.Now()
	}
	e = By(ctx, e)
	if e.AccountID == "" || e.Action == "" {
		l.log.WarnContext(ctx, "audit: entry without account or action dropped", slog.String("action", e.Action))
		return
	}
	fields, _ := json.Marshal(nonNil(e.Fields))
	_, err := l.db.W.ExecContext(context.WithoutCancel(ctx), `INSERT INTO audit_log
		(account_id, at, actor_kind, actor_id, action, target_id, fields, count, receipt_id, network, reason)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.AccountID, e.At.UnixMilli(), e.ActorKind, e.ActorID, e.Action, e.TargetID, string(fields), e.Count, e.ReceiptID, e.Network, e.Reason)
	if err != nil {
		l.log.ErrorContext(ctx, "audit: record", slog.String("account", e.AccountID), slog.String("action", e.Action), slog.String("error", err.Error()))
	}
}

// Count adds n to the account's entry for action in the current hour (one
// entry per account, action and hour, by the system, timed at the start of
// the hour). It never fails the caller.
func (l *Log) Count(ctx context.Context, accountID, action string, n int64) {
	if accountID == "" || action == "" || n == 0 {
		return
	}
	hour := l.opts.Now().UnixMilli() / time.Hour.Milliseconds()
	_, err := l.db.W.ExecContext(context.WithoutCancel(ctx), `INSERT INTO audit_log (account_id, at, actor_kind, action, count, hour)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (account_id, action, hour) WHERE hour > 0 DO UPDATE SET count = count + excluded.count`,
		accountID, hour*time.Hour.Milliseconds(), ActorSystem, action, n, hour)
	if err != nil {
		l.log.ErrorContext(ctx, "audit: count", slog.String("account", accountID), slog.String("action", action), slog.String("error", err.Error()))
	}
}

const entryCols = `seq, account_id, at, actor_kind, actor_id, action, target_id, fields, count, receipt_id, network, reason`

func scanEntries(rows *sql.Rows) ([]Entry, error) {
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var at int64
		var fields string
		if err := rows.Scan(&e.Seq, &e.AccountID, &at, &e.ActorKind, &e.ActorID, &e.Action, &e.TargetID, &fields, &e.Count,
			&e.ReceiptID, &e.Network, &e.Reason); err != nil {
			return nil, err
		}
		e.At = time.UnixMilli(at)
		if err := json.Unmarshal([]byte(fields), &e.Fields); err != nil {
			return nil, fmt.Errorf("audit entry %d: fields: %w", e.Seq, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// List lists the account's entries, newest first, from a page token (""
// for the newest); next is "" when nothing is older. size is bounded to
// MaxPageSize (0 or less: DefaultPageSize). A token that is not one List
// gave is InvalidArgument.
func (l *Log) List(ctx context.Context, accountID, pageToken string, size int) (entries []Entry, next string, err error) {
	if size <= 0 {
		size = DefaultPageSize
	}
	size = min(size, MaxPageSize)
	before := int64(-1)
	if pageToken != "" {
		if before, err = decodeToken(pageToken); err != nil {
			return nil, "", err
		}
	}
	rows, err := l.db.R.QueryContext(ctx, `SELECT `+entryCols+` FROM audit_log
		WHERE account_id = ? AND (? < 0 OR seq < ?) ORDER BY seq DESC LIMIT ?`, accountID, before, before, size+1)
	if err != nil {
		return nil, "", err
	}
	entries, err = scanEntries(rows)
	if err != nil {
		return nil, "", err
	}
	if len(entries) > size {
		entries = entries[:size]
		next = encodeToken(entries[size-1].Seq)
	}
	return entries, next, nil
}

// encodeToken makes an opaque page token of the last sequence number a
// page held.
func encodeToken(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("a" + strconv.FormatInt(seq, 10)))
}

func decodeToken(tok string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err == nil && len(b) > 1 && b[0] == 'a' {
		if seq, err := strconv.ParseInt(string(b[1:]), 10, 64); err == nil && seq > 0 {
			return seq, nil
		}
	}
	return 0, errs.Invalid("page_token is not one this server gave")
}

// About lists the account's entries whose actor or target is the operator,
// newest first, at most limit (0 or less: DefaultPageSize).
func (l *Log) About(ctx context.Context, accountID, operatorID string, limit int) ([]Entry, error) {
	if limit <= 0 {
		limit = DefaultPageSize
	}
	if operatorID == "" {
		return nil, nil
	}
	rows, err := l.db.R.QueryContext(ctx, `SELECT `+entryCols+` FROM audit_log WHERE seq IN (
			SELECT seq FROM audit_log WHERE account_id = ? AND actor_id = ?
			UNION SELECT seq FROM audit_log WHERE account_id = ? AND target_id = ?)
		ORDER BY seq DESC LIMIT ?`, accountID, operatorID, accountID, operatorID, limit)
	if err != nil {
		return nil, err
	}
	return scanEntries(rows)
}

// Prune deletes every entry older than its account's retention and answers
// how many it deleted.
func (l *Log) Prune(ctx context.Context) (int64, error) {
	rows, err := l.db.R.QueryContext(ctx, `SELECT DISTINCT account_id FROM audit_log`)
	if err != nil {
		return 0, err
	}
	var accounts []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			rows.Close()
			return 0, err
		}
		accounts = append(accounts, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	var total int64
	for _, a := range accounts {
		keep, err := l.opts.Retention(ctx, a)
		if errors.Is(err, errs.ErrNotFound) {
			keep, err = DefaultRetention, nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return total, ctx.Err()
			}
			l.log.Warn("audit: retention unknown, entries kept", slog.String("account", a), slog.String("error", err.Error()))
			continue
		}
		if keep <= 0 {
			keep = DefaultRetention
		}
		res, err := l.db.W.ExecContext(ctx, `DELETE FROM audit_log WHERE account_id = ? AND at < ?`, a, l.opts.Now().Add(-keep).UnixMilli())
		if err != nil {
			return total, err
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}

// exportBatch is how many entries WriteJSONLines reads at a time, so that
// a slow reader does not hold a read transaction open.
const exportBatch = 500

// WriteJSONLines writes every entry of the account, oldest first, one JSON
// object per line: the protojson form (proto field names) of
// lethe.privacy.v1.AuditEntry.
func (l *Log) WriteJSONLines(ctx context.Context, w io.Writer, accountID string) error {
	m := protojson.MarshalOptions{UseProtoNames: true}
	after := int64(0)
	for {
		rows, err := l.db.R.QueryContext(ctx, `SELECT `+entryCols+` FROM audit_log WHERE account_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
			accountID, after, exportBatch)
		if err != nil {
			return err
		}
		batch, err := scanEntries(rows)
		if err != nil {
			return err
		}
		for _, e := range batch {
			b, err := m.Marshal(ToProto(e))
			if err != nil {
				return err
			}
			if _, err := w.Write(append(b, '\n')); err != nil {
				return err
			}
			after = e.Seq
		}
		if len(batch) < exportBatch {
			return nil
		}
	}
}

// ToProto is the lethe.privacy.v1 form of an entry.
func ToProto(e Entry) *privacyv1.AuditEntry {
	return &privacyv1.AuditEntry{Id: strconv.FormatInt(e.Seq, 10), At: timestamppb.New(e.At), ActorKind: e.ActorKind, ActorId: e.ActorID,
		Action: e.Action, TargetId: e.TargetID, Fields: e.Fields, Count: e.Count, ReceiptId: e.ReceiptID, Network: e.Network, Reason: e.Reason}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
