package account

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/lethehq/lethe/server/audit"
	"github.com/lethehq/lethe/server/netinfo"
)

// unknownEmail stands for the operator in the log of a sign-in with an
// e-mail address that is nobody's (the address typed is never logged).
const unknownEmail = "unknown e-mail"

// AddrPrefix is how the sign-in log shows a client address: its network,
// IPv4 to /24 and IPv6 to /48 ("203.0.113.0/24"), enough to see where
// attempts come from in a breach investigation, not who sent them.
// Operators are not visitors: "hide IP" does not apply to them.
func AddrPrefix(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown"
	}
	a = a.Unmap()
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	return p.String()
}

// loginFailed logs a sign-in that was answered: the operator's id (or
// unknownEmail), the client's network and why. Never the e-mail address
// typed, never the password.
func (s *Service) loginFailed(ctx context.Context, who string, from netip.Addr, reason string) {
	s.log.InfoContext(ctx, "login failed", slog.String("operator", who), slog.String("from", AddrPrefix(from)),
		slog.String("reason", reason))
}

// auditLoginFailed records a sign-in answered with a failure in the
// account's audit trail when the address typed is an operator's (o; nil
// when it is nobody's, which has no account to record it in): the
// operator's id as the target (whoever typed the password is not known),
// the client's network and the reason, a fixed word. These are the answered
// attempts, so the login throttle bounds them.
func (s *Service) auditLoginFailed(ctx context.Context, o *Operator, from netip.Addr, reason string) {
	if o == nil {
		return
	}
	s.opts.Audit.Record(ctx, audit.Entry{AccountID: o.AccountID, ActorKind: audit.ActorOperator, TargetID: o.ID, Action: audit.LoginFailed,
		Network: AddrPrefix(from), Reason: reason})
}

// loginRefused logs a sign-in refused before its password was checked
// (throttled, busy): a flood of them is one line per client address a
// minute, so that the log cannot be used to fill the disk.
// who is asked only for a line that is written.
func (s *Service) loginRefused(ctx context.Context, who func() string, from netip.Addr, reason string) {
	if s.quiet.Allow(reason + "\x00" + netinfo.AddrKey(from)) {
		s.loginFailed(ctx, who(), from, reason)
	}
}

// whoIs names the operator whose e-mail address this is, for the log.
func (s *Service) whoIs(ctx context.Context, email string) string {
	if o, err := s.store.OperatorByEmail(ctx, email); err == nil {
		return o.ID
	}
	return unknownEmail
}
