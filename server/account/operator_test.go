package account

import (
	"slices"
	"testing"

	"connectrpc.com/connect"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
)

func TestCreateOperator_ByNonAdminIsPermissionDenied(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	bob := e.createOperator(admin, "bob@example.com", "Bob")
	_, err := bob.account.CreateOperator(t.Context(), connect.NewRequest(&accountv1.CreateOperatorRequest{
		Email: "eve@example.com", Name: "Eve", Password: "long-enough-pw", Role: accountv1.Role_ROLE_ADMIN}))
	wantCode(t, "CreateOperator by Bob", err, connect.CodePermissionDenied)
	_, err = bob.setDisabled(admin.me.Id, true)
	wantCode(t, "SetOperatorDisabled by Bob", err, connect.CodePermissionDenied)
	// Nothing was created; the admin is still enabled.
	list := admin.operators()
	if len(list) != 2 {
		t.Fatalf("%d operators, want 2", len(list))
	}
	for _, o := range list {
		if o.Disabled {
			t.Fatalf("%s was disabled by a non-admin", o.Email)
		}
	}
}

func TestCreateOperator_RejectsBadFields(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	for _, tc := range []struct {
		name string
		req  *accountv1.CreateOperatorRequest
	}{
		{"password of 9 characters", &accountv1.CreateOperatorRequest{Email: "c@example.com", Name: "C", Password: "123456789"}},
		{"malformed e-mail", &accountv1.CreateOperatorRequest{Email: "c-at-example.com", Name: "C", Password: "long-enough-pw"}},
		{"empty name", &accountv1.CreateOperatorRequest{Email: "c@example.com", Name: " ", Password: "long-enough-pw"}},
		{"unknown role", &accountv1.CreateOperatorRequest{Email: "c@example.com", Name: "C", Password: "long-enough-pw", Role: 42}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := admin.account.CreateOperator(t.Context(), connect.NewRequest(tc.req))
			wantCode(t, "CreateOperator", err, connect.CodeInvalidArgument)
		})
	}
	if n := e.countOperators(); n != 1 {
		t.Fatalf("%d operators after refused creations, want 1", n)
	}
}

func TestCreateOperator_DuplicateEmailIsAlreadyExists(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	for _, email := range []string{DefaultAdminEmail, "ADMIN@lethe.local"} {
		_, err := admin.account.CreateOperator(t.Context(), connect.NewRequest(&accountv1.CreateOperatorRequest{
			Email: email, Name: "Twin", Password: "long-enough-pw"}))
		wantCode(t, "CreateOperator "+email, err, connect.CodeAlreadyExists)
	}
}

// Addresses are stored trimmed and in lower case, and sign-in ignores case.
func TestCreateOperator_EmailIsCaseInsensitive(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	res, err := admin.account.CreateOperator(t.Context(), connect.NewRequest(&accountv1.CreateOperatorRequest{
		Email: " Carol@Example.COM ", Name: "Carol", Password: operatorPassword}))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Msg.Operator; got.Email != "carol@example.com" || got.Role != accountv1.Role_ROLE_OPERATOR || got.AccountId != DemoAccountID {
		t.Fatalf("created %v, want carol@example.com, a plain operator of the demo account", got)
	}
	carol := e.login("CAROL@example.com", operatorPassword)
	if carol.me.Id != res.Msg.Operator.Id {
		t.Fatalf("signed in as %s, want %s", carol.me.Id, res.Msg.Operator.Id)
	}
}

func TestSetOperatorDisabled_EndsSessionsAndRefusesLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	bob := e.createOperator(admin, "bob@example.com", "Bob")

	disabled, err := admin.setDisabled(bob.me.Id, true)
	if err != nil {
		t.Fatal(err)
	}
	if !disabled.Disabled {
		t.Fatal("response says Bob is not disabled")
	}
	_, err = bob.getMe()
	wantCode(t, "Bob's GetMe once disabled", err, connect.CodeUnauthenticated)
	// The rest of the server (his open console streams) is told.
	if got := e.signOuts.list(); !slices.Equal(got, []string{bob.me.Id}) {
		t.Fatalf("OnSignOut got %q, want [%s]", got, bob.me.Id)
	}
	err = e.newOperator().login("bob@example.com", operatorPassword)
	wantCode(t, "Bob's login while disabled", err, connect.CodePermissionDenied)

	// An admin cannot disable themself.
	_, err = admin.setDisabled(admin.me.Id, true)
	wantCode(t, "admin disabling themself", err, connect.CodeFailedPrecondition)
	if _, err := admin.getMe(); err != nil {
		t.Fatalf("admin's session after a refused self-disable: %v", err)
	}

	// Re-enabled, Bob can sign in again.
	if _, err := admin.setDisabled(bob.me.Id, false); err != nil {
		t.Fatal(err)
	}
	if err := e.newOperator().login("bob@example.com", operatorPassword); err != nil {
		t.Fatalf("Login after re-enabling: %v", err)
	}
	if got := e.signOuts.list(); !slices.Equal(got, []string{bob.me.Id}) {
		t.Fatalf("OnSignOut got %q, want only Bob's disabling", got)
	}
}

// "A disabled operator's sessions end at once": re-enabling the operator
// must not bring the old sessions back.
func TestSetOperatorDisabled_ReenablingDoesNotReviveOldSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	bob := e.createOperator(admin, "bob@example.com", "Bob")
	for _, disabled := range []bool{true, false} {
		if _, err := admin.setDisabled(bob.me.Id, disabled); err != nil {
			t.Fatal(err)
		}
	}
	_, err := bob.getMe()
	wantCode(t, "Bob's old session after re-enabling", err, connect.CodeUnauthenticated)
}

// Operators of another account are invisible: not listed, and disabling
// one is NotFound, as for an id that does not exist.
func TestSetOperatorDisabled_OtherAccountsOperatorIsNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	other := e.addAccount("other", "admin@other.example")
	_, err := other.setDisabled(admin.me.Id, true)
	wantCode(t, "disabling the demo admin from another account", err, connect.CodeNotFound)
	_, err = other.setDisabled("no-such-operator", true)
	wantCode(t, "disabling an unknown operator", err, connect.CodeNotFound)
	if _, err := admin.getMe(); err != nil {
		t.Fatalf("the demo admin's session: %v", err)
	}
	if list := other.operators(); len(list) != 1 || list[0].Id != other.me.Id {
		t.Fatalf("the other account lists %v", list)
	}
	if list := admin.operators(); len(list) != 1 || list[0].Id != admin.me.Id {
		t.Fatalf("the demo account lists %v", list)
	}
}
