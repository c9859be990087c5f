package files

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/lethehq/lethe/gen/go/lethe/files/v1/filesv1connect"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/ids"
)

// Options configure the service; zero values take the defaults.
type Options struct {
	// Dir holds the ciphertext, one directory per chat (e.g. <data>/files).
	Dir string
	// MaxFileBytes and MaxChatBytes are the server's caps on accounts'
	// settings (0: DefaultMaxFileBytes, DefaultMaxChatBytes).
	MaxFileBytes, MaxChatBytes int64
	// MaxTotalBytes is the budget for all chats' files on this server
	// (finished files and open uploads); 0 means none.
	MaxTotalBytes int64
	// LinkTTL is how long a download link lives (0: one minute).
	LinkTTL time.Duration
	// OnDestroyed, if set, is told each time a chat's files were destroyed
	// and how long it took (key, checkpoint, ciphertext, rows).
	OnDestroyed func(chatID string, took time.Duration)
	// StaleUpload: an upload untouched this long is destroyed by the
	// janitor (0: one hour).
	StaleUpload time.Duration
	// JanitorInterval is how often the janitor looks (0: one minute).
	JanitorInterval time.Duration
	// MaxLinks bounds the download links held at once (0: 10000).
	MaxLinks int
}

// Service implements lethe.files.v1.FileService.
type Service struct {
	st       *Store
	chats    Chats
	settings Settings
	log      *slog.Logger
	o        Options

	// locks: one per chat (shared by chunk reads and writes, exclusive for
	// destruction); uploads: one per upload, taken after its chat's, so two
	// calls on one upload never interleave.
	locks, uploads chatLocks
	links          *links
	running        runningHashes

	// destroyed remembers chats destroyed in the last tombTTL, so that a
	// StartUpload whose participant check passed just before the close
	// cannot make a key or a directory after DestroyChat ran.
	tombMu    sync.Mutex
	destroyed map[string]time.Time
	tombSwept time.Time

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

var _ filesv1connect.FileServiceHandler = (*Service)(nil)

// NewService builds the files service. Before it returns, it sweeps what a
// crash or a close during downtime left behind: every chat with files that
// is not open is destroyed, and every directory under o.Dir without a key
// is removed.
func NewService(ctx context.Context, st *Store, chats Chats, settings Settings, log *slog.Logger, o Options) (*Service, error) {
	if o.Dir == "" {
		return nil, errors.New("files: Options.Dir is required")
	}
	if o.MaxFileBytes <= 0 {
		o.MaxFileBytes = DefaultMaxFileBytes
	}
	if o.MaxChatBytes <= 0 {
		o.MaxChatBytes = DefaultMaxChatBytes
	}
	if o.LinkTTL <= 0 {
		o.LinkTTL = time.Minute
	}
	if o.StaleUpload <= 0 {
		o.StaleUpload = time.Hour
	}
	if o.JanitorInterval <= 0 {
		o.JanitorInterval = time.Minute
	}
	if o.MaxLinks <= 0 {
		o.MaxLinks = 10000
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("files: %w", err)
	}
	s := &Service{st: st, chats: chats, settings: settings, log: log, o: o,
		locks: chatLocks{m: map[string]*chatLock{}}, uploads: chatLocks{m: map[string]*chatLock{}},
		links: newLinks(o.MaxLinks), destroyed: map[string]time.Time{},
		stop: make(chan struct{}), done: make(chan struct{})}
	if err := s.sweep(ctx); err != nil {
		return nil, fmt.Errorf("files: startup sweep: %w", err)
	}
	go s.janitor()
	return s, nil
}

// Close stops the janitor.
func (s *Service) Close() error {
	s.once.Do(func() { close(s.stop) })
	<-s.done
	return nil
}

// Policy says who may call each procedure: a participant of the chat (a
// visitor token or an operator session); the handlers check which chat.
func Policy() map[string]auth.Kind {
	return map[string]auth.Kind{
		filesv1connect.FileServiceGetFileLimitsProcedure:      auth.Participant,
		filesv1connect.FileServiceStartUploadProcedure:        auth.Participant,
		filesv1connect.FileServiceUploadChunkProcedure:        auth.Participant,
		filesv1connect.FileServiceGetUploadProcedure:          auth.Participant,
		filesv1connect.FileServiceFinishUploadProcedure:       auth.Participant,
		filesv1connect.FileServiceCancelUploadProcedure:       auth.Participant,
		filesv1connect.FileServiceDownloadFileProcedure:       auth.Participant,
		filesv1connect.FileServiceCreateDownloadLinkProcedure: auth.Participant,
	}
}

// chatLocks holds one lock per chat in use: chunk writes and reads hold it
// shared, destruction holds it alone, so no write races the destruction of
// its chat. Entries live only while held (bounded by calls in flight).
type chatLocks struct {
	mu sync.Mutex
	m  map[string]*chatLock
}

type chatLock struct {
	rw   sync.RWMutex
	refs int
}

func (l *chatLocks) get(chatID string) *chatLock {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.m[chatID]
	if c == nil {
		c = &chatLock{}
		l.m[chatID] = c
	}
	c.refs++
	return c
}

func (l *chatLocks) put(chatID string, c *chatLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.refs--; c.refs == 0 {
		delete(l.m, chatID)
	}
}

// shared locks chatID for reading or writing its files; call the returned
// func to unlock.
func (l *chatLocks) shared(chatID string) func() {
	c := l.get(chatID)
	c.rw.RLock()
	return func() { c.rw.RUnlock(); l.put(chatID, c) }
}

// exclusive locks chatID for its destruction.
func (l *chatLocks) exclusive(chatID string) func() {
	c := l.get(chatID)
	c.rw.Lock()
	return func() { c.rw.Unlock(); l.put(chatID, c) }
}

// chatDir is the ciphertext directory of a chat. Chat ids are ours
// (lower-case base32), but a path is built only from a clean element.
func (s *Service) chatDir(chatID string) (string, error) {
	if chatID == "" || chatID != filepath.Base(chatID) || chatID == "." || chatID == ".." {
		return "", errs.Invalid("bad chat id")
	}
	return filepath.Join(s.o.Dir, chatID), nil
}

func (s *Service) blobPath(chatID, id string) (string, error) {
	dir, err := s.chatDir(chatID)
	if err != nil {
		return "", err
	}
	if id == "" || id != filepath.Base(id) || id == "." || id == ".." {
		return "", errs.Invalid("bad id")
	}
	return filepath.Join(dir, id), nil
}

// diskFull maps a full disk (or quota) to a clear ResourceExhausted error.
func diskFull(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return errs.Exhausted("the server's disk is full; try again later or send a smaller file")
	}
	return err
}

