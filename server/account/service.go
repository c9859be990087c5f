// Package account owns accounts (tenants), their operators and operator
// sign-in. Its tables live in the durable lethe.db and hold no visitor data.
package account

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect"
	"github.com/alexedwards/argon2id"
	"github.com/alexedwards/scs/v2"
	"github.com/medama-io/go-useragent"
	"google.golang.org/protobuf/types/known/timestamppb"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	"github.com/lethehq/lethe/gen/go/lethe/account/v1/accountv1connect"
	"github.com/lethehq/lethe/server/audit"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/ids"
	"github.com/lethehq/lethe/server/limit"
	"github.com/lethehq/lethe/server/netinfo"
)

// Limits on operator fields.
const (
	MaxNameChars     = 100
	MaxEmailChars    = 254
	MinPasswordChars = 10
	MaxPasswordChars = 200
)

// Service implements lethe.account.v1.AccountService.
type Service struct {
	store    *Store
	sessions *scs.SessionManager
	log      *slog.Logger
	opts     Options
	hasher   *hasher
	throttle *throttle
	// quiet keeps refused sign-ins from flooding the log: one line per
	// client address a minute.
	quiet  *limit.Keyed
	tarpit *tarpit
	dummy  string
	// ua summarises the User-Agent of a sign-in for the session list.
	ua *useragent.Parser
}

// Options are what the account service needs beyond its store.
type Options struct {
	// PasswordParams are the argon2id parameters for new password hashes
	// (nil: argon2id.DefaultParams, 64 MiB); existing hashes carry their own.
	PasswordParams *argon2id.Params
	// HashConcurrency is how many argon2id computations may run at once
	// (0: DefaultHashConcurrency), HashQueue how many may wait for one (0:
	// DefaultHashQueue) and HashWait for how long (0: DefaultHashWait).
	HashConcurrency int
	HashQueue       int
	HashWait        time.Duration
	// HashFailedRate bounds the password checks of sign-ins from addresses
	// that already failed, all together; a
	// sign-in beyond it is answered busy at once. Clean addresses are not
	// counted: this is what a guessing flood can take from the processors.
	// nil: DefaultHashFailedRate; an off rate: no bound.
	HashFailedRate *limit.Rate
	// Tarpit is how long a refused sign-in (throttled, busy) is held before
	// it is answered, at most its retry hint (0: answered at once; the
	// server's default is DefaultTarpit).
	Tarpit time.Duration
	// Login limits failed sign-ins (zero: DefaultLoginLimits).
	Login LoginLimits
	// MailConfigured tells admins whether the server can send mail.
	MailConfigured bool
	// MaxFileBytes and MaxChatBytes are the server's limits on one file and
	// on a chat's files (0: files.DefaultMaxFileBytes and
	// files.DefaultMaxChatBytes); an account may set lower ones, not higher.
	MaxFileBytes, MaxChatBytes int64
	// OnSignOut is called when an operator logs out, is disabled or
	// deletes themself, so that presence and streams can follow (nil:
	// nothing to tell).
	OnSignOut func(operatorID string)
	// Audit records sign-ins, settings changes and changes to operators
	// (nil: audit.Discard).
	Audit audit.Recorder

	// Set by tests only: the throttle's clock and table bound, and a hook
	// run inside each argon2id computation's slot.
	clock    func() time.Time
	maxKeys  int
	hashHook func()
	hashIdle func()
}

var _ accountv1connect.AccountServiceHandler = (*Service)(nil)

// NewService returns the account service.
func NewService(st *Store, sm *scs.SessionManager, log *slog.Logger, o Options) (*Service, error) {
	if o.PasswordParams == nil {
		o.PasswordParams = DefaultPasswordParams
	}
	if o.OnSignOut == nil {
		o.OnSignOut = func(string) {}
	}
	if o.Audit == nil {
		o.Audit = audit.Discard
	}
	if o.Login == (LoginLimits{}) {
		o.Login = DefaultLoginLimits()
	}
	s := &Service{store: st, sessions: sm, log: log, opts: o,
		hasher: newHasher(o.PasswordParams, hasherConfig{concurrency: o.HashConcurrency, queue: o.HashQueue, wait: o.HashWait, failedRate: o.HashFailedRate,
			idle: o.hashIdle, started: o.hashHook}),
		throttle: newThrottle(o.Login, o.clock, o.maxKeys),
		quiet:    limit.New(time.Minute, 1),
		tarpit:   &tarpit{max: o.Tarpit},
		ua:       useragent.NewParser(),
	}
	// Unknown e-mail addresses are checked against this hash, made with the
	// same parameters and through the same hasher as every other, so that
	// they cost what a known address costs (no enumeration by timing).
	var err error
	if s.dummy, err = s.hasher.Create(context.Background(), "lethe-dummy-password"); err != nil {
		return nil, fmt.Errorf("account: hash the dummy password: %w", err)
	}
	return s, nil
}

