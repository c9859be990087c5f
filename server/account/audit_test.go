package account

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"connectrpc.com/connect"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	"github.com/lethehq/lethe/server/audit"
	"github.com/lethehq/lethe/server/store"
)

func TestAudit_SignInsNameTheOperatorNetworkAndReasonOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	bob := e.createOperator(admin, "bob@example.com", "Bob")
	from := e.newOperatorAt("203.0.113.9")
	wantCode(t, "wrong password", from.login("bob@example.com", "wrong-password-1"), connect.CodeUnauthenticated)
	wantCode(t, "unknown address", from.login("nobody-canary@example.com", "wrong-password-1"), connect.CodeUnauthenticated)
	if err := from.login("bob@example.com", operatorPassword); err != nil {
		t.Fatal(err)
	}
	if _, err := from.account.Logout(context.Background(), connect.NewRequest(&accountv1.LogoutRequest{})); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.setDisabled(bob.me.Id, true); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "disabled", from.login("bob@example.com", operatorPassword), connect.CodePermissionDenied)

	failed := e.entriesOf("demo", audit.LoginFailed)
	if len(failed) != 2 {
		t.Fatalf("login_failed entries = %+v, want 2 (none for an address that is nobody's)", failed)
	}
	for i, reason := range []string{"disabled", "wrong password"} {
		f := failed[i]
		if f.Reason != reason || f.TargetID != bob.me.Id || f.Network != "203.0.113.0/24" {
			t.Errorf("login_failed %d = %+v, want reason %q about Bob from 203.0.113.0/24", i, f, reason)
		}
	}
	var logins []audit.Entry
	for _, x := range e.entriesOf("demo", audit.Login) {
		if x.ActorID == bob.me.Id {
			logins = append(logins, x)
		}
	}
	if len(logins) != 2 || logins[0].Network != "203.0.113.0/24" || logins[0].ActorKind != audit.ActorOperator {
		t.Errorf("Bob's login entries = %+v, want 2, the newest from 203.0.113.0/24", logins)
	}
	if out := e.entriesOf("demo", audit.Logout); len(out) != 1 || out[0].ActorID != bob.me.Id {
		t.Errorf("logout entries = %+v", out)
	}
	var buf bytes.Buffer
	if err := e.audit.WriteJSONLines(context.Background(), &buf, "demo"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"bob@example.com", "nobody-canary", "wrong-password", operatorPassword, "203.0.113.9", "Bob\""} {
		if strings.Contains(buf.String(), s) {
			t.Errorf("the audit trail holds %q:\n%s", s, buf.String())
		}
	}
}

func TestAudit_OperatorChangesNameTheTarget(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	bob := e.createOperator(admin, "bob@example.com", "Bob")
	if _, err := admin.setDisabled(bob.me.Id, true); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.setDisabled(bob.me.Id, false); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range e.auditOf("demo") {
		switch x.Action {
		case audit.OperatorCreated, audit.OperatorDisabled, audit.OperatorEnabled:
			if x.ActorID != admin.me.Id || x.TargetID != bob.me.Id {
				t.Errorf("%s by %s about %s, want by the admin about Bob", x.Action, x.ActorID, x.TargetID)
			}
			got = append(got, x.Action)
		}
	}
	if want := []string{audit.OperatorEnabled, audit.OperatorDisabled, audit.OperatorCreated}; !slices.Equal(got, want) {
		t.Errorf("operator entries, newest first = %v, want %v", got, want)
	}
}

func TestUpdateSettings_AuditListsTheChangedFieldNamesNeverValues(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	const canaryAddr = "canary-recipient@example.com"
	const canaryReason = "canary reason for ignoring GPC"
	s := edited(t, admin, func(s *accountv1.Settings) {
		s.HideVisitorIp = true
		s.Recipients = []string{canaryAddr}
		s.GpcIgnored = true
		s.GpcIgnoredReason = canaryReason
	})
	if _, err := admin.updateSettings(s); err != nil {
		t.Fatal(err)
	}
	// Saved again unchanged: nothing to record.
	if _, err := admin.updateSettings(s); err != nil {
		t.Fatal(err)
	}
	s.AuditRetentionDays = 30
	s.MonitoringDisabled = true
	if _, err := admin.updateSettings(s); err != nil {
		t.Fatal(err)
	}

	changed := e.entriesOf("demo", audit.SettingsChanged)
	if len(changed) != 2 {
		t.Fatalf("settings_changed entries = %+v, want 2", changed)
	}
	if want := []string{"audit_retention_days", "monitoring_disabled"}; !slices.Equal(changed[0].Fields, want) {
		t.Errorf("newest fields = %v, want %v", changed[0].Fields, want)
	}
	if want := []string{"recipients", "hide_visitor_ip", "gpc_ignored", "gpc_ignored_reason"}; !slices.Equal(changed[1].Fields, want) {
		t.Errorf("first fields = %v, want %v", changed[1].Fields, want)
	}
	if changed[1].ActorID != admin.me.Id || changed[1].ActorKind != audit.ActorOperator {
		t.Errorf("actor = %s/%s, want the admin", changed[1].ActorKind, changed[1].ActorID)
	}
	var buf bytes.Buffer
	if err := e.audit.WriteJSONLines(context.Background(), &buf, "demo"); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{canaryAddr, canaryReason, "\"30\"", ":30"} {
		if strings.Contains(buf.String(), v) {
			t.Errorf("the audit trail holds the value %q:\n%s", v, buf.String())
		}
	}
}

