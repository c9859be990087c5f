package account

import (
	"context"
	"fmt"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	"github.com/lethehq/lethe/server/origin"
)

// settingsOf is the account's current settings as GetSettings reports them.
func settingsOf(t *testing.T, o *operator) *accountv1.Settings {
	t.Helper()
	res, err := o.getSettings()
	if err != nil {
		t.Fatalf("GetSettings: %v", err)
	}
	return res.Settings
}

// edited is the account's current settings changed by fn.
func edited(t *testing.T, o *operator, fn func(*accountv1.Settings)) *accountv1.Settings {
	t.Helper()
	s := settingsOf(t, o)
	fn(s)
	return s
}

func TestGetSettings_DefaultsBeforeFirstSave(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	want := &accountv1.Settings{
		Recipients:         []string{},
		MailTlsPolicy:      accountv1.MailTlsPolicy_MAIL_TLS_POLICY_OPPORTUNISTIC,
		IdleTimeoutSeconds: DefaultIdleTimeout,
		AllowedOrigins:     []string{origin.Self},
		AuditRetentionDays: DefaultAuditRetentionDays,
	}
	if got := settingsOf(t, e.admin()); !proto.Equal(got, want) {
		t.Fatalf("settings of a new demo account = %v, want %v", got, want)
	}
}

func TestGetSettings_ReportsMailConfigured(t *testing.T) {
	t.Parallel()
	for _, configured := range []bool{false, true} {
		t.Run(strconv.FormatBool(configured), func(t *testing.T) {
			t.Parallel()
			var opts []envOption
			if configured {
				opts = append(opts, withMailConfigured())
			}
			e := newEnv(t, opts...)
			res, err := e.admin().getSettings()
			if err != nil {
				t.Fatal(err)
			}
			if res.MailConfigured != configured {
				t.Fatalf("MailConfigured = %v, want %v", res.MailConfigured, configured)
			}
		})
	}
}

// Settings are for every operator to read and for admins to change.
func TestUpdateSettings_ByNonAdminIsPermissionDenied(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	bob := e.createOperator(admin, "bob@example.com", "Bob")
	before := settingsOf(t, bob)
	_, err := bob.updateSettings(edited(t, bob, func(s *accountv1.Settings) { s.HideVisitorIp = !s.HideVisitorIp }))
	wantCode(t, "UpdateSettings by Bob", err, connect.CodePermissionDenied)
	if after := settingsOf(t, admin); !proto.Equal(after, before) {
		t.Fatalf("settings changed by a refused update: %v, were %v", after, before)
	}
}

func TestUpdateSettings_SavesEveryField(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	want := &accountv1.Settings{
		TranscriptsEnabled: true,
		Recipients:         []string{"desk@example.com"},
		HideVisitorIp:      true,
		MailTlsPolicy:      accountv1.MailTlsPolicy_MAIL_TLS_POLICY_MANDATORY,
		IdleTimeoutSeconds: 1234,
		AllowedOrigins:     []string{origin.Self, "https://shop.example"},
		GpcIgnored:         true,
		GpcIgnoredReason:   "Fraud prevention needs every visit.",
		AuditRetentionDays: 30,
		MonitoringDisabled: true,
	}
	got, err := admin.updateSettings(want)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, want) {
		t.Fatalf("UpdateSettings returned %v, want %v", got, want)
	}
	if got := settingsOf(t, admin); !proto.Equal(got, want) {
		t.Fatalf("GetSettings after the update = %v, want %v", got, want)
	}
}

// Limits include their bounds.
func TestUpdateSettings_IdleTimeoutBoundsAreAccepted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	for _, idle := range []int32{MinIdleTimeout, MaxIdleTimeout} {
		got, err := admin.updateSettings(edited(t, admin, func(s *accountv1.Settings) { s.IdleTimeoutSeconds = idle }))
		if err != nil {
			t.Fatalf("idle timeout %d: %v", idle, err)
		}
		if got.IdleTimeoutSeconds != idle {
			t.Fatalf("idle timeout saved as %d, want %d", got.IdleTimeoutSeconds, idle)
		}
	}
}

func TestUpdateSettings_RejectsBadInputAndKeepsSettings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	before := settingsOf(t, admin)
	// A well-formed address of MaxEmailChars+1 characters.
	long := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 60) + "." + strings.Repeat("c", 60) + "." + strings.Repeat("d", 60) + ".eee.com"
	if a, err := mail.ParseAddress(long); err != nil || a.Address != long || len(long) != MaxEmailChars+1 {
		t.Fatalf("%d characters, parsed as %v, %v", len(long), a, err)
	}
	for _, tc := range []struct {
		name string
		edit func(*accountv1.Settings)
	}{
		{"malformed recipient", func(s *accountv1.Settings) { s.Recipients = []string{"ok@example.com", "not-an-address"} }},
		{"recipient with a display name", func(s *accountv1.Settings) { s.Recipients = []string{"Ann <ann@example.com>"} }},
		{"recipient one character too long", func(s *accountv1.Settings) { s.Recipients = []string{long} }},
		{"idle timeout just below the minimum", func(s *accountv1.Settings) { s.IdleTimeoutSeconds = MinIdleTimeout - 1 }},
		{"idle timeout just above the maximum", func(s *accountv1.Settings) { s.IdleTimeoutSeconds = MaxIdleTimeout + 1 }},
		{"idle timeout unset", func(s *accountv1.Settings) { s.IdleTimeoutSeconds = 0 }},
		{"negative idle timeout", func(s *accountv1.Settings) { s.IdleTimeoutSeconds = -600 }},
		{"origin with a path", func(s *accountv1.Settings) { s.AllowedOrigins = []string{"https://shop.example/page"} }},
		{"origin with a script scheme", func(s *accountv1.Settings) { s.AllowedOrigins = []string{"javascript:alert(1)"} }},
		{"origin with a CSP separator", func(s *accountv1.Settings) { s.AllowedOrigins = []string{"https://a.example; script-src *"} }},
		{"origin without a scheme", func(s *accountv1.Settings) { s.AllowedOrigins = []string{"shop.example"} }},
		{"unknown mail TLS policy", func(s *accountv1.Settings) { s.MailTlsPolicy = 42 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := admin.updateSettings(edited(t, admin, tc.edit))
			wantCode(t, "UpdateSettings", err, connect.CodeInvalidArgument)
		})
	}
	t.Run("no settings", func(t *testing.T) {
		_, err := admin.updateSettings(nil)
		wantCode(t, "UpdateSettings", err, connect.CodeInvalidArgument)
	})
	if after := settingsOf(t, admin); !proto.Equal(after, before) {
		t.Fatalf("settings changed by refused updates: %v, were %v", after, before)
	}
}