// Policy says who may call each procedure.
func Policy() map[string]auth.Kind {
	return map[string]auth.Kind{
		accountv1connect.AccountServiceLoginProcedure:               auth.Public,
		accountv1connect.AccountServiceCreateOperatorProcedure:      auth.AdminOnly,
		accountv1connect.AccountServiceSetOperatorDisabledProcedure: auth.AdminOnly,
		accountv1connect.AccountServiceUpdateSettingsProcedure:      auth.AdminOnly,
	}
}

// HashPassword hashes a password with argon2id, in its turn with every
// other computation (errs.Throttled when too many wait).
func (s *Service) HashPassword(ctx context.Context, pw string) (string, error) {
	return s.hasher.Create(ctx, pw)
}

// SessionOperator implements auth.OperatorSource.
func (s *Service) SessionOperator(ctx context.Context, id string) (*auth.Operator, error) {
	o, err := s.store.Operator(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, errs.Unauthenticated("sign in first")
	}
	if err != nil {
		return nil, err
	}
	if o.Disabled {
		return nil, errs.Unauthenticated("this operator is disabled")
	}
	return &auth.Operator{ID: o.ID, AccountID: o.AccountID, Name: o.Name, Admin: o.Role == RoleAdmin}, nil
}

// Login implements AccountServiceHandler.
func (s *Service) Login(ctx context.Context, req *connect.Request[accountv1.LoginRequest]) (*connect.Response[accountv1.LoginResponse], error) {
	email := strings.ToLower(strings.TrimSpace(req.Msg.Email))
	if email == "" || req.Msg.Password == "" {
		return nil, errs.Invalid("e-mail address and password are required")
	}
	if len(email) > MaxEmailChars || len(req.Msg.Password) > MaxPasswordChars {
		return nil, errs.Invalid("e-mail address or password too long")
	}
	from := netinfo.ClientAddr(ctx)
	// Throttled by the e-mail address typed, whether it is an operator's or
	// nobody's: the two are treated alike, so that the answers do not tell
	// them apart, and a refused guess costs no database read.
	at, err := s.throttle.begin("email\x00"+email, netinfo.AddrKey(from))
	if err != nil {
		s.loginRefused(ctx, func() string { return s.whoIs(ctx, email) }, from, "throttled")
		return nil, s.tarpit.hold(ctx, err)
	}
	if err := s.hasher.admit(at.clean); err != nil {
		s.throttle.aborted(at)
		s.loginRefused(ctx, func() string { return s.whoIs(ctx, email) }, from, "busy")
		return nil, s.tarpit.hold(ctx, err)
	}
	o, err := s.store.OperatorByEmail(ctx, email)
	if err != nil && !errors.Is(err, ErrNotFound) {
		s.throttle.aborted(at)
		return nil, err
	}
	who, hash := unknownEmail, s.dummy
	if o != nil {
		who, hash = o.ID, o.PasswordHash
	}
	ok, err := s.hasher.Compare(ctx, at.clean, req.Msg.Password, hash)
	if err != nil {
		s.throttle.aborted(at)
		if errs.CodeOf(err) == connect.CodeResourceExhausted {
			s.loginRefused(ctx, func() string { return who }, from, "busy")
			err = s.tarpit.hold(ctx, err)
		}
		return nil, err
	}
	if o == nil || !ok {
		s.loginFailed(ctx, who, from, "wrong password")
		s.auditLoginFailed(ctx, o, from, "wrong password")
		return nil, errs.Unauthenticated("wrong e-mail address or password")
	}
	s.throttle.succeeded(at)
	if o.Disabled {
		s.loginFailed(ctx, who, from, "disabled")
		s.auditLoginFailed(ctx, o, from, "disabled")
		return nil, errs.Denied("this operator is disabled")
	}
	// A new session token on every login defeats session fixation.
	if err := s.sessions.RenewToken(ctx); err != nil {
		return nil, err
	}
	s.sessions.Put(ctx, auth.SessionKey, o.ID)
	s.describeSession(ctx, req.Header().Get("User-Agent"), from)
	s.rehash(ctx, o, req.Msg.Password)
	a, err := s.store.Account(ctx, o.AccountID)
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "login", slog.String("operator", o.ID), slog.String("account", o.AccountID), slog.String("from", AddrPrefix(from)))
	s.opts.Audit.Record(ctx, audit.Entry{AccountID: o.AccountID, ActorKind: audit.ActorOperator, ActorID: o.ID, Action: audit.Login,
		Network: AddrPrefix(from)})
	return connect.NewResponse(&accountv1.LoginResponse{Operator: toProtoOperator(o), Account: toProtoAccount(a)}), nil
}

