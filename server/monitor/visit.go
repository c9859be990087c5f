package monitor

import (
	"context"
	"database/sql"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	monitorv1 "github.com/lethehq/lethe/gen/go/lethe/monitor/v1"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/hub"
	"github.com/lethehq/lethe/server/ids"
	"github.com/lethehq/lethe/server/store"
)

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(h http.Header) (string, bool) {
	tok, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	tok = strings.TrimSpace(tok)
	return tok, ok && tok != ""
}

var errNoVisit = errs.Unauthenticated("unknown or expired visit token; call Track to start a visit")

// visitFrom resolves the visit token or the page token of a visitor call
// that a page token may make (Heartbeat, Leave, WatchVisit, SetCustomData,
// Identify); see resolveVisit.
func (s *Service) visitFrom(ctx context.Context, h http.Header) (*Visit, error) {
	return s.resolveVisit(ctx, h, pageOK)
}

func checkChars(what, v string, max int) error {
	if utf8.RuneCountInString(v) > max {
		return errs.Invalid("%s is longer than %d characters", what, max)
	}
	return nil
}

func validPage(p *monitorv1.Page) error {
	if p == nil || p.Url == "" {
		return errs.Invalid("page.url is required")
	}
	if err := checkChars("page.url", p.Url, MaxURLChars); err != nil {
		return err
	}
	if err := checkChars("page.title", p.Title, MaxTitleChars); err != nil {
		return err
	}
	return checkChars("page.referrer", p.Referrer, MaxReferrerChars)
}

