package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

// Static files are built once and never change while the server runs, so
// each is hashed at start and served as the build left it: pre-compressed
// (name.br, brotli at its best level, and name.gz, gzip -9, when the build
// wrote them; identity otherwise), chosen by Accept-Encoding, with a strong
// ETag per encoding. A request naming the file's hash (?v=) or a file under
// chunks/ (content-hashed by the bundler) may be cached for a year; anything
// else for 5 minutes, then revalidated with its ETag.

// Cache policies of static files.
const (
	CacheImmutable = "public, max-age=31536000, immutable"
	CacheShort     = "public, max-age=300"
)

// chunksDir holds content-hashed bundle chunks: immutable under any URL.
const chunksDir = "chunks/"

// asset is one static file and its pre-compressed variants.
type asset struct {
	name  string
	ctype string
	// hash is the hex SHA-256 of the identity file's content (first 16
	// characters): the ?v= of a versioned URL and the ETag's base.
	hash string
	// Bytes of each encoding; br and gz nil when the build wrote none.
	identity, br, gz []byte
}

// assets indexes the files of a static tree.
type assets struct {
	byName map[string]*asset
}

// loadAssets reads every file of fsys once. A name.br or name.gz is a
// variant of name, not a file of its own.
func loadAssets(fsys fs.FS) (*assets, error) {
	a := &assets{byName: map[string]*asset{}}
	variants := map[string][]byte{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		if strings.HasSuffix(p, ".br") || strings.HasSuffix(p, ".gz") {
			variants[p] = b
			return nil
		}
		sum := sha256.Sum256(b)
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = http.DetectContentType(b)
		}
		a.byName[p] = &asset{name: p, ctype: ctype, hash: hex.EncodeToString(sum[:])[:16], identity: b}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for p, b := range variants {
		base, enc := p[:len(p)-3], p[len(p)-2:]
		f := a.byName[base]
		if f == nil {
			continue // a stray variant of nothing is never served
		}
		if enc == "br" {
			f.br = b
		} else {
			f.gz = b
		}
	}
	return a, nil
}

// mustLoadAssets is loadAssets of the embedded tree, which cannot fail
// short of a broken build.
func mustLoadAssets(fsys fs.FS) *assets {
	a, err := loadAssets(fsys)
	if err != nil {
		panic("web: static files: " + err.Error())
	}
	return a
}

// Has tells whether name is a static file.
func (a *assets) Has(name string) bool { return a.byName[name] != nil }

// URL is the versioned URL of a static file, "/static/name?v=<hash>", which
// may be cached for a year; "/static/name" for an unknown name.
func (a *assets) URL(name string) string {
	if f := a.byName[name]; f != nil {
		return "/static/" + name + "?v=" + f.hash
	}
	return "/static/" + name
}

// hasChunks tells whether the bundler split code into chunks/ (the panel
// is then an ES module).
func (a *assets) hasChunks() bool {
	for n := range a.byName {
		if strings.HasPrefix(n, chunksDir) {
			return true
		}
	}
	return false
}

// serve writes static file name (404 for no such file) with cache policy
// cache ("" to choose by URL: immutable for ?v=<hash> or chunks/, short
// otherwise).
func (a *assets) serve(w http.ResponseWriter, r *http.Request, name, cache string) {
	f := a.byName[name]
	if f == nil {
		http.NotFound(w, r)
		return
	}
	if cache == "" {
		cache = CacheShort
		if strings.HasPrefix(name, chunksDir) || r.URL.Query().Get("v") == f.hash {
			cache = CacheImmutable
		}
	}
	body, enc, tag := f.identity, "", f.hash
	switch accept := acceptEncoding(r.Header.Values("Accept-Encoding")); {
	case f.br != nil && accept("br"):
		body, enc, tag = f.br, "br", f.hash+"-br"
	case f.gz != nil && accept("gzip"):
		body, enc, tag = f.gz, "gzip", f.hash+"-gz"
	}
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("Cache-Control", cache)
	h.Set("ETag", `"`+tag+`"`)
	if f.br != nil || f.gz != nil {
		h.Add("Vary", "Accept-Encoding")
	}
	if enc != "" {
		// ServeContent leaves Content-Length to a handler that encodes;
		// ranges of a compressed file are not offered (a whole file, always).
		h.Set("Content-Encoding", enc)
		h.Set("Content-Length", strconv.Itoa(len(body)))
		if r.Header.Get("Range") != "" {
			r = r.Clone(r.Context())
			r.Header.Del("Range")
		}
	}
	// ServeContent answers If-None-Match (304), HEAD and, for identity,
	// ranges, and sets Content-Length.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// handler serves the static files by the request's path (under /static/,
// stripped): only files, never a listing.
func (a *assets) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Path
		if !fs.ValidPath(name) || name == "." {
			http.NotFound(w, r)
			return
		}
		a.serve(w, r, name, "")
	})
}

// acceptEncoding returns whether an Accept-Encoding header (all its
// values) accepts a coding: listed, or covered by "*", with q above 0.
func acceptEncoding(values []string) func(coding string) bool {
	q := map[string]float64{}
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" {
				continue
			}
			weight := 1.0
			for _, p := range strings.Split(params, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
					if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
						weight = f
					}
				}
			}
			q[name] = weight
		}
	}
	return func(coding string) bool {
		if w, ok := q[coding]; ok {
			return w > 0
		}
		w, ok := q["*"]
		return ok && w > 0
	}
}
