package auth

import (
	"context"
	"net/http"
	"testing"

	"connectrpc.com/connect"

	"github.com/lethehq/lethe/server/internal/testkit"
)

// A case of calling one procedure: as whom, and what should come of it.
type callCase struct {
	name string
	// signIn is the operator whose session the caller holds ("": none).
	signIn string
	// token is sent as "Authorization: Bearer <token>" ("": no header).
	token string
	// want is who the handler saw, when the call should succeed.
	want string
	// code is the error the call should fail with (when want is "").
	code connect.Code
}

// runCalls calls procedure once per case, each from a fresh client.
func runCalls(t *testing.T, procedure string, cases []callCase) {
	t.Helper()
	e := newEnv(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := e.caller()
			if tc.signIn != "" {
				c.signIn(tc.signIn)
			}
			got, err := c.call(procedure, tc.token)
			if tc.want == "" {
				testkit.WantCode(t, procedure, err, tc.code)
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("%s: handler saw %q (%v), want %q", procedure, got, err, tc.want)
			}
		})
	}
}

// A procedure missing from the policy needs a signed-in operator the
// operator source still knows; a visitor token or API key is no session.
func TestInterceptor_OperatorOnlyNeedsASession(t *testing.T) {
	t.Parallel()
	runCalls(t, procOperator, []callCase{
		{name: "no session", code: connect.CodeUnauthenticated},
		{name: "visitor token", token: amyToken, code: connect.CodeUnauthenticated},
		{name: "API key", token: goodKey, code: connect.CodeUnauthenticated},
		{name: "session of an operator the source refuses", signIn: goneID, code: connect.CodeUnauthenticated},
		{name: "operator", signIn: bobID, want: "operator:" + bobID},
		{name: "admin", signIn: annID, want: "operator:" + annID},
	})
}

func TestInterceptor_AdminOnlyNeedsAnAdmin(t *testing.T) {
	t.Parallel()
	runCalls(t, procAdmin, []callCase{
		{name: "no session", code: connect.CodeUnauthenticated},
		{name: "operator", signIn: bobID, code: connect.CodePermissionDenied},
		{name: "admin", signIn: annID, want: "operator:" + annID},
	})
}

func TestInterceptor_VisitorOnlyNeedsAKnownToken(t *testing.T) {
	t.Parallel()
	runCalls(t, procVisitor, []callCase{
		{name: "no token", code: connect.CodeUnauthenticated},
		{name: "unknown token", token: "vt-nobody", code: connect.CodeUnauthenticated},
		{name: "operator session", signIn: annID, code: connect.CodeUnauthenticated},
		// A failing lookup is not a missing visitor: its error stands.
		{name: "lookup fails", token: brokenToken, code: connect.CodeInternal},
		{name: "visitor", token: amyToken, want: "visitor:v-amy"},
	})
}

// A Public call resolves a visitor token when it can; a stale one (a chat
// that ended) does not stop it.
func TestInterceptor_PublicProceedsAnonymouslyWithStaleToken(t *testing.T) {
	t.Parallel()
	runCalls(t, procPublic, []callCase{
		{name: "no token", want: "anonymous"},
		{name: "stale token", token: "vt-nobody", want: "anonymous"},
		{name: "visitor", token: amyToken, want: "visitor:v-amy"},
		// Only Unauthenticated means stale: a failing lookup is not
		// silently anonymous.
		{name: "lookup fails", token: brokenToken, code: connect.CodeInternal},
	})
}

func TestInterceptor_APIKeyNeedsAPrefixedKnownKey(t *testing.T) {
	t.Parallel()
	runCalls(t, procAPIKey, []callCase{
		{name: "no key", code: connect.CodeUnauthenticated},
		// The source would accept it: the prefix check comes first.
		{name: "known key without the prefix", token: unprefixedKey, code: connect.CodeUnauthenticated},
		{name: "visitor token", token: amyToken, code: connect.CodeUnauthenticated},
		{name: "unknown key", token: APIKeyPrefix + "nobody", code: connect.CodeUnauthenticated},
		{name: "prefix alone", token: APIKeyPrefix, code: connect.CodeUnauthenticated},
		{name: "operator session", signIn: annID, code: connect.CodeUnauthenticated},
		{name: "key", token: goodKey, want: "key:key-good"},
	})
}

