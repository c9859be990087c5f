package files

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// ErrNotFound is returned for an unknown upload or file.
var ErrNotFound = errs.ErrNotFound

// Store owns the files tables in scratch.db: chat keys, uploads and their
// received chunks, finished files.
type Store struct {
	db *store.DB
}

// NewStore migrates and returns the files store on the scratch database.
func NewStore(ctx context.Context, db *store.DB) (*Store, error) {
	sub, _ := fs.Sub(migrations, "migrations")
	if err := db.Migrate(ctx, "files", sub); err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

// upload is one row of file_uploads.
type upload struct {
	ID, ChatID, AccountID string
	Kind                  chatv1.AuthorKind
	UploaderID, Uploader  string
	Name                  string
	Size                  int64
	ContentType           string
}

// file is one row of files.
type file struct {
	upload
	SHA256 string
}

// key returns the chat's key, nil when it has none.
func (s *Store) key(ctx context.Context, chatID string) ([]byte, error) {
	var k []byte
	err := s.db.R.QueryRowContext(ctx, `SELECT key FROM file_keys WHERE chat_id = ?`, chatID).Scan(&k)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return k, err
}

// quota is what startUpload checks in the same transaction that inserts the
// upload, so two uploads racing cannot both take the last free bytes.
type quota struct {
	maxChat, maxTotal int64
}

// errQuota reports which quota a new upload would exceed and what is used.
type errQuota struct {
	chat bool
	used int64
}

func (e *errQuota) Error() string { return fmt.Sprintf("quota (chat %v, used %d)", e.chat, e.used) }

// startUpload makes the chat's key if it has none and inserts the upload,
// both in one transaction with the quota check.
func (s *Store) startUpload(ctx context.Context, u upload, q quota) error {
	now := time.Now().UnixMilli()
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		used, err := chatUsage(ctx, tx, u.ChatID)
		if err != nil {
			return err
		}
		if used+u.Size > q.maxChat {
			return &errQuota{chat: true, used: used}
		}
		if q.maxTotal > 0 {
			var total int64
			if err := tx.QueryRowContext(ctx, `SELECT (SELECT coalesce(sum(size), 0) FROM files) + (SELECT coalesce(sum(size), 0) FROM file_uploads)`).Scan(&total); err != nil {
				return err
			}
			if total+u.Size > q.maxTotal {
				return &errQuota{used: total}
			}
		}
		key := make([]byte, 32)
		rand.Read(key)
		if _, err := tx.ExecContext(ctx, `INSERT INTO file_keys (chat_id, key, created_at) VALUES (?, ?, ?) ON CONFLICT (chat_id) DO NOTHING`, u.ChatID, key, now); err != nil {
			return err
		}
		clear(key)
		_, err = tx.ExecContext(ctx, `INSERT INTO file_uploads (id, chat_id, account_id, uploader_kind, uploader_id, uploader_name, name, size, created_at, touched_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, u.ID, u.ChatID, u.AccountID, int32(u.Kind), u.UploaderID, u.Uploader, u.Name, u.Size, now, now)
		return err
	})
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// chatUsage is the bytes of a chat's finished files and open uploads.
func chatUsage(ctx context.Context, q querier, chatID string) (int64, error) {
	var used int64
	err := q.QueryRowContext(ctx, `SELECT (SELECT coalesce(sum(size), 0) FROM files WHERE chat_id = ?1)
		+ (SELECT coalesce(sum(size), 0) FROM file_uploads WHERE chat_id = ?1)`, chatID).Scan(&used)
	return used, err
}

func (s *Store) usage(ctx context.Context, chatID string) (int64, error) {
	return chatUsage(ctx, s.db.R, chatID)
}

const uploadCols = `id, chat_id, account_id, uploader_kind, uploader_id, uploader_name, name, size, content_type`

func scanUpload(row interface{ Scan(...any) error }, u *upload, extra ...any) error {
	var kind int32
	err := row.Scan(append([]any{&u.ID, &u.ChatID, &u.AccountID, &kind, &u.UploaderID, &u.Uploader, &u.Name, &u.Size, &u.ContentType}, extra...)...)
	u.Kind = chatv1.AuthorKind(kind)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// upload reads an open upload (ErrNotFound when there is none). It reads
// on the write pool so that it sees the writer's own last commit.
func (s *Store) upload(ctx context.Context, id string) (*upload, error) {
	u := &upload{}
	if err := scanUpload(s.db.W.QueryRowContext(ctx, `SELECT `+uploadCols+` FROM file_uploads WHERE id = ?`, id), u); err != nil {
		return nil, err
	}
	return u, nil
}

// file reads a finished file (ErrNotFound when there is none).
func (s *Store) file(ctx context.Context, id string) (*file, error) {
	f := &file{}
	if err := scanUpload(s.db.R.QueryRowContext(ctx, `SELECT `+uploadCols+`, sha256 FROM files WHERE id = ?`, id), &f.upload, &f.SHA256); err != nil {
		return nil, err
	}
	return f, nil
}

// chunks returns the received chunk indexes of an upload, ascending.
func (s *Store) chunks(ctx context.Context, uploadID string) ([]int64, error) {
	return store.Column[int64](ctx, s.db.W, `SELECT idx FROM file_chunks WHERE upload_id = ? ORDER BY idx`, uploadID)
}

// hasChunk reports whether chunk idx of an upload arrived.
func (s *Store) hasChunk(ctx context.Context, uploadID string, idx int64) (bool, error) {
	var n int
	err := s.db.W.QueryRowContext(ctx, `SELECT count(*) FROM file_chunks WHERE upload_id = ? AND idx = ?`, uploadID, idx).Scan(&n)
	return n > 0, err
}

// addChunk records chunk idx as received (and the type, for chunk 0).
func (s *Store) addChunk(ctx context.Context, uploadID string, idx int64, contentType string) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO file_chunks (upload_id, idx) VALUES (?, ?) ON CONFLICT DO NOTHING`, uploadID, idx); err != nil {
			return err
		}
		q, args := `UPDATE file_uploads SET touched_at = ? WHERE id = ?`, []any{time.Now().UnixMilli(), uploadID}
		if contentType != "" {
			q, args = `UPDATE file_uploads SET touched_at = ?, content_type = ? WHERE id = ?`, []any{time.Now().UnixMilli(), contentType, uploadID}
		}
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	})
}

