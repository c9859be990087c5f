package mail

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

const (
	// batchSize is how many due messages one round takes.
	batchSize = 32
	// concurrency is how many attempts run at once.
	concurrency = 4
	// dbTimeout bounds the bookkeeping after an attempt, which runs even
	// when Run's context has ended (a delivery must be recorded).
	dbTimeout = 10 * time.Second
	// maxIdle is the longest the dispatcher sleeps without looking.
	maxIdle = time.Minute
	// callbackTimeout bounds the context given to the DoneFunc.
	callbackTimeout = 30 * time.Second
	// dirtyRetry is how soon a failed checkpoint is retried.
	dirtyRetry = time.Second
)

type row struct {
	id, ref    string
	to         []string
	subject    string
	text, html string
	requireTLS bool
	created    time.Time
	attempts   int
}

// Run sends due messages until ctx ends. On acceptance by the relay it
// deletes the row (secure_delete), checkpoints the WAL, then calls
// done(ref, true). A failed attempt schedules the next one with
// exponential backoff and jitter. A message older than MaxHold is deleted,
// checkpointed, counted as dropped and reported with done(ref, false).
// Messages are rows, so a new Queue on the same database resumes them. Only
// one Run per database may be active. done may be nil.
func (q *Queue) Run(ctx context.Context, done DoneFunc) {
	if !q.running.CompareAndSwap(false, true) {
		q.log.Error("mail queue already running")
		return
	}
	defer q.running.Store(false)
	q.onDone = done
	q.log.Info("mail queue started", "relay_configured", q.cfg.Enabled())
	for {
		wait := q.round(ctx)
		if ctx.Err() != nil {
			return
		}
		if wait <= 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-q.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// round expires, then sends, what is due, and returns how long to sleep.
func (q *Queue) round(ctx context.Context) time.Duration {
	q.mu.Lock()
	dirty := q.dirty
	q.dirty = false
	q.mu.Unlock()
	if dirty {
		q.checkpoint(ctx)
	}

	if err := q.expire(ctx); err != nil {
		if ctx.Err() == nil {
			q.log.Error("mail queue: expire failed", "err", err)
		}
		return q.cfg.RetryMin
	}
	if q.cfg.Enabled() {
		n, err := q.sendDue(ctx)
		if err != nil {
			if ctx.Err() == nil {
				q.log.Error("mail queue: read failed", "err", err)
			}
			return q.cfg.RetryMin
		}
		if n == batchSize {
			return 0
		}
	}
	wait, err := q.nextWake(ctx)
	if err != nil {
		if ctx.Err() == nil {
			q.log.Error("mail queue: read failed", "err", err)
		}
		return q.cfg.RetryMin
	}
	q.mu.Lock()
	if q.dirty && wait > dirtyRetry {
		wait = dirtyRetry
	}
	q.mu.Unlock()
	return wait
}

// nextWake is the time until the next attempt or expiry is due.
func (q *Queue) nextWake(ctx context.Context) (time.Duration, error) {
	var next, created *int64
	if err := q.db.R.QueryRowContext(ctx, `SELECT min(next_attempt), min(created_at) FROM mail_queue`).Scan(&next, &created); err != nil {
		return 0, err
	}
	if next == nil {
		return maxIdle, nil
	}
	if !q.cfg.Enabled() {
		return 0, nil
	}
	at := *next
	if exp := *created + q.cfg.MaxHold.Milliseconds(); exp < at {
		at = exp
	}
	wait := time.Until(time.UnixMilli(at))
	if wait > maxIdle {
		wait = maxIdle
	}
	if wait < time.Millisecond {
		// A row due now, e.g. expiring this very millisecond.
		wait = time.Millisecond
	}
	return wait, nil
}

// expire destroys messages older than MaxHold (every message when no relay
// is configured).
func (q *Queue) expire(ctx context.Context) error {
	cutoff := time.Now().Add(-q.cfg.MaxHold).UnixMilli()
	if !q.cfg.Enabled() {
		cutoff = math.MaxInt64
	}
	rows, err := q.db.R.QueryContext(ctx, `SELECT id, ref, attempts FROM mail_queue WHERE created_at <= ?`, cutoff)
	if err != nil {
		return err
	}
	type exp struct {
		id, ref  string
		attempts int
	}
	var list []exp
	for rows.Next() {
		var e exp
		if err := rows.Scan(&e.id, &e.ref, &e.attempts); err != nil {
			rows.Close()
			return err
		}
		list = append(list, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(list) == 0 {
		return nil
	}
	reason := "max_hold"
	if !q.cfg.Enabled() {
		reason = "no_relay"
	}
	var gone []exp
	for _, e := range list {
		ok, err := q.deleteRow(ctx, e.id)
		if err != nil {
			return err
		}
		if ok {
			gone = append(gone, e)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	q.checkpoint(ctx)
	for _, e := range gone {
		q.dropped.Add(1)
		q.log.Warn("mail dropped undelivered", "mail_id", e.id, "ref", e.ref, "attempts", e.attempts, "reason", reason)
		q.done(ctx, e.ref, false)
	}
	return nil
}

// sendDue attempts the due messages, a few at a time, and returns how many
// it took.
func (q *Queue) sendDue(ctx context.Context) (int, error) {
	now := time.Now()
	rows, err := q.db.R.QueryContext(ctx, `SELECT id, ref, recipients, subject, text_body, html_body, require_tls, created_at, attempts
		FROM mail_queue WHERE next_attempt <= ? AND created_at > ? ORDER BY next_attempt, id LIMIT ?`,
		now.UnixMilli(), now.Add(-q.cfg.MaxHold).UnixMilli(), batchSize)
	if err != nil {
		return 0, err
	}
	var due []row
	for rows.Next() {
		var r row
		var rcpts string
		var created int64
		if err := rows.Scan(&r.id, &r.ref, &rcpts, &r.subject, &r.text, &r.html, &r.requireTLS, &created, &r.attempts); err != nil {
			rows.Close()
			return 0, err
		}
		r.created = time.UnixMilli(created)
		if err := json.Unmarshal([]byte(rcpts), &r.to); err != nil {
			r.to = nil // the attempt fails as permanent
		}
		due = append(due, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for _, r := range due {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			q.attempt(ctx, r)
		})
	}
	wg.Wait()
	return len(due), nil
}

// attempt sends one message and records the outcome. It does not start
// while a Drop of the message's ref runs, nor for a row deleted since
// sendDue read it; Drop waits for an attempt it cancelled to end (fin).
func (q *Queue) attempt(ctx context.Context, r row) {
	actx, cancel := context.WithTimeout(ctx, q.cfg.Timeout)
	defer cancel()
	fin := make(chan struct{})
	var after func() // the DoneFunc call, once the attempt is over
	defer func() {
		q.mu.Lock()
		delete(q.inflight, r.id)
		q.mu.Unlock()
		close(fin)
		if after != nil {
			after()
		}
	}()
	q.mu.Lock()
	if q.dropping[r.ref] > 0 {
		q.mu.Unlock()
		q.log.Debug("mail attempt skipped: dropped", "mail_id", r.id, "ref", r.ref)
		return
	}
	q.inflight[r.id] = inflight{ref: r.ref, cancel: cancel, done: fin}
	q.mu.Unlock()
	// The bookkeeping must happen even if Run is being stopped: a delivery
	// not recorded would be sent twice.
	dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), dbTimeout)
	defer dcancel()
	// Read after registering: a Drop that deleted the row before finds no
	// attempt to wait for, so the row must be seen gone here.
	var there int
	if err := q.db.R.QueryRowContext(dctx, `SELECT EXISTS (SELECT 1 FROM mail_queue WHERE id = ?)`, r.id).Scan(&there); err != nil || there == 0 {
		q.log.Debug("mail attempt skipped: dropped", "mail_id", r.id, "ref", r.ref)
		return
	}
	var (
		ok  bool
		err error
	)
	res := q.deliver(actx, r, func() { ok, err = q.deleteRow(dctx, r.id) })
	cancel()
	n := r.attempts + 1

	switch {
	case res.delivered:
		q.sent.Add(1)
		if err != nil {
			q.log.Error("mail delivered but not removed from queue; it may be sent again", "mail_id", r.id, "ref", r.ref, "attempt", n, "err", err)
			return
		}
		if !ok { // removed meanwhile (Drop)
			q.log.Info("mail delivered", "mail_id", r.id, "ref", r.ref, "attempt", n, "tls", res.tls)
			return
		}
		q.checkpoint(dctx)
		q.log.Info("mail delivered", "mail_id", r.id, "ref", r.ref, "attempt", n, "tls", res.tls)
		after = func() { q.done(dctx, r.ref, true) }

	case res.stage == stageCanceled:
		// Shutdown or Drop: not the relay's fault; the row (if still
		// there) stays due.
		q.log.Debug("mail attempt cancelled", "mail_id", r.id, "ref", r.ref, "attempt", n)

	case res.permanent:
		q.failed.Add(1)
		ok, err := q.deleteRow(dctx, r.id)
		if err != nil || !ok {
			return
		}
		q.checkpoint(dctx)
		q.dropped.Add(1)
		q.log.Warn("mail dropped undelivered", "mail_id", r.id, "ref", r.ref, "attempts", n, "reason", res.stage)
		after = func() { q.done(dctx, r.ref, false) }

	default:
		q.failed.Add(1)
		next := time.Now().Add(q.backoff(n))
		if exp := r.created.Add(q.cfg.MaxHold); next.After(exp) {
			next = exp
		}
		if _, err := q.db.W.ExecContext(dctx, `UPDATE mail_queue SET attempts = ?, next_attempt = ? WHERE id = ?`, n, next.UnixMilli(), r.id); err != nil {
			q.log.Error("mail queue: reschedule failed", "mail_id", r.id, "err", err)
		}
		attrs := []any{"mail_id", r.id, "ref", r.ref, "attempt", n, "stage", res.stage, "require_tls", r.requireTLS,
			"retry_in", time.Until(next).Round(time.Millisecond)}
		if res.code != 0 {
			attrs = append(attrs, "smtp_code", res.code)
		}
		if res.enhanced != "" {
			attrs = append(attrs, "smtp_enhanced", res.enhanced)
		}
		q.log.Warn("mail attempt failed", attrs...)
	}
}

// backoff is the delay before attempt n+1 after n failures: RetryMin doubled
// per failure, capped at RetryMax, with "equal jitter" (uniform in [d/2, d]).
func (q *Queue) backoff(failures int) time.Duration {
	d := q.cfg.RetryMin
	for i := 1; i < failures && d < q.cfg.RetryMax; i++ {
		d *= 2
	}
	if d > q.cfg.RetryMax {
		d = q.cfg.RetryMax
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// deleteRow deletes one message and reports whether it was still there.
func (q *Queue) deleteRow(ctx context.Context, id string) (bool, error) {
	res, err := q.db.W.ExecContext(ctx, `DELETE FROM mail_queue WHERE id = ?`, id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// checkpoint truncates the WAL so deleted content is gone from every file;
// if a reader blocks it for too long it is retried on the next round.
func (q *Queue) checkpoint(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dbTimeout)
	defer cancel()
	if err := q.db.Checkpoint(cctx); err != nil {
		q.log.Warn("mail queue: WAL checkpoint failed, will retry", "err", err)
		q.markDirty()
	}
}

// done calls Run's DoneFunc with a context that Run's end does not cancel:
// once the row is gone, the owner's data must be destroyed even during
// shutdown.
func (q *Queue) done(ctx context.Context, ref string, delivered bool) {
	if q.onDone != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callbackTimeout)
		defer cancel()
		q.onDone(cctx, ref, delivered)
	}
}
