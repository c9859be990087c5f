package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/origin"
)

// origins stands in for the account package behind web.Origins (it is
// another domain's storage): each account's allowed website origins.
type origins map[string][]string

// brokenAccount is an account whose lookup fails, as when the database does.
const brokenAccount = "broken"

func (o origins) AllowedOrigins(_ context.Context, id string) ([]string, error) {
	if id == brokenAccount {
		return nil, errors.New("database is locked")
	}
	l, ok := o[id]
	if !ok {
		return nil, fmt.Errorf("account %s: %w", id, errs.ErrNotFound)
	}
	return l, nil
}

// newServer serves the web handler alone over TLS, as the binary mounts it.
func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(New(origins{
		"demo":    {origin.Self},
		"shop":    {origin.Self, "https://shop.example", "https://www.shop.example:8443"},
		"nowhere": {},
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// get fetches path and returns the response with its body read.
func get(t *testing.T, srv *httptest.Server, path string) (*http.Response, string) {
	t.Helper()
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := c.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

func panelPath(account, host string) string {
	return "/widget/panel?account=" + url.QueryEscape(account) + "&host=" + url.QueryEscape(host)
}

// frameAncestors is the frame-ancestors directive of res's CSP.
func frameAncestors(t *testing.T, res *http.Response) string {
	t.Helper()
	csp := res.Header.Get("Content-Security-Policy")
	_, fa, ok := strings.Cut(csp, "frame-ancestors ")
	if !ok {
		t.Fatalf("CSP %q has no frame-ancestors", csp)
	}
	fa, _, _ = strings.Cut(fa, ";")
	return fa
}

func TestPanel_FramedOnlyByAllowedOrigins(t *testing.T) {
	t.Parallel()
	srv := newServer(t)

	ok, body := get(t, srv, panelPath("demo", srv.URL))
	if ok.StatusCode != http.StatusOK {
		t.Fatalf("panel on the server's own origin: HTTP %d, want 200", ok.StatusCode)
	}
	if fa := frameAncestors(t, ok); fa != "'self'" {
		t.Fatalf("frame-ancestors %q, want 'self'", fa)
	}
	if !strings.Contains(body, "/static/panel.js") {
		t.Fatal("the panel page does not load the panel script")
	}

	evil, body := get(t, srv, panelPath("demo", "https://evil.example"))
	if evil.StatusCode != http.StatusForbidden {
		t.Fatalf("panel for a foreign host: HTTP %d, want 403", evil.StatusCode)
	}
	if fa := frameAncestors(t, evil); fa != "'self'" {
		t.Fatalf("frame-ancestors on refusal %q, want 'self'", fa)
	}
	if strings.Contains(body, "panel.js") {
		t.Fatal("the refused panel still loads the panel script")
	}

	unknown, _ := get(t, srv, panelPath("no-such-account", srv.URL))
	if unknown.StatusCode != http.StatusNotFound {
		t.Fatalf("panel of an unknown account: HTTP %d, want 404", unknown.StatusCode)
	}
	if fa := frameAncestors(t, unknown); fa != "'none'" {
		t.Fatalf("frame-ancestors for an unknown account %q, want 'none'", fa)
	}
}

func TestPanel_ListsEveryAllowedWebsite(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	const want = "'self' https://shop.example https://www.shop.example:8443"
	for _, host := range []string{srv.URL, "https://shop.example", "https://www.shop.example:8443"} {
		res, body := get(t, srv, panelPath("shop", host))
		if res.StatusCode != http.StatusOK {
			t.Fatalf("panel for listed host %s: HTTP %d, want 200", host, res.StatusCode)
		}
		if fa := frameAncestors(t, res); fa != want {
			t.Fatalf("frame-ancestors %q, want %q", fa, want)
		}
		// The panel script learns its account and host from the page.
		if !strings.Contains(body, `name="lethe-account" content="shop"`) || !strings.Contains(body, `name="lethe-host" content="`+host+`"`) {
			t.Fatalf("the panel page for %s does not carry its account and host:\n%s", host, body)
		}
	}
	// Only exact origins: another scheme, port or subdomain is another site.
	for _, host := range []string{"http://shop.example", "https://shop.example:444", "https://evil.shop.example", "https://www.shop.example", ""} {
		res, body := get(t, srv, panelPath("shop", host))
		if res.StatusCode != http.StatusForbidden || strings.Contains(body, "panel.js") {
			t.Fatalf("panel for unlisted host %q: HTTP %d, want 403 without the panel script", host, res.StatusCode)
		}
		if fa := frameAncestors(t, res); fa != want {
			t.Fatalf("frame-ancestors on refusal %q, want %q", fa, want)
		}
	}
}

func TestPanel_AccountWithoutWebsitesMayNotBeFramed(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	res, body := get(t, srv, panelPath("nowhere", srv.URL))
	if res.StatusCode != http.StatusForbidden || strings.Contains(body, "panel.js") {
		t.Fatalf("panel of an account with no websites: HTTP %d, want 403 without the panel script", res.StatusCode)
	}
	if fa := frameAncestors(t, res); fa != "'none'" {
		t.Fatalf("frame-ancestors %q, want 'none'", fa)
	}
}

func TestPanel_UnknownAccountIsNotFoundAndNeverFramed(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	for _, path := range []string{
		panelPath("no-such-account", srv.URL),
		panelPath(brokenAccount, srv.URL), // a failed lookup refuses too
		panelPath("", srv.URL),
		"/widget/panel",
	} {
		res, body := get(t, srv, path)
		if res.StatusCode != http.StatusNotFound {
			t.Fatalf("%s: HTTP %d, want 404", path, res.StatusCode)
		}
		if fa := frameAncestors(t, res); fa != "'none'" {
			t.Fatalf("%s: frame-ancestors %q, want 'none'", path, fa)
		}
		if strings.Contains(body, "panel.js") || strings.Contains(body, "database") {
			t.Fatalf("%s: body %q", path, body)
		}
	}
}

func TestConsole_MayNotBeFramed(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	res, _ := get(t, srv, "/console/")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/console/: HTTP %d", res.StatusCode)
	}
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("console CSP %q lacks frame-ancestors 'none'", csp)
	}
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("console CSP %q allows foreign or inline script", csp)
	}
	if res.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("X-Frame-Options = %q, want DENY", res.Header.Get("X-Frame-Options"))
	}
}