// A Participant call is a visitor (by token) or an operator (by session);
// which chat they take part in is the handler's question. An API key never
// gets through, not even with a session beside it.
func TestInterceptor_ParticipantIsVisitorOrOperatorNeverAPIKey(t *testing.T) {
	t.Parallel()
	runCalls(t, procParticipant, []callCase{
		{name: "nobody", code: connect.CodeUnauthenticated},
		{name: "visitor", token: amyToken, want: "visitor:v-amy"},
		{name: "unknown token", token: "vt-nobody", code: connect.CodeUnauthenticated},
		{name: "lookup fails", token: brokenToken, code: connect.CodeInternal},
		{name: "operator", signIn: bobID, want: "operator:" + bobID},
		{name: "admin", signIn: annID, want: "operator:" + annID},
		{name: "session of an operator the source refuses", signIn: goneID, code: connect.CodeUnauthenticated},
		{name: "API key", token: goodKey, code: connect.CodePermissionDenied},
		{name: "unknown API key", token: APIKeyPrefix + "nobody", code: connect.CodePermissionDenied},
		{name: "API key beside a session", signIn: bobID, token: goodKey, code: connect.CodePermissionDenied},
		// A bearer token speaks for the caller: it is not silently
		// replaced by the session.
		{name: "unknown token beside a session", signIn: bobID, token: "vt-nobody", code: connect.CodeUnauthenticated},
	})
}

// Streams are checked before their handler runs, as unary calls are.
func TestInterceptor_ChecksServerStreams(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		callCase
		procedure string
	}{
		{callCase{name: "operator stream without session", code: connect.CodeUnauthenticated}, procWatchOperator},
		{callCase{name: "operator stream", signIn: bobID, want: "operator:" + bobID}, procWatchOperator},
		{callCase{name: "visitor stream without token", code: connect.CodeUnauthenticated}, procWatchVisitor},
		{callCase{name: "visitor stream with unknown token", token: "vt-nobody", code: connect.CodeUnauthenticated}, procWatchVisitor},
		{callCase{name: "visitor stream", token: amyToken, want: "visitor:v-amy"}, procWatchVisitor},
		{callCase{name: "participant stream without anyone", code: connect.CodeUnauthenticated}, procWatchParticipant},
		{callCase{name: "participant stream with an API key", token: goodKey, code: connect.CodePermissionDenied}, procWatchParticipant},
		{callCase{name: "participant stream as visitor", token: amyToken, want: "visitor:v-amy"}, procWatchParticipant},
		{callCase{name: "participant stream as operator", signIn: bobID, want: "operator:" + bobID}, procWatchParticipant},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.caller()
			if tc.signIn != "" {
				c.signIn(tc.signIn)
			}
			ctx, cancel := context.WithTimeout(context.Background(), testkit.Wait)
			defer cancel()
			st, err := c.watch(ctx, tc.procedure, tc.token)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			got := st.Receive()
			if tc.want == "" {
				if got {
					t.Fatalf("the handler ran and sent %q", st.Msg().Value)
				}
				testkit.WantCode(t, tc.procedure, st.Err(), tc.code)
				return
			}
			if !got || st.Msg().Value != tc.want {
				t.Fatalf("first message %v (%v), want %q", st.Msg(), st.Err(), tc.want)
			}
		})
	}
}

// Without a visitor source no token is known: public calls are anonymous,
// visitor calls are refused — never a nil dereference.
func TestInterceptor_WithoutVisitorSourceNoTokenIsKnown(t *testing.T) {
	t.Parallel()
	i := &Interceptor{Policy: map[string]Kind{"/p/Public": Public, "/p/Visitor": VisitorOnly}}
	h := http.Header{"Authorization": {"Bearer some-token"}}
	ctx, err := i.authorize(context.Background(), "/p/Public", h)
	if err != nil {
		t.Fatalf("public call with a token and no visitor source: %v", err)
	}
	if _, ok := VisitorFrom(ctx); ok {
		t.Fatal("a visitor was resolved without a visitor source")
	}
	_, err = i.authorize(context.Background(), "/p/Visitor", h)
	testkit.WantCode(t, "visitor call without a visitor source", err, connect.CodeUnauthenticated)
}
