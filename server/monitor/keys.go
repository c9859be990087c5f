package monitor

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect"

	monitorv1 "github.com/lethehq/lethe/gen/go/lethe/monitor/v1"
	"github.com/lethehq/lethe/server/audit"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/ids"
	"github.com/lethehq/lethe/server/store"
)

// API key limits, stated in the proto.
const (
	MaxKeyNameChars   = 100
	MaxKeysPerAccount = 50
	// keyPrefixLen is how much of a key is kept in clear to recognise it:
	// "lk_" and 8 characters (48 of its 256 bits).
	keyPrefixLen = len(auth.APIKeyPrefix) + 8
)

// KeyStore owns the API keys table in the durable lethe.db. Only the SHA-256
// of a key is stored.
type KeyStore struct {
	db *store.DB
}

// NewKeyStore migrates and returns the API key store on the durable database.
func NewKeyStore(ctx context.Context, durable *store.DB) (*KeyStore, error) {
	sub, _ := fs.Sub(migrations, "migrations/durable")
	if err := durable.Migrate(ctx, "monitor_keys", sub); err != nil {
		return nil, err
	}
	return &KeyStore{db: durable}, nil
}

type apiKey struct {
	id, accountID, name, prefix string
	createdAt, lastUsedAt       int64
}

func (k *apiKey) proto() *monitorv1.ApiKey {
	return &monitorv1.ApiKey{Id: k.id, Name: k.name, Prefix: k.prefix, CreatedAt: tsOrNil(k.createdAt), LastUsedAt: tsOrNil(k.lastUsedAt)}
}

