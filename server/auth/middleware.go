package auth

import (
	"errors"
	"io/fs"
	"net/http"
	"time"

	"github.com/alexedwards/scs/v2"
)

func fsSub(f fs.FS, dir string) (fs.FS, error) { return fs.Sub(f, dir) }

// SessionMiddleware loads the operator session into the request context and
// writes the session cookie before the first byte of the response when the
// session changed. It replaces scs's LoadAndSave, whose response writer does
// not implement http.Flusher and so breaks server streams. Session state may
// change only in unary RPCs (login, logout); a stream never changes it.
// A request that changes nothing writes nothing: the session store keeps
// the idle deadline itself (SessionStore), so loading a session does not
// mark it modified.
func SessionMiddleware(sm *scs.SessionManager, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Cookie")
		var token string
		if c, err := r.Cookie(sm.Cookie.Name); err == nil {
			token = c.Value
		}
		ctx, err := sm.Load(r.Context(), token)
		if err != nil {
			http.Error(w, "session unavailable", http.StatusInternalServerError)
			return
		}
		r = r.WithContext(ctx)
		sw := &sessionWriter{ResponseWriter: w, sm: sm, r: r}
		next.ServeHTTP(sw, r)
		sw.commit()
	})
}

type sessionWriter struct {
	http.ResponseWriter
	sm        *scs.SessionManager
	r         *http.Request
	committed bool
}

func (sw *sessionWriter) commit() {
	if sw.committed {
		return
	}
	sw.committed = true
	ctx := sw.r.Context()
	switch sw.sm.Status(ctx) {
	case scs.Modified:
		token, expiry, err := sw.sm.Commit(ctx)
		if errors.Is(err, ErrSessionRevoked) {
			// Ended by another request while this one ran: not saved
			// again, and the browser forgets it.
			sw.sm.WriteSessionCookie(ctx, sw.ResponseWriter, "", time.Time{})
			return
		}
		if err != nil {
			return
		}
		sw.sm.WriteSessionCookie(ctx, sw.ResponseWriter, token, expiry)
	case scs.Destroyed:
		sw.sm.WriteSessionCookie(ctx, sw.ResponseWriter, "", time.Time{})
	}
}

func (sw *sessionWriter) WriteHeader(code int) {
	sw.commit()
	sw.ResponseWriter.WriteHeader(code)
}

func (sw *sessionWriter) Write(b []byte) (int, error) {
	sw.commit()
	return sw.ResponseWriter.Write(b)
}

func (sw *sessionWriter) Flush() {
	sw.commit()
	if f, ok := sw.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (sw *sessionWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }
