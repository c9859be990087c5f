package chat

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// ErrNotFound is returned when a chat or visitor does not exist.
var ErrNotFound = errs.ErrNotFound

// State is a chat's state as stored.
type State int

const (
	StateWaiting State = 1
	StateActive  State = 2
	StateClosed  State = 3
)

func (s State) proto() chatv1.ChatState { return chatv1.ChatState(s) }

// Chat is one chat row.
type Chat struct {
	ID           string
	AccountID    string
	VisitorID    string
	VisitorName  string
	VisitorEmail string
	State        State
	OperatorID   string
	OperatorName string
	LastSeq      int64
	StartedAt    time.Time
	// Empty when hidden (P5).
	VisitorIP, VisitorHost string
	TranscriptEmail        string
	// The consent the visitor accepted (version 0: none).
	ConsentVersion int32
	ConsentLocale  string
	ConsentAt      time.Time
	SeenAt         time.Time
}

func (c *Chat) summary() *chatv1.ChatSummary {
	return &chatv1.ChatSummary{
		ChatId: c.ID, State: c.State.proto(), VisitorName: c.VisitorName, VisitorEmail: c.VisitorEmail,
		OperatorId: c.OperatorID, OperatorName: c.OperatorName, StartedAt: timestamppb.New(c.StartedAt), LastSeq: c.LastSeq,
		VisitorIp: c.VisitorIP, VisitorHost: c.VisitorHost,
	}
}

// Store owns the visitors, chats and events tables in scratch.db. Every
// change goes through its writer (writer.go): group commit, one goroutine.
type Store struct {
	db *store.DB
	// r and w run the hot statements prepared once, on the read pool and
	// on the write connection.
	r, w *store.Prepared
	wr   *writer
	// onSeen, if set, is told after the commit each time a chat's visitor
	// is seen (chat started, stream ended, file shared): the janitor's
	// only input (close.go).
	onSeen func(chatID, accountID string, at time.Time)
}

// NewStore migrates and returns the chat store.
func NewStore(ctx context.Context, db *store.DB) (*Store, error) {
	sub, _ := fs.Sub(migrations, "migrations")
	if err := db.Migrate(ctx, "chat", sub); err != nil {
		return nil, err
	}
	s := &Store{db: db, r: store.Prepare(db.R), w: store.Prepare(db.W), wr: newWriter(db.W, DefaultWriteBatch)}
	// The writer's statements are prepared on the write connection before
	// any transaction holds it (store.Prepared.PrepareAll).
	if err := s.w.PrepareAll(ctx, writeQueries...); err != nil {
		return nil, err
	}
	return s, nil
}

// setBatch sets the writer's batch size (before its first change).
func (s *Store) setBatch(n int) {
	if n > 0 {
		s.wr.batch = n
	}
}

// Close stops the writer after it applied what is queued; changes asked
// after that are refused (Unavailable). The database stays open.
func (s *Store) Close() error {
	s.wr.close()
	return errors.Join(s.r.Close(), s.w.Close())
}

// DB is the scratch database (for checkpoints after destruction).
func (s *Store) DB() *store.DB { return s.db }

const chatCols = `c.id, c.account_id, c.visitor_id, v.name, v.email, c.state, c.operator_id, c.operator_name, c.last_seq, c.started_at,
	v.ip, v.host, v.transcript_email, c.consent_version, c.consent_locale, c.consent_at, c.visitor_seen_at`

