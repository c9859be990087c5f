package monitor

import (
	"context"
	"database/sql"
	"log/slog"
	"time"

	"github.com/lethehq/lethe/server/store"
)

// The data inventory lists the custom data keys an account received lately
// (keys only: the values are visitor data and live in scratch.db with their
// visit). Keys are remembered in lethe.db, written at most once an hour per
// account and key, so a busy site does not write to the durable database on
// every call.
const (
	// keyNoteInterval is the least time between two writes of one key.
	keyNoteInterval = time.Hour
	// CustomKeyRetention: a key not seen for this long is forgotten.
	CustomKeyRetention = 48 * time.Hour
	// MaxCustomKeysPerAccount bounds the keys remembered for an account:
	// anonymous visitors can send any key through SetCustomData (P14).
	MaxCustomKeysPerAccount = 1000
	// maxKeysNoted bounds the in-memory set of recently written keys (P14).
	maxKeysNoted = 10_000
)

// noteKeys records that keys arrived for the account, writing those not
// written in the last keyNoteInterval. A failure is logged, never the
// caller's: the visitor's call succeeded.
func (s *Service) noteKeys(ctx context.Context, accountID string, keys []string, now time.Time) {
	if len(keys) == 0 {
		return
	}
	var fresh []string
	s.keysMu.Lock()
	for _, k := range keys {
		if at, ok := s.keysNoted[accountID+"\x00"+k]; ok && now.Sub(at) < keyNoteInterval {
			continue
		}
		fresh = append(fresh, k)
	}
	if len(fresh) > 0 {
		if len(s.keysNoted)+len(fresh) > maxKeysNoted {
			s.forgetNotedLocked(now)
			if len(s.keysNoted)+len(fresh) > maxKeysNoted {
				clear(s.keysNoted) // costs some writes, never memory
			}
		}
		for _, k := range fresh {
			s.keysNoted[accountID+"\x00"+k] = now
		}
	}
	s.keysMu.Unlock()
	if len(fresh) == 0 {
		return
	}
	if err := s.keys.noteCustomKeys(ctx, accountID, fresh, now); err != nil {
		s.log.WarnContext(ctx, "note custom data keys", slog.String("account", accountID), slog.Int("keys", len(fresh)), slog.String("error", err.Error()))
		s.keysMu.Lock()
		for _, k := range fresh {
			delete(s.keysNoted, accountID+"\x00"+k) // the next call tries again
		}
		s.keysMu.Unlock()
	}
}

// forgetNotedLocked drops the keys whose write is older than
// keyNoteInterval (they would be written again anyway). keysMu is held.
func (s *Service) forgetNotedLocked(now time.Time) {
	for id, at := range s.keysNoted {
		if now.Sub(at) >= keyNoteInterval {
			delete(s.keysNoted, id)
		}
	}
}

// pruneKeys forgets keys not seen for CustomKeyRetention, once an hour
// (called by the janitor, under sweepMu).
func (s *Service) pruneKeys(ctx context.Context, now time.Time) error {
	if now.Sub(s.keysPruned) < keyNoteInterval {
		return nil
	}
	s.keysPruned = now
	s.keysMu.Lock()
	s.forgetNotedLocked(now)
	s.keysMu.Unlock()
	n, err := s.keys.pruneCustomKeys(ctx, now.Add(-CustomKeyRetention))
	if err != nil {
		return err
	}
	if n > 0 {
		s.log.Info("custom data keys pruned", slog.Int64("keys", n))
	}
	return nil
}

// CustomDataKeys lists the custom data keys (never values) that arrived for
// the account through SetCustomData, Identify or Track since a time, sorted.
// A key's time is kept to the hour: one seen a little before since may be
// listed.
func (s *Service) CustomDataKeys(ctx context.Context, accountID string, since time.Time) ([]string, error) {
	return s.keys.customKeys(ctx, accountID, since)
}

// noteCustomKeys marks keys seen at now; new keys are added while the
// account has fewer than MaxCustomKeysPerAccount.
func (ks *KeyStore) noteCustomKeys(ctx context.Context, accountID string, keys []string, now time.Time) error {
	return ks.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, k := range keys {
			res, err := tx.ExecContext(ctx, `UPDATE monitor_custom_keys SET last_seen = max(last_seen, ?) WHERE account_id = ? AND key = ?`,
				ms(now), accountID, k)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n > 0 {
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO monitor_custom_keys (account_id, key, last_seen)
				SELECT ?, ?, ? WHERE (SELECT count(*) FROM monitor_custom_keys WHERE account_id = ?) < ?`,
				accountID, k, ms(now), accountID, MaxCustomKeysPerAccount); err != nil {
				return err
			}
		}
		return nil
	})
}

func (ks *KeyStore) customKeys(ctx context.Context, accountID string, since time.Time) ([]string, error) {
	return store.Column[string](ctx, ks.db.R, `SELECT key FROM monitor_custom_keys WHERE account_id = ? AND last_seen >= ? ORDER BY key`,
		accountID, ms(since))
}

func (ks *KeyStore) pruneCustomKeys(ctx context.Context, before time.Time) (int64, error) {
	res, err := ks.db.W.ExecContext(ctx, `DELETE FROM monitor_custom_keys WHERE last_seen < ?`, ms(before))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
