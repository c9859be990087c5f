package consent

import (
	"context"
	"testing"

	"connectrpc.com/connect"

	consentv1 "github.com/lethehq/lethe/gen/go/lethe/consent/v1"
)

func TestGetConsent_PicksExactThenLanguageThenEnglish(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.as(opA)
	for _, x := range []text{
		{Prechat, "en", "English pre-chat", true},
		{Prechat, "de", "Deutsch pre-chat", true},
		{Prechat, "de-CH", "Schweizerdeutsch pre-chat", true},
		{Offline, "en", "English offline", false},
		{Offline, "fr", "Français offline", false},
	} {
		e.set(admin, x)
	}
	for _, c := range []struct {
		locale, prechat, offline string
	}{
		{"de-CH", "Schweizerdeutsch pre-chat", "English offline"},
		{" DE-ch ", "Schweizerdeutsch pre-chat", "English offline"}, // case and spaces do not matter
		{"de-AT", "Deutsch pre-chat", "English offline"},
		{"de", "Deutsch pre-chat", "English offline"},
		{"fr-CA", "English pre-chat", "Français offline"},
		{"ja", "English pre-chat", "English offline"},
		{"", "English pre-chat", "English offline"},
	} {
		res := e.get("acct-a", c.locale)
		if res.Prechat.Text != c.prechat || res.Offline.Text != c.offline {
			t.Errorf("locale %q: pre-chat %q, offline %q; want %q, %q", c.locale, res.Prechat.Text, res.Offline.Text, c.prechat, c.offline)
		}
		if res.Prechat.Form != Prechat || res.Offline.Form != Offline {
			t.Errorf("locale %q: forms %v, %v", c.locale, res.Prechat.Form, res.Offline.Form)
		}
	}
	res := e.get("acct-a", "de-CH")
	if p := res.Prechat; p.Locale != "de-CH" || p.Version != 1 || !p.Required || p.UpdatedAt == nil {
		t.Fatalf("pre-chat text for de-CH = %v, want locale de-CH, version 1, required, with its time", p)
	}
	if o := res.Offline; o.Locale != "en" || o.Required {
		t.Fatalf("offline text for de-CH = %v, want the optional en text", o)
	}
}

func TestGetConsent_WithoutEnglishFallsBackToFirstLocale(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.as(opA)
	e.set(admin, text{Prechat, "fr", "Français", true})
	e.set(admin, text{Prechat, "de", "Deutsch", true})
	// A visitor whose language has no text still sees a text (and can
	// accept it) rather than none: the first in locale order.
	if got := e.get("acct-a", "ja").Prechat; got.Locale != "de" || got.Text != "Deutsch" {
		t.Fatalf("pre-chat text for ja = %v, want the de text", got)
	}
}

func TestGetConsent_ServesTheCurrentVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.as(opA)
	e.set(admin, text{Prechat, "en", "first wording", true})
	e.set(admin, text{Prechat, "en", "second wording", false})
	got := e.get("acct-a", "en").Prechat
	if got.Version != 2 || got.Text != "second wording" || got.Required {
		t.Fatalf("pre-chat text = %v, want version 2, the second wording, optional", got)
	}
}

func TestGetConsent_FormWithoutTextIsEmpty(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.set(e.as(opA), text{Prechat, "en", "Only the pre-chat form has a text.", true})
	for _, c := range []struct {
		account string
		got     func(*consentv1.GetConsentResponse) *consentv1.ConsentText
		form    Form
	}{
		{"acct-a", (*consentv1.GetConsentResponse).GetOffline, Offline},
		{"acct-b", (*consentv1.GetConsentResponse).GetPrechat, Prechat},
		{"acct-b", (*consentv1.GetConsentResponse).GetOffline, Offline},
		{"no-such-account", (*consentv1.GetConsentResponse).GetPrechat, Prechat},
	} {
		x := c.got(e.get(c.account, "en"))
		if x.Form != c.form || x.Version != 0 || x.Text != "" || x.Required || x.Locale != "" || x.UpdatedAt != nil {
			t.Errorf("%s %v: %v, want an empty text of that form", c.account, c.form, x)
		}
	}
}

func TestGetConsent_NeedsAccountID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := e.anonymous().GetConsent(context.Background(), connect.NewRequest(&consentv1.GetConsentRequest{Locale: "en"}))
	wantCode(t, "GetConsent without account_id", err, connect.CodeInvalidArgument)
}
