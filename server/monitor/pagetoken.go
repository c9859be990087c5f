package monitor

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"connectrpc.com/connect"

	monitorv1 "github.com/lethehq/lethe/gen/go/lethe/monitor/v1"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/ids"
	"github.com/lethehq/lethe/server/netinfo"
	"github.com/lethehq/lethe/server/origin"
)

// The lazy widget (issue 8): the loader on the host page reports page views
// before the chat panel exists, so it needs a credential the host page's
// scripts can see without being able to read anything with it. That is the
// page token: Track, Heartbeat, Leave, WatchVisit, SetCustomData and
// Identify accept it for its own visit; every other call refuses it with
// PERMISSION_DENIED before reading anything. The panel, served from the
// Lethe origin, trades it for the visit token with ClaimVisit, which answers
// only requests whose Origin is the Lethe server's own.

// PageTokenPrefix starts every page token. A visit token is URL-safe base64,
// which never holds a '.', so the two are told apart without a lookup.
const PageTokenPrefix = "lp."

// IsPageToken tells whether tok has the form of a page token.
func IsPageToken(tok string) bool { return strings.HasPrefix(tok, PageTokenPrefix) }

// IsPageToken is the package's IsPageToken, for the privacy service.
func (*Service) IsPageToken(tok string) bool { return IsPageToken(tok) }

func newPageToken() string { return PageTokenPrefix + ids.Token() }

// ErrPageToken refuses a page token where the visit token is needed.
var ErrPageToken = errs.Denied("a page token only reports page views, keeps its visit on site and sets its custom data; " +
	"this call needs the visit token, which the chat panel claims with ClaimVisit")

// scope says which tokens a visitor call accepts.
type scope bool

const (
	pageOK    scope = true  // the visit token or the page token
	visitOnly scope = false // the visit token only
)

// resolveVisit resolves the bearer of a visitor call to its visit. A page
// token where it is not accepted is refused before anything is read.
func (s *Service) resolveVisit(ctx context.Context, h http.Header, sc scope) (*Visit, error) {
	tok, ok := bearer(h)
	if !ok {
		return nil, errs.Unauthenticated("missing visit token")
	}
	if IsPageToken(tok) && sc == visitOnly {
		return nil, ErrPageToken
	}
	if err := s.limits.call(ctx, tok); err != nil {
		return nil, err
	}
	v, err := s.visitByToken(ctx, tok)
	if isNotFound(err) {
		return nil, errNoVisit
	}
	return v, err
}

// visitByToken looks a visit up by its visit token or its page token.
func (s *Service) visitByToken(ctx context.Context, tok string) (*Visit, error) {
	if IsPageToken(tok) {
		return s.store.VisitByPageHash(ctx, ids.Hash(tok))
	}
	return s.store.VisitByTokenHash(ctx, ids.Hash(tok))
}

// ClaimVisit implements MonitorServiceHandler.
func (s *Service) ClaimVisit(ctx context.Context, req *connect.Request[monitorv1.ClaimVisitRequest]) (*connect.Response[monitorv1.ClaimVisitResponse], error) {
	tok, ok := bearer(req.Header())
	if !ok || !IsPageToken(tok) {
		return nil, errs.Unauthenticated("the page token is required")
	}
	// Only the panel, on the Lethe origin, may read the visit: the host
	// page's scripts see the page token and could call this too.
	self := netinfo.SelfOriginFrom(ctx)
	got, err := origin.Normalize(req.Header().Get("Origin"))
	if self == "" || err != nil || got != self {
		return nil, errs.Denied("ClaimVisit answers only the chat panel, on the Lethe server's own origin")
	}
	if err := s.limits.call(ctx, tok); err != nil {
		return nil, err
	}
	token := ids.Token()
	v, err := s.store.claim(ctx, ids.Hash(tok), ids.Hash(token))
	if isNotFound(err) {
		return nil, errNoVisit
	}
	if err != nil {
		return nil, err
	}
	s.log.DebugContext(ctx, "visit claimed", slog.String("visit", v.ID), slog.String("account", v.AccountID))
	return connect.NewResponse(&monitorv1.ClaimVisitResponse{VisitToken: token, VisitorId: v.ID}), nil
}

// allowedOrigin tells whether a browser on page origin o may report page
// views for an account listing allowed: calls without Origin (SDK clients)
// and from the Lethe server's own origin are allowed; any other origin must
// be listed ("self" stands for the server's own origin).
func allowedOrigin(ctx context.Context, o string, allowed []string) bool {
	if o == "" {
		return true
	}
	n, err := origin.Normalize(o)
	if err != nil {
		return false // "null" (sandboxed frames, file:) and garbage
	}
	if n == netinfo.SelfOriginFrom(ctx) {
		return true // the server's own origin, listed as "self" or not
	}
	return slices.Contains(allowed, n)
}
