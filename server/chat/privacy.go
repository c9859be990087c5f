package chat

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	consentv1 "github.com/lethehq/lethe/gen/go/lethe/consent/v1"
	privacyv1 "github.com/lethehq/lethe/gen/go/lethe/privacy/v1"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/ids"
)

// The chat side of lethe.privacy.v1 (privacy.Chats): what the server holds
// about a chat, the visitor's correction of what they gave, the erasure of a
// chat now, and the lookup of a data subject's chats by e-mail address. The
// privacy service decides who may call these; here they act on a chat id.

// Destruction rules, for people.
const (
	ruleChatEnds    = "when the chat ends"
	ruleMailAccepts = "when the mail server accepts the transcript"
	ruleNow         = "now: the chat has ended"
)

// Categories of a deletion receipt (privacyv1.DestroyedCount).
const (
	CountChat        = "chat"
	CountMessages    = "messages"
	CountFiles       = "files"
	CountTranscripts = "transcript e-mails"
)

// chatGone is NotFound for the client and errs.ErrNotFound for callers.
func chatGone() error { return fmt.Errorf("%w: %w", errs.NotFound("no such chat"), errs.ErrNotFound) }

// MailRef is the mail queue reference of a chat's transcript.
func (s *Service) MailRef(chatID string) string { return chatRef(chatID) }

// OfflineRef is the mail queue reference of the offline message an offline
// token (from LeaveOfflineMessage) stands for: derived from the token's
// hash, so the token itself is never stored. "" for no token.
func (s *Service) OfflineRef(offlineToken string) string {
	if offlineToken == "" {
		return ""
	}
	return "offline:" + hex.EncodeToString(ids.Hash(offlineToken))[:32]
}

func stateName(st State) string {
	switch st {
	case StateWaiting:
		return "waiting"
	case StateActive:
		return "active"
	}
	return "closed"
}

func authorName(k chatv1.AuthorKind) string {
	switch k {
	case chatv1.AuthorKind_AUTHOR_KIND_VISITOR:
		return "visitor"
	case chatv1.AuthorKind_AUTHOR_KIND_OPERATOR:
		return "operator"
	}
	return "system"
}

// tally counts a chat's visitor and operator messages and its files.
func tally(evs []*chatv1.ChatEvent) (messages, files int) {
	for _, ev := range evs {
		switch ev.Kind.(type) {
		case *chatv1.ChatEvent_Message:
			messages++
		case *chatv1.ChatEvent_File:
			files++
		}
	}
	return messages, files
}

// ChatData returns what the server holds about a chat right now (open, or
// closed with its transcript waiting): what the visitor gave, the consent
// they accepted, every message and system line, the files shared (never
// their bytes) and when it will be destroyed. A chat that is gone is
// errs.ErrNotFound (a NotFound error).
func (s *Service) ChatData(ctx context.Context, chatID string) (*privacyv1.ChatData, error) {
	c, err := s.store.Chat(ctx, chatID)
	if errors.Is(err, ErrNotFound) {
		return nil, chatGone()
	}
	if err != nil {
		return nil, err
	}
	evs, err := s.store.Events(ctx, chatID, 0)
	if err != nil {
		return nil, err
	}
	set, err := s.dir.Settings(ctx, c.AccountID)
	if err != nil && !isNotFound(err) {
		return nil, err
	}
	d := &privacyv1.ChatData{ChatId: c.ID, State: stateName(c.State), VisitorName: c.VisitorName, VisitorEmail: c.VisitorEmail,
		TranscriptEmail: c.TranscriptEmail, Ip: c.VisitorIP, Host: c.VisitorHost, IpHidden: set.HideVisitorIP,
		OperatorName: c.OperatorName, StartedAt: timestamppb.New(c.StartedAt)}
	if c.ConsentVersion > 0 {
		d.Consent = &privacyv1.ConsentReceipt{Version: c.ConsentVersion, Locale: c.ConsentLocale}
		if !c.ConsentAt.IsZero() {
			d.Consent.AcceptedAt = timestamppb.New(c.ConsentAt)
		}
		text, err := s.consent.Text(ctx, c.AccountID, consentv1.ConsentForm_CONSENT_FORM_PRECHAT, c.ConsentLocale, c.ConsentVersion)
		switch {
		case err == nil:
			d.Consent.Text = text
		case !isNotFound(err):
			return nil, err
		}
	}
	for _, ev := range evs {
		switch k := ev.Kind.(type) {
		case *chatv1.ChatEvent_Message:
			d.Messages = append(d.Messages, &privacyv1.ChatMessage{Author: authorName(k.Message.AuthorKind),
				AuthorName: k.Message.AuthorName, Text: k.Message.Text, SentAt: ev.Time})
		case *chatv1.ChatEvent_File:
			f := k.File
			d.Files = append(d.Files, &privacyv1.SharedFile{Name: f.Name, Size: f.Size, ContentType: f.ContentType,
				Author: authorName(f.AuthorKind), SentAt: ev.Time})
		case *chatv1.ChatEvent_Started:
			// The start is what StartedAt and the first message say.
		default:
			if l, ok := lineOf(ev); ok {
				d.Messages = append(d.Messages, &privacyv1.ChatMessage{Author: "system", Text: l.Text, SentAt: ev.Time})
			}
		}
	}
	m, f := tally(evs)
	d.MessageCount, d.FileCount = int32(m), int32(f)
	d.Destruction, err = s.destruction(ctx, c, set)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// destruction says when a chat will be destroyed: when it ends, at the
// latest at the idle close while the visitor is away; once closed, when its
// transcript has been accepted (at the latest when the mail's maximum hold
// drops it).
func (s *Service) destruction(ctx context.Context, c *Chat, set AccountSettings) (*privacyv1.Destruction, error) {
	if c.State != StateClosed {
		d := &privacyv1.Destruction{Rule: ruleChatEnds}
		if !s.watchers.watching(c.ID) && set.IdleTimeout > 0 {
			d.NotAfter = timestamppb.New(c.SeenAt.Add(set.IdleTimeout))
		}
		return d, nil
	}
	if s.opts.Mailer == nil {
		return &privacyv1.Destruction{Rule: ruleNow}, nil
	}
	held, err := s.opts.Mailer.Held(ctx, chatRef(c.ID))
	if err != nil {
		return nil, err
	}
	if len(held) == 0 {
		return &privacyv1.Destruction{Rule: ruleNow}, nil
	}
	var last time.Time
	for _, h := range held {
		if h.NotAfter.After(last) {
			last = h.NotAfter
		}
	}
	return &privacyv1.Destruction{Rule: ruleMailAccepts, NotAfter: timestamppb.New(last)}, nil
}

// CorrectVisitor sets the name and e-mail address the visitor gave in an
// open chat, checked as StartChat checks them (InvalidArgument), and tells
// the operator: a VisitorUpdated event and the chat's new summary, stored
// and published as every change is. The visitor's name in the chat's
// stored messages is corrected too. FailedPrecondition once the chat is
// closed; NotFound (errs.ErrNotFound) when it is gone.
func (s *Service) CorrectVisitor(ctx context.Context, chatID, name, email string) (*privacyv1.ChatData, error) {
	name, err := visitorName(name)
	if err != nil {
		return nil, err
	}
	email, err = visitorEmail(email, false)
	if err != nil {
		return nil, err
	}
	_, _, err = s.change(ctx, chatID, func(c *Chat, tx *sql.Tx) ([]*chatv1.ChatEvent, error) {
		if err := openCheck(c); err != nil {
			return nil, err
		}
		if err := s.store.updateVisitor(ctx, tx, c, name, email); err != nil {
			return nil, err
		}
		return []*chatv1.ChatEvent{{Kind: &chatv1.ChatEvent_VisitorUpdated{VisitorUpdated: &chatv1.VisitorUpdated{
			VisitorName: name, VisitorEmail: email}}}}, nil
	})
	if err != nil && errs.CodeOf(err) == connect.CodeNotFound {
		return nil, chatGone()
	}
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "visitor corrected their data", slog.String("chat", chatID))
	return s.ChatData(ctx, chatID)
}

