// Package files carries files inside an open chat (lethe.files.v1), between
// the chat's participants only, encrypted at rest under a per-chat key that
// lives only in scratch.db, and destroyed with the chat (P6).
//
// The package owns its tables in scratch.db (chat keys, uploads, files) and
// the ciphertext directory beside it. It knows chats only through the Chats
// interface (implemented by *chat.Service) and account settings only through
// Settings (implemented in the wiring over the account store).
package files

import (
	"context"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	filesv1 "github.com/lethehq/lethe/gen/go/lethe/files/v1"
)

// Participant is the caller as a participant of one chat.
type Participant struct {
	ChatID    string
	AccountID string
	// AUTHOR_KIND_VISITOR or AUTHOR_KIND_OPERATOR.
	Kind chatv1.AuthorKind
	// The visitor's or the operator's id.
	ID string
	// Display name shown with the file in the chat.
	Name string
}

// Chats is what files needs from the chat domain (*chat.Service).
type Chats interface {
	// Participant resolves the caller of ctx (auth.VisitorFrom or
	// auth.OperatorFrom) as a participant of chatID: the chat's own visitor,
	// or the operator the chat is assigned to. PermissionDenied for anyone
	// else (another visitor, an operator or admin not in the chat, another
	// account, an API key), NotFound for an unknown chat, FailedPrecondition
	// when the chat is closed.
	Participant(ctx context.Context, chatID string) (Participant, error)
	// ChargeUpload counts a new upload against the participant's rate
	// limits (a visitor's message limits, per visitor and per address);
	// ResourceExhausted with a retry hint when over.
	ChargeUpload(ctx context.Context, p Participant) error
	// PostFile appends the FileShared event to the chat and fans it out;
	// FailedPrecondition when the chat closed meanwhile.
	PostFile(ctx context.Context, p Participant, f *chatv1.FileShared) (*chatv1.ChatEvent, error)
	// Open reports whether a chat is waiting or active (false for closed or
	// unknown chats). The startup sweep destroys the files of every chat
	// that is not open.
	Open(ctx context.Context, chatID string) (bool, error)
}

// AccountFiles is an account's file settings.
type AccountFiles struct {
	// Disabled turns files off for the account.
	Disabled bool
	// 0 means the server's limit.
	MaxFileBytes, MaxChatBytes int64
	// Empty means DefaultCategories.
	Categories []filesv1.FileCategory
}

// Settings reads an account's file settings.
type Settings interface {
	FileSettings(ctx context.Context, accountID string) (AccountFiles, error)
}

// DefaultCategories are allowed when an account chose none.
var DefaultCategories = []filesv1.FileCategory{
	filesv1.FileCategory_FILE_CATEGORY_IMAGE,
	filesv1.FileCategory_FILE_CATEGORY_PDF,
	filesv1.FileCategory_FILE_CATEGORY_TEXT,
	filesv1.FileCategory_FILE_CATEGORY_OFFICE,
}

// Server defaults (flags in server/cmd/lethe).
const (
	DefaultMaxFileBytes = 10 << 20
	DefaultMaxChatBytes = 50 << 20
	// ChunkSize is the size of every chunk but the last.
	ChunkSize = 256 << 10
	// MaxRequestBytes bounds a files request (one chunk and its envelope,
	// base64 in JSON included).
	MaxRequestBytes = 512 << 10
)
