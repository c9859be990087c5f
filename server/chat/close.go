package chat

import (
	"container/heap"
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/server/audit"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/mail"
)

// Mailer queues mail in the scratch database (a *mail.Queue). Enqueue runs
// inside the caller's transaction so a chat's close and its transcript
// commit together.
type Mailer interface {
	Enqueue(ctx context.Context, tx *sql.Tx, m mail.Message) error
	Kick()
	Pending(ctx context.Context, ref string) (bool, error)
	DeleteRef(ctx context.Context, ref string) error
	// Held returns the mail waiting under refs.
	Held(ctx context.Context, refs ...string) ([]mail.Held, error)
	// Drop deletes a ref's mail unsent; no attempt of it reaches the mail
	// server after it returns.
	Drop(ctx context.Context, ref string) (int, error)
}

func chatRef(id string) string { return "chat:" + id }

// closeOpts say how a chat closes.
type closeOpts struct {
	by     chatv1.AuthorKind
	reason string
	// check may refuse the close.
	check func(c *Chat) error
	// noTranscript: consent withdrawn — destroy now, mail nothing.
	noTranscript bool
	// keep: the caller destroys the chat itself (EraseChat counts what it
	// destroys first).
	keep bool
}

// close closes a chat. In the same transaction it renders the transcript and
// queues it for mail when the account or the visitor wants one; the chat is
// destroyed once the mail server accepted it (MailDone), or at once when no
// mail is queued.
func (s *Service) close(ctx context.Context, chatID string, o closeOpts) error {
	mailed := false
	c, _, err := s.change(ctx, chatID, func(c *Chat, tx *sql.Tx) ([]*chatv1.ChatEvent, error) {
		if c.State == StateClosed {
			return nil, errs.Precondition("the chat is already closed")
		}
		if o.check != nil {
			if err := o.check(c); err != nil {
				return nil, err
			}
		}
		c.State = StateClosed
		closed := &chatv1.ChatEvent{Kind: &chatv1.ChatEvent_Closed{Closed: &chatv1.ChatClosed{ClosedBy: o.by, Reason: o.reason}}}
		if o.noTranscript || s.opts.Mailer == nil {
			return []*chatv1.ChatEvent{closed}, nil
		}
		set, err := s.dir.Settings(ctx, c.AccountID)
		if err != nil {
			return nil, err
		}
		var to [][]string
		if set.TranscriptsEnabled && len(set.Recipients) > 0 {
			to = append(to, set.Recipients)
		}
		if c.TranscriptEmail != "" {
			to = append(to, []string{c.TranscriptEmail})
		}
		if len(to) == 0 {
			return []*chatv1.ChatEvent{closed}, nil
		}
		history, err := events(ctx, s.store.inTx(tx), c.ID, 0)
		if err != nil {
			return nil, err
		}
		accountName, err := s.dir.AccountName(ctx, c.AccountID)
		if err != nil {
			return nil, err
		}
		closed.Time = nowProto()
		t, err := renderTranscript(accountName, c, append(history, closed))
		if err != nil {
			return nil, err
		}
		// Whom the transcript is about, so that a request by e-mail
		// address finds it while it waits: the address the visitor gave,
		// else the one they asked a copy at.
		subject := c.VisitorEmail
		if subject == "" {
			subject = c.TranscriptEmail
		}
		for _, rcpt := range to {
			if err := s.opts.Mailer.Enqueue(ctx, tx, mail.Message{Ref: chatRef(c.ID), AccountID: c.AccountID, To: rcpt,
				Subject: t.Subject, Text: t.Text, HTML: t.HTML, RequireTLS: set.RequireTLS, DataSubject: subject}); err != nil {
				return nil, err
			}
		}
		mailed = true
		return []*chatv1.ChatEvent{closed}, nil
	})
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "chat closed", slog.String("chat", c.ID), slog.String("account", c.AccountID),
		slog.String("by", o.by.String()), slog.Bool("transcript", mailed))
	// Files die at close, not when the transcript (which lists only their
	// names and sizes) has been mailed (P6).
	s.destroyFiles(ctx, c.ID)
	if mailed {
		s.opts.Mailer.Kick()
		return nil
	}
	if o.keep {
		return nil
	}
	if o.noTranscript {
		// Withdrawal: destroyed before the call returns.
		s.destroy(c.ID)
		return nil
	}
	s.enqueueDestroy(c.ID)
	return nil
}

// WithdrawChat ends a chat because the visitor withdrew consent: no
// transcript, and its data is destroyed before this returns.
func (s *Service) WithdrawChat(ctx context.Context, chatID string) error {
	if s.opts.Mailer != nil {
		if err := s.opts.Mailer.DeleteRef(ctx, chatRef(chatID)); err != nil {
			return err
		}
	}
	return s.close(ctx, chatID, closeOpts{by: chatv1.AuthorKind_AUTHOR_KIND_SYSTEM, reason: "consent withdrawn", noTranscript: true})
}