// EraseChat ends a chat now with reason (the operator sees it in the
// closed event) and destroys it, its files and its waiting transcript
// (dropped unsent) before it returns. It works on an open chat and on a
// closed one whose transcript is waiting. The chat is closed by the
// visitor when a visitor calls, by the system otherwise. It answers what
// it destroyed; a chat already gone answers nothing and no error.
func (s *Service) EraseChat(ctx context.Context, chatID, reason string) ([]*privacyv1.DestroyedCount, error) {
	if chatID == "" {
		return nil, nil
	}
	if _, err := s.store.Chat(ctx, chatID); errors.Is(err, ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	mails := 0
	drop := func() error {
		if s.opts.Mailer == nil {
			return nil
		}
		n, err := s.opts.Mailer.Drop(ctx, chatRef(chatID))
		mails += n
		return err
	}
	// A transcript already waiting never leaves.
	if err := drop(); err != nil {
		return nil, err
	}
	by := chatv1.AuthorKind_AUTHOR_KIND_SYSTEM
	if _, ok := auth.VisitorFrom(ctx); ok {
		by = chatv1.AuthorKind_AUTHOR_KIND_VISITOR
	}
	err := s.close(ctx, chatID, closeOpts{by: by, reason: reason, noTranscript: true, keep: true})
	switch {
	case err == nil, errs.CodeOf(err) == connect.CodeFailedPrecondition:
		// Closed now, or closed already (its transcript dropped above).
	case errs.CodeOf(err) == connect.CodeNotFound:
		return nil, nil // destroyed meanwhile
	default:
		return nil, err
	}
	// A close that raced this one may have queued a transcript since.
	if err := drop(); err != nil {
		return nil, err
	}
	// Closed: no event is added any more.
	c, err := s.store.Chat(ctx, chatID)
	if errors.Is(err, ErrNotFound) {
		// Destroyed meanwhile (by the close that raced this one).
		return []*privacyv1.DestroyedCount{{Category: CountChat, Count: 1}, {Category: CountTranscripts, Count: int64(mails)}}, nil
	}
	if err != nil {
		return nil, err
	}
	evs, err := s.store.Events(ctx, chatID, 0)
	if err != nil {
		return nil, err
	}
	messages, files := tally(evs)
	if err := s.destroy(chatID); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "chat erased", slog.String("chat", chatID), slog.String("account", c.AccountID),
		slog.Int("messages", messages), slog.Int("files", files), slog.Int("mails", mails))
	return []*privacyv1.DestroyedCount{
		{Category: CountChat, Count: 1},
		{Category: CountMessages, Count: int64(messages)},
		{Category: CountFiles, Count: int64(files)},
		{Category: CountTranscripts, Count: int64(mails)},
	}, nil
}

// ChatsByEmail lists the ids of the account's chats (open, or closed with
// a transcript waiting) whose visitor gave email as their own address or
// for a transcript copy (case-insensitive).
func (s *Service) ChatsByEmail(ctx context.Context, accountID, email string) ([]string, error) {
	email = strings.TrimSpace(email)
	if accountID == "" || email == "" {
		return nil, nil
	}
	return s.store.ChatsByEmail(ctx, accountID, email)
}
