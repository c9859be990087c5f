package consent

import (
	"context"
	"errors"
	"testing"

	"github.com/lethehq/lethe/server/errs"
)

// Text reads the exact version a visitor accepted, even after the text
// changed (their consent receipt shows what they accepted, not the
// current text).
func TestChecker_TextIsTheStoredVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	admin := e.as(opA)
	e.set(admin, text{Prechat, "en", "pre v1", true})
	e.set(admin, text{Prechat, "en", "pre v2", true})
	e.set(admin, text{Offline, "de", "off de v1", false})
	for _, c := range []struct {
		form    Form
		locale  string
		version int32
		want    string
	}{
		{Prechat, "en", 1, "pre v1"},
		{Prechat, "en", 2, "pre v2"},
		{Offline, "de", 1, "off de v1"},
	} {
		got, err := e.checker.Text(ctx, "acct-a", c.form, c.locale, c.version)
		if err != nil || got != c.want {
			t.Errorf("Text(%s, %s, %d) = %q, %v; want %q", c.form, c.locale, c.version, got, err, c.want)
		}
	}
	for _, c := range []struct {
		account string
		form    Form
		locale  string
		version int32
	}{
		{"acct-a", Prechat, "en", 3},
		{"acct-a", Offline, "en", 1},
		{"acct-a", Prechat, "de", 1},
		{"acct-b", Prechat, "en", 1},
	} {
		if got, err := e.checker.Text(ctx, c.account, c.form, c.locale, c.version); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("Text(%s, %s, %s, %d) = %q, %v; want ErrNotFound", c.account, c.form, c.locale, c.version, got, err)
		}
	}
}
