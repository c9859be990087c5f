package consent

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"connectrpc.com/connect"

	consentv1 "github.com/lethehq/lethe/gen/go/lethe/consent/v1"
	"github.com/lethehq/lethe/gen/go/lethe/consent/v1/consentv1connect"
	"github.com/lethehq/lethe/server/auth"
)

func TestSetConsentText_VersionsCountPerFormAndLocale(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.as(opA)
	for i, c := range []struct {
		x    text
		want int32
	}{
		{text{Prechat, "en", "pre en 1", true}, 1},
		{text{Prechat, "en", "pre en 2", true}, 2},
		{text{Prechat, "de", "pre de 1", true}, 1},
		{text{Offline, "en", "off en 1", false}, 1},
		{text{Prechat, "en", "pre en 3", false}, 3},
		{text{Prechat, "", "pre en 4 (no locale means en)", true}, 4},
		{text{Offline, "en", "off en 2", true}, 2},
	} {
		got := e.set(admin, c.x)
		locale := c.x.locale
		if locale == "" {
			locale = DefaultLocale
		}
		if got.Version != c.want || got.Form != c.x.form || got.Locale != locale || got.Text != c.x.text ||
			got.Required != c.x.required || got.UpdatedAt == nil {
			t.Fatalf("step %d: stored %v, want %v as version %d", i, got, c.x, c.want)
		}
	}
	texts := e.list(admin)
	if len(texts) != 3 {
		t.Fatalf("listed %d texts, want the current version of 3 (form, locale) pairs: %v", len(texts), texts)
	}
	for _, c := range []struct {
		form    Form
		locale  string
		version int32
		text    string
	}{
		{Prechat, "en", 4, "pre en 4 (no locale means en)"},
		{Prechat, "de", 1, "pre de 1"},
		{Offline, "en", 2, "off en 2"},
	} {
		if x := listed(texts, c.form, c.locale); x == nil || x.Version != c.version || x.Text != c.text {
			t.Errorf("%v %s listed as %v, want version %d %q", c.form, c.locale, x, c.version, c.text)
		}
	}
}

// longestTag is a well-formed tag of MaxLocaleChars characters.
const longestTag = "en-abcdefgh-abcdefgh-abcdefgh-abcde"

func TestSetConsentText_RejectsInvalidInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.as(opA)
	for _, c := range []struct {
		name string
		x    text
		msg  string // part of the error message the admin sees
	}{
		{"no form", text{0, "en", "text", true}, "form"},
		{"unknown form", text{Form(7), "en", "text", true}, "form"},
		{"underscore", text{Prechat, "en_US", "text", true}, "locale"},
		{"space inside", text{Prechat, "de CH", "text", true}, "locale"},
		{"markup", text{Prechat, "en<b>", "text", true}, "locale"},
		{"too long", text{Prechat, longestTag + "f", "text", true}, "locale"},
		{"empty text", text{Prechat, "en", "", true}, strconv.Itoa(MaxTextChars)},
		{"blank text", text{Prechat, "en", " \n\t ", true}, strconv.Itoa(MaxTextChars)},
		{"text too long", text{Prechat, "en", strings.Repeat("x", MaxTextChars+1), true}, strconv.Itoa(MaxTextChars)},
		{"runes too many", text{Prechat, "en", strings.Repeat("é", MaxTextChars+1), true}, strconv.Itoa(MaxTextChars)},
	} {
		_, err := admin.SetConsentText(context.Background(), c.x.req())
		wantCode(t, c.name, err, connect.CodeInvalidArgument)
		if !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: error %q does not mention %q", c.name, err, c.msg)
		}
	}
	if texts := e.list(admin); len(texts) != 0 {
		t.Fatalf("rejected texts were stored: %v", texts)
	}
}

func TestSetConsentText_AcceptsTheLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.as(opA)
	// The limit counts characters, not bytes, and surrounding space is
	// not stored.
	long := strings.Repeat("é", MaxTextChars)
	if got := e.set(admin, text{Prechat, "en", "  " + long + "\n", true}); got.Text != long {
		t.Fatalf("stored %d characters, want the %d without surrounding space", len([]rune(got.Text)), MaxTextChars)
	}
	if len(longestTag) != MaxLocaleChars {
		t.Fatalf("longestTag has %d characters, want %d", len(longestTag), MaxLocaleChars)
	}
	if got := e.set(admin, text{Prechat, longestTag, "longest tag", true}); got.Locale != longestTag {
		t.Fatalf("stored locale %q, want %q", got.Locale, longestTag)
	}
}

func TestConsentTexts_AdminOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		client consentv1connect.ConsentServiceClient
		code   connect.Code
	}{
		{"operator", e.as(opA2), connect.CodePermissionDenied},
		{"no session", e.anonymous(), connect.CodeUnauthenticated},
		{"unknown operator's session", e.as(&auth.Operator{ID: "op-gone", AccountID: "acct-a", Admin: true}), connect.CodeUnauthenticated},
		{"visitor", e.visitor(&auth.Visitor{ID: "v-1", AccountID: "acct-a", ChatID: "chat-1"}), connect.CodeUnauthenticated},
	} {
		_, err := c.client.SetConsentText(ctx, text{Prechat, "en", "Not theirs to write.", true}.req())
		wantCode(t, c.name+" SetConsentText", err, c.code)
		_, err = c.client.ListConsentTexts(ctx, connect.NewRequest(&consentv1.ListConsentTextsRequest{}))
		wantCode(t, c.name+" ListConsentTexts", err, c.code)
	}
	if got := e.get("acct-a", "en").Prechat; got.Version != 0 {
		t.Fatalf("a refused SetConsentText was stored: %v", got)
	}
	// The same session machinery lets the admin in.
	e.set(e.as(opA), text{Prechat, "en", "An admin's to write.", true})
}