// MailDone is called by the mail queue when a chat's mail left the queue
// (delivered, or dropped after the maximum hold): once none is pending the
// chat is destroyed.
func (s *Service) MailDone(ctx context.Context, ref string) {
	id, ok := strings.CutPrefix(ref, "chat:")
	if !ok || id == "" {
		return
	}
	if pending, err := s.opts.Mailer.Pending(ctx, ref); err != nil || pending {
		return
	}
	s.enqueueDestroy(id)
}

func (s *Service) enqueueDestroy(chatID string) {
	select {
	case s.destroyQ <- chatID:
	default:
		// The row stays closed and the next sweep picks it up.
		s.log.Warn("destroy queue full", slog.String("chat", chatID))
	}
}

// destroyable reports whether a closed chat may be destroyed now (no
// transcript mail pending).
func (s *Service) destroyable(ctx context.Context, chatID string) bool {
	if s.opts.Mailer == nil {
		return true
	}
	pending, err := s.opts.Mailer.Pending(ctx, chatRef(chatID))
	return err == nil && !pending
}

// sweepClosed destroys closed chats whose mail is done (after a restart, or
// when the destroy queue overflowed).
func (s *Service) sweepClosed(ctx context.Context) {
	if s.checkpointOwed.Load() {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := s.store.DB().Checkpoint(cctx)
		cancel()
		if err != nil {
			s.log.Error("sweep: checkpoint", slog.String("error", err.Error()))
		} else {
			s.checkpointOwed.Store(false)
			s.log.Info("pending WAL truncation done")
		}
	}
	// Through the index on state: what it reads is the closed chats
	// waiting for their mail, not the open ones.
	closed, err := s.store.closedChatIDs(ctx)
	if err != nil {
		s.log.Error("sweep closed chats", slog.String("error", err.Error()))
		return
	}
	for _, id := range closed {
		if s.destroyable(ctx, id) {
			s.destroy(id)
		}
	}
}

// destroyer runs the destructions and the janitor.
func (s *Service) destroyer() {
	defer s.wg.Done()
	tick := time.NewTicker(s.opts.JanitorInterval)
	defer tick.Stop()
	s.sweepClosed(context.Background())
	for {
		select {
		case id := <-s.destroyQ:
			s.destroy(id)
		case <-tick.C:
			s.closeIdle(context.Background())
			s.sweepClosed(context.Background())
		case <-s.stop:
			for {
				select {
				case id := <-s.destroyQ:
					s.destroy(id)
				default:
					return
				}
			}
		}
	}
}

// destroy removes every row of a closed chat with secure_delete on, then
// truncates the WAL so no copy of a deleted page survives (P1, P2). It
// returns an error when the chat is still there, or its rows are gone but
// the WAL could not be truncated yet (the sweep retries it).
func (s *Service) destroy(chatID string) error {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	c, err := s.store.Chat(ctx, chatID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		s.log.Error("destroy chat: load", slog.String("chat", chatID), slog.String("error", err.Error()))
		return err
	}
	if c.State != StateClosed {
		return errs.Precondition("the chat is open")
	}
	// Again, in case the close's destruction failed or the server stopped
	// before it: idempotent.
	s.destroyFiles(ctx, chatID)
	if h, err := s.store.visitorTokenHash(ctx, c.VisitorID); err == nil {
		s.tombstones.add(h, &auth.Visitor{ID: c.VisitorID, AccountID: c.AccountID, ChatID: c.ID, Closed: true})
	}
	s.visitors.forgetChat(chatID)
	if err := s.store.Destroy(ctx, chatID); err != nil {
		s.log.Error("destroy chat", slog.String("chat", chatID), slog.String("error", err.Error()))
		return err
	}
	s.opts.Audit.Count(ctx, c.AccountID, audit.ChatsDestroyed, 1)
	var truncateErr error
	if err := s.store.DB().Checkpoint(ctx); err != nil {
		// The rows are gone but old pages may linger in the WAL: the sweep
		// retries the checkpoint until it truncates.
		truncateErr = err
		s.checkpointOwed.Store(true)
		s.log.Error("destroy chat: checkpoint", slog.String("chat", chatID), slog.String("error", err.Error()))
	}
	s.open.release(chatID)
	s.messages.Forget(c.VisitorID)
	s.typings.Forget(c.VisitorID)
	s.watchers.forget(chatID)
	if truncateErr != nil {
		s.log.Warn("chat rows deleted; WAL truncation pending", slog.String("chat", chatID))
		return truncateErr
	}
	s.destroyed.Add(1)
	s.log.Info("chat destroyed", slog.String("chat", chatID), slog.Int64("events", c.LastSeq), slog.Duration("took", time.Since(start)))
	if s.opts.OnDestroyed != nil {
		s.opts.OnDestroyed(chatID, time.Since(start))
	}
	return nil
}

