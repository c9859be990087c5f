package auth

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/lethehq/lethe/server/internal/testkit"
)

func TestSessionMiddleware_CookieIsHttpOnlySameSiteStrictAndSecureWhenConfigured(t *testing.T) {
	t.Parallel()
	for _, secure := range []bool{true, false} {
		t.Run("secure="+strconv.FormatBool(secure), func(t *testing.T) {
			t.Parallel()
			e := newEnvWith(t, secure)
			c := e.caller()
			res := c.signIn(bobID)
			cookie := sessionCookieIn(t, res.Header())
			if cookie == nil {
				t.Fatalf("no session cookie in %q", res.Header().Values("Set-Cookie"))
			}
			if !cookie.HttpOnly {
				t.Errorf("session cookie %v is not HttpOnly", cookie)
			}
			if cookie.SameSite != http.SameSiteStrictMode {
				t.Errorf("session cookie %v is not SameSite=Strict", cookie)
			}
			if cookie.Secure != secure {
				t.Errorf("session cookie %v: Secure is %v, want %v", cookie, cookie.Secure, secure)
			}
			if cookie.Path != "/" {
				t.Errorf("session cookie path = %q, want /", cookie.Path)
			}
			if len(cookie.Value) < 32 {
				t.Errorf("session token %q is short", cookie.Value)
			}
			if got, err := c.call(procOperator, ""); err != nil || got != "operator:"+bobID {
				t.Fatalf("call with the cookie: %q, %v", got, err)
			}
		})
	}
}

// Answers depend on the session cookie: no cache may hand one operator's
// answer to another.
func TestSessionMiddleware_VariesOnCookie(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res, err := e.caller().callRes(procPublic, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if v := res.Header().Values("Vary"); !strings.Contains(strings.Join(v, ","), "Cookie") {
		t.Fatalf("Vary: %q, want Cookie", v)
	}
}

// A handler that changes the session and streams (flushes before its
// first byte) still sends the cookie: it goes out with the headers at the
// first flush, not when the handler returns.
func TestSessionMiddleware_WritesCookieBeforeFirstFlush(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.caller()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+flushPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Do returns with the headers, while the handler waits at the gate.
	res, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("HTTP %d: %s", res.StatusCode, b)
	}
	if sessionCookieIn(t, res.Header) == nil {
		t.Fatalf("no session cookie with the flushed headers (Set-Cookie: %q)", res.Header.Values("Set-Cookie"))
	}
	body := bufio.NewReader(res.Body)
	if line, err := body.ReadString('\n'); err != nil || line != "first\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	e.open()
	if rest, err := io.ReadAll(body); err != nil || string(rest) != "last\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
	// The cookie names a session that was saved.
	peek, err := c.http.Get(e.srv.URL + peekPath)
	if err != nil {
		t.Fatal(err)
	}
	defer peek.Body.Close()
	if b, _ := io.ReadAll(peek.Body); string(b) != "yes" {
		t.Fatalf("the session behind the cookie holds %q, want the value put before the flush", b)
	}
}

// Connect server streams need a flushing writer: through the middleware,
// each message reaches the client while the handler is still running.
func TestSessionMiddleware_ServerStreamDeliversEachMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.caller()
	c.signIn(bobID)
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Wait)
	defer cancel()
	st, err := c.watch(ctx, procWatchOperator, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if !st.Receive() || st.Msg().Value != "operator:"+bobID {
		t.Fatalf("first message %v (%v), want operator:%s", st.Msg(), st.Err(), bobID)
	}
	// The handler is waiting: the first message was flushed, not buffered.
	e.open()
	if !st.Receive() || st.Msg().Value != "done" {
		t.Fatalf("second message %v (%v), want done", st.Msg(), st.Err())
	}
	if st.Receive() {
		t.Fatalf("unexpected message %v", st.Msg())
	}
	if err := st.Err(); err != nil {
		t.Fatalf("stream ended with %v", err)
	}
}

// A destroyed session's cookie is cleared in the browser and its token is
// worthless on the server.
func TestSessionMiddleware_DestroyedSessionClearsCookie(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.caller()
	old := sessionCookieIn(t, c.signIn(bobID).Header())
	if old == nil || old.Value == "" {
		t.Fatal("sign-in set no session cookie")
	}
	res, err := c.callRes(procSignOut, "", "")
	if err != nil {
		t.Fatal(err)
	}
	cleared := sessionCookieIn(t, res.Header())
	if cleared == nil {
		t.Fatalf("sign-out set no session cookie (Set-Cookie: %q)", res.Header().Values("Set-Cookie"))
	}
	if cleared.Value != "" || cleared.MaxAge >= 0 {
		t.Fatalf("sign-out cookie %v, want an empty value that expires now", cleared)
	}
	_, err = c.call(procOperator, "")
	testkit.WantCode(t, "call after sign-out", err, connect.CodeUnauthenticated)
	// Replaying the old cookie (a client that ignored the deletion) fails.
	client := connect.NewClient[wrapperspb.StringValue, wrapperspb.StringValue](e.srv.Client(), e.srv.URL+procOperator)
	req := connect.NewRequest(wrapperspb.String(""))
	req.Header().Set("Cookie", old.Name+"="+old.Value)
	_, err = client.CallUnary(context.Background(), req)
	testkit.WantCode(t, "call with the destroyed token", err, connect.CodeUnauthenticated)
}
