package chat

import (
	"context"
	"database/sql"
	"log/slog"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/files"
)

// The chat side of files in chats (lethe.files.v1): who takes part in a
// chat, the limits on a visitor's uploads, the FileShared event, and the
// destruction of a chat's files when it closes (P6).

var _ files.Chats = (*Service)(nil)

// FileDestroyer destroys a chat's files (*files.Service); it must be
// idempotent.
type FileDestroyer interface {
	DestroyChat(ctx context.Context, chatID string) error
}

// fileHook holds the files domain once the wiring set it.
type fileHook struct {
	mu sync.Mutex
	f  FileDestroyer
}

// SetFiles makes the service destroy a chat's files as soon as the chat
// closes, and again (idempotently) when its rows are destroyed. Call it
// before serving. (The files service needs the chat service to be built,
// so it cannot be a constructor argument.)
func (s *Service) SetFiles(f interface {
	DestroyChat(ctx context.Context, chatID string) error
}) {
	s.filesHook.mu.Lock()
	s.filesHook.f = f
	s.filesHook.mu.Unlock()
}

// destroyFiles destroys a closed chat's files, logging a failure with the
// chat id only. The files domain sweeps what is left at its next start.
func (s *Service) destroyFiles(ctx context.Context, chatID string) {
	s.filesHook.mu.Lock()
	f := s.filesHook.f
	s.filesHook.mu.Unlock()
	if f == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := f.DestroyChat(ctx, chatID); err != nil {
		s.log.Error("destroy chat files", slog.String("chat", chatID), slog.String("error", err.Error()))
	}
}

// Participant implements files.Chats: the caller as a participant of
// chatID. A visitor takes part in their own chat only; an operator in the
// chat assigned to them only (not a waiting chat, not an admin's
// colleague's chat, not a chat transferred away). Chats of other accounts
// are NotFound, as unknown ones are (P11).
func (s *Service) Participant(ctx context.Context, chatID string) (files.Participant, error) {
	if err := requireChatID(chatID); err != nil {
		return files.Participant{}, err
	}
	if v, ok := auth.VisitorFrom(ctx); ok {
		return s.visitorParticipant(ctx, v, chatID)
	}
	if op, ok := auth.OperatorFrom(ctx); ok {
		c, err := s.store.Chat(ctx, chatID)
		if isNotFound(err) {
			return files.Participant{}, errs.NotFound("no such chat")
		}
		if err != nil {
			return files.Participant{}, err
		}
		if err := mineCheck(op)(c); err != nil {
			return files.Participant{}, err
		}
		return files.Participant{ChatID: c.ID, AccountID: c.AccountID, Kind: chatv1.AuthorKind_AUTHOR_KIND_OPERATOR,
			ID: op.ID, Name: op.Name}, nil
	}
	return files.Participant{}, errs.Denied("only the chat's visitor and its operator can reach its files")
}

func (s *Service) visitorParticipant(ctx context.Context, v *auth.Visitor, chatID string) (files.Participant, error) {
	if chatID != v.ChatID {
		c, err := s.store.Chat(ctx, chatID)
		if isNotFound(err) || (err == nil && c.AccountID != v.AccountID) {
			return files.Participant{}, errs.NotFound("no such chat")
		}
		if err != nil {
			return files.Participant{}, err
		}
		return files.Participant{}, errs.Denied("this chat belongs to another visitor")
	}
	// As every call that uses a chat: counted against the address's open
	// chats (after a restart), refused when closed.
	if _, err := s.usedChat(ctx, chatID); err != nil {
		return files.Participant{}, err
	}
	c, err := s.store.Chat(ctx, chatID)
	if isNotFound(err) {
		return files.Participant{}, errs.Precondition("the chat is closed")
	}
	if err != nil {
		return files.Participant{}, err
	}
	if err := openCheck(c); err != nil {
		return files.Participant{}, err
	}
	return files.Participant{ChatID: c.ID, AccountID: c.AccountID, Kind: chatv1.AuthorKind_AUTHOR_KIND_VISITOR,
		ID: c.VisitorID, Name: c.VisitorName}, nil
}

// ChargeUpload implements files.Chats: a visitor's upload takes from the
// same limits as a message (per visitor and per client address), so files
// add nothing to what one anonymous client can make the server store or
// fan out. Operators are not limited.
func (s *Service) ChargeUpload(ctx context.Context, p files.Participant) error {
	if p.Kind != chatv1.AuthorKind_AUTHOR_KIND_VISITOR {
		return nil
	}
	if ok, retry := s.messages.Take(p.ID); !ok {
		return throttled(retry, "messages and files", s.limits.MessagesPerVisitor, "visitor")
	}
	if ok, retry := s.addrMsgs.Take(addrKey(ctx)); !ok {
		return throttled(retry, "messages and files", s.limits.MessagesPerAddr, "client address")
	}
	return nil
}

// PostFile implements files.Chats: it stores the FileShared event in the
// chat, with its sequence number, and fans it out to the chat's streams and
// the operators' inboxes, as a message is. The author is p, whatever f
// says. It decides on the chat as it is in the transaction: a chat closed
// or transferred away meanwhile refuses the file.
func (s *Service) PostFile(ctx context.Context, p files.Participant, f *chatv1.FileShared) (*chatv1.ChatEvent, error) {
	if f == nil {
		return nil, errs.Invalid("file is required")
	}
	if err := requireChatID(p.ChatID); err != nil {
		return nil, err
	}
	shared := proto.CloneOf(f)
	shared.AuthorKind, shared.AuthorName = p.Kind, p.Name
	_, evs, err := s.change(ctx, p.ChatID, func(c *Chat, _ *sql.Tx) ([]*chatv1.ChatEvent, error) {
		if c.AccountID != p.AccountID {
			return nil, errs.Denied("only the chat's visitor and its operator can share files")
		}
		if err := openCheck(c); err != nil {
			return nil, err
		}
		switch p.Kind {
		case chatv1.AuthorKind_AUTHOR_KIND_VISITOR:
			if c.VisitorID != p.ID {
				return nil, errs.Denied("this chat belongs to another visitor")
			}
		case chatv1.AuthorKind_AUTHOR_KIND_OPERATOR:
			if c.State != StateActive || c.OperatorID != p.ID {
				return nil, errs.Denied("this chat is not assigned to you")
			}
		default:
			return nil, errs.Denied("only the chat's visitor and its operator can share files")
		}
		return []*chatv1.ChatEvent{{Kind: &chatv1.ChatEvent_File{File: shared}}}, nil
	})
	if errs.CodeOf(err) == connect.CodeNotFound {
		// The chat was destroyed since the participant was resolved.
		return nil, errs.Precondition("the chat is closed")
	}
	if err != nil {
		return nil, err
	}
	if p.Kind == chatv1.AuthorKind_AUTHOR_KIND_VISITOR {
		if err := s.store.Touch(ctx, p.ChatID, time.Now()); err != nil && !isNotFound(err) {
			s.log.WarnContext(ctx, "touch chat", slog.String("chat", p.ChatID), slog.String("error", err.Error()))
		}
	}
	return evs[0], nil
}

// Open implements files.Chats: whether a chat is waiting or active.
func (s *Service) Open(ctx context.Context, chatID string) (bool, error) {
	c, err := s.store.Chat(ctx, chatID)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return c.State != StateClosed, nil
}
