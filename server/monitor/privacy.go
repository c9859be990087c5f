package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	privacyv1 "github.com/lethehq/lethe/gen/go/lethe/privacy/v1"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/ids"
)

// The visitor's rights over their visit (lethe.privacy.v1, served by the
// privacy package through its Visits interface): see it, find it by a custom
// data value, destroy it now. And Global Privacy Control: a browser that
// sends it is not monitored (Track).

// VisitByToken returns the visit a visit token stands for, with its account
// and visitor id; an error wrapping errs.ErrNotFound when the token is
// unknown or the visit gone. A page token is refused (ErrPageToken,
// PERMISSION_DENIED): nothing can be read with it.
func (s *Service) VisitByToken(ctx context.Context, token string) (accountID, visitorID string, d *privacyv1.VisitData, err error) {
	if token == "" {
		return "", "", nil, fmt.Errorf("visit token: %w", errs.ErrNotFound)
	}
	if IsPageToken(token) {
		return "", "", nil, ErrPageToken
	}
	v, err := s.store.VisitByTokenHash(ctx, ids.Hash(token))
	if isNotFound(err) {
		return "", "", nil, fmt.Errorf("visit token: %w", errs.ErrNotFound)
	}
	if err != nil {
		return "", "", nil, err
	}
	held, err := s.store.held(ctx, `v.id = ?`, v.ID)
	if err != nil {
		return "", "", nil, err
	}
	if len(held) == 0 {
		return "", "", nil, fmt.Errorf("visit %s: %w", v.ID, errs.ErrNotFound)
	}
	hide, err := s.hidesIP(ctx, v.AccountID)
	if err != nil {
		return "", "", nil, err
	}
	return v.AccountID, v.ID, s.visitData(held[0], hide, time.Now()), nil
}

// VisitsWithValue lists the account's visits (on site, or left and not yet
// destroyed) with a custom data value equal to value, case-insensitive
// (surrounding spaces ignored), oldest first.
func (s *Service) VisitsWithValue(ctx context.Context, accountID, value string) ([]*privacyv1.VisitFound, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return nil, nil
	}
	found, err := s.store.visitsWithValue(ctx, accountID, value)
	if err != nil || len(found) == 0 {
		return nil, err
	}
	list, err := json.Marshal(found)
	if err != nil {
		return nil, err
	}
	held, err := s.store.held(ctx, `v.account_id = ? AND v.id IN (SELECT value FROM json_each(?))`, accountID, string(list))
	if err != nil {
		return nil, err
	}
	hide, err := s.hidesIP(ctx, accountID)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]*privacyv1.VisitFound, 0, len(held))
	for _, h := range held {
		out = append(out, &privacyv1.VisitFound{VisitorId: h.v.ID, Visit: s.visitData(h, hide, now)})
	}
	return out, nil
}

// DestroyVisit destroys the account's visit now, as the janitor does once
// the retention window has passed: rows deleted with secure_delete and the
// WAL truncated before it returns. Operators watching see the visitor leave
// and the visitor's own WatchVisit streams end; its token is unknown from
// then on. It answers what it destroyed ("visit", "pages", "custom data");
// a visit already gone (or of another account) answers nothing.
func (s *Service) DestroyVisit(ctx context.Context, accountID, visitorID string) ([]*privacyv1.DestroyedCount, error) {
	pages, data, ok, err := s.destroyVisit(ctx, accountID, visitorID)
	if err != nil || !ok {
		return nil, err
	}
	s.log.InfoContext(ctx, "visit destroyed on request", slog.String("visit", visitorID), slog.String("account", accountID),
		slog.Int64("pages", pages), slog.Int64("custom_data", data))
	return []*privacyv1.DestroyedCount{
		{Category: "visit", Count: 1},
		{Category: "pages", Count: pages},
		{Category: "custom data", Count: data},
	}, nil
}

// destroyVisit deletes a visit at once, tells operators it left, ends its
// WatchVisit streams and truncates the WAL.
func (s *Service) destroyVisit(ctx context.Context, accountID, visitID string) (pages, data int64, ok bool, err error) {
	st, pages, data, ok, err := s.store.destroyVisit(ctx, accountID, visitID)
	if err != nil || !ok {
		return 0, 0, false, err
	}
	s.stayed(visitID) // no pending Leave to act on
	s.destroyed.Add(1)
	s.publishLeft(st)
	s.hub.Publish(visitTopic(visitID), visitEnded{})
	// The rows are gone; the WAL is truncated even if the caller hangs up,
	// and by the janitor's next pass if it cannot be now.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := s.checkpoint(cctx); err != nil {
		return pages, data, true, err
	}
	return pages, data, true, nil
}

// forgetOnGPC destroys the visit a token stands for when the browser turned
// Global Privacy Control on during it. Another account's visit is never
// touched (P11).
func (s *Service) forgetOnGPC(ctx context.Context, accountID, token string) error {
	v, err := s.visitByToken(ctx, token)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if v.AccountID != accountID {
		return nil
	}
	_, _, ok, err := s.destroyVisit(ctx, accountID, v.ID)
	if ok {
		s.log.InfoContext(ctx, "visit destroyed: global privacy control", slog.String("visit", v.ID), slog.String("account", accountID))
	}
	return err
}

// hidesIP tells whether the account hides IP and host; an account that is
// gone is treated as hiding them.
func (s *Service) hidesIP(ctx context.Context, accountID string) (bool, error) {
	set, err := s.settings.Settings(ctx, accountID)
	if isNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return set.HideIP, nil
}

// visitData is what a visitor is shown of their visit.
func (s *Service) visitData(h *heldVisit, hideIP bool, now time.Time) *privacyv1.VisitData {
	v := h.v
	d := &privacyv1.VisitData{
		FirstSeen: timestamppb.New(v.FirstSeen), LastSeen: timestamppb.New(v.SeenAt), OnSite: s.onSite(v, now),
		Pages: h.pages, Ip: v.IP, Host: v.Host, IpHidden: hideIP || (v.IP == "" && v.Host == ""),
		City: v.City, Region: v.Region, Country: v.Country, PostalCode: v.PostalCode, Isp: v.ISP,
		Browser: v.Browser, BrowserVersion: v.BrowserVersion, Os: v.OS, Device: v.Device,
		CustomData:  h.data,
		Destruction: &privacyv1.Destruction{Rule: forPeople(s.opts.Retention) + " after you leave the site"},
	}
	if hideIP {
		d.Ip, d.Host = "", ""
	}
	if v.Left && !h.leftAt.IsZero() {
		d.Destruction.NotAfter = timestamppb.New(h.leftAt.Add(s.opts.Retention))
	}
	return d
}

// forPeople says a duration as people do: "3 minutes", "1 hour", "90 seconds".
func forPeople(d time.Duration) string {
	n := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return n(int64(d/time.Hour), "hour")
	case d >= time.Minute && d%time.Minute == 0:
		return n(int64(d/time.Minute), "minute")
	case d >= time.Second:
		return n(int64(d.Round(time.Second)/time.Second), "second")
	default:
		return d.String()
	}
}
