package account

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	"github.com/lethehq/lethe/server/audit"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/netinfo"
)

// An operator's rights over their own durable data (lethe.privacy.v1; the
// privacy service calls these as privacy.Operators). Each acts on the
// operator calling.

// caller returns the calling operator as stored.
func (s *Service) caller(ctx context.Context) (*Operator, error) {
	op, ok := auth.OperatorFrom(ctx)
	if !ok {
		return nil, errs.Unauthenticated("sign in first")
	}
	o, err := s.store.Operator(ctx, op.ID)
	if errors.Is(err, ErrNotFound) {
		return nil, errs.Unauthenticated("sign in first")
	}
	return o, err
}

// Me returns the calling operator and their account's name.
func (s *Service) Me(ctx context.Context) (*accountv1.Operator, string, error) {
	o, err := s.caller(ctx)
	if err != nil {
		return nil, "", err
	}
	name, err := s.store.AccountName(ctx, o.AccountID)
	if err != nil {
		return nil, "", err
	}
	return toProtoOperator(o), name, nil
}

// checkPassword checks the operator's password as Login does: through the
// bounded hasher and under the login throttle, keyed as a sign-in with the
// operator's address, so that a stolen session gains no guesses beyond the
// sign-in form's. Wrong is PermissionDenied.
func (s *Service) checkPassword(ctx context.Context, o *Operator, password string) error {
	if password == "" {
		return errs.Invalid("current_password is required")
	}
	if len(password) > MaxPasswordChars {
		return errs.Denied("the password is wrong")
	}
	from := netinfo.ClientAddr(ctx)
	at, err := s.throttle.begin("email\x00"+o.Email, netinfo.AddrKey(from))
	if err != nil {
		return err
	}
	if err := s.hasher.admit(at.clean); err != nil {
		s.throttle.aborted(at)
		return err
	}
	ok, err := s.hasher.Compare(ctx, at.clean, password, o.PasswordHash)
	if err != nil {
		s.throttle.aborted(at)
		return err
	}
	if !ok {
		s.log.InfoContext(ctx, "password check failed", slog.String("operator", o.ID), slog.String("from", AddrPrefix(from)))
		return errs.Denied("the password is wrong")
	}
	s.throttle.succeeded(at)
	return nil
}

// UpdateMyProfile checks the password (PermissionDenied when wrong) and
// sets the calling operator's name and sign-in address (InvalidArgument as
// CreateOperator; AlreadyExists when the address is someone else's).
func (s *Service) UpdateMyProfile(ctx context.Context, name, email, password string) (*accountv1.Operator, error) {
	o, err := s.caller(ctx)
	if err != nil {
		return nil, err
	}
	email, name, err = validateProfile(email, name)
	if err != nil {
		return nil, err
	}
	if err := s.checkPassword(ctx, o, password); err != nil {
		return nil, err
	}
	var changed []string
	if name != o.Name {
		changed = append(changed, "name")
	}
	if email != o.Email {
		changed = append(changed, "email")
	}
	if len(changed) == 0 {
		return toProtoOperator(o), nil
	}
	if err := s.store.UpdateProfile(ctx, o.ID, name, email); err != nil {
		if errors.Is(err, ErrEmailTaken) {
			return nil, errs.E(connect.CodeAlreadyExists, "an operator with this e-mail address exists")
		}
		return nil, err
	}
	o.Name, o.Email = name, email
	s.log.InfoContext(ctx, "profile corrected", slog.String("operator", o.ID), slog.Any("fields", changed))
	s.opts.Audit.Record(ctx, audit.Entry{AccountID: o.AccountID, Action: audit.ProfileCorrected, TargetID: o.ID, Fields: changed})
	return toProtoOperator(o), nil
}

// DeleteMe checks the password (PermissionDenied when wrong) and deletes
// the calling operator: their sessions end and their chats go back to the
// queue (OnSignOut). The last enabled admin of an account cannot
// (FailedPrecondition). Past audit entries stay: they hold the id only.
func (s *Service) DeleteMe(ctx context.Context, password string) error {
	o, err := s.caller(ctx)
	if err != nil {
		return err
	}
	if err := s.checkPassword(ctx, o, password); err != nil {
		return err
	}
	if err := s.store.DeleteOperator(ctx, o.ID); err != nil {
		if errors.Is(err, ErrLastAdmin) {
			return errs.Precondition("you are the last admin of this account: create another admin before deleting yourself")
		}
		if errors.Is(err, ErrNotFound) {
			return errs.Unauthenticated("sign in first")
		}
		return err
	}
	// The row is gone, so no session of theirs can be used again whatever
	// happens next (SessionOperator answers Unauthenticated); ending them
	// also removes them from the store.
	if err := s.endSessions(ctx, o.ID); err != nil {
		s.log.WarnContext(ctx, "end the sessions of a deleted operator", slog.String("operator", o.ID), slog.String("error", err.Error()))
	}
	s.opts.OnSignOut(o.ID)
	s.log.InfoContext(ctx, "operator deleted themself", slog.String("operator", o.ID), slog.String("account", o.AccountID))
	s.opts.Audit.Record(ctx, audit.Entry{AccountID: o.AccountID, ActorKind: audit.ActorOperator, ActorID: o.ID, Action: audit.OperatorDeleted,
		TargetID: o.ID})
	return nil
}