// Origins are stored as origin.Normalize writes them (they go into a CSP
// header); recipients trimmed and without repeats; blank entries dropped.
func TestUpdateSettings_NormalisesOriginsAndRecipients(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	got, err := admin.updateSettings(edited(t, admin, func(s *accountv1.Settings) {
		s.AllowedOrigins = []string{"HTTPS://Shop.Example:8443/", " ", origin.Self, " http://LOCALHOST:8080 ", "https://shop.example:8443"}
		s.Recipients = []string{" ann@example.com ", "", "ANN@example.com", "bob@example.com"}
	}))
	if err != nil {
		t.Fatal(err)
	}
	wantOrigins := []string{"https://shop.example:8443", origin.Self, "http://localhost:8080"}
	wantRecipients := []string{"ann@example.com", "bob@example.com"}
	for _, s := range []*accountv1.Settings{got, settingsOf(t, admin)} {
		if !slices.Equal(s.AllowedOrigins, wantOrigins) || !slices.Equal(s.Recipients, wantRecipients) {
			t.Fatalf("saved origins %q and recipients %q, want %q and %q", s.AllowedOrigins, s.Recipients, wantOrigins, wantRecipients)
		}
	}
	// The origins are the account's: what the widget's pages are served with.
	me, err := admin.getMe()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(me.Account.AllowedOrigins, wantOrigins) {
		t.Fatalf("account origins %q, want %q", me.Account.AllowedOrigins, wantOrigins)
	}
}

func TestUpdateSettings_TooManyRecipientsOrOriginsNamesTheLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	recipients := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("desk%d@example.com", i))
		}
		return out
	}
	origins := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("https://shop%d.example", i))
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		limit int
		set   func(*accountv1.Settings, int)
		get   func(*accountv1.Settings) []string
	}{
		{"recipients", MaxRecipients,
			func(s *accountv1.Settings, n int) { s.Recipients = recipients(n) },
			func(s *accountv1.Settings) []string { return s.Recipients }},
		{"origins", MaxOrigins,
			func(s *accountv1.Settings, n int) { s.AllowedOrigins = origins(n) },
			func(s *accountv1.Settings) []string { return s.AllowedOrigins }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := admin.updateSettings(edited(t, admin, func(s *accountv1.Settings) { tc.set(s, tc.limit+1) }))
			wantCode(t, "one over the limit", err, connect.CodeInvalidArgument)
			if msg := messageOf(err); !strings.Contains(msg, strconv.Itoa(tc.limit)) {
				t.Fatalf("message %q does not name the limit %d", msg, tc.limit)
			}
			got, err := admin.updateSettings(edited(t, admin, func(s *accountv1.Settings) { tc.set(s, tc.limit) }))
			if err != nil {
				t.Fatalf("exactly the limit: %v", err)
			}
			if n := len(tc.get(got)); n != tc.limit {
				t.Fatalf("saved %d, want %d", n, tc.limit)
			}
		})
	}
}

// Monitoring before the click is on by default; an admin turns it off and
// on, and the durable store says so (what GetWidgetConfig reads).
func TestUpdateSettings_MonitoringDisabledRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	if settingsOf(t, admin).MonitoringDisabled {
		t.Fatal("monitoring_disabled is on by default")
	}
	got, err := admin.updateSettings(edited(t, admin, func(s *accountv1.Settings) { s.MonitoringDisabled = true }))
	if err != nil || !got.MonitoringDisabled {
		t.Fatalf("UpdateSettings monitoring_disabled: %v, %v", got, err)
	}
	if !settingsOf(t, admin).MonitoringDisabled {
		t.Fatal("GetSettings after turning monitoring off: still on")
	}
	st, err := e.store.Settings(context.Background(), "demo")
	if err != nil || !st.MonitoringDisabled {
		t.Fatalf("Store.Settings: %+v, %v", st, err)
	}
	got, err = admin.updateSettings(edited(t, admin, func(s *accountv1.Settings) { s.MonitoringDisabled = false }))
	if err != nil || got.MonitoringDisabled || settingsOf(t, admin).MonitoringDisabled {
		t.Fatalf("turning monitoring back on: %v, %v", got, err)
	}
}
