package chat

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"

	"connectrpc.com/connect"

	"github.com/lethehq/lethe/server/errs"
)

// DefaultWriteBatch is how many queued changes the writer applies in one
// transaction at most.
const DefaultWriteBatch = 256

// The writer applies every chat change (a chat started, a message, accept,
// transfer, close, a visitor seen...) through one goroutine: group commit.
// It takes the changes queued, applies up to the batch size of them in one
// transaction — each inside its own SAVEPOINT, so a change that is refused
// or fails is rolled back alone and its caller gets its own error — commits,
// then runs each change's after-commit step (publication to the hub, open
// chat accounting) in queue order and answers each caller. Nothing is
// answered before its commit; when the commit fails every caller of the
// batch gets the error and nothing is published.
//
// There is no wait for a batch to fill: a lone change commits at once; under
// load batches form by themselves while the previous commit runs. Changes of
// one chat are applied, committed and published in the order they were
// queued, so subscribers see each chat's events in sequence order without a
// lock across chats.
type writer struct {
	db    *sql.DB
	batch int
	q     chan *writeOp

	once sync.Once
	stop chan struct{}
	done chan struct{}
	// batches and changes count the transactions committed and the
	// changes they carried (a metric: changes/batches is the mean batch).
	batches, changes atomic.Int64
	// stopped: the writer takes no more changes.
	mu      sync.RWMutex
	stopped bool
}

// A writeOp is one queued change.
type writeOp struct {
	ctx context.Context
	// apply runs inside the transaction (in its own savepoint).
	apply func(ctx context.Context, tx *sql.Tx) error
	// after runs after the commit, in queue order, when apply succeeded.
	after func()
	// state: 0 queued, 1 taken by the writer, 2 abandoned by its caller.
	state atomic.Int32
	res   chan error // buffered: the writer never blocks on an answer
}

var errWriterStopped = errs.E(connect.CodeUnavailable, "the server is stopping")

func newWriter(db *sql.DB, batch int) *writer {
	if batch <= 0 {
		batch = DefaultWriteBatch
	}
	return &writer{db: db, batch: batch, q: make(chan *writeOp, 4*batch), stop: make(chan struct{}), done: make(chan struct{})}
}

func (w *writer) start() { w.once.Do(func() { go w.run() }) }

// close stops taking changes, lets the writer apply those queued, and waits
// for it.
func (w *writer) close() {
	w.start()
	w.mu.Lock()
	if !w.stopped {
		w.stopped = true
		close(w.stop)
	}
	w.mu.Unlock()
	<-w.done
}

// do queues a change and waits for its answer. A caller whose ctx ends
// while the change is still queued leaves at once (the writer skips the
// change); once the writer took it, the caller waits for its commit, which
// is never long.
func (w *writer) do(ctx context.Context, apply func(ctx context.Context, tx *sql.Tx) error, after func()) error {
	w.start()
	op := &writeOp{ctx: ctx, apply: apply, after: after, res: make(chan error, 1)}
	w.mu.RLock()
	if w.stopped {
		w.mu.RUnlock()
		return errWriterStopped
	}
	select {
	case w.q <- op:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-op.res:
		return err
	case <-ctx.Done():
		if op.state.CompareAndSwap(0, 2) {
			return ctx.Err()
		}
		return <-op.res
	}
}

func (w *writer) run() {
	defer close(w.done)
	ops := make([]*writeOp, 0, w.batch)
	for {
		ops = ops[:0]
		select {
		case op := <-w.q:
			ops = append(ops, op)
		case <-w.stop:
			// Apply what is still queued, then stop (do refuses new
			// changes once stop is closed).
			for {
				select {
				case op := <-w.q:
					w.commit(append(ops[:0], op))
				default:
					return
				}
			}
		}
	fill:
		for len(ops) < w.batch {
			select {
			case op := <-w.q:
				ops = append(ops, op)
			default:
				break fill
			}
		}
		w.commit(ops)
	}
}

// commit applies ops in one transaction and answers them.
func (w *writer) commit(ops []*writeOp) {
	live := ops[:0:0]
	for _, op := range ops {
		if op.state.CompareAndSwap(0, 1) {
			live = append(live, op)
		}
	}
	if len(live) == 0 {
		return
	}
	results := make([]error, len(live))
	fail := func(err error) {
		for _, op := range live {
			op.res <- err
		}
	}
	bg := context.Background()
	tx, err := w.db.BeginTx(bg, nil)
	if err != nil {
		fail(err)
		return
	}
	for i, op := range live {
		if _, err := tx.ExecContext(bg, "SAVEPOINT change"); err != nil {
			tx.Rollback()
			fail(err)
			return
		}
		// The change is applied whatever its caller does from now on: it
		// must not be cut half way by the caller's deadline.
		ctx := context.WithoutCancel(op.ctx)
		results[i] = safeApply(ctx, op, tx)
		if results[i] != nil {
			if _, err := tx.ExecContext(bg, "ROLLBACK TO change"); err != nil {
				// SQLite rolled the whole transaction back (e.g. disk
				// full): the batch fails.
				tx.Rollback()
				fail(fmt.Errorf("roll back a refused change: %w (it failed with: %w)", err, results[i]))
				return
			}
		}
		if _, err := tx.ExecContext(bg, "RELEASE change"); err != nil {
			tx.Rollback()
			fail(err)
			return
		}
	}
	if err := tx.Commit(); err != nil {
		fail(err)
		return
	}
	w.batches.Add(1)
	w.changes.Add(int64(len(live)))
	for i, op := range live {
		if results[i] == nil && op.after != nil {
			op.after()
		}
		op.res <- results[i]
	}
}

// safeApply runs a change, turning a panic into its caller's error so the
// writer (and every other change of the batch) survives it.
func safeApply(ctx context.Context, op *writeOp, tx *sql.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("chat change panicked: %v", r)
		}
	}()
	return op.apply(ctx, tx)
}