// rehash stores a new hash of a correct password made with other
// parameters than the service's (say, argon2id's all-processor default of
// earlier versions). Failing is no reason to refuse the sign-in: the old
// hash still works, and the next sign-in tries again.
func (s *Service) rehash(ctx context.Context, o *Operator, password string) {
	p, _, _, err := argon2id.DecodeHash(o.PasswordHash)
	if err != nil || *p == *s.opts.PasswordParams {
		return
	}
	hash, err := s.hasher.Create(ctx, password)
	if err == nil {
		err = s.store.SetPasswordHash(ctx, o.ID, hash)
	}
	if err != nil {
		s.log.WarnContext(ctx, "rehash password", slog.String("operator", o.ID), slog.String("error", err.Error()))
		return
	}
	s.log.InfoContext(ctx, "password rehashed with the current parameters", slog.String("operator", o.ID))
}

// Logout implements AccountServiceHandler.
func (s *Service) Logout(ctx context.Context, _ *connect.Request[accountv1.LogoutRequest]) (*connect.Response[accountv1.LogoutResponse], error) {
	op, _ := auth.OperatorFrom(ctx)
	if err := s.sessions.Destroy(ctx); err != nil {
		return nil, err
	}
	s.opts.OnSignOut(op.ID)
	s.opts.Audit.Record(ctx, audit.Entry{AccountID: op.AccountID, Action: audit.Logout})
	return connect.NewResponse(&accountv1.LogoutResponse{}), nil
}

// GetMe implements AccountServiceHandler.
func (s *Service) GetMe(ctx context.Context, _ *connect.Request[accountv1.GetMeRequest]) (*connect.Response[accountv1.GetMeResponse], error) {
	op, _ := auth.OperatorFrom(ctx)
	o, err := s.store.Operator(ctx, op.ID)
	if err != nil {
		return nil, err
	}
	a, err := s.store.Account(ctx, o.AccountID)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&accountv1.GetMeResponse{Operator: toProtoOperator(o), Account: toProtoAccount(a)}), nil
}

// ListOperators implements AccountServiceHandler.
func (s *Service) ListOperators(ctx context.Context, _ *connect.Request[accountv1.ListOperatorsRequest]) (*connect.Response[accountv1.ListOperatorsResponse], error) {
	op, _ := auth.OperatorFrom(ctx)
	list, err := s.store.Operators(ctx, op.AccountID)
	if err != nil {
		return nil, err
	}
	res := &accountv1.ListOperatorsResponse{}
	for _, o := range list {
		res.Operators = append(res.Operators, toProtoOperator(o))
	}
	return connect.NewResponse(res), nil
}

// ValidateNewOperator checks the fields of a new operator.
func ValidateNewOperator(email, name, password string) (string, string, error) {
	email, name, err := validateProfile(email, name)
	if err != nil {
		return "", "", err
	}
	if n := utf8.RuneCountInString(password); n < MinPasswordChars || n > MaxPasswordChars {
		return "", "", errs.Invalid("password must be %d to %d characters", MinPasswordChars, MaxPasswordChars)
	}
	return email, name, nil
}

