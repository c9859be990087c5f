package monitor

import (
	"context"
	"database/sql"
	"log/slog"
	"maps"
	"slices"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	monitorv1 "github.com/lethehq/lethe/gen/go/lethe/monitor/v1"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/ids"
)

// TicketPrefix starts every ticket.
const TicketPrefix = "lt_"

// MintTicket implements MonitorServiceHandler.
func (s *Service) MintTicket(ctx context.Context, req *connect.Request[monitorv1.MintTicketRequest]) (*connect.Response[monitorv1.MintTicketResponse], error) {
	k, ok := auth.APIKeyFrom(ctx)
	if !ok {
		return nil, errs.Unauthenticated("an API key is required")
	}
	if err := ValidData(req.Msg.Data); err != nil {
		return nil, err
	}
	ttl := time.Duration(req.Msg.TtlSeconds) * time.Second
	switch {
	case req.Msg.TtlSeconds == 0:
		ttl = DefaultTicketTTL
	case req.Msg.TtlSeconds < 0 || ttl > MaxTicketTTL:
		return nil, errs.Invalid("ttl_seconds must be 1 to %d (0 for %d)", int(MaxTicketTTL/time.Second), int(DefaultTicketTTL/time.Second))
	}
	t := TicketPrefix + ids.Token()
	expires := time.Now().Add(ttl)
	data := maps.Clone(req.Msg.Data)
	if data == nil {
		data = map[string]string{}
	}
	if err := insertTicket(ctx, s.store.db.W, ids.Hash(t), k.AccountID, k.ID, data, expires); err != nil {
		return nil, err
	}
	s.log.DebugContext(ctx, "ticket minted", slog.String("account", k.AccountID), slog.String("key", k.ID), slog.Int("keys", len(data)))
	return connect.NewResponse(&monitorv1.MintTicketResponse{Ticket: t, ExpiresAt: timestamppb.New(expires)}), nil
}

// redeemInto redeems ticket (if not empty) for a visit of accountID and
// makes its data the visit's verified data, in tx. It answers the keys of
// that data (for CustomDataKeys once tx commits). The codes are those
// documented on Identify.
func (s *Service) redeemInto(ctx context.Context, tx *sql.Tx, accountID, visitID, ticket string, now time.Time) ([]string, error) {
	if ticket == "" {
		return nil, nil
	}
	hash := ids.Hash(ticket)
	t, err := getTicket(ctx, tx, hash)
	if isNotFound(err) {
		return nil, errs.NotFound("unknown ticket")
	}
	if err != nil {
		return nil, err
	}
	if t.accountID != accountID {
		return nil, errs.Denied("the ticket belongs to another account")
	}
	if t.used {
		return nil, errs.Precondition("the ticket was already used")
	}
	if !now.Before(t.expiresAt) || t.data == nil {
		return nil, errs.Precondition("the ticket expired")
	}
	ok, err := s.keys.exists(ctx, t.keyID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errs.Precondition("the API key that minted the ticket was revoked")
	}
	if err := useTicket(ctx, tx, hash, now); err != nil {
		return nil, err
	}
	if err := setData(ctx, tx, visitID, true, t.data); err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(t.data)), nil
}
