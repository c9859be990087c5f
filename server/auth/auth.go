// Package auth resolves who is calling: an operator (scs session cookie), a
// visitor (random bearer token issued by the chat service) or an
// integrator's back end (account API key as bearer token). It owns the
// sessions table in lethe.db, the session cookie settings, and the interceptor
// that enforces each procedure's access policy before any handler runs.
package auth

import (
	"context"
	"embed"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"github.com/alexedwards/scs/v2"

	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/store"
)

// Migrations create the sessions table.
//
//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates or updates auth's tables in the durable database.
func Migrate(ctx context.Context, db *store.DB) error {
	sub, _ := fsSub(migrations, "migrations")
	return db.Migrate(ctx, "auth", sub)
}

// Operator is a signed-in operator.
type Operator struct {
	ID        string
	AccountID string
	Name      string
	Admin     bool
}

// Visitor is a visitor identified by their bearer token.
type Visitor struct {
	ID        string
	AccountID string
	// ChatID is the visitor's chat.
	ChatID string
	// Closed is true when the chat has ended (its data may be gone already).
	Closed bool
}

type ctxKey int

const (
	operatorKey ctxKey = iota
	visitorKey
	apiKeyKey
)

// OperatorFrom returns the calling operator, if any.
func OperatorFrom(ctx context.Context) (*Operator, bool) {
	o, ok := ctx.Value(operatorKey).(*Operator)
	return o, ok
}

// VisitorFrom returns the calling visitor, if any.
func VisitorFrom(ctx context.Context) (*Visitor, bool) {
	v, ok := ctx.Value(visitorKey).(*Visitor)
	return v, ok
}

// APIKeyFrom returns the API key of the call, if any.
func APIKeyFrom(ctx context.Context) (*Key, bool) {
	k, ok := ctx.Value(apiKeyKey).(*Key)
	return k, ok
}

// WithAPIKey returns ctx carrying k.
func WithAPIKey(ctx context.Context, k *Key) context.Context {
	return context.WithValue(ctx, apiKeyKey, k)
}

// WithOperator returns ctx carrying op (used by tests and by the interceptor).
func WithOperator(ctx context.Context, op *Operator) context.Context {
	return context.WithValue(ctx, operatorKey, op)
}

// WithVisitor returns ctx carrying v.
func WithVisitor(ctx context.Context, v *Visitor) context.Context {
	return context.WithValue(ctx, visitorKey, v)
}

// Kind is who may call a procedure.
type Kind int

const (
	// OperatorOnly is the default: a valid operator session.
	OperatorOnly Kind = iota
	// AdminOnly needs an operator session with the admin role.
	AdminOnly
	// VisitorOnly needs a valid visitor token.
	VisitorOnly
	// Public needs nothing; a visitor token is resolved if present.
	Public
	// APIKey needs an account API key ("Authorization: Bearer lk_...").
	APIKey
	// Participant needs someone who can take part in a chat: a visitor
	// token (as VisitorOnly) or, without a bearer token, an operator
	// session (as OperatorOnly). Whether they take part in the chat at hand
	// is the handler's question. An API key is refused: integrators never
	// reach chat files.
	Participant
)

// APIKeyPrefix starts every API key, so a key is recognisable (and can be
// told from a visitor token) at a glance.
const APIKeyPrefix = "lk_"

// Key is the account API key a call was made with.
type Key struct {
	ID        string
	AccountID string
}

// APIKeySource resolves an API key. It returns an Unauthenticated error for
// an unknown or revoked key.
type APIKeySource interface {
	APIKeyByToken(ctx context.Context, key string) (*Key, error)
}

// OperatorSource resolves the operator of a session. It returns an
// Unauthenticated error for an unknown or disabled operator.
type OperatorSource interface {
	SessionOperator(ctx context.Context, operatorID string) (*Operator, error)
}

// VisitorSource resolves a visitor token.
type VisitorSource interface {
	VisitorByToken(ctx context.Context, token string) (*Visitor, error)
}

// SessionKey is the scs key holding the operator id.
const SessionKey = "operator_id"

// NewSessions returns the session manager for operator sessions, stored in
// db: cookie HttpOnly, SameSite=Strict, Secure when secure is set, 12 h
// absolute and 2 h idle lifetime, cached in memory (SessionStore).
func NewSessions(db *store.DB, secure bool) *scs.SessionManager {
	return NewSessionsWith(db, SessionOptions{Secure: secure})
}

// NewSessionsWith is NewSessions with its lifetimes, cache bound and
// clock set by opts.
func NewSessionsWith(db *store.DB, opts SessionOptions) *scs.SessionManager {
	opts.defaults()
	sm := scs.New()
	sm.Codec = newMemoCodec(sm.Codec, opts.MaxCached)
	sm.Store = newSessionStore(db, sm.Codec, opts)
	sm.Lifetime = opts.Lifetime
	// The store keeps the idle timeout (see SessionStore): with scs's
	// own, every request would write its session back.
	sm.IdleTimeout = 0
	sm.Cookie.Name = "lethe_session"
	sm.Cookie.HttpOnly = true
	sm.Cookie.SameSite = http.SameSiteStrictMode
	sm.Cookie.Secure = opts.Secure
	sm.Cookie.Path = "/"
	return sm
}