// errClosed answers calls on a chat whose files are destroyed.
var errClosed = errs.Precondition("the chat is closed")

// DestroyChat destroys every file and upload of a chat: the key first
// (deleted with secure_delete, WAL truncated: cryptographic erase), then
// the ciphertext directory, then the rows, then the chat's download links.
// It holds the chat's lock, so no chunk write or read runs meanwhile, and
// later writes find no key and fail. Idempotent, and cheap (no write, no
// checkpoint) for a chat that never had files.
func (s *Service) DestroyChat(ctx context.Context, chatID string) error {
	start := time.Now()
	dir, err := s.chatDir(chatID)
	if err != nil {
		return err
	}
	unlock := s.locks.exclusive(chatID)
	defer unlock()
	s.tombstone(chatID)
	s.links.dropChat(chatID)
	s.running.dropChat(chatID)
	has, err := s.st.hasAny(ctx, chatID)
	if err != nil {
		return fmt.Errorf("destroy chat %s: %w", chatID, err)
	}
	if _, statErr := os.Lstat(dir); !has && errors.Is(statErr, os.ErrNotExist) {
		return nil
	}
	var errsOut []error
	hadKey, err := s.st.deleteKey(ctx, chatID)
	if err != nil {
		// Without the key deleted nothing else may go first.
		return fmt.Errorf("destroy chat %s: key: %w", chatID, err)
	}
	if hadKey {
		if err := s.st.db.Checkpoint(ctx); err != nil {
			errsOut = append(errsOut, fmt.Errorf("checkpoint after key: %w", err))
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		errsOut = append(errsOut, fmt.Errorf("ciphertext: %w", err))
	}
	n, err := s.st.deleteChatRows(ctx, chatID)
	if err != nil {
		errsOut = append(errsOut, fmt.Errorf("rows: %w", err))
	} else if n > 0 {
		if err := s.st.db.Checkpoint(ctx); err != nil {
			errsOut = append(errsOut, fmt.Errorf("checkpoint after rows: %w", err))
		}
	}
	took := time.Since(start)
	if err := errors.Join(errsOut...); err != nil {
		return fmt.Errorf("destroy chat %s: %w", chatID, err)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "chat files destroyed", slog.String("chat", chatID),
		slog.Bool("key", hadKey), slog.Int64("rows", n), slog.Duration("took", took))
	if s.o.OnDestroyed != nil {
		s.o.OnDestroyed(chatID, took)
	}
	return nil
}

// tombTTL is how long a destroyed chat is remembered: far longer than any
// call takes between its participant check and its chat lock.
const tombTTL = 10 * time.Minute

func (s *Service) tombstone(chatID string) {
	s.tombMu.Lock()
	defer s.tombMu.Unlock()
	now := time.Now()
	if now.Sub(s.tombSwept) > time.Minute {
		for id, at := range s.destroyed {
			if now.Sub(at) > tombTTL {
				delete(s.destroyed, id)
			}
		}
		s.tombSwept = now
	}
	s.destroyed[chatID] = now
}

func (s *Service) wasDestroyed(chatID string) bool {
	s.tombMu.Lock()
	defer s.tombMu.Unlock()
	_, ok := s.destroyed[chatID]
	return ok
}

// sweep destroys the files of every chat that is not open, and removes
// every directory (or stray file) under Dir that has no key.
func (s *Service) sweep(ctx context.Context) error {
	chats, err := s.st.chatIDs(ctx)
	if err != nil {
		return err
	}
	destroyed := 0
	for _, id := range chats {
		open, err := s.chats.Open(ctx, id)
		if err != nil {
			return err
		}
		if open {
			continue
		}
		if err := s.DestroyChat(ctx, id); err != nil {
			return err
		}
		destroyed++
	}
	entries, err := os.ReadDir(s.o.Dir)
	if err != nil {
		return err
	}
	orphans := 0
	for _, e := range entries {
		k, err := s.st.key(ctx, e.Name())
		if err != nil {
			return err
		}
		if k != nil && e.IsDir() {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.o.Dir, e.Name())); err != nil {
			return err
		}
		orphans++
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "files startup sweep", slog.Int("chats", len(chats)),
		slog.Int("destroyed", destroyed), slog.Int("orphan_dirs", orphans))
	return nil
}