func validKey(k string) bool {
	if k == "" || len(k) > MaxDataKeyChars {
		return false
	}
	for _, c := range []byte(k) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

// ValidData checks custom data against the limits of the contract.
func ValidData(m map[string]string) error {
	if len(m) > MaxDataKeys {
		return errs.Invalid("custom data has more than %d keys", MaxDataKeys)
	}
	for k, v := range m {
		if !validKey(k) {
			return errs.Invalid("custom data keys are 1 to %d characters of A-Z, a-z, 0-9, '_', '.' and '-'", MaxDataKeyChars)
		}
		if utf8.RuneCountInString(v) > MaxDataValueChars {
			return errs.Invalid("a custom data value is longer than %d characters", MaxDataValueChars)
		}
	}
	return nil
}

// gpc tells whether the browser sent Global Privacy Control.
func gpc(h http.Header) bool { return strings.TrimSpace(h.Get("Sec-GPC")) == "1" }

// Track implements MonitorServiceHandler.
func (s *Service) Track(ctx context.Context, req *connect.Request[monitorv1.TrackRequest]) (*connect.Response[monitorv1.TrackResponse], error) {
	res, err := s.track(ctx, req.Header(), req.Msg)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(res), nil
}

// track is Track with the headers passed in.
func (s *Service) track(ctx context.Context, h http.Header, m *monitorv1.TrackRequest) (*monitorv1.TrackResponse, error) {
	if m.AccountId == "" {
		return nil, errs.Invalid("account_id is required")
	}
	if err := validPage(m.Page); err != nil {
		return nil, err
	}
	tok, hasToken := bearer(h)
	if err := s.limits.call(ctx, tok); err != nil {
		return nil, err
	}
	set, err := s.settings.Settings(ctx, m.AccountId)
	if isNotFound(err) {
		return nil, errs.NotFound("no such account")
	}
	if err != nil {
		return nil, err
	}
	if !allowedOrigin(ctx, h.Get("Origin"), set.AllowedOrigins) {
		// The page-view counterpart of the panel's frame-ancestors: a
		// website the account does not list cannot report visits to it.
		return nil, errs.Denied("this website is not one of the account's websites")
	}
	if set.HonourGPC && gpc(h) {
		// Nothing is recorded; a visit the browser had before it turned GPC
		// on is destroyed.
		if hasToken {
			if err := s.forgetOnGPC(ctx, m.AccountId, tok); err != nil {
				return nil, err
			}
		}
		return &monitorv1.TrackResponse{GpcHonoured: true}, nil
	}
	hideIP := set.HideIP
	now := time.Now()
	if hasToken {
		v, err := s.visitByToken(ctx, tok)
		switch {
		case isNotFound(err):
			// Destroyed (or never ours): start a new visit.
		case err != nil:
			return nil, err
		case v.AccountID != m.AccountId:
			// Another account's visit: never touch it (P11); start anew.
		default:
			var keys []string
			err := s.store.db.Tx(ctx, func(tx *sql.Tx) error {
				if _, err := touch(ctx, tx, v.ID, now, hideIP, true); err != nil {
					return err
				}
				if err := addPage(ctx, tx, v.ID, m.Page, now); err != nil {
					return err
				}
				keys, err = s.redeemInto(ctx, tx, m.AccountId, v.ID, m.Ticket, now)
				return err
			})
			if err == nil {
				s.noteKeys(ctx, v.AccountID, keys, now)
				s.stayed(v.ID)
				s.publish(ctx, v.AccountID, v.ID)
				return &monitorv1.TrackResponse{VisitorId: v.ID}, nil
			}
			if !isNotFound(err) {
				return nil, err
			}
			// Destroyed meanwhile: start a new visit.
		}
	}
	if err := s.limits.newVisit(ctx); err != nil {
		return nil, err
	}
	v := &Visit{ID: ids.New(), AccountID: m.AccountId}
	s.enrich.enrich(ctx, v, h, hideIP)
	token := ids.Token()
	var pageToken string
	var pageHash []byte
	if m.WriteOnly {
		// The loader gets the page token; the visit token stays unissued
		// (its hash is of a token nobody holds) until the panel claims it.
		pageToken = newPageToken()
		pageHash = ids.Hash(pageToken)
	}
	var keys []string
	err = s.store.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := createVisit(ctx, tx, v, ids.Hash(token), pageHash, m.Page, now); err != nil {
			return err
		}
		keys, err = s.redeemInto(ctx, tx, m.AccountId, v.ID, m.Ticket, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.noteKeys(ctx, v.AccountID, keys, now)
	s.log.DebugContext(ctx, "visit started", slog.String("visit", v.ID), slog.String("account", v.AccountID))
	s.publish(ctx, v.AccountID, v.ID)
	if m.WriteOnly {
		return &monitorv1.TrackResponse{PageToken: pageToken, VisitorId: v.ID}, nil
	}
	return &monitorv1.TrackResponse{VisitToken: token, VisitorId: v.ID}, nil
}

// Heartbeat implements MonitorServiceHandler.
func (s *Service) Heartbeat(ctx context.Context, req *connect.Request[monitorv1.HeartbeatRequest]) (*connect.Response[monitorv1.HeartbeatResponse], error) {
	v, err := s.visitFrom(ctx, req.Header())
	if err != nil {
		return nil, err
	}
	rejoined, err := touch(ctx, s.store.db.W, v.ID, time.Now(), false, false)
	if isNotFound(err) {
		return nil, errNoVisit
	}
	if err != nil {
		return nil, err
	}
	s.stayed(v.ID)
	if rejoined {
		s.publish(ctx, v.AccountID, v.ID)
	}
	return connect.NewResponse(&monitorv1.HeartbeatResponse{}), nil
}

// visitTx runs fn for the caller's visit in a transaction that also marks
// the visit seen, then notes the custom data keys fn answers (once the
// transaction committed) and tells operators.
func (s *Service) visitTx(ctx context.Context, h http.Header, sc scope, fn func(tx *sql.Tx, v *Visit, now time.Time) ([]string, error)) error {
	v, err := s.resolveVisit(ctx, h, sc)
	if err != nil {
		return err
	}
	now := time.Now()
	var keys []string
	err = s.store.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := touch(ctx, tx, v.ID, now, false, false); err != nil {
			return err
		}
		keys, err = fn(tx, v, now)
		return err
	})
	if isNotFound(err) {
		return errNoVisit
	}
	if err != nil {
		return err
	}
	s.noteKeys(ctx, v.AccountID, keys, now)
	s.publish(ctx, v.AccountID, v.ID)
	return nil
}