func TestPages_SendSecurityHeaders(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	for _, c := range []struct {
		path     string
		status   int
		denyXFO  bool // never framed: X-Frame-Options DENY as well as the CSP
		contains string
	}{
		{"/", http.StatusOK, true, "/demo"},
		{"/demo", http.StatusOK, true, `src="/widget.js"`},
		{"/console/", http.StatusOK, true, "/static/console.js"},
		// The panel is framed by the account's websites: CSP only.
		{panelPath("demo", srv.URL), http.StatusOK, false, "/static/panel.js"},
		{panelPath("demo", "https://evil.example"), http.StatusForbidden, false, "not enabled"},
		{panelPath("no-such-account", srv.URL), http.StatusNotFound, false, "unknown account"},
	} {
		res, body := get(t, srv, c.path)
		if res.StatusCode != c.status || !strings.Contains(body, c.contains) {
			t.Errorf("%s: HTTP %d, want %d with %q", c.path, res.StatusCode, c.status, c.contains)
			continue
		}
		h := res.Header
		if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q, want nosniff", c.path, got)
		}
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors "} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %s", c.path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP %q allows inline or eval'd code", c.path, csp)
		}
		if xfo := h.Get("X-Frame-Options"); c.denyXFO && xfo != "DENY" {
			t.Errorf("%s: X-Frame-Options %q, want DENY", c.path, xfo)
		} else if !c.denyXFO && xfo != "" {
			t.Errorf("%s: X-Frame-Options %q would stop the allowed websites from framing it", c.path, xfo)
		}
		if got := h.Get("Referrer-Policy"); got != "strict-origin-when-cross-origin" {
			t.Errorf("%s: Referrer-Policy %q", c.path, got)
		}
		if got := h.Get("Cache-Control"); c.status == http.StatusOK && got != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", c.path, got)
		}
	}
}

