package account

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"testing"

	"connectrpc.com/connect"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	"github.com/lethehq/lethe/gen/go/lethe/account/v1/accountv1connect"
	"github.com/lethehq/lethe/server/auth"
)

// Sessions are served from memory (auth.SessionStore), yet every way a
// session ends takes effect on the very next request: each case warms
// the cache with a few requests that write nothing, ends the session
// through the service, and then finds the token refused by the service,
// by the session store and gone from SQLite.
func TestSessionCache_EveryWayASessionEndsTakesEffectOnTheNextRequest(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// end ends the session of target (Bob's second console), by
		// bob (his first console) or admin.
		end func(t *testing.T, e *env, admin, bob, target *operator)
	}{
		{"logout", func(t *testing.T, _ *env, _, _, target *operator) {
			if _, err := target.account.Logout(context.Background(), connect.NewRequest(&accountv1.LogoutRequest{})); err != nil {
				t.Fatal(err)
			}
		}},
		{"revoked from another session", func(t *testing.T, _ *env, _, bob, target *operator) {
			if err := bob.revoke(current(t, target.sessions()).Id); err != nil {
				t.Fatal(err)
			}
		}},
		{"revoked by itself", func(t *testing.T, _ *env, _, _, target *operator) {
			if err := target.revoke(current(t, target.sessions()).Id); err != nil {
				t.Fatal(err)
			}
		}},
		{"operator disabled by an admin", func(t *testing.T, _ *env, admin, bob, _ *operator) {
			if _, err := admin.setDisabled(bob.me.Id, true); err != nil {
				t.Fatal(err)
			}
		}},
		{"operator deleted by themself from another session", func(t *testing.T, _ *env, _, bob, _ *operator) {
			if err := bob.deleteMe(operatorPassword); err != nil {
				t.Fatal(err)
			}
		}},
		{"operator deleted by themself from this session", func(t *testing.T, _ *env, _, _, target *operator) {
			if err := target.deleteMe(operatorPassword); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			admin := e.admin()
			bob := e.createOperator(admin, "bob@example.com", "Bob")
			target := e.login("bob@example.com", operatorPassword)
			token := target.cookie().Value
			store := auth.SessionStoreOf(e.sessions)
			writes := store.Writes()
			for range 5 {
				if _, err := target.getMe(); err != nil {
					t.Fatalf("GetMe before the end: %v", err)
				}
			}
			if n := store.Writes() - writes; n != 0 {
				t.Fatalf("5 requests wrote the session %d times, want 0", n)
			}

			tc.end(t, e, admin, bob, target)

			res := e.post(accountv1connect.AccountServiceGetMeProcedure, "{}", http.Header{"Cookie": {sessionCookie + "=" + token}})
			if res.StatusCode != http.StatusUnauthorized {
				t.Errorf("the next request with the token: HTTP %d, want 401", res.StatusCode)
			}
			ctx, err := e.sessions.Load(context.Background(), token)
			if err != nil {
				t.Fatal(err)
			}
			if id := e.sessions.GetString(ctx, auth.SessionKey); id != "" {
				t.Errorf("the session store still serves the token (operator %q)", id)
			}
			var n int
			err = e.db.R.QueryRow(`SELECT count(*) FROM sessions WHERE token = ?`, token).Scan(&n)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("the session's row is still in SQLite")
			}
		})
	}
}
