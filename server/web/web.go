// Package web serves Lethe's pages and static bundles: the widget loader,
// the chat panel (only inside the account's listed websites, by CSP
// frame-ancestors), the operator console and the demo page, each with strict
// security headers. The bundles are built from widget/ and console/ by
// `npm run build` and committed, so `go run` needs nothing but Go; they are
// served pre-compressed with content-hash ETags, and the pages load them by
// versioned URLs cached for a year (assets.go).
package web

import (
	"context"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"strings"

	"github.com/lethehq/lethe/server/netinfo"
)

//go:embed all:static
var static embed.FS

// Static returns the built bundles.
func Static() fs.FS {
	sub, _ := fs.Sub(static, "static")
	return sub
}

// Origins answers which website origins may embed an account's widget.
// "self" stands for the Lethe server's own origin.
type Origins interface {
	AllowedOrigins(ctx context.Context, accountID string) ([]string, error)
}

// Handler serves the pages.
type Handler struct {
	Origins Origins
	mux     *http.ServeMux
	assets  *assets
	// bundles are the versioned URLs the pages reference (assets.go).
	bundles bundles
}

// bundles are what the pages load, each by its versioned URL.
type bundles struct {
	PanelJS, PanelCSS, ConsoleJS, ConsoleCSS, DemoCSS string
	// PanelDataJS is the lazily loaded "Your data" bundle of a classic
	// panel script ("" when the panel is an ES module with chunks).
	PanelDataJS string
	// PanelModule: the panel is an ES module (the bundler split chunks).
	PanelModule bool
}

// New returns the web handler for the embedded static files.
func New(o Origins) *Handler { return newHandler(o, mustLoadAssets(Static())) }

func newHandler(o Origins, a *assets) *Handler {
	h := &Handler{Origins: o, mux: http.NewServeMux(), assets: a}
	h.bundles = bundles{PanelJS: a.URL("panel.js"), PanelCSS: a.URL("panel.css"), ConsoleJS: a.URL("console.js"),
		ConsoleCSS: a.URL("console.css"), DemoCSS: a.URL("demo.css"), PanelModule: a.hasChunks()}
	if a.Has("panel-data.js") {
		h.bundles.PanelDataJS = a.URL("panel-data.js")
	}
	h.mux.Handle("GET /static/", http.StripPrefix("/static/", a.handler()))
	// Host pages reference the loader without a version: a short cache,
	// revalidated by ETag, so a new release reaches them in minutes.
	h.mux.HandleFunc("GET /widget.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cross-Origin-Resource-Policy", "cross-origin")
		a.serve(w, r, "widget.js", CacheShort)
	})
	h.mux.HandleFunc("GET /widget/panel", h.panel)
	h.mux.HandleFunc("GET /console/", h.page(consolePage, "frame-ancestors 'none'"))
	h.mux.HandleFunc("GET /console", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/", http.StatusMovedPermanently)
	})
	// The demo page frames the chat panel from this server.
	h.mux.HandleFunc("GET /demo", h.page(demoPage, "frame-src 'self'; frame-ancestors 'none'"))
	h.mux.HandleFunc("GET /{$}", h.page(indexPage, "frame-ancestors 'none'"))
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "strict-origin-when-cross-origin")
	h.mux.ServeHTTP(w, r)
}

// csp is the policy of every page: only our own scripts, styles and RPCs.
func csp(frameAncestors string) string {
	return "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
		"font-src 'self'; media-src 'self'; base-uri 'none'; form-action 'none'; " + frameAncestors
}

func (h *Handler) page(t *template.Template, frame string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", csp(frame))
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		t.Execute(w, h.bundles)
	}
}

// SelfOrigin is the origin a browser sees for this server on request r: as
// netinfo's middleware resolved it (trusted proxies' X-Forwarded-Proto
// believed), or from the connection alone without it.
func SelfOrigin(r *http.Request) string {
	if o := netinfo.SelfOriginFrom(r.Context()); o != "" {
		return o
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// panel serves the chat panel shell. It is framed only by the account's
// websites: the browser enforces frame-ancestors, and the server refuses
// outright when the host origin the loader reports is not listed.
func (h *Handler) panel(w http.ResponseWriter, r *http.Request) {
	account := r.URL.Query().Get("account")
	host := r.URL.Query().Get("host")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	origins, err := h.Origins.AllowedOrigins(r.Context(), account)
	if account == "" || err != nil {
		w.Header().Set("Content-Security-Policy", csp("frame-ancestors 'none'"))
		http.Error(w, "unknown account", http.StatusNotFound)
		return
	}
	self := SelfOrigin(r)
	var ancestors []string
	allowed := false
	for _, o := range origins {
		if o == "self" {
			ancestors = append(ancestors, "'self'")
			o = self
		} else {
			ancestors = append(ancestors, o)
		}
		if o == host {
			allowed = true
		}
	}
	frame := "frame-ancestors 'none'"
	if len(ancestors) > 0 {
		frame = "frame-ancestors " + strings.Join(ancestors, " ")
	}
	w.Header().Set("Content-Security-Policy", csp(frame))
	if !allowed {
		w.WriteHeader(http.StatusForbidden)
		refusedPage.Execute(w, nil)
		return
	}
	panelPage.Execute(w, struct {
		Account, Host string
		bundles
	}{account, host, h.bundles})
}

var panelPage = template.Must(template.New("panel").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="lethe-account" content="{{.Account}}">
<meta name="lethe-host" content="{{.Host}}">
{{if .PanelDataJS}}<meta name="lethe-data-js" content="{{.PanelDataJS}}">
{{end}}<title>Chat</title>
<link rel="stylesheet" href="{{.PanelCSS}}">
</head><body><div id="app"></div>{{if .PanelModule}}<script type="module" src="{{.PanelJS}}"></script>{{else}}<script src="{{.PanelJS}}" defer></script>{{end}}</body></html>
`))

var refusedPage = template.Must(template.New("refused").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Chat unavailable</title></head>
<body><p>This chat is not enabled on this website.</p></body></html>
`))

var consolePage = template.Must(template.New("console").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Lethe console</title>
<link rel="stylesheet" href="{{.ConsoleCSS}}">
</head><body><div id="app"></div><script src="{{.ConsoleJS}}" defer></script></body></html>
`))

var demoPage = template.Must(template.New("demo").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo Company — Lethe demo</title>
<link rel="stylesheet" href="{{.DemoCSS}}">
</head><body>
<header><strong>Demo Company</strong></header>
<main>
<h1>Welcome to Demo Company</h1>
<p>This page is a website with the Lethe widget on it. Click the chat button in the
bottom-right corner to talk to an operator; sign in to the <a href="/console/">console</a>
in another window to answer.</p>
<p>When the chat ends, everything said in it is destroyed.</p>
</main>
<script async src="/widget.js" data-account="demo"></script>
</body></html>
`))

var indexPage = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Lethe</title>
<link rel="stylesheet" href="{{.DemoCSS}}"></head>
<body><main><h1>Lethe</h1><p>Live chat that forgets.</p>
<ul><li><a href="/demo">Demo page with the widget</a></li><li><a href="/console/">Operator console</a></li></ul>
</main></body></html>
`))