// CreateOperator implements AccountServiceHandler.
func (s *Service) CreateOperator(ctx context.Context, req *connect.Request[accountv1.CreateOperatorRequest]) (*connect.Response[accountv1.CreateOperatorResponse], error) {
	op, _ := auth.OperatorFrom(ctx)
	email, name, err := ValidateNewOperator(req.Msg.Email, req.Msg.Name, req.Msg.Password)
	if err != nil {
		return nil, err
	}
	role := RoleOperator
	switch req.Msg.Role {
	case accountv1.Role_ROLE_ADMIN:
		role = RoleAdmin
	case accountv1.Role_ROLE_OPERATOR, accountv1.Role_ROLE_UNSPECIFIED:
	default:
		return nil, errs.Invalid("unknown role")
	}
	hash, err := s.HashPassword(ctx, req.Msg.Password)
	if err != nil {
		return nil, err
	}
	o := Operator{ID: ids.New(), AccountID: op.AccountID, Email: email, Name: name, PasswordHash: hash, Role: role, CreatedAt: time.Now()}
	if err := s.store.CreateOperator(ctx, o); err != nil {
		if errors.Is(err, ErrEmailTaken) {
			return nil, errs.E(connect.CodeAlreadyExists, "an operator with this e-mail address exists")
		}
		return nil, err
	}
	s.log.InfoContext(ctx, "operator created", slog.String("operator", o.ID), slog.String("account", o.AccountID), slog.String("by", op.ID))
	s.opts.Audit.Record(ctx, audit.Entry{AccountID: o.AccountID, Action: audit.OperatorCreated, TargetID: o.ID})
	return connect.NewResponse(&accountv1.CreateOperatorResponse{Operator: toProtoOperator(&o)}), nil
}

// SetOperatorDisabled implements AccountServiceHandler.
func (s *Service) SetOperatorDisabled(ctx context.Context, req *connect.Request[accountv1.SetOperatorDisabledRequest]) (*connect.Response[accountv1.SetOperatorDisabledResponse], error) {
	op, _ := auth.OperatorFrom(ctx)
	o, err := s.store.Operator(ctx, req.Msg.OperatorId)
	if errors.Is(err, ErrNotFound) || (err == nil && o.AccountID != op.AccountID) {
		return nil, errs.NotFound("no such operator")
	}
	if err != nil {
		return nil, err
	}
	if o.ID == op.ID && req.Msg.Disabled {
		return nil, errs.Precondition("you cannot disable yourself")
	}
	if err := s.store.SetDisabled(ctx, o.ID, req.Msg.Disabled); err != nil {
		return nil, err
	}
	o.Disabled = req.Msg.Disabled
	if o.Disabled {
		// End the operator's sessions for good, so re-enabling does not
		// revive them.
		err := s.sessions.Iterate(ctx, func(sctx context.Context) error {
			if s.sessions.GetString(sctx, auth.SessionKey) == o.ID {
				return s.sessions.Destroy(sctx)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		s.opts.OnSignOut(o.ID)
	}
	s.log.InfoContext(ctx, "operator disabled changed", slog.String("operator", o.ID), slog.Bool("disabled", o.Disabled), slog.String("by", op.ID))
	action := audit.OperatorEnabled
	if o.Disabled {
		action = audit.OperatorDisabled
	}
	s.opts.Audit.Record(ctx, audit.Entry{AccountID: o.AccountID, Action: action, TargetID: o.ID})
	return connect.NewResponse(&accountv1.SetOperatorDisabledResponse{Operator: toProtoOperator(o)}), nil
}

// validateProfile checks and normalises an operator's sign-in address
// (lower case, trimmed) and name (trimmed).
func validateProfile(email, name string) (string, string, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	name = strings.TrimSpace(name)
	if email == "" || len(email) > MaxEmailChars {
		return "", "", errs.Invalid("e-mail address is required (at most %d characters)", MaxEmailChars)
	}
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
		return "", "", errs.Invalid("e-mail address is malformed")
	}
	if name == "" || utf8.RuneCountInString(name) > MaxNameChars {
		return "", "", errs.Invalid("name is required (at most %d characters)", MaxNameChars)
	}
	return email, name, nil
}

func toProtoOperator(o *Operator) *accountv1.Operator {
	role := accountv1.Role_ROLE_OPERATOR
	if o.Role == RoleAdmin {
		role = accountv1.Role_ROLE_ADMIN
	}
	return &accountv1.Operator{Id: o.ID, AccountId: o.AccountID, Email: o.Email, Name: o.Name, Role: role,
		Disabled: o.Disabled, CreatedAt: timestamppb.New(o.CreatedAt)}
}

func toProtoAccount(a *Account) *accountv1.Account {
	return &accountv1.Account{Id: a.ID, Name: a.Name, AllowedOrigins: a.AllowedOrigins}
}
