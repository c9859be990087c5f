package consent

import (
	"context"
	"strings"
	"testing"

	"connectrpc.com/connect"
)

func TestCheck_RequiredTextNeedsTheCurrentVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	admin := e.as(opA)
	e.set(admin, text{Prechat, "en", "v1", true})
	e.set(admin, text{Prechat, "en", "v2", true})
	for _, c := range []struct {
		name    string
		version int32
		msg     string
	}{
		{"not accepted", 0, "accepted first"},
		{"stale", 1, "current version (2)"},
		{"from the future", 3, "current version (2)"},
		{"negative", -1, "current version (2)"},
	} {
		_, err := e.checker.Check(ctx, "acct-a", Prechat, "en-GB", c.version)
		wantCode(t, c.name, err, connect.CodeFailedPrecondition)
		if !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: error %q does not say %q", c.name, err, c.msg)
		}
	}
	x, err := e.checker.Check(ctx, "acct-a", Prechat, "en-GB", 2)
	if err != nil {
		t.Fatalf("Check with the current version: %v", err)
	}
	if x.Version != 2 || x.Form != Prechat || x.Locale != "en" || x.Text != "v2" {
		t.Fatalf("accepted %+v, want pre-chat en version 2", x)
	}
	// The offline form has no text: nothing to accept there.
	if x, err := e.checker.Check(ctx, "acct-a", Offline, "en", 0); err != nil || x.Version != 0 {
		t.Fatalf("Check of the offline form without a text = %+v, %v; want version 0, no error", x, err)
	}
}

func TestCheck_MatchesTheVisitorsLocale(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	admin := e.as(opA)
	e.set(admin, text{Offline, "en", "en v1", true})
	e.set(admin, text{Offline, "de", "de v1", true})
	e.set(admin, text{Offline, "de", "de v2", true})
	// The version is that of the text the visitor was shown for their
	// locale (GetConsent's choice), not of any other locale.
	_, err := e.checker.Check(ctx, "acct-a", Offline, "de-CH", 1)
	wantCode(t, "de-CH accepting de's stale version", err, connect.CodeFailedPrecondition)
	if x, err := e.checker.Check(ctx, "acct-a", Offline, "de-CH", 2); err != nil || x.Locale != "de" || x.Version != 2 {
		t.Fatalf("de-CH accepting de v2 = %+v, %v; want de version 2", x, err)
	}
	if x, err := e.checker.Check(ctx, "acct-a", Offline, "fr", 1); err != nil || x.Locale != "en" || x.Version != 1 {
		t.Fatalf("fr accepting en v1 = %+v, %v; want en version 1", x, err)
	}
}

func TestCheck_OptionalTextIsVersionZeroWhenNotAccepted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	admin := e.as(opA)
	e.set(admin, text{Prechat, "en", "optional v1", false})
	e.set(admin, text{Prechat, "en", "optional v2", false})
	for _, version := range []int32{0, 1, 5} {
		x, err := e.checker.Check(ctx, "acct-a", Prechat, "en", version)
		if err != nil {
			t.Fatalf("optional text, version %d given: %v", version, err)
		}
		if x.Version != 0 {
			t.Fatalf("optional text, version %d given: accepted %+v, want version 0 (nothing accepted)", version, x)
		}
	}
	x, err := e.checker.Check(ctx, "acct-a", Prechat, "en", 2)
	if err != nil || x.Version != 2 {
		t.Fatalf("optional text, current version given = %+v, %v; want version 2 accepted", x, err)
	}
}

func TestCheck_AccountWithoutTextNeedsNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.set(e.as(opA), text{Prechat, "en", "A requires consent.", true})
	for _, version := range []int32{0, 1} {
		if x, err := e.checker.Check(ctx, "acct-b", Prechat, "en", version); err != nil || x.Version != 0 {
			t.Fatalf("account without a text, version %d = %+v, %v; want version 0, no error", version, x, err)
		}
	}
}

func TestAccepted_CountsPerVersionAndLocale(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	admin := e.as(opA)
	e.set(admin, text{Prechat, "en", "en v1", true})
	e.set(admin, text{Prechat, "de", "de v1", true})
	accept := func(locale string, version int32) {
		t.Helper()
		x, err := e.checker.Check(ctx, "acct-a", Prechat, locale, version)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.checker.Accepted(ctx, "acct-a", x); err != nil {
			t.Fatal(err)
		}
	}
	accept("en", 1)
	accept("en", 1)
	accept("de", 1)
	e.set(admin, text{Prechat, "en", "en v2", true})
	accept("en", 2)
	// Nothing accepted, nothing counted.
	if err := e.checker.Accepted(ctx, "acct-a", Text{}); err != nil {
		t.Fatal(err)
	}

	counts, err := e.store.counts(ctx, "acct-a")
	if err != nil {
		t.Fatal(err)
	}
	want := map[[3]string]int64{
		countKey(Prechat, "en", 1): 2,
		countKey(Prechat, "en", 2): 1,
		countKey(Prechat, "de", 1): 1,
	}
	if len(counts) != len(want) {
		t.Fatalf("counts %v, want %v", counts, want)
	}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("count %v = %d, want %d", k, counts[k], n)
		}
	}
	if other, err := e.store.counts(ctx, "acct-b"); err != nil || len(other) != 0 {
		t.Fatalf("acct-b counts %v, %v; want none", other, err)
	}
}
