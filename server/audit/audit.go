// Package audit keeps the account's audit trail: who did what and when,
// never what was said (P13). An entry carries ids, action names, setting
// names, counts and receipt ids — never message text, file contents, visitor
// names or e-mail addresses, or client addresses of visitors. It owns the
// audit table in the durable database (lethe.db); entries are kept for the
// account's retention (90 days by default) and export as JSON Lines.
package audit

import (
	"context"
	"time"

	"github.com/lethehq/lethe/server/auth"
)

// Actions: what an entry says happened.
const (
	Login            = "login"
	LoginFailed      = "login_failed"
	Logout           = "logout"
	SettingsChanged  = "settings_changed"
	OperatorCreated  = "operator_created"
	OperatorDisabled = "operator_disabled"
	OperatorEnabled  = "operator_enabled"
	OperatorDeleted  = "operator_deleted"
	ProfileCorrected = "profile_corrected"
	SessionRevoked   = "session_revoked"
	APIKeyCreated    = "api_key_created"
	APIKeyRevoked    = "api_key_revoked"
	ConsentTextSet   = "consent_text_set"
	VisitorErased    = "visitor_erased"
	VisitorStopped   = "visitor_stopped_tracking"
	SubjectFound     = "subject_found"
	SubjectErased    = "subject_erased"
	AccountExported  = "account_exported"
	AuditExported    = "audit_exported"
	// ChatsDestroyed is counted per account and hour (one entry per hour
	// whose Count grows), never per chat.
	ChatsDestroyed = "chats_destroyed"
)

// Actor kinds.
const (
	ActorOperator = "operator"
	ActorAPIKey   = "api_key"
	ActorVisitor  = "visitor"
	ActorSystem   = "system"
)

// Entry is one line of the audit trail. Every field is an id, a name from a
// fixed set, a count or a network prefix: nothing a person wrote.
type Entry struct {
	// Seq orders entries (set by the store).
	Seq       int64
	AccountID string
	At        time.Time
	ActorKind string
	ActorID   string
	Action    string
	// TargetID is the operator or API key acted on ("" when none).
	TargetID string
	// Fields are the names of the settings changed, never their values.
	Fields []string
	Count  int64
	// ReceiptID is the deletion receipt of an erasure.
	ReceiptID string
	// Network is the client's network for sign-ins (IPv4 /24, IPv6 /48).
	Network string
	// Reason is a word from a fixed set ("wrong password", "disabled").
	Reason string
}

// Recorder records entries. Recording never fails the caller: an error is
// logged (without the entry's content) and the action goes on.
type Recorder interface {
	Record(ctx context.Context, e Entry)
	// Count adds n to the account's entry for action in the current hour.
	Count(ctx context.Context, accountID, action string, n int64)
}

// Discard records nothing (tests and callers without an audit trail).
var Discard Recorder = discard{}

type discard struct{}

func (discard) Record(context.Context, Entry)                {}
func (discard) Count(context.Context, string, string, int64) {}

// Actor returns who is calling, from what auth put in ctx: an operator, an
// API key, a visitor or (nothing) the system.
func Actor(ctx context.Context) (kind, id string) {
	if op, ok := auth.OperatorFrom(ctx); ok {
		return ActorOperator, op.ID
	}
	if k, ok := auth.APIKeyFrom(ctx); ok {
		return ActorAPIKey, k.ID
	}
	if _, ok := auth.VisitorFrom(ctx); ok {
		return ActorVisitor, ""
	}
	return ActorSystem, ""
}

// By returns e with its actor set from ctx (see Actor) and its time set to
// now when it is zero.
func By(ctx context.Context, e Entry) Entry {
	if e.ActorKind == "" {
		e.ActorKind, e.ActorID = Actor(ctx)
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	return e
}
