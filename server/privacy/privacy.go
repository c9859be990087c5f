// Package privacy serves lethe.privacy.v1: the rights of the people whose
// data Lethe holds, over the data held right now (see, download, correct,
// forget now, object to monitoring), the operators' rights over their own
// durable data, admins' requests by e-mail address, the data inventory and
// the audit trail. It owns no visitor data: it reads and destroys through
// the domains that own it (chat, monitor, mail) via the interfaces below.
package privacy

import (
	"context"
	"io"
	"time"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	privacyv1 "github.com/lethehq/lethe/gen/go/lethe/privacy/v1"
	"github.com/lethehq/lethe/server/audit"
	"github.com/lethehq/lethe/server/mail"
)

// Chats is the chat domain (*chat.Service).
type Chats interface {
	// ChatData returns what the server holds about a chat (open, or closed
	// with its transcript waiting), its messages and files included;
	// errs.ErrNotFound when it is gone.
	ChatData(ctx context.Context, chatID string) (*privacyv1.ChatData, error)
	// CorrectVisitor sets the name and e-mail address the visitor gave in an
	// open chat (FailedPrecondition once closed; InvalidArgument for a bad
	// name or address) and tells the operator (ChatEvent VisitorUpdated).
	CorrectVisitor(ctx context.Context, chatID, name, email string) (*privacyv1.ChatData, error)
	// EraseChat ends the chat with reason (shown to the operator), drops its
	// waiting transcript mail unsent and destroys the chat and its files
	// before it returns. It answers what it destroyed ("messages", "files",
	// "transcript e-mails", "chat"); a chat already gone answers nothing and
	// no error.
	EraseChat(ctx context.Context, chatID, reason string) ([]*privacyv1.DestroyedCount, error)
	// ChatsByEmail lists the ids of the account's chats (open, or closed with
	// a transcript waiting) whose visitor gave the address, as their own or
	// for a transcript copy (case-insensitive).
	ChatsByEmail(ctx context.Context, accountID, email string) ([]string, error)
	// MailRef is the mail queue reference of a chat's transcript.
	MailRef(chatID string) string
	// OfflineRef is the mail queue reference of the offline message an
	// offline token (from LeaveOfflineMessage) stands for.
	OfflineRef(offlineToken string) string
}

// Mail is the mail queue (*mail.Queue).
type Mail interface {
	// Held returns the mail waiting under these references.
	Held(ctx context.Context, refs ...string) ([]mail.Held, error)
	// HeldFor returns the account's waiting mail whose data subject (the
	// visitor's e-mail address, mail.Message.DataSubject) is email.
	HeldFor(ctx context.Context, accountID, email string) ([]mail.Held, error)
	// Drop deletes the mail under ref unsent (secure_delete, checkpoint) and
	// answers how many messages it dropped.
	Drop(ctx context.Context, ref string) (int, error)
}

// Visits is visitor monitoring (*monitor.Service).
type Visits interface {
	// VisitByToken returns the visit a visit token stands for, with its
	// account and visitor id; errs.ErrNotFound when unknown or gone.
	VisitByToken(ctx context.Context, token string) (accountID, visitorID string, d *privacyv1.VisitData, err error)
	// IsPageToken tells whether a token is the loader's write-only page
	// token, which every privacy call refuses.
	IsPageToken(token string) bool
	// VisitsWithValue lists the account's visits whose custom data has a
	// value equal to value (case-insensitive).
	VisitsWithValue(ctx context.Context, accountID, value string) ([]*privacyv1.VisitFound, error)
	// DestroyVisit destroys a visit now (rows deleted, WAL truncated) and
	// tells operators it left. It answers what it destroyed ("visit",
	// "pages", "custom data"); a visit already gone answers nothing.
	DestroyVisit(ctx context.Context, accountID, visitorID string) ([]*privacyv1.DestroyedCount, error)
	// CustomDataKeys lists the custom data keys that arrived for the account
	// since a time (keys only, sorted).
	CustomDataKeys(ctx context.Context, accountID string, since time.Time) ([]string, error)
}

// Operators is the operators' own durable data (*account.Service). Every
// method acts on the operator calling (auth.OperatorFrom(ctx)).
type Operators interface {
	Me(ctx context.Context) (op *accountv1.Operator, accountName string, err error)
	MySessions(ctx context.Context) ([]*privacyv1.Session, error)
	// RevokeMySession ends one of the caller's sessions (NotFound when it
	// is not theirs or has ended).
	RevokeMySession(ctx context.Context, sessionID string) error
	// UpdateMyProfile checks the password (PermissionDenied when wrong) and
	// sets name and e-mail.
	UpdateMyProfile(ctx context.Context, name, email, password string) (*accountv1.Operator, error)
	// DeleteMe checks the password and deletes the caller (the last admin of
	// an account: FailedPrecondition); their sessions end.
	DeleteMe(ctx context.Context, password string) error
}

// AuditLog is the audit trail (*audit.Log).
type AuditLog interface {
	audit.Recorder
	// List lists the account's entries, newest first, from a page token
	// ("" for the newest); next is "" when nothing is older.
	List(ctx context.Context, accountID, pageToken string, size int) (entries []audit.Entry, next string, err error)
	// About lists the account's entries whose actor or target is the
	// operator, newest first, at most limit.
	About(ctx context.Context, accountID, operatorID string, limit int) ([]audit.Entry, error)
	// WriteJSONLines writes the account's entries, oldest first, one JSON
	// object (a privacyv1.AuditEntry) per line.
	WriteJSONLines(ctx context.Context, w io.Writer, accountID string) error
}

// AccountInfo is what the inventory says about an account's configuration.
type AccountInfo struct {
	Name               string
	TranscriptsEnabled bool
	Recipients         []string
	HideIP             bool
	IdleTimeout        time.Duration
	GPCIgnored         bool
	GPCIgnoredReason   string
	AuditRetention     time.Duration
	FilesDisabled      bool
	MaxFileBytes       int64
	MaxChatFileBytes   int64
	// MonitoringDisabled: the widget sends nothing before the visitor opens
	// the chat.
	MonitoringDisabled bool
}

// Accounts reads account configuration (the wiring adapts *account.Store).
type Accounts interface {
	Info(ctx context.Context, accountID string) (AccountInfo, error)
}