func TestListConsentTexts_CountsAcceptancesOfCurrentVersions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	admin := e.as(opA)
	e.set(admin, text{Prechat, "en", "pre v1", true})
	accept := func(form Form, locale string, version int32, n int) {
		t.Helper()
		for range n {
			x, err := e.checker.Check(ctx, "acct-a", form, locale, version)
			if err != nil {
				t.Fatalf("Check(%v %s v%d): %v", form, locale, version, err)
			}
			if err := e.checker.Accepted(ctx, "acct-a", x); err != nil {
				t.Fatal(err)
			}
		}
	}
	accept(Prechat, "en", 1, 2)
	if x := listed(e.list(admin), Prechat, "en"); x == nil || x.Version != 1 || x.AcceptedCount != 2 {
		t.Fatalf("pre-chat en listed as %v, want version 1 accepted twice", x)
	}

	e.set(admin, text{Prechat, "en", "pre v2", true})
	e.set(admin, text{Prechat, "de", "pre de v1", true})
	e.set(admin, text{Offline, "en", "off v1", true})
	accept(Prechat, "en-GB", 2, 3) // counted under the text it matched
	accept(Prechat, "de", 1, 1)
	texts := e.list(admin)
	for _, c := range []struct {
		form     Form
		locale   string
		version  int32
		accepted int64
	}{
		{Prechat, "en", 2, 3}, // a new version starts from nothing
		{Prechat, "de", 1, 1},
		{Offline, "en", 1, 0},
	} {
		if x := listed(texts, c.form, c.locale); x == nil || x.Version != c.version || x.AcceptedCount != c.accepted {
			t.Errorf("%v %s listed as %v, want version %d accepted %d times", c.form, c.locale, x, c.version, c.accepted)
		}
	}
	if len(texts) != 3 {
		t.Fatalf("listed %d texts, want 3 (current versions only): %v", len(texts), texts)
	}
}

func TestConsentTexts_TenantsSeeOnlyTheirOwn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	a, b := e.as(opA), e.as(opB)
	e.set(a, text{Prechat, "en", "A's pre-chat v1", true})
	e.set(a, text{Prechat, "en", "A's pre-chat v2", true})
	e.set(a, text{Offline, "de", "A's offline", true})
	x, err := e.checker.Check(ctx, "acct-a", Prechat, "en", 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.checker.Accepted(ctx, "acct-a", x); err != nil {
		t.Fatal(err)
	}

	if texts := e.list(b); len(texts) != 0 {
		t.Fatalf("B's admin lists A's texts: %v", texts)
	}
	// B's versions start at 1, whatever A has stored under the same key.
	if got := e.set(b, text{Prechat, "en", "B's pre-chat", false}); got.Version != 1 {
		t.Fatalf("B's first pre-chat text is version %d, want 1", got.Version)
	}
	texts := e.list(b)
	if len(texts) != 1 || texts[0].Text != "B's pre-chat" || texts[0].AcceptedCount != 0 {
		t.Fatalf("B lists %v, want only its own text, never accepted", texts)
	}
	if got := e.get("acct-b", "de").Offline; got.Version != 0 {
		t.Fatalf("B's widget gets %v for the offline form, want none (only A has one)", got)
	}
	// A is untouched by B's change.
	if got := listed(e.list(a), Prechat, "en"); got == nil || got.Version != 2 || got.Text != "A's pre-chat v2" || got.AcceptedCount != 1 {
		t.Fatalf("A's pre-chat text is now %v, want version 2 accepted once", got)
	}
	// B's acceptance never needs A's version, nor counts under A.
	if _, err := e.checker.Check(ctx, "acct-b", Offline, "de", 0); err != nil {
		t.Fatalf("B's offline form requires A's text: %v", err)
	}
}

// Versions are per (form, locale): a tag typed in another case is the same
// locale, so it must make the next version that visitors then see, not a
// second text that Match never picks.
func TestSetConsentText_LocaleCaseDoesNotSplitVersions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.as(opA)
	e.set(admin, text{Prechat, "de-CH", "erste Fassung", true})
	for i, c := range []struct{ locale, stored string }{
		{"de-ch", "de-CH"},
		{"DE-CH", "de-CH"},
		{"zh-hant-tw", "zh-Hant-TW"},
		{"EN", "en"},
		{"en-x-priv", "en-x-priv"}, // after a singleton everything is lower case
	} {
		got := e.set(admin, text{Prechat, c.locale, "Fassung " + c.locale, true})
		if got.Locale != c.stored {
			t.Errorf("step %d: %q stored as %q, want %q", i, c.locale, got.Locale, c.stored)
		}
	}
	if got := e.get("acct-a", "de-CH").Prechat; got.Version != 3 || got.Text != "Fassung DE-CH" {
		t.Fatalf("de-CH visitors get %v, want version 3, the latest wording", got)
	}
	if x := listed(e.list(admin), Prechat, "de-CH"); x == nil || x.Version != 3 {
		t.Fatalf("de-CH listed as %v, want version 3", x)
	}
}

func TestSetConsentText_RejectsMalformedTags(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.as(opA)
	for _, tag := range []string{"-", "en-", "-en", "de--CH", "en-abcdefghi", "123"} {
		_, err := admin.SetConsentText(context.Background(), text{Prechat, tag, "text", true}.req())
		wantCode(t, "locale "+strconv.Quote(tag), err, connect.CodeInvalidArgument)
	}
	if texts := e.list(admin); len(texts) != 0 {
		t.Fatalf("malformed tags were stored: %v", texts)
	}
}