// The statements of the request path and the janitor, by name: the code
// runs these very strings and explain_test.go checks each uses an index.
const (
	qChatByID        = `SELECT ` + chatCols + ` FROM chats c JOIN visitors v ON v.id = c.visitor_id WHERE c.id = ?`
	qChatByTokenHash = `SELECT ` + chatCols + ` FROM chats c JOIN visitors v ON v.id = c.visitor_id WHERE v.token_hash = ?`
	// Three state slots; unused ones are 0 (no chat has state 0).
	qChatsOfAccount = `SELECT ` + chatCols + ` FROM chats c JOIN visitors v ON v.id = c.visitor_id
	WHERE c.account_id = ? AND c.state IN (?, ?, ?) ORDER BY c.started_at, c.id`
	qChatsInStates = `SELECT ` + chatCols + ` FROM chats c JOIN visitors v ON v.id = c.visitor_id
	WHERE c.state IN (?, ?, ?) ORDER BY c.started_at, c.id`
	qEventsAfter     = `SELECT body FROM events WHERE chat_id = ? AND seq > ? ORDER BY seq`
	qInsertEvent     = `INSERT INTO events (chat_id, seq, body) VALUES (?, ?, ?)`
	qUpdateEventBody = `UPDATE events SET body = ? WHERE chat_id = ? AND seq = ?`
	qInsertVisitor   = `INSERT INTO visitors (id, account_id, token_hash, name, email, ip, host, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	qInsertChat      = `INSERT INTO chats (id, account_id, visitor_id, state, started_at, consent_version, consent_locale, consent_at, visitor_seen_at, last_seq)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qUpdateChat          = `UPDATE chats SET state = ?, operator_id = ?, operator_name = ?, closed_at = ?, last_seq = ? WHERE id = ?`
	qTouch               = `UPDATE chats SET visitor_seen_at = ? WHERE id = ? RETURNING account_id`
	qUpdateVisitor       = `UPDATE visitors SET name = ?, email = ? WHERE id = ?`
	qSetTranscriptEmail  = `UPDATE visitors SET transcript_email = ? WHERE id = ?`
	qVisitorTokenHash    = `SELECT token_hash FROM visitors WHERE id = ?`
	qDestroyChatVisitor  = `SELECT visitor_id FROM chats WHERE id = ?`
	qDestroyEvents       = `DELETE FROM events WHERE chat_id = ?`
	qDestroyChat         = `DELETE FROM chats WHERE id = ?`
	qDestroyVisitor      = `DELETE FROM visitors WHERE id = ?`
	qClosedChatIDs       = `SELECT id FROM chats WHERE state = 3`
	qOpenChatsSeen       = `SELECT id, account_id, visitor_seen_at FROM chats WHERE state IN (1, 2)`
	qChatsByEmailOrdered = chatsByEmailQuery + ` ORDER BY 1`
)

// writeQueries run on the write connection.
var writeQueries = []string{qChatByID, qEventsAfter, qInsertEvent, qUpdateEventBody, qInsertVisitor, qInsertChat,
	qUpdateChat, qTouch, qUpdateVisitor, qSetTranscriptEmail, qDestroyChatVisitor, qDestroyEvents, qDestroyChat, qDestroyVisitor}