// janitor destroys uploads abandoned for longer than StaleUpload, so that
// they stop counting against their chat's quota and the server's budget.
func (s *Service) janitor() {
	defer close(s.done)
	t := time.NewTicker(s.o.JanitorInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		stale, err := s.st.staleUploads(ctx, time.Now().Add(-s.o.StaleUpload))
		if err != nil {
			s.log.LogAttrs(ctx, slog.LevelError, "files janitor", slog.String("error", err.Error()))
		}
		for _, u := range stale {
			if err := s.destroyStale(ctx, &u); err != nil {
				s.log.LogAttrs(ctx, slog.LevelError, "files janitor", slog.String("upload", u.ID), slog.String("error", err.Error()))
			}
		}
		if len(stale) > 0 {
			s.log.LogAttrs(ctx, slog.LevelInfo, "stale uploads destroyed", slog.Int("uploads", len(stale)))
		}
		cancel()
	}
}

// destroyStale destroys u if it is still an open upload (it may have been
// finished since it was listed).
func (s *Service) destroyStale(ctx context.Context, u *upload) error {
	defer s.lockUpload(u)()
	if _, err := s.st.upload(ctx, u.ID); errors.Is(err, ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	return s.destroyUploadLocked(ctx, u)
}

// destroyUpload removes an upload's (or a file's) ciphertext and rows.
func (s *Service) destroyUpload(ctx context.Context, u *upload) error {
	defer s.lockUpload(u)()
	return s.destroyUploadLocked(ctx, u)
}

func (s *Service) destroyUploadLocked(ctx context.Context, u *upload) error {
	s.running.take(u.ID)
	p, err := s.blobPath(u.ChatID, u.ID)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	n, err := s.st.deleteUpload(ctx, u.ID)
	if err != nil {
		return err
	}
	if n > 0 {
		// The name is visitor data: leave no page of it in the WAL.
		return s.st.db.Checkpoint(ctx)
	}
	return nil
}

// lockUpload takes u's chat lock (shared) and then u's own lock.
func (s *Service) lockUpload(u *upload) func() {
	unlockChat := s.locks.shared(u.ChatID)
	unlockUpload := s.uploads.exclusive(u.ID)
	return func() { unlockUpload(); unlockChat() }
}

func newID() string { return ids.New() }