// SetCustomData implements MonitorServiceHandler.
func (s *Service) SetCustomData(ctx context.Context, req *connect.Request[monitorv1.SetCustomDataRequest]) (*connect.Response[monitorv1.SetCustomDataResponse], error) {
	if err := ValidData(req.Msg.Data); err != nil {
		return nil, err
	}
	err := s.visitTx(ctx, req.Header(), pageOK, func(tx *sql.Tx, v *Visit, now time.Time) ([]string, error) {
		return slices.Sorted(maps.Keys(req.Msg.Data)), setData(ctx, tx, v.ID, false, req.Msg.Data)
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&monitorv1.SetCustomDataResponse{}), nil
}

// Identify implements MonitorServiceHandler.
func (s *Service) Identify(ctx context.Context, req *connect.Request[monitorv1.IdentifyRequest]) (*connect.Response[monitorv1.IdentifyResponse], error) {
	if req.Msg.Ticket == "" {
		return nil, errs.Invalid("ticket is required")
	}
	err := s.visitTx(ctx, req.Header(), pageOK, func(tx *sql.Tx, v *Visit, now time.Time) ([]string, error) {
		return s.redeemInto(ctx, tx, v.AccountID, v.ID, req.Msg.Ticket, now)
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&monitorv1.IdentifyResponse{}), nil
}

// RespondToInvitation implements MonitorServiceHandler.
func (s *Service) RespondToInvitation(ctx context.Context, req *connect.Request[monitorv1.RespondToInvitationRequest]) (*connect.Response[monitorv1.RespondToInvitationResponse], error) {
	state := monitorv1.InvitationState_INVITATION_STATE_DECLINED
	if req.Msg.Accepted {
		state = monitorv1.InvitationState_INVITATION_STATE_ACCEPTED
	}
	err := s.visitTx(ctx, req.Header(), visitOnly, func(tx *sql.Tx, v *Visit, now time.Time) ([]string, error) {
		if v.InvID == "" || v.InvID != req.Msg.InvitationId {
			return nil, errs.NotFound("no such invitation")
		}
		res, err := tx.ExecContext(ctx, `UPDATE monitor_visits SET inv_state = ?, inv_answered_at = ?, version = version + 1
			WHERE id = ? AND inv_id = ? AND inv_state = ?`, state, ms(now), v.ID, v.InvID, monitorv1.InvitationState_INVITATION_STATE_PENDING)
		if err != nil {
			return nil, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil, errs.Precondition("the invitation was already answered or timed out")
		}
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&monitorv1.RespondToInvitationResponse{}), nil
}

// WatchVisit implements MonitorServiceHandler. While it is open the visitor
// is on site; when it closes the OnSiteTimeout starts from then.
func (s *Service) WatchVisit(ctx context.Context, req *connect.Request[monitorv1.WatchVisitRequest], stream *connect.ServerStream[monitorv1.WatchVisitResponse]) error {
	// Its reads and writes run off this goroutine's stack (store.OffStack),
	// which then stays small while the stream waits for invitations.
	v, err := store.OffStack(func() (*Visit, error) { return s.visitFrom(ctx, req.Header()) })
	if err != nil {
		return err
	}
	sub := s.hub.Subscribe(visitTopic(v.ID))
	defer sub.Close()
	s.watch(v.ID, +1)
	s.stayed(v.ID)
	defer func() {
		s.watch(v.ID, -1)
		tctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := touch(tctx, s.store.db.W, v.ID, time.Now(), false, false); err != nil && !isNotFound(err) {
			s.log.Warn("touch visit", slog.String("visit", v.ID), slog.String("error", err.Error()))
		}
	}()
	// Re-read: an invitation may have come between the lookup and the
	// subscription.
	v, err = store.OffStack(func() (*Visit, error) {
		rejoined, err := touch(ctx, s.store.db.W, v.ID, time.Now(), false, false)
		if err != nil {
			return nil, err
		}
		if rejoined {
			s.publish(ctx, v.AccountID, v.ID)
		}
		return s.store.Visit(ctx, v.ID)
	})
	if err != nil {
		if isNotFound(err) {
			return errNoVisit
		}
		return err
	}
	if err := stream.Send(&monitorv1.WatchVisitResponse{Kind: &monitorv1.WatchVisitResponse_Started{Started: &monitorv1.WatchVisitStarted{VisitorId: v.ID}}}); err != nil {
		return err
	}
	sentInv := ""
	if v.InvState == monitorv1.InvitationState_INVITATION_STATE_PENDING {
		sentInv = v.InvID
		if err := stream.Send(&monitorv1.WatchVisitResponse{Kind: &monitorv1.WatchVisitResponse_Invitation{Invitation: v.invitation()}}); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sub.Ready():
		}
		ms, ended := sub.Take()
		for _, m := range ms {
			switch m := m.(type) {
			case *monitorv1.Invitation:
				if m.InvitationId == sentInv {
					continue
				}
				sentInv = m.InvitationId
				if err := stream.Send(&monitorv1.WatchVisitResponse{Kind: &monitorv1.WatchVisitResponse_Invitation{Invitation: m}}); err != nil {
					return err
				}
			case visitEnded:
				if !s.ended(ctx, v.ID) {
					continue // marked gone just before this stream counted; it is back
				}
				return stream.Send(&monitorv1.WatchVisitResponse{Kind: &monitorv1.WatchVisitResponse_Ended{Ended: &monitorv1.VisitEnded{}}})
			}
		}
		if ended != nil {
			return hub.Ended(ended, "reconnect")
		}
	}
}

// ended tells whether a visit is gone or marked as left.
func (s *Service) ended(ctx context.Context, id string) bool {
	v, err := s.store.Visit(ctx, id)
	return err != nil || v.Left
}

// Invite implements MonitorServiceHandler.
func (s *Service) Invite(ctx context.Context, req *connect.Request[monitorv1.InviteRequest]) (*connect.Response[monitorv1.InviteResponse], error) {
	op, err := operator(ctx)
	if err != nil {
		return nil, err
	}
	msg := strings.TrimSpace(req.Msg.Message)
	if msg == "" || utf8.RuneCountInString(msg) > MaxInvitationChars {
		return nil, errs.Invalid("the invitation message must be 1 to %d characters", MaxInvitationChars)
	}
	now := time.Now()
	inv := &monitorv1.Invitation{InvitationId: ids.New(), OperatorName: op.Name, Message: msg, SentAt: timestamppb.New(now)}
	err = s.store.db.Tx(ctx, func(tx *sql.Tx) error {
		v, err := scanVisit(tx.QueryRowContext(ctx, `SELECT `+visitCols+` FROM monitor_visits WHERE id = ?`, req.Msg.VisitorId))
		// Another account's visitor is "not found" too (P11).
		if isNotFound(err) || (err == nil && (v.AccountID != op.AccountID || !s.onSite(v, now))) {
			return errs.NotFound("no such visitor on site")
		}
		if err != nil {
			return err
		}
		if v.InvState == monitorv1.InvitationState_INVITATION_STATE_PENDING {
			return errs.Precondition("an invitation to this visitor is still pending")
		}
		_, err = tx.ExecContext(ctx, `UPDATE monitor_visits SET inv_id = ?, inv_operator_id = ?, inv_operator_name = ?, inv_message = ?,
			inv_state = ?, inv_sent_at = ?, inv_answered_at = 0, version = version + 1 WHERE id = ?`,
			inv.InvitationId, op.ID, op.Name, msg, monitorv1.InvitationState_INVITATION_STATE_PENDING, ms(now), v.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "invitation sent", slog.String("visit", req.Msg.VisitorId), slog.String("invitation", inv.InvitationId), slog.String("operator", op.ID))
	s.hub.Publish(visitTopic(req.Msg.VisitorId), inv)
	s.publish(ctx, op.AccountID, req.Msg.VisitorId)
	return connect.NewResponse(&monitorv1.InviteResponse{InvitationId: inv.InvitationId}), nil
}
