package account

import (
	"strings"
	"testing"

	"connectrpc.com/connect"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
)

// P9: the log names operators and accounts by id, never by e-mail address,
// whether a sign-in works or not.
func TestLogs_HoldNoEmailAddresses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	e.createOperator(admin, "bob@example.com", "Bob")
	wantCode(t, "wrong password", e.newOperator().login("bob@example.com", "wrong-password-1"), connect.CodeUnauthenticated)
	wantCode(t, "unknown address", e.newOperator().login("nobody@example.com", "wrong-password-1"), connect.CodeUnauthenticated)
	if _, err := admin.updateSettings(edited(t, admin, func(s *accountv1.Settings) { s.Recipients = []string{"desk@example.com"} })); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.account.Logout(t.Context(), connect.NewRequest(&accountv1.LogoutRequest{})); err != nil {
		t.Fatal(err)
	}
	logs := e.logs.String()
	// The log is not empty: sign-ins are logged, by id.
	if !strings.Contains(logs, admin.me.Id) {
		t.Fatalf("the admin's id %s is not in the log:\n%s", admin.me.Id, logs)
	}
	for _, addr := range []string{DefaultAdminEmail, "bob@example.com", "nobody@example.com", "desk@example.com"} {
		if strings.Contains(logs, addr) {
			t.Fatalf("the log holds %q:\n%s", addr, logs)
		}
	}
}
