package account

import (
	"context"
	"encoding/hex"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	privacyv1 "github.com/lethehq/lethe/gen/go/lethe/privacy/v1"
	"github.com/lethehq/lethe/server/audit"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/ids"
)

// What a session says about itself, beside auth.SessionKey, so that its
// operator can list and end it (lethe.privacy.v1 ListMySessions): never the
// token, the full client address or the raw User-Agent.
const (
	// sessionIDKey names the session (ids.New, not its token).
	sessionIDKey = "session_id"
	// signedInAtKey is the sign-in time in unix seconds.
	signedInAtKey = "signed_in_at"
	// clientKey is browser and OS ("Chrome 131 on Linux").
	clientKey = "client"
	// networkKey is the client's network (AddrPrefix).
	networkKey = "network"
)

// maxUserAgent bounds the User-Agent parsed.
const maxUserAgent = 1024

// describeSession puts into the session being signed in what the session
// list shows of it.
func (s *Service) describeSession(ctx context.Context, userAgent string, from netip.Addr) {
	s.sessions.Put(ctx, sessionIDKey, ids.New())
	s.sessions.Put(ctx, signedInAtKey, time.Now().Unix())
	s.sessions.Put(ctx, clientKey, s.clientOf(userAgent))
	s.sessions.Put(ctx, networkKey, AddrPrefix(from))
}

// clientOf summarises a User-Agent as browser, major version and OS
// ("Chrome 131 on Linux"); "" when nothing is recognised.
func (s *Service) clientOf(userAgent string) string {
	if userAgent == "" {
		return ""
	}
	if len(userAgent) > maxUserAgent {
		userAgent = userAgent[:maxUserAgent]
	}
	a := s.ua.Parse(userAgent)
	browser := strings.TrimSpace(string(a.Browser()) + " " + a.BrowserVersionMajor())
	os := string(a.OS())
	switch {
	case browser != "" && os != "":
		return browser + " on " + os
	case browser != "":
		return browser
	default:
		return os
	}
}

// sessionID names a session: its session_id, or for a session signed in
// before sessions had one, a digest of its token (never the token).
func (s *Service) sessionID(sctx context.Context) string {
	if id := s.sessions.GetString(sctx, sessionIDKey); id != "" {
		return id
	}
	if tok := s.sessions.Token(sctx); tok != "" {
		return "t" + hex.EncodeToString(ids.Hash(tok)[:12])
	}
	return ""
}

// callSession returns ctx with the session of the call: the one the
// session middleware loaded, or (for a call that did not come through it)
// an empty one that is never stored. Load reads no store for either.
func (s *Service) callSession(ctx context.Context) context.Context {
	if c, err := s.sessions.Load(ctx, ""); err == nil {
		return c
	}
	return ctx
}

// currentSessionID names the session of the call ("" when it has none).
func (s *Service) currentSessionID(ctx context.Context) string {
	return s.sessionID(s.callSession(ctx))
}

// eachSession calls fn with each live session of the operator.
func (s *Service) eachSession(ctx context.Context, operatorID string, fn func(sctx context.Context) error) error {
	return s.sessions.Iterate(ctx, func(sctx context.Context) error {
		if s.sessions.GetString(sctx, auth.SessionKey) != operatorID {
			return nil
		}
		return fn(sctx)
	})
}

// MySessions lists the calling operator's signed-in sessions, newest
// first, the one of this call marked current (privacy.Operators).
func (s *Service) MySessions(ctx context.Context) ([]*privacyv1.Session, error) {
	op, ok := auth.OperatorFrom(ctx)
	if !ok {
		return nil, errs.Unauthenticated("sign in first")
	}
	current := s.currentSessionID(ctx)
	var out []*privacyv1.Session
	err := s.eachSession(ctx, op.ID, func(sctx context.Context) error {
		id := s.sessionID(sctx)
		ss := &privacyv1.Session{Id: id, Client: s.sessions.GetString(sctx, clientKey), Network: s.sessions.GetString(sctx, networkKey),
			Current: id == current}
		// The absolute deadline; an idle session ends earlier.
		deadline := s.sessions.Deadline(sctx)
		if at := s.sessions.GetInt64(sctx, signedInAtKey); at > 0 {
			ss.SignedInAt = timestamppb.New(time.Unix(at, 0))
			if deadline.IsZero() {
				deadline = time.Unix(at, 0).Add(s.sessions.Lifetime)
			}
		}
		if !deadline.IsZero() {
			ss.ExpiresAt = timestamppb.New(deadline)
		}
		out = append(out, ss)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *privacyv1.Session) int {
		if c := b.GetSignedInAt().AsTime().Compare(a.GetSignedInAt().AsTime()); c != 0 {
			return c
		}
		return strings.Compare(a.Id, b.Id)
	})
	return out, nil
}

// RevokeMySession ends one of the calling operator's sessions at once
// (NotFound when it is not theirs or has ended). Revoking the session of
// this call signs the caller out, as Logout does (privacy.Operators).
func (s *Service) RevokeMySession(ctx context.Context, sessionID string) error {
	op, ok := auth.OperatorFrom(ctx)
	if !ok {
		return errs.Unauthenticated("sign in first")
	}
	if sessionID == "" {
		return errs.Invalid("session_id is required")
	}
	found := false
	err := s.eachSession(ctx, op.ID, func(sctx context.Context) error {
		if found || s.sessionID(sctx) != sessionID {
			return nil
		}
		found = true
		return s.sessions.Destroy(sctx)
	})
	if err != nil {
		return err
	}
	if !found {
		return errs.NotFound("no such session")
	}
	current := sessionID == s.currentSessionID(ctx)
	if current {
		// Destroyed in the store already; this marks the call's session
		// destroyed too, so that the middleware clears the cookie instead
		// of saving the session again.
		if err := s.sessions.Destroy(s.callSession(ctx)); err != nil {
			return err
		}
		s.opts.OnSignOut(op.ID)
	}
	s.log.InfoContext(ctx, "session revoked", slog.String("operator", op.ID), slog.Bool("current", current))
	s.opts.Audit.Record(ctx, audit.Entry{AccountID: op.AccountID, Action: audit.SessionRevoked, TargetID: op.ID})
	return nil
}

// endSessions ends every session of the operator, the call's own included.
func (s *Service) endSessions(ctx context.Context, operatorID string) error {
	err := s.eachSession(ctx, operatorID, func(sctx context.Context) error { return s.sessions.Destroy(sctx) })
	if err != nil {
		return err
	}
	if op, ok := auth.OperatorFrom(ctx); ok && op.ID == operatorID {
		// As in RevokeMySession: the middleware must not save it again.
		return s.sessions.Destroy(s.callSession(ctx))
	}
	return nil
}