// idleWatch is what the janitor knows of idle chats: the chats whose
// visitor was seen since the last tick (dirty, fed by the store after each
// commit that sets a chat's last-seen time) and, for each chat seen within
// its idle timeout, when it falls due (a min-heap). A tick costs what
// changed since the previous one plus the chats falling due: chats whose
// visitor keeps a stream open are never looked at again until it ends
// (the stream's end sets the last-seen time, which brings the chat back).
type idleWatch struct {
	mu    sync.Mutex
	dirty map[string]seenMark
	// Owned by the janitor goroutine.
	due    idleHeap
	latest map[string]int64 // chat → last-seen (ms) of its live heap entry
	// scheduled is len(due) after the last tick (tests, metrics).
	scheduled atomic.Int64
}

type seenMark struct {
	account string
	seen    int64 // unix ms
}

type idleEntry struct {
	due     int64 // unix ms
	chatID  string
	account string
	seen    int64
}

type idleHeap []idleEntry

func (h idleHeap) Len() int           { return len(h) }
func (h idleHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h idleHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *idleHeap) Push(x any)        { *h = append(*h, x.(idleEntry)) }
func (h *idleHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func newIdleWatch() *idleWatch {
	return &idleWatch{dirty: map[string]seenMark{}, latest: map[string]int64{}}
}

// seen records that a chat's visitor was seen at (called by the store's
// writer after the commit: keep it cheap).
func (w *idleWatch) seen(chatID, accountID string, at time.Time) {
	w.mu.Lock()
	w.dirty[chatID] = seenMark{account: accountID, seen: at.UnixMilli()}
	w.mu.Unlock()
}

func (w *idleWatch) takeDirty() map[string]seenMark {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.dirty) == 0 {
		return nil
	}
	d := w.dirty
	w.dirty = map[string]seenMark{}
	return d
}

func (w *idleWatch) schedule(chatID, account string, seen int64, idle time.Duration) {
	w.latest[chatID] = seen
	heap.Push(&w.due, idleEntry{due: seen + idle.Milliseconds(), chatID: chatID, account: account, seen: seen})
}

// closeIdle closes open chats whose visitor has been gone longer than the
// account's idle timeout (no chat stream open and not seen since). It looks
// only at chats seen since the last tick and at those falling due (idleWatch).
// A shorter idle timeout set by an account applies to each chat when it is
// next seen or falls due under the old one.
func (s *Service) closeIdle(ctx context.Context) {
	w := s.idle
	timeouts := map[string]time.Duration{}
	timeout := func(account string) (time.Duration, bool) {
		idle, ok := timeouts[account]
		if !ok {
			set, err := s.dir.Settings(ctx, account)
			if err != nil {
				return 0, false
			}
			idle = set.IdleTimeout
			timeouts[account] = idle
		}
		return idle, true
	}
	for id, m := range w.takeDirty() {
		idle, ok := timeout(m.account)
		if !ok {
			// Settings unreadable (account gone?): look again in a while.
			idle = s.opts.JanitorInterval
		}
		w.schedule(id, m.account, m.seen, idle)
	}
	defer func() { w.scheduled.Store(int64(w.due.Len())) }()
	now := time.Now()
	for w.due.Len() > 0 && w.due[0].due <= now.UnixMilli() {
		e := heap.Pop(&w.due).(idleEntry)
		if seen, ok := w.latest[e.chatID]; !ok || seen != e.seen {
			continue // seen again since: a later entry stands for it
		}
		delete(w.latest, e.chatID)
		if s.watchers.watching(e.chatID) {
			continue // the stream's end brings it back
		}
		idle, ok := timeout(e.account)
		if !ok {
			continue
		}
		if now.Sub(time.UnixMilli(e.seen)) < idle {
			w.schedule(e.chatID, e.account, e.seen, idle) // the account lengthened its timeout
			continue
		}
		// Decide again on the row as it is inside the closing transaction
		// (a stream may have ended, touching it, or started since).
		err := s.close(ctx, e.chatID, closeOpts{by: chatv1.AuthorKind_AUTHOR_KIND_SYSTEM, reason: "idle", check: func(c *Chat) error {
			if s.watchers.watching(c.ID) || time.Since(c.SeenAt) < idle {
				return errs.Precondition("the visitor is back")
			}
			return nil
		}})
		switch {
		case err == nil, errs.CodeOf(err) == connect.CodeFailedPrecondition /* closed or back meanwhile */, errs.CodeOf(err) == connect.CodeNotFound:
		default:
			s.log.Error("janitor: close idle chat", slog.String("chat", e.chatID), slog.String("error", err.Error()))
			// Try again next tick.
			w.latest[e.chatID] = e.seen
			e.due = now.Add(s.opts.JanitorInterval).UnixMilli()
			heap.Push(&w.due, e)
		}
	}
}