func TestConsole_WithoutSlashRedirects(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	res, _ := get(t, srv, "/console")
	if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/console/" {
		t.Fatalf("/console: HTTP %d to %q, want 301 to /console/", res.StatusCode, res.Header.Get("Location"))
	}
}

func TestWidgetJS_MayBeLoadedByOtherSites(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	res, body := get(t, srv, "/widget.js")
	if res.StatusCode != http.StatusOK || len(body) == 0 {
		t.Fatalf("/widget.js: HTTP %d, %d bytes", res.StatusCode, len(body))
	}
	// Host pages embed the loader: a same-origin resource policy would
	// block it under cross-origin isolation.
	if got := res.Header.Get("Cross-Origin-Resource-Policy"); got != "cross-origin" {
		t.Fatalf("Cross-Origin-Resource-Policy %q, want cross-origin", got)
	}
	wantJS(t, "/widget.js", res)
	if got := res.Header.Get("Cache-Control"); got != "public, max-age=300" {
		t.Fatalf("Cache-Control %q, want a short public cache", got)
	}
}

func TestStatic_ServedWithTheirContentTypes(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	for _, c := range []struct{ path, typ string }{
		{"/static/panel.js", "js"},
		{"/static/console.js", "js"},
		{"/static/panel.css", "text/css"},
		{"/static/console.css", "text/css"},
	} {
		res, body := get(t, srv, c.path)
		if res.StatusCode != http.StatusOK || len(body) == 0 {
			t.Fatalf("%s: HTTP %d, %d bytes", c.path, res.StatusCode, len(body))
		}
		if c.typ == "js" {
			wantJS(t, c.path, res)
		} else if got := res.Header.Get("Content-Type"); !strings.HasPrefix(got, c.typ) {
			t.Fatalf("%s: Content-Type %q, want %s", c.path, got, c.typ)
		}
		if got := res.Header.Get("Cache-Control"); got != "public, max-age=300" {
			t.Fatalf("%s: Cache-Control %q, want a short public cache", c.path, got)
		}
	}
	if res, _ := get(t, srv, "/static/no-such.js"); res.StatusCode != http.StatusNotFound {
		t.Fatalf("/static/no-such.js: HTTP %d, want 404", res.StatusCode)
	}
}

// wantJS fails unless res is a script a browser runs under nosniff: a
// JavaScript MIME type and the nosniff header.
func wantJS(t *testing.T, path string, res *http.Response) {
	t.Helper()
	ct := res.Header.Get("Content-Type")
	if !strings.HasPrefix(ct, "text/javascript") && !strings.HasPrefix(ct, "application/javascript") {
		t.Fatalf("%s: Content-Type %q, want a JavaScript type", path, ct)
	}
	if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Fatalf("%s: X-Content-Type-Options %q, want nosniff", path, got)
	}
}

// /static/ lists nothing, and no path, however malformed, is a server error
// or reaches a file outside the bundles.
func TestStatic_NoListingAndBadPathsAreClientErrors(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	for _, path := range []string{"/static/", "/static/%ff", "/static/%ff.js", "/static/%00", "/static/panel.js%00",
		"/static/..%2fweb.go", "/static/%2e%2e/web.go", "/static/panel.js/", "/%ff", "/static/%c0%ae%c0%ae/web.go"} {
		res, body := get(t, srv, path)
		if res.StatusCode == http.StatusOK || res.StatusCode >= 500 {
			t.Errorf("%s: HTTP %d, want 400 or 404", path, res.StatusCode)
		}
		if strings.Contains(body, "panel.js") || strings.Contains(body, "package web") {
			t.Errorf("%s: the answer lists or serves files:\n%s", path, body)
		}
	}
}
