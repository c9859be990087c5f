package monitor

import (
	"context"
	"time"

	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/ids"
	"github.com/lethehq/lethe/server/limit"
	"github.com/lethehq/lethe/server/netinfo"
)

// Limits bound what one anonymous client can make the monitor store or fan
// out to operators, per client address (netinfo.ClientAddr, counted under
// netinfo.AddrKey hashes) and per visit. A zero Rate turns a limit off.
type Limits struct {
	// NewVisitsPerAddr: visits started per client address. Generous for
	// offices behind one NAT address; it stops a script from filling the
	// scratch store with visits.
	NewVisitsPerAddr limit.Rate
	// CallsPerVisit: visitor calls per visit (its token): page views,
	// heartbeats, custom data, identification, invitation answers, leaving,
	// and WatchVisit streams opened. The widget makes a few per page and
	// one heartbeat every 30 s.
	CallsPerVisit limit.Rate
	// CallsPerAddr: the same calls per client address, across visits.
	CallsPerAddr limit.Rate
}

// DefaultLimits are the limits unless configured otherwise.
func DefaultLimits() Limits {
	return Limits{
		NewVisitsPerAddr: limit.Rate{N: 60, Per: 2 * time.Minute},
		CallsPerVisit:    limit.Rate{N: 60, Per: time.Minute},
		CallsPerAddr:     limit.Rate{N: 1200, Per: time.Minute},
	}
}

// limiters are the rate limiters of Limits.
type limiters struct {
	Limits
	newVisits, visitCalls, addrCalls *limit.Keyed
}

func newLimiters(l Limits) limiters {
	return limiters{Limits: l, newVisits: limit.NewRate(l.NewVisitsPerAddr),
		visitCalls: limit.NewRate(l.CallsPerVisit), addrCalls: limit.NewRate(l.CallsPerAddr)}
}

// call counts one visitor call from the client of ctx, made with visit
// token tok (none: ""), against the visit's and the address's allowance.
// It runs before the token is looked up, so a refused call costs no read.
func (l *limiters) call(ctx context.Context, tok string) error {
	if tok != "" {
		if ok, retry := l.visitCalls.Take(string(ids.Hash(tok))); !ok {
			return errs.Throttled(retry, "too many visitor calls (at most %s per visit)", l.CallsPerVisit.Describe())
		}
	}
	if ok, retry := l.addrCalls.Take(netinfo.AddrKey(netinfo.ClientAddr(ctx))); !ok {
		return errs.Throttled(retry, "too many visitor calls (at most %s per client address)", l.CallsPerAddr.Describe())
	}
	return nil
}

// newVisit counts a visit about to start from the client of ctx.
func (l *limiters) newVisit(ctx context.Context) error {
	if ok, retry := l.newVisits.Take(netinfo.AddrKey(netinfo.ClientAddr(ctx))); !ok {
		return errs.Throttled(retry, "too many new visits (at most %s per client address)", l.NewVisitsPerAddr.Describe())
	}
	return nil
}