// dropChunk forgets a chunk whose ciphertext turned out unreadable, so that
// it can be sent again.
func (s *Store) dropChunk(ctx context.Context, uploadID string, idx int64) error {
	_, err := s.db.W.ExecContext(ctx, `DELETE FROM file_chunks WHERE upload_id = ? AND idx = ?`, uploadID, idx)
	return err
}

// finish turns an upload into a file.
func (s *Store) finish(ctx context.Context, u *upload, sha string) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO files (id, chat_id, account_id, uploader_kind, uploader_id, uploader_name, name, size, content_type, sha256, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, u.ID, u.ChatID, u.AccountID, int32(u.Kind), u.UploaderID, u.Uploader, u.Name, u.Size, u.ContentType, sha, time.Now().UnixMilli()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM file_uploads WHERE id = ?`, u.ID)
		return err
	})
}

// deleteUpload deletes an upload or a file row (and its chunks) by id.
func (s *Store) deleteUpload(ctx context.Context, id string) (int64, error) {
	return s.deleteAll(ctx, id, `DELETE FROM file_uploads WHERE id = ?`, `DELETE FROM files WHERE id = ?`)
}

// deleteAll runs the deletes with arg in one transaction and returns the
// rows they deleted.
func (s *Store) deleteAll(ctx context.Context, arg string, queries ...string) (int64, error) {
	var n int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, q := range queries {
			res, err := tx.ExecContext(ctx, q, arg)
			if err != nil {
				return err
			}
			m, _ := res.RowsAffected()
			n += m
		}
		return nil
	})
	return n, err
}

// hasAny reports whether a chat has a key, an upload or a file.
func (s *Store) hasAny(ctx context.Context, chatID string) (bool, error) {
	var n int
	err := s.db.W.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM file_keys WHERE chat_id = ?1)
		OR EXISTS (SELECT 1 FROM file_uploads WHERE chat_id = ?1) OR EXISTS (SELECT 1 FROM files WHERE chat_id = ?1)`, chatID).Scan(&n)
	return n != 0, err
}

// deleteKey deletes a chat's key.
func (s *Store) deleteKey(ctx context.Context, chatID string) (bool, error) {
	res, err := s.db.W.ExecContext(ctx, `DELETE FROM file_keys WHERE chat_id = ?`, chatID)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// deleteChatRows deletes a chat's uploads (with their chunks) and files.
func (s *Store) deleteChatRows(ctx context.Context, chatID string) (int64, error) {
	return s.deleteAll(ctx, chatID, `DELETE FROM file_uploads WHERE chat_id = ?`, `DELETE FROM files WHERE chat_id = ?`)
}

// chatIDs lists every chat with a key, an upload or a file (startup sweep).
func (s *Store) chatIDs(ctx context.Context) ([]string, error) {
	return store.Column[string](ctx, s.db.R, `SELECT chat_id FROM file_keys UNION SELECT chat_id FROM file_uploads UNION SELECT chat_id FROM files`)
}

// staleUploads lists uploads untouched since before.
func (s *Store) staleUploads(ctx context.Context, before time.Time) ([]upload, error) {
	rows, err := s.db.R.QueryContext(ctx, `SELECT `+uploadCols+` FROM file_uploads WHERE touched_at < ?`, before.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []upload
	for rows.Next() {
		var u upload
		if err := scanUpload(rows, &u); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}