func scanChat(row interface{ Scan(...any) error }) (*Chat, error) {
	var c Chat
	var started, consentAt, seen int64
	err := row.Scan(&c.ID, &c.AccountID, &c.VisitorID, &c.VisitorName, &c.VisitorEmail, &c.State, &c.OperatorID, &c.OperatorName, &c.LastSeq, &started,
		&c.VisitorIP, &c.VisitorHost, &c.TranscriptEmail, &c.ConsentVersion, &c.ConsentLocale, &consentAt, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	c.StartedAt = time.UnixMilli(started)
	if consentAt > 0 {
		c.ConsentAt = time.UnixMilli(consentAt)
	}
	c.SeenAt = time.UnixMilli(seen)
	return &c, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func getChat(ctx context.Context, q *store.Prepared, id string) (*Chat, error) {
	return scanChat(q.QueryRowContext(ctx, qChatByID, id))
}

// Chat returns one chat.
// Like every read a visitor's stream makes, it runs off the caller's stack
// (store.OffStack), so that an idle stream keeps a small one.
func (s *Store) Chat(ctx context.Context, id string) (*Chat, error) {
	return store.OffStack(func() (*Chat, error) { return getChat(ctx, s.r, id) })
}

// VisitorByTokenHash returns the chat of the visitor holding a token.
func (s *Store) VisitorByTokenHash(ctx context.Context, hash []byte) (*Chat, error) {
	return store.OffStack(func() (*Chat, error) { return scanChat(s.r.QueryRowContext(ctx, qChatByTokenHash, hash)) })
}

// Chats lists an account's chats in the given states (at most three; all
// accounts when accountID is empty), oldest first.
func (s *Store) Chats(ctx context.Context, accountID string, states ...State) ([]*Chat, error) {
	if len(states) > 3 {
		return nil, fmt.Errorf("chats: at most 3 states, got %d", len(states))
	}
	var in [3]any
	for i := range in {
		in[i] = 0
		if i < len(states) {
			in[i] = states[i]
		}
	}
	var rows *sql.Rows
	var err error
	if accountID == "" {
		rows, err = s.r.QueryContext(ctx, qChatsInStates, in[:]...)
	} else {
		rows, err = s.r.QueryContext(ctx, qChatsOfAccount, append([]any{accountID}, in[:]...)...)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Chat
	for rows.Next() {
		c, err := scanChat(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Events returns the stored events of a chat with seq > after, in order.
func (s *Store) Events(ctx context.Context, chatID string, after int64) ([]*chatv1.ChatEvent, error) {
	return store.OffStack(func() ([]*chatv1.ChatEvent, error) { return events(ctx, s.r, chatID, after) })
}

func events(ctx context.Context, q querier, chatID string, after int64) ([]*chatv1.ChatEvent, error) {
	rows, err := q.QueryContext(ctx, qEventsAfter, chatID, after)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*chatv1.ChatEvent
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		ev := &chatv1.ChatEvent{}
		if err := proto.Unmarshal(b, ev); err != nil {
			return nil, fmt.Errorf("decode event: %w", err)
		}
		out = append(out, ev)
	}
	return out, rows.Err()
}

// NewChat is what StartChat stores.
type NewChat struct {
	ChatID, VisitorID, AccountID string
	TokenHash                    []byte
	Name, Email, FirstMessage    string
	MessageID                    string
	// Empty when hidden (P5).
	IP, Host       string
	ConsentVersion int32
	ConsentLocale  string
}

// Create stores a new visitor and their waiting chat with its first two
// events (started, first message), through the writer. after, if not nil,
// runs after the commit in the writer's order (publication).
func (s *Store) Create(ctx context.Context, n NewChat, after func(c *Chat, evs []*chatv1.ChatEvent)) (*Chat, []*chatv1.ChatEvent, error) {
	now := time.Now()
	evs := []*chatv1.ChatEvent{
		{Kind: &chatv1.ChatEvent_Started{Started: &chatv1.ChatStarted{VisitorName: n.Name}}},
		{Kind: &chatv1.ChatEvent_Message{Message: &chatv1.Message{Id: n.MessageID, AuthorKind: chatv1.AuthorKind_AUTHOR_KIND_VISITOR, AuthorName: n.Name, Text: n.FirstMessage}}},
	}
	var c *Chat
	err := s.wr.do(ctx, func(ctx context.Context, sqlTx *sql.Tx) error {
		tx := s.w.Tx(sqlTx)
		ms := now.UnixMilli()
		if _, err := tx.ExecContext(ctx, qInsertVisitor,
			n.VisitorID, n.AccountID, n.TokenHash, n.Name, n.Email, n.IP, n.Host, ms); err != nil {
			return err
		}
		c = &Chat{ID: n.ChatID, AccountID: n.AccountID, VisitorID: n.VisitorID, VisitorName: n.Name, VisitorEmail: n.Email,
			State: StateWaiting, LastSeq: int64(len(evs)), StartedAt: time.UnixMilli(ms), VisitorIP: n.IP, VisitorHost: n.Host,
			ConsentVersion: n.ConsentVersion, ConsentLocale: n.ConsentLocale, SeenAt: time.UnixMilli(ms)}
		consentAt := int64(0)
		if n.ConsentVersion > 0 {
			consentAt = ms
			c.ConsentAt = time.UnixMilli(ms)
		}
		// A new chat's events are numbered from 1 here, and its row says so
		// from the start: no sequence update and no read back.
		if _, err := tx.ExecContext(ctx, qInsertChat,
			n.ChatID, n.AccountID, n.VisitorID, StateWaiting, ms, n.ConsentVersion, n.ConsentLocale, consentAt, ms, c.LastSeq); err != nil {
			return err
		}
		for i, ev := range evs {
			ev.ChatId, ev.Seq, ev.Time = n.ChatID, int64(i+1), timestamppb.New(now)
			b, err := proto.Marshal(ev)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, qInsertEvent, n.ChatID, ev.Seq, b); err != nil {
				return err
			}
		}
		return nil
	}, func() {
		if s.onSeen != nil {
			s.onSeen(c.ID, c.AccountID, c.SeenAt)
		}
		if after != nil {
			after(c, evs)
		}
	})
	if err != nil {
		return nil, nil, err
	}
	return c, evs, nil
}

// Change applies a change to one chat through the writer: check may refuse
// it (its error is returned as is, and nothing of it is stored), mutate may
// update the chat row (its fields are written back), and the events it
// returns are appended. after, if not nil, runs after the commit in the
// writer's order (publication, accounting). It returns the chat as it is
// after the change.
func (s *Store) Change(ctx context.Context, chatID string, fn func(c *Chat, tx *sql.Tx) ([]*chatv1.ChatEvent, error),
	after func(c *Chat, evs []*chatv1.ChatEvent)) (*Chat, []*chatv1.ChatEvent, error) {
	var c *Chat
	var evs []*chatv1.ChatEvent
	err := s.wr.do(ctx, func(ctx context.Context, sqlTx *sql.Tx) error {
		tx := s.w.Tx(sqlTx)
		var err error
		c, err = getChat(ctx, tx, chatID)
		if err != nil {
			return err
		}
		evs, err = fn(c, sqlTx)
		if err != nil {
			return err
		}
		before := *c
		// The events are numbered on from the row just read (the writer is
		// the only one to change it), and the row is written once, only if
		// something of it changed.
		now := timestamppb.Now()
		for _, ev := range evs {
			c.LastSeq++
			ev.ChatId, ev.Seq = chatID, c.LastSeq
			if ev.Time == nil {
				ev.Time = now
			}
			b, err := proto.Marshal(ev)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, qInsertEvent, chatID, ev.Seq, b); err != nil {
				return err
			}
		}
		if c.State == before.State && c.OperatorID == before.OperatorID && c.OperatorName == before.OperatorName && c.LastSeq == before.LastSeq {
			return nil
		}
		closedAt := int64(0)
		if c.State == StateClosed {
			closedAt = time.Now().UnixMilli()
		}
		if _, err := tx.ExecContext(ctx, qUpdateChat, c.State, c.OperatorID, c.OperatorName, closedAt, c.LastSeq, c.ID); err != nil {
			return err
		}
		return nil
	}, func() {
		if after != nil {
			after(c, evs)
		}
	})
	if err != nil {
		return nil, nil, err
	}
	return c, evs, nil
}

// read runs fn on the chat as it is in the writer's order (after every
// change queued before it), then after with that chat once the batch
// committed; nothing is written.
func (s *Store) read(ctx context.Context, chatID string, after func(c *Chat) error) error {
	var c *Chat
	var afterErr error
	err := s.wr.do(ctx, func(ctx context.Context, sqlTx *sql.Tx) error {
		var err error
		c, err = getChat(ctx, s.w.Tx(sqlTx), chatID)
		return err
	}, func() { afterErr = after(c) })
	if err != nil {
		return err
	}
	return afterErr
}

// Destroy deletes every row of a chat (events, chat, visitor) in one
// transaction. With secure_delete on, the deleted content is overwritten in
// the database file; the caller checkpoints the WAL afterwards so it is gone
// from there too.
func (s *Store) Destroy(ctx context.Context, chatID string) error {
	return s.db.Tx(ctx, func(sqlTx *sql.Tx) error {
		tx := s.w.Tx(sqlTx)
		var visitorID string
		err := tx.QueryRowContext(ctx, qDestroyChatVisitor, chatID).Scan(&visitorID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, q := range []string{qDestroyEvents, qDestroyChat} {
			if _, err := tx.ExecContext(ctx, q, chatID); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, qDestroyVisitor, visitorID)
		return err
	})
}

// chatsByEmailQuery finds an account's chats by an address their visitor
// gave, through the case-insensitive indexes of migration 002.
const chatsByEmailQuery = `SELECT c.id FROM visitors v JOIN chats c ON c.visitor_id = v.id
	WHERE v.account_id = ?1 AND v.email = ?2 COLLATE NOCASE
	UNION
	SELECT c.id FROM visitors v JOIN chats c ON c.visitor_id = v.id
	WHERE v.account_id = ?1 AND v.transcript_email = ?2 COLLATE NOCASE`

// ChatsByEmail lists the ids of the account's chats whose visitor gave
// email as their own address or for a transcript copy (ASCII
// case-insensitive), sorted.
func (s *Store) ChatsByEmail(ctx context.Context, accountID, email string) ([]string, error) {
	return store.Column[string](ctx, s.r, qChatsByEmailOrdered, accountID, email)
}

// updateVisitor sets the name and e-mail address a visitor gave, and the
// visitor's name in the chat's stored events (messages, files, the start),
// inside tx: the data held, and the transcript mailed later, say what the
// visitor corrected it to.
func (s *Store) updateVisitor(ctx context.Context, sqlTx *sql.Tx, c *Chat, name, email string) error {
	tx := s.w.Tx(sqlTx)
	if _, err := tx.ExecContext(ctx, qUpdateVisitor, name, email, c.VisitorID); err != nil {
		return err
	}
	evs, err := events(ctx, tx, c.ID, 0)
	if err != nil {
		return err
	}
	for _, ev := range evs {
		changed := false
		switch k := ev.Kind.(type) {
		case *chatv1.ChatEvent_Started:
			changed = k.Started.VisitorName != name
			k.Started.VisitorName = name
		case *chatv1.ChatEvent_Message:
			if k.Message.AuthorKind == chatv1.AuthorKind_AUTHOR_KIND_VISITOR {
				changed = k.Message.AuthorName != name
				k.Message.AuthorName = name
			}
		case *chatv1.ChatEvent_File:
			if k.File.AuthorKind == chatv1.AuthorKind_AUTHOR_KIND_VISITOR {
				changed = k.File.AuthorName != name
				k.File.AuthorName = name
			}
		}
		if !changed {
			continue
		}
		b, err := proto.Marshal(ev)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, qUpdateEventBody, b, c.ID, ev.Seq); err != nil {
			return err
		}
	}
	c.VisitorName, c.VisitorEmail = name, email
	return nil
}

func (s *Store) visitorTokenHash(ctx context.Context, visitorID string) ([]byte, error) {
	var h []byte
	err := s.r.QueryRowContext(ctx, qVisitorTokenHash, visitorID).Scan(&h)
	return h, err
}

// inTx runs the store's prepared statements inside tx (a transaction of the
// write connection, such as the one a change runs in).
func (s *Store) inTx(tx *sql.Tx) *store.Prepared { return s.w.Tx(tx) }

// SetTranscriptEmail records where the visitor wants a transcript copy.
func (s *Store) SetTranscriptEmail(ctx context.Context, visitorID, email string) error {
	return s.wr.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := s.w.Tx(tx).ExecContext(ctx, qSetTranscriptEmail, email, visitorID)
		return err
	}, nil)
}

// Touch records that the chat's visitor was seen at (through the writer).
// A chat that is gone is ErrNotFound.
func (s *Store) Touch(ctx context.Context, chatID string, at time.Time) error {
	var accountID string
	return s.wr.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		err := s.w.Tx(tx).QueryRowContext(ctx, qTouch, at.UnixMilli(), chatID).Scan(&accountID)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		return err
	}, func() {
		if s.onSeen != nil {
			s.onSeen(chatID, accountID, time.UnixMilli(at.UnixMilli()))
		}
	})
}

// openChatsSeen lists every open chat's id, account and last-seen time
// (the janitor's starting point after a restart).
func (s *Store) openChatsSeen(ctx context.Context, fn func(chatID, accountID string, seen time.Time)) error {
	rows, err := s.r.QueryContext(ctx, qOpenChatsSeen)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, account string
		var seen int64
		if err := rows.Scan(&id, &account, &seen); err != nil {
			return err
		}
		fn(id, account, time.UnixMilli(seen))
	}
	return rows.Err()
}

// closedChatIDs lists the chats closed and not destroyed yet.
func (s *Store) closedChatIDs(ctx context.Context) ([]string, error) {
	return store.Column[string](ctx, s.r, qClosedChatIDs)
}
