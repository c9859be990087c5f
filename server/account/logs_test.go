package account

import (
	"net/netip"
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

// A breach investigation needs to know which operator was tried, from
// which network and how it ended; it does not need, and the log must not
// hold, the e-mail address typed, the password or the full address.
func TestLogs_FailedLoginNamesOperatorNetworkAndReason(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	bob := e.createOperator(admin, "bob@example.com", "Bob")
	if _, err := admin.setDisabled(bob.me.Id, true); err != nil {
		t.Fatal(err)
	}
	const v4, v6 = "203.0.113.77", "2001:db8:1234:5678::9"
	const guess = "Guessed-Password-7"
	attacker := e.newOperatorAt(v4)
	for range DefaultLoginLimits().FreeFailures {
		wantCode(t, "wrong password", attacker.login(DefaultAdminEmail, guess), connect.CodeUnauthenticated)
	}
	wantThrottled(t, "throttled", attacker.login(DefaultAdminEmail, guess))
	wantCode(t, "unknown e-mail", e.newOperatorAt(v6).login("nobody@example.com", guess), connect.CodeUnauthenticated)
	wantCode(t, "disabled", e.newOperatorAt(v6).login("bob@example.com", operatorPassword), connect.CodePermissionDenied)

	logs := e.logs.String()
	adminID := admin.me.Id
	for _, want := range []string{
		`msg="login failed" operator=` + adminID + ` from=203.0.113.0/24 reason="wrong password"`,
		`msg="login failed" operator=` + adminID + ` from=203.0.113.0/24 reason=throttled`,
		`msg="login failed" operator="unknown e-mail" from=2001:db8:1234::/48 reason="wrong password"`,
		`msg="login failed" operator=` + bob.me.Id + ` from=2001:db8:1234::/48 reason=disabled`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %s", want)
		}
	}
	for _, never := range []string{v4, v6, "2001:db8:1234:5678", guess, operatorPassword, DefaultAdminEmail, "bob@example.com", "nobody@example.com"} {
		if strings.Contains(logs, never) {
			t.Errorf("the log holds %q", never)
		}
	}
}

// A flood of refused sign-ins from one address is one log line a minute,
// not one per attempt.
func TestLogs_RefusedSignInsDoNotFloodTheLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := e.newOperatorAt("203.0.113.77")
	for range 50 {
		o.login(DefaultAdminEmail, "wrong-password-1")
	}
	if n := e.logs.Count("reason=throttled"); n != 1 {
		t.Fatalf("%d throttled lines for 45 refusals, want 1", n)
	}
}

func TestAddrPrefix(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"203.0.113.77":          "203.0.113.0/24",
		"::ffff:203.0.113.77":   "203.0.113.0/24",
		"2001:db8:1234:5678::9": "2001:db8:1234::/48",
		"":                      "unknown",
	} {
		var a netip.Addr
		if in != "" {
			a = netip.MustParseAddr(in)
		}
		if got := AddrPrefix(a); got != want {
			t.Errorf("AddrPrefix(%q) = %q, want %q", in, got, want)
		}
	}
}
