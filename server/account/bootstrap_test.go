package account

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/origin"
	"github.com/lethehq/lethe/server/store"
)

// restart opens the database file at path again, as the next start of the
// server would, and returns its account store and service.
func restart(t *testing.T, path string) (*Store, *Service) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := NewStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	log, _ := testkit.Logger(t)
	svc, err := NewService(st, nil, log, Options{PasswordParams: testkit.CheapPasswords})
	if err != nil {
		t.Fatal(err)
	}
	return st, svc
}

func TestBootstrap_FirstRunCreatesAdminWithSuppliedPassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if want := (FirstRun{Created: true, Email: DefaultAdminEmail}); e.firstRun != want {
		t.Fatalf("first run = %+v, want %+v", e.firstRun, want)
	}
	me, err := e.login(DefaultAdminEmail, adminPassword).getMe()
	if err != nil {
		t.Fatal(err)
	}
	if me.Operator.Role != accountv1.Role_ROLE_ADMIN || me.Account.Id != DemoAccountID {
		t.Fatalf("the first operator is %v", me)
	}
	// The demo account's widget may be embedded on the server's own pages.
	if !slices.Equal(me.Account.AllowedOrigins, []string{origin.Self}) {
		t.Fatalf("demo account origins %q, want [%s]", me.Account.AllowedOrigins, origin.Self)
	}
	if n := e.countOperators(); n != 1 {
		t.Fatalf("%d operators after the first run, want 1", n)
	}
}

func TestBootstrap_WithoutPasswordGeneratesOne(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withGeneratedPassword())
	fr := e.firstRun
	if !fr.Created || fr.Email != DefaultAdminEmail || len(fr.GeneratedPassword) < MinPasswordChars {
		t.Fatalf("first run = %+v, want the admin created with a generated password of at least %d characters", fr, MinPasswordChars)
	}
	// The password shown once is the admin's.
	if _, err := e.login(DefaultAdminEmail, fr.GeneratedPassword).getMe(); err != nil {
		t.Fatal(err)
	}
	// Another server gets another password.
	if other := newEnv(t, withGeneratedPassword()).firstRun.GeneratedPassword; other == fr.GeneratedPassword {
		t.Fatalf("two first runs generated the same password %q", other)
	}
}

func TestBootstrap_SecondRunCreatesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, pw := range []string{"", "another-password-1"} {
		st, svc := restart(t, filepath.Join(e.dir, "lethe.db"))
		fr, err := Bootstrap(context.Background(), st, svc, pw)
		if err != nil {
			t.Fatal(err)
		}
		if fr != (FirstRun{}) {
			t.Fatalf("Bootstrap on a set-up database (password %q) = %+v, want nothing done", pw, fr)
		}
	}
	if n := e.countOperators(); n != 1 {
		t.Fatalf("%d operators after three starts, want 1", n)
	}
	// The admin's password is still the first one.
	err := e.newOperator().login(DefaultAdminEmail, "another-password-1")
	wantCode(t, "login with the second start's password", err, connect.CodeUnauthenticated)
	if _, err := e.login(DefaultAdminEmail, adminPassword).getMe(); err != nil {
		t.Fatal(err)
	}
}

// A first run that stopped after creating the demo account completes on
// the next start, and keeps what the account already had.
func TestBootstrap_CompletesAfterInterruptedFirstRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, svc := restart(t, filepath.Join(t.TempDir(), "lethe.db"))
	if err := st.CreateAccount(ctx, Account{ID: DemoAccountID, Name: "Demo Company", AllowedOrigins: []string{"https://shop.example"}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	fr, err := Bootstrap(ctx, st, svc, adminPassword)
	if err != nil {
		t.Fatal(err)
	}
	if !fr.Created {
		t.Fatalf("first run = %+v, want the admin created", fr)
	}
	o, err := st.OperatorByEmail(ctx, DefaultAdminEmail)
	if err != nil || o.AccountID != DemoAccountID || o.Role != RoleAdmin {
		t.Fatalf("admin = %+v, %v", o, err)
	}
	if got, _ := st.AllowedOrigins(ctx, DemoAccountID); !slices.Equal(got, []string{"https://shop.example"}) {
		t.Fatalf("demo origins %q, want them kept", got)
	}
}
