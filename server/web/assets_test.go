package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/lethehq/lethe/server/origin"
)

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var appJS = []byte(strings.Repeat("console.log('lethe');\n", 200))

// fakeBrotli stands for app.js.br: the test tells which file was sent, and
// brotli decoding is the browser's business.
var fakeBrotli = []byte("BROTLI-BYTES-OF-APP-JS")

// testAssets is a static tree as the build writes it: app.js with both
// variants, style.css with none, a chunk with gzip only.
func testAssets(t *testing.T) *assets {
	t.Helper()
	a, err := loadAssets(fstest.MapFS{
		"app.js":                  {Data: appJS},
		"app.js.br":               {Data: fakeBrotli},
		"app.js.gz":               {Data: gz(t, appJS)},
		"style.css":               {Data: []byte("body{color:red}")},
		"chunks/chunk-AB12.js":    {Data: []byte("export const x=1;")},
		"chunks/chunk-AB12.js.gz": {Data: gz(t, []byte("export const x=1;"))},
		"orphan.js.br":            {Data: []byte("nothing")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// fetch serves GET path (under /static/) with the given request headers.
func fetch(a *assets, path string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	http.StripPrefix("/static/", a.handler()).ServeHTTP(rec, req)
	return rec
}

func TestStatic_EncodingChosenByAcceptEncoding(t *testing.T) {
	t.Parallel()
	a := testAssets(t)
	hash := a.byName["app.js"].hash
	for _, tc := range []struct {
		accept, wantEnc string
	}{
		{"gzip, deflate, br, zstd", "br"},
		{"br", "br"},
		{"gzip", "gzip"},
		{"br;q=0, gzip", "gzip"},
		{"gzip;q=0.5, br;q=0.1", "br"}, // br preferred whenever acceptable
		{"*", "br"},
		{"*;q=0, gzip", "gzip"},
		{"", ""},
		{"identity", ""},
		{"deflate", ""},
		{"gzip;q=0, br;q=0", ""},
	} {
		rec := fetch(a, "/static/app.js", "Accept-Encoding", tc.accept)
		res := rec.Result()
		body := rec.Body.Bytes()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("Accept-Encoding %q: HTTP %d", tc.accept, res.StatusCode)
		}
		if got := res.Header.Get("Content-Encoding"); got != tc.wantEnc {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, want %q", tc.accept, got, tc.wantEnc)
		}
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
			t.Errorf("Accept-Encoding %q: Content-Type %q", tc.accept, ct)
		}
		if res.Header.Get("Vary") != "Accept-Encoding" {
			t.Errorf("Accept-Encoding %q: Vary %q", tc.accept, res.Header.Get("Vary"))
		}
		if res.Header.Get("Content-Length") != strconv.Itoa(len(body)) {
			t.Errorf("Accept-Encoding %q: Content-Length %q for %d bytes", tc.accept, res.Header.Get("Content-Length"), len(body))
		}
		switch tc.wantEnc {
		case "br":
			if !bytes.Equal(body, fakeBrotli) {
				t.Errorf("Accept-Encoding %q: not the .br file", tc.accept)
			}
			if res.Header.Get("ETag") != `"`+hash+`-br"` {
				t.Errorf("br ETag %q", res.Header.Get("ETag"))
			}
		case "gzip":
			if !bytes.Equal(gunzip(t, body), appJS) {
				t.Errorf("Accept-Encoding %q: the .gz file is not app.js", tc.accept)
			}
			if res.Header.Get("ETag") != `"`+hash+`-gz"` {
				t.Errorf("gzip ETag %q", res.Header.Get("ETag"))
			}
		default:
			if !bytes.Equal(body, appJS) {
				t.Errorf("Accept-Encoding %q: not the identity file", tc.accept)
			}
			if res.Header.Get("ETag") != `"`+hash+`"` {
				t.Errorf("identity ETag %q", res.Header.Get("ETag"))
			}
		}
	}
	// A file the build wrote no variants for is sent as it is.
	rec := fetch(a, "/static/style.css", "Accept-Encoding", "br, gzip")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Encoding") != "" || rec.Body.String() != "body{color:red}" ||
		!strings.HasPrefix(rec.Header().Get("Content-Type"), "text/css") {
		t.Fatalf("style.css: HTTP %d, encoding %q, type %q, body %q", rec.Code, rec.Header().Get("Content-Encoding"),
			rec.Header().Get("Content-Type"), rec.Body.String())
	}
	// A chunk with gzip only falls back to gzip for a br-and-gzip browser.
	rec = fetch(a, "/static/chunks/chunk-AB12.js", "Accept-Encoding", "br, gzip")
	if rec.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("chunk: Content-Encoding %q, want gzip", rec.Header().Get("Content-Encoding"))
	}
}

func TestStatic_NotModifiedForItsETag(t *testing.T) {
	t.Parallel()
	a := testAssets(t)
	for _, accept := range []string{"br", "gzip", ""} {
		first := fetch(a, "/static/app.js", "Accept-Encoding", accept)
		tag := first.Header().Get("ETag")
		again := fetch(a, "/static/app.js", "Accept-Encoding", accept, "If-None-Match", tag)
		if again.Code != http.StatusNotModified || again.Body.Len() != 0 {
			t.Errorf("Accept-Encoding %q, If-None-Match %s: HTTP %d, %d bytes; want 304", accept, tag, again.Code, again.Body.Len())
		}
		// Another encoding's ETag is another representation.
		other := fetch(a, "/static/app.js", "Accept-Encoding", accept, "If-None-Match", `"`+a.byName["app.js"].hash+`-xx"`)
		if other.Code != http.StatusOK {
			t.Errorf("Accept-Encoding %q with a foreign ETag: HTTP %d, want 200", accept, other.Code)
		}
	}
	// The ETag is the content's: a changed file gets another.
	b, err := loadAssets(fstest.MapFS{"app.js": {Data: append([]byte("// v2\n"), appJS...)}})
	if err != nil {
		t.Fatal(err)
	}
	if b.byName["app.js"].hash == a.byName["app.js"].hash {
		t.Fatal("a changed file kept its hash")
	}
}

func TestStatic_ImmutableOnlyForItsVersionOrChunks(t *testing.T) {
	t.Parallel()
	a := testAssets(t)
	hash := a.byName["app.js"].hash
	for path, want := range map[string]string{
		"/static/app.js?v=" + hash:                          CacheImmutable,
		"/static/app.js":                                    CacheShort,
		"/static/app.js?v=0123456789abcdef":                 CacheShort, // an old or made-up version
		"/static/app.js?v=" + hash[:8]:                      CacheShort,
		"/static/chunks/chunk-AB12.js":                      CacheImmutable,
		"/static/style.css?v=" + a.byName["style.css"].hash: CacheImmutable,
	} {
		rec := fetch(a, path, "Accept-Encoding", "br")
		if rec.Code != http.StatusOK || rec.Header().Get("Cache-Control") != want {
			t.Errorf("%s: HTTP %d, Cache-Control %q, want %q", path, rec.Code, rec.Header().Get("Cache-Control"), want)
		}
	}
	if got := a.URL("app.js"); got != "/static/app.js?v="+hash {
		t.Fatalf("URL(app.js) = %q", got)
	}
}

func TestStatic_UnknownNamesAndVariantsAre404(t *testing.T) {
	t.Parallel()
	a := testAssets(t)
	for _, p := range []string{"/static/nope.js", "/static/app.js.br", "/static/app.js.gz", "/static/orphan.js", "/static/orphan.js.br",
		"/static/chunks/", "/static/chunks", "/static/", "/static/%2e%2e/web.go"} {
		if rec := fetch(a, p, "Accept-Encoding", "br, gzip"); rec.Code != http.StatusNotFound {
			t.Errorf("%s: HTTP %d, want 404", p, rec.Code)
		}
	}
}

// The pages load their bundles by versioned URLs; a classic panel is told
// where its "Your data" bundle is, a panel split into chunks is a module.
func TestPages_ReferenceVersionedBundles(t *testing.T) {
	t.Parallel()
	orgs := origins{"demo": {origin.Self}}
	classic, err := loadAssets(fstest.MapFS{
		"panel.js": {Data: []byte("p")}, "panel.css": {Data: []byte("c")}, "panel-data.js": {Data: []byte("d")},
		"console.js": {Data: []byte("cj")}, "console.css": {Data: []byte("cc")}, "demo.css": {Data: []byte("dc")}, "widget.js": {Data: []byte("w")},
	})
	if err != nil {
		t.Fatal(err)
	}
	module, err := loadAssets(fstest.MapFS{
		"panel.js": {Data: []byte("import './chunks/chunk-X.js'")}, "panel.css": {Data: []byte("c")},
		"chunks/chunk-X.js": {Data: []byte("x")}, "widget.js": {Data: []byte("w")},
	})
	if err != nil {
		t.Fatal(err)
	}
	page := func(a *assets, path string) string {
		req := httptest.NewRequest(http.MethodGet, "http://lethe.example"+path, nil)
		rec := httptest.NewRecorder()
		newHandler(orgs, a).ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: HTTP %d", path, rec.Code)
		}
		return rec.Body.String()
	}
	panel := panelPath("demo", "http://lethe.example")
	body := page(classic, panel)
	for _, want := range []string{
		`<script src="` + classic.URL("panel.js") + `" defer></script>`,
		`<link rel="stylesheet" href="` + classic.URL("panel.css") + `">`,
		`<meta name="lethe-data-js" content="` + classic.URL("panel-data.js") + `">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("classic panel page lacks %s:\n%s", want, body)
		}
	}
	body = page(module, panel)
	if want := `<script type="module" src="` + module.URL("panel.js") + `"></script>`; !strings.Contains(body, want) {
		t.Errorf("module panel page lacks %s:\n%s", want, body)
	}
	if strings.Contains(body, "lethe-data-js") {
		t.Errorf("module panel page names a data bundle:\n%s", body)
	}
	if body := page(classic, "/console/"); !strings.Contains(body, classic.URL("console.js")) || !strings.Contains(body, classic.URL("console.css")) {
		t.Errorf("console page does not load versioned bundles:\n%s", body)
	}
	if body := page(classic, "/demo"); !strings.Contains(body, classic.URL("demo.css")) || !strings.Contains(body, `src="/widget.js"`) {
		t.Errorf("demo page:\n%s", body)
	}
	for _, u := range []string{classic.URL("panel.js"), classic.URL("panel-data.js")} {
		if !strings.Contains(u, "?v=") {
			t.Errorf("URL %q is not versioned", u)
		}
	}
}

// The loader, referenced by host pages without a version, keeps a short
// cache and may be loaded by other sites; it is served compressed too.
func TestWidgetJS_ShortCacheCompressedAndCrossOrigin(t *testing.T) {
	t.Parallel()
	a, err := loadAssets(fstest.MapFS{"widget.js": {Data: appJS}, "widget.js.gz": {Data: gz(t, appJS)}})
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(origins{}, a)
	for _, path := range []string{"/widget.js", "/widget.js?v=" + a.byName["widget.js"].hash} {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		hd := rec.Header()
		if rec.Code != http.StatusOK || hd.Get("Content-Encoding") != "gzip" || !bytes.Equal(gunzip(t, rec.Body.Bytes()), appJS) {
			t.Fatalf("%s: HTTP %d, encoding %q", path, rec.Code, hd.Get("Content-Encoding"))
		}
		if hd.Get("Cache-Control") != CacheShort || hd.Get("Cross-Origin-Resource-Policy") != "cross-origin" || hd.Get("ETag") == "" {
			t.Fatalf("%s: Cache-Control %q, CORP %q, ETag %q", path, hd.Get("Cache-Control"), hd.Get("Cross-Origin-Resource-Policy"), hd.Get("ETag"))
		}
	}
}

// The embedded build: every bundle loads, and a .gz twin, when the build
// wrote one, is its file (a stale twin would serve old code).
func TestStatic_EmbeddedVariantsMatchTheirFiles(t *testing.T) {
	t.Parallel()
	a := mustLoadAssets(Static())
	for _, name := range []string{"widget.js", "panel.js", "panel.css", "console.js", "console.css"} {
		if !a.Has(name) {
			t.Errorf("the build has no %s", name)
		}
	}
	for name, f := range a.byName {
		if f.gz != nil && !bytes.Equal(gunzip(t, f.gz), f.identity) {
			t.Errorf("%s.gz is not %s", name, name)
		}
	}
}
