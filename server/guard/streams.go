// Package guard bounds what anonymous clients may hold open across every
// domain: the server streams a visitor or visit token can open (WatchChat,
// WatchVisit), per token and per client address. One interceptor does it
// for all services, so that a client cannot spread its streams over them to
// get more.
//
// Everything is counted under hashes (of the token, of the address), in
// limit.Gauge tables that hold a key only while something is open (P14).
package guard

import (
	"context"
	"net/http"
	"strings"

	"connectrpc.com/connect"

	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/ids"
	"github.com/lethehq/lethe/server/limit"
	"github.com/lethehq/lethe/server/netinfo"
)

// Limits are the ceilings on open anonymous streams; below 1 turns one off.
type Limits struct {
	// PerToken bounds the streams of one procedure open with one bearer
	// token. A well-behaved widget holds one per service; a few more cover
	// tabs and reloads whose old stream has not ended yet.
	PerToken int
	// PerAddr bounds all anonymous streams of one client address.
	PerAddr int
}

// DefaultLimits are the limits unless configured otherwise.
func DefaultLimits() Limits { return Limits{PerToken: 4, PerAddr: 100} }

// Streams is a connect interceptor counting the open streams of anonymous
// procedures (auth.Public and auth.VisitorOnly in the policy) and refusing
// one past a ceiling with ResourceExhausted. A slot is released when its
// stream ends, however it ends. Install it inside errs.Interceptor (so its
// refusals are coded) and outside auth.Interceptor (so a refused stream
// costs no token lookup).
type Streams struct {
	anon map[string]bool
	// either: procedures open to visitors and operators alike (files),
	// counted when the caller is a visitor (a bearer token).
	either            map[string]bool
	perToken, perAddr *limit.Gauge
}

// NewStreams returns the interceptor for the anonymous streaming procedures
// of policy.
func NewStreams(policy map[string]auth.Kind, l Limits) *Streams {
	anon, either := map[string]bool{}, map[string]bool{}
	for p, k := range policy {
		switch k {
		case auth.Public, auth.VisitorOnly:
			anon[p] = true
		case auth.Participant:
			either[p] = true
		}
	}
	return &Streams{anon: anon, either: either, perToken: limit.NewGauge(l.PerToken), perAddr: limit.NewGauge(l.PerAddr)}
}

// Open is the number of client addresses and of tokens holding a stream now.
func (s *Streams) Open() (addrs, tokens int) { return s.perAddr.Len(), s.perToken.Len() }

// acquire holds a slot for a stream of procedure with header h from the
// client of ctx; the release function gives it back.
func (s *Streams) acquire(ctx context.Context, procedure string, h http.Header) (release func(), err error) {
	var releases []func()
	release = func() {
		for _, r := range releases {
			r()
		}
	}
	if tok, ok := bearer(h); ok {
		r, ok := s.perToken.Acquire(procedure + "\x00" + string(ids.Hash(tok)))
		if !ok {
			return nil, errs.Exhausted("at most %d open %s streams per token; close one first", s.perToken.Max(), method(procedure))
		}
		releases = append(releases, r)
	}
	r, ok := s.perAddr.Acquire(netinfo.AddrKey(netinfo.ClientAddr(ctx)))
	if !ok {
		release()
		return nil, errs.Exhausted("at most %d open streams per client address; close one first", s.perAddr.Max())
	}
	releases = append(releases, r)
	return release, nil
}

// WrapStreamingHandler implements connect.Interceptor.
func (s *Streams) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		procedure := conn.Spec().Procedure
		if _, visitor := bearer(conn.RequestHeader()); !s.anon[procedure] && !(s.either[procedure] && visitor) {
			return next(ctx, conn)
		}
		release, err := s.acquire(ctx, procedure, conn.RequestHeader())
		if err != nil {
			return err
		}
		defer release()
		return next(ctx, conn)
	}
}

// WrapUnary implements connect.Interceptor.
func (s *Streams) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc { return next }

// WrapStreamingClient implements connect.Interceptor.
func (s *Streams) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func bearer(h http.Header) (string, bool) {
	tok, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	tok = strings.TrimSpace(tok)
	return tok, ok && tok != ""
}

// method is the last part of a procedure ("/lethe.chat.v1.ChatService/WatchChat" → "WatchChat").
func method(procedure string) string {
	return procedure[strings.LastIndexByte(procedure, '/')+1:]
}