func TestUpdateSettings_GPCIgnoredNeedsAReason(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	for _, tc := range []struct {
		name   string
		reason string
		ok     bool
	}{
		{"no reason", "", false},
		{"blank reason", "            ", false},
		{"one character short", strings.Repeat("r", MinGPCReasonChars-1), false},
		{"shortest", strings.Repeat("r", MinGPCReasonChars), true},
		{"longest", strings.Repeat("é", MaxGPCReasonChars), true},
		{"one character long", strings.Repeat("r", MaxGPCReasonChars+1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := admin.updateSettings(edited(t, admin, func(s *accountv1.Settings) {
				s.GpcIgnored, s.GpcIgnoredReason = true, tc.reason
			}))
			if !tc.ok {
				wantCode(t, "UpdateSettings", err, connect.CodeInvalidArgument)
				if !strings.Contains(messageOf(err), "gpc_ignored_reason") {
					t.Errorf("message %q does not name the field", messageOf(err))
				}
				return
			}
			if err != nil || !got.GpcIgnored || got.GpcIgnoredReason != tc.reason {
				t.Fatalf("UpdateSettings = %v, %v", got, err)
			}
		})
	}
	// Honouring GPC again clears the reason.
	got, err := admin.updateSettings(edited(t, admin, func(s *accountv1.Settings) { s.GpcIgnored = false }))
	if err != nil {
		t.Fatal(err)
	}
	if got.GpcIgnoredReason != "" || settingsOf(t, admin).GpcIgnoredReason != "" {
		t.Errorf("reason kept while GPC is honoured: %q", got.GpcIgnoredReason)
	}
}

func TestUpdateSettings_AuditRetentionDays(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	for _, tc := range []struct {
		days, want int32
	}{{0, DefaultAuditRetentionDays}, {1, 1}, {MaxAuditRetentionDays, MaxAuditRetentionDays}, {-1, -1}, {MaxAuditRetentionDays + 1, -1}} {
		got, err := admin.updateSettings(edited(t, admin, func(s *accountv1.Settings) { s.AuditRetentionDays = tc.days }))
		if tc.want < 0 {
			wantCode(t, "audit_retention_days", err, connect.CodeInvalidArgument)
			if !strings.Contains(messageOf(err), "3650") {
				t.Errorf("message %q does not give the limit", messageOf(err))
			}
			continue
		}
		if err != nil || got.AuditRetentionDays != tc.want {
			t.Fatalf("%d days: saved %v, %v; want %d", tc.days, got.GetAuditRetentionDays(), err, tc.want)
		}
		d, err := e.store.AuditRetention(context.Background(), "demo")
		if err != nil || d.Hours() != float64(24*tc.want) {
			t.Fatalf("%d days: Store.AuditRetention = %v, %v", tc.days, d, err)
		}
	}
	_, err := e.store.AuditRetention(context.Background(), "no-such-account")
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown account: %v, want ErrNotFound", err)
	}
}

// Migration 004 adds GPC and the audit retention to an account saved before
// it: GPC honoured, the trail kept 90 days, the rest as saved.
func TestMigration_PrivacySettingsAddedToExistingSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "lethe.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	before := fstest.MapFS{}
	for _, name := range []string{"001_accounts.sql", "002_settings.sql", "003_file_settings.sql"} {
		b, err := fs.ReadFile(migrations, "migrations/"+name)
		if err != nil {
			t.Fatal(err)
		}
		before[name] = &fstest.MapFile{Data: b}
	}
	if err := db.Migrate(ctx, "account", before); err != nil {
		t.Fatal(err)
	}
	if _, err := db.W.ExecContext(ctx, `INSERT INTO accounts (id, name, created_at) VALUES ('a', 'A', 0);
		INSERT INTO account_settings (account_id, hide_visitor_ip, idle_timeout_seconds, max_file_bytes) VALUES ('a', 1, 1234, 1000)`); err != nil {
		t.Fatal(err)
	}
	st, err := NewStore(ctx, db)
	if err != nil {
		t.Fatalf("migrate to the privacy settings: %v", err)
	}
	s, err := st.Settings(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if !s.HideVisitorIP || s.IdleTimeoutSeconds != 1234 || s.MaxFileBytes != 1000 || s.GPCIgnored || s.GPCIgnoredReason != "" ||
		s.AuditRetentionDays != DefaultAuditRetentionDays {
		t.Fatalf("settings after the migration = %+v", s)
	}
}