func (ks *KeyStore) create(ctx context.Context, accountID, name string, now time.Time) (*apiKey, string, error) {
	secret := auth.APIKeyPrefix + ids.Token()
	k := &apiKey{id: ids.New(), accountID: accountID, name: name, prefix: secret[:keyPrefixLen], createdAt: ms(now)}
	err := ks.db.Tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM monitor_api_keys WHERE account_id = ?`, accountID).Scan(&n); err != nil {
			return err
		}
		if n >= MaxKeysPerAccount {
			return errs.Exhausted("an account has at most %d API keys; revoke one first", MaxKeysPerAccount)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO monitor_api_keys (id, account_id, name, prefix, hash, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			k.id, accountID, name, k.prefix, ids.Hash(secret), k.createdAt)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return k, secret, nil
}

func (ks *KeyStore) list(ctx context.Context, accountID string) ([]*apiKey, error) {
	rows, err := ks.db.R.QueryContext(ctx, `SELECT id, account_id, name, prefix, created_at, last_used_at FROM monitor_api_keys
		WHERE account_id = ? ORDER BY created_at, id`, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*apiKey
	for rows.Next() {
		var k apiKey
		if err := rows.Scan(&k.id, &k.accountID, &k.name, &k.prefix, &k.createdAt, &k.lastUsedAt); err != nil {
			return nil, err
		}
		out = append(out, &k)
	}
	return out, rows.Err()
}

func (ks *KeyStore) revoke(ctx context.Context, accountID, id string) error {
	res, err := ks.db.W.ExecContext(ctx, `DELETE FROM monitor_api_keys WHERE id = ? AND account_id = ?`, id, accountID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

func (ks *KeyStore) byHash(ctx context.Context, hash []byte) (*apiKey, error) {
	var k apiKey
	err := ks.db.R.QueryRowContext(ctx, `SELECT id, account_id, name, prefix, created_at, last_used_at FROM monitor_api_keys WHERE hash = ?`, hash).
		Scan(&k.id, &k.accountID, &k.name, &k.prefix, &k.createdAt, &k.lastUsedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &k, nil
}

func (ks *KeyStore) exists(ctx context.Context, id string) (bool, error) {
	var n int
	err := ks.db.R.QueryRowContext(ctx, `SELECT count(*) FROM monitor_api_keys WHERE id = ?`, id).Scan(&n)
	return n > 0, err
}

func (ks *KeyStore) used(ctx context.Context, id string, now time.Time) error {
	_, err := ks.db.W.ExecContext(ctx, `UPDATE monitor_api_keys SET last_used_at = ? WHERE id = ?`, ms(now), id)
	return err
}

// APIKeyByToken implements auth.APIKeySource.
func (s *Service) APIKeyByToken(ctx context.Context, key string) (*auth.Key, error) {
	if !strings.HasPrefix(key, auth.APIKeyPrefix) {
		return nil, errs.Unauthenticated("unknown or revoked API key")
	}
	k, err := s.keys.byHash(ctx, ids.Hash(key))
	if errors.Is(err, ErrNotFound) {
		return nil, errs.Unauthenticated("unknown or revoked API key")
	}
	if err != nil {
		return nil, err
	}
	now := time.Now()
	// Last use is shown to admins with minute precision; spare the writes.
	if now.Sub(time.UnixMilli(k.lastUsedAt)) > time.Minute {
		if err := s.keys.used(ctx, k.id, now); err != nil {
			s.log.WarnContext(ctx, "api key last use", slog.String("key", k.id), slog.String("error", err.Error()))
		}
	}
	return &auth.Key{ID: k.id, AccountID: k.accountID}, nil
}

// CreateApiKey implements MonitorServiceHandler.
func (s *Service) CreateApiKey(ctx context.Context, req *connect.Request[monitorv1.CreateApiKeyRequest]) (*connect.Response[monitorv1.CreateApiKeyResponse], error) {
	op, err := admin(ctx)
	if err != nil {
		return nil, err
	}
	name := strings.TrimSpace(req.Msg.Name)
	if name == "" || utf8.RuneCountInString(name) > MaxKeyNameChars || !utf8.ValidString(name) {
		return nil, errs.Invalid("the key name must be 1 to %d characters", MaxKeyNameChars)
	}
	k, secret, err := s.keys.create(ctx, op.AccountID, name, time.Now())
	if err != nil {
		return nil, err
	}
	s.opts.Audit.Record(ctx, audit.By(ctx, audit.Entry{AccountID: op.AccountID, Action: audit.APIKeyCreated, TargetID: k.id}))
	s.log.InfoContext(ctx, "api key created", slog.String("account", op.AccountID), slog.String("key", k.id), slog.String("by", op.ID))
	return connect.NewResponse(&monitorv1.CreateApiKeyResponse{ApiKey: k.proto(), Key: secret}), nil
}

// ListApiKeys implements MonitorServiceHandler.
func (s *Service) ListApiKeys(ctx context.Context, req *connect.Request[monitorv1.ListApiKeysRequest]) (*connect.Response[monitorv1.ListApiKeysResponse], error) {
	op, err := admin(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := s.keys.list(ctx, op.AccountID)
	if err != nil {
		return nil, err
	}
	res := &monitorv1.ListApiKeysResponse{}
	for _, k := range keys {
		res.ApiKeys = append(res.ApiKeys, k.proto())
	}
	return connect.NewResponse(res), nil
}

// RevokeApiKey implements MonitorServiceHandler.
func (s *Service) RevokeApiKey(ctx context.Context, req *connect.Request[monitorv1.RevokeApiKeyRequest]) (*connect.Response[monitorv1.RevokeApiKeyResponse], error) {
	op, err := admin(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.keys.revoke(ctx, op.AccountID, req.Msg.Id); errors.Is(err, ErrNotFound) {
		return nil, errs.NotFound("no such API key")
	} else if err != nil {
		return nil, err
	}
	s.opts.Audit.Record(ctx, audit.By(ctx, audit.Entry{AccountID: op.AccountID, Action: audit.APIKeyRevoked, TargetID: req.Msg.Id}))
	s.log.InfoContext(ctx, "api key revoked", slog.String("account", op.AccountID), slog.String("key", req.Msg.Id), slog.String("by", op.ID))
	return connect.NewResponse(&monitorv1.RevokeApiKeyResponse{}), nil
}

// admin returns the calling operator if they are an admin. The interceptor
// enforces this already (Policy); the check here keeps direct callers honest.
func admin(ctx context.Context) (*auth.Operator, error) {
	op, ok := auth.OperatorFrom(ctx)
	if !ok {
		return nil, errs.Unauthenticated("sign in first")
	}
	if !op.Admin {
		return nil, errs.Denied("only admins may do this")
	}
	return op, nil
}

func operator(ctx context.Context) (*auth.Operator, error) {
	op, ok := auth.OperatorFrom(ctx)
	if !ok {
		return nil, errs.Unauthenticated("sign in first")
	}
	return op, nil
}