// SessionStoreOf returns the session store of a manager made by NewSessions.
func SessionStoreOf(sm *scs.SessionManager) *SessionStore {
	s, _ := sm.Store.(*SessionStore)
	return s
}

// StopSessions stops the session store's cleanup goroutine (call before the
// database closes).
func StopSessions(sm *scs.SessionManager) {
	if s := SessionStoreOf(sm); s != nil {
		s.Stop()
	}
}

// Interceptor enforces each procedure's Kind.
type Interceptor struct {
	Sessions  *scs.SessionManager
	Operators OperatorSource
	// Visitors resolves visitor tokens (nil: none accepted; Public calls
	// are then anonymous).
	Visitors VisitorSource
	// APIKeys resolves API keys for APIKey procedures (nil: none accepted).
	APIKeys APIKeySource
	// Policy maps a procedure ("/pkg.Service/Method") to who may call it;
	// procedures missing from it are OperatorOnly.
	Policy map[string]Kind
}

func (i *Interceptor) authorize(ctx context.Context, procedure string, h http.Header) (context.Context, error) {
	kind := i.Policy[procedure]
	switch kind {
	case APIKey:
		tok, ok := bearer(h)
		if !ok || !strings.HasPrefix(tok, APIKeyPrefix) || i.APIKeys == nil {
			return ctx, errs.Unauthenticated("an API key is required")
		}
		k, err := i.APIKeys.APIKeyByToken(ctx, tok)
		if err != nil {
			return ctx, err
		}
		return WithAPIKey(ctx, k), nil
	case Public, VisitorOnly:
		tok, ok := bearer(h)
		if !ok || i.Visitors == nil {
			if kind == VisitorOnly {
				return ctx, errs.Unauthenticated("missing visitor token")
			}
			return ctx, nil
		}
		v, err := i.Visitors.VisitorByToken(ctx, tok)
		if err != nil {
			if kind == Public && errs.CodeOf(err) == connect.CodeUnauthenticated {
				return ctx, nil // a stale token does not stop anonymous calls
			}
			return ctx, err
		}
		return WithVisitor(ctx, v), nil
	case Participant:
		tok, ok := bearer(h)
		if !ok {
			return i.operator(ctx, kind)
		}
		if strings.HasPrefix(tok, APIKeyPrefix) {
			return ctx, errs.Denied("API keys cannot reach chat files")
		}
		if i.Visitors == nil {
			return ctx, errs.Unauthenticated("unknown visitor token")
		}
		v, err := i.Visitors.VisitorByToken(ctx, tok)
		if err != nil {
			return ctx, err
		}
		return WithVisitor(ctx, v), nil
	default:
		return i.operator(ctx, kind)
	}
}

// Operator resolves the operator of the session loaded into ctx (by
// SessionMiddleware), for plain HTTP handlers that serve operators: with
// admin set, only an admin.
func (i *Interceptor) Operator(ctx context.Context, admin bool) (*Operator, error) {
	kind := OperatorOnly
	if admin {
		kind = AdminOnly
	}
	ctx, err := i.operator(ctx, kind)
	if err != nil {
		return nil, err
	}
	op, _ := OperatorFrom(ctx)
	return op, nil
}

// operator resolves the operator of the session for an OperatorOnly,
// AdminOnly or Participant call.
func (i *Interceptor) operator(ctx context.Context, kind Kind) (context.Context, error) {
	id := i.Sessions.GetString(ctx, SessionKey)
	if id == "" {
		if kind == Participant {
			return ctx, errs.Unauthenticated("a visitor token or an operator session is required")
		}
		return ctx, errs.Unauthenticated("sign in first")
	}
	op, err := i.Operators.SessionOperator(ctx, id)
	if err != nil {
		return ctx, err
	}
	if kind == AdminOnly && !op.Admin {
		return ctx, errs.Denied("only admins may do this")
	}
	return WithOperator(ctx, op), nil
}

func bearer(h http.Header) (string, bool) {
	v := h.Get("Authorization")
	tok, ok := strings.CutPrefix(v, "Bearer ")
	tok = strings.TrimSpace(tok)
	return tok, ok && tok != ""
}

// WrapUnary implements connect.Interceptor.
func (i *Interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		ctx, err := i.authorize(ctx, req.Spec().Procedure, req.Header())
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

// WrapStreamingClient implements connect.Interceptor.
func (i *Interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor.
func (i *Interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, err := i.authorize(ctx, conn.Spec().Procedure, conn.RequestHeader())
		if err != nil {
			return err
		}
		return next(ctx, conn)
	}
}
