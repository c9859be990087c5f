package chat

import (
	"context"
	"database/sql"
	"log/slog"
	netmail "net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	consentv1 "github.com/lethehq/lethe/gen/go/lethe/consent/v1"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/ids"
	"github.com/lethehq/lethe/server/mail"
	"github.com/lethehq/lethe/server/netinfo"
)

// visitorName checks a visitor's name.
func visitorName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > MaxNameChars {
		return "", errs.Invalid("name is required (at most %d characters)", MaxNameChars)
	}
	return name, nil
}

// visitorEmail checks an e-mail address; empty is allowed unless required.
func visitorEmail(email string, required bool) (string, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		if required {
			return "", errs.Invalid("e-mail address is required")
		}
		return "", nil
	}
	if len(email) > MaxEmailChars {
		return "", errs.Invalid("e-mail address is longer than %d characters", MaxEmailChars)
	}
	if a, err := netmail.ParseAddress(email); err != nil || a.Address != email {
		return "", errs.Invalid("e-mail address is malformed")
	}
	return email, nil
}

// clientAddr returns the visitor's IP and host, or nothing when the account
// hides them (P5): then they are not even looked up.
func (s *Service) clientAddr(ctx context.Context, hide bool) (ip, host string) {
	a := netinfo.ClientAddr(ctx)
	if hide || !a.IsValid() {
		return "", ""
	}
	ip = a.String()
	if s.opts.Hosts != nil {
		host = s.opts.Hosts.Host(ctx, ip)
	}
	return ip, host
}

// LeaveOfflineMessage implements ChatServiceHandler. The message is held in
// the mail queue only, until the mail server accepts it (P3).
func (s *Service) LeaveOfflineMessage(ctx context.Context, req *connect.Request[chatv1.LeaveOfflineMessageRequest]) (*connect.Response[chatv1.LeaveOfflineMessageResponse], error) {
	m := req.Msg
	accountName, err := s.accountName(ctx, m.AccountId)
	if err != nil {
		return nil, err
	}
	name, err := visitorName(m.VisitorName)
	if err != nil {
		return nil, err
	}
	email, err := visitorEmail(m.VisitorEmail, true)
	if err != nil {
		return nil, err
	}
	text, err := cleanText(m.Message)
	if err != nil {
		return nil, err
	}
	set, err := s.dir.Settings(ctx, m.AccountId)
	if err != nil {
		return nil, err
	}
	if s.opts.Mailer == nil || len(set.Recipients) == 0 {
		return nil, errs.Precondition("offline messages are not available for this account")
	}
	accepted, err := s.consent.Check(ctx, m.AccountId, consentv1.ConsentForm_CONSENT_FORM_OFFLINE, m.Locale, m.ConsentVersion)
	if err != nil {
		return nil, err
	}
	if ok, retry := s.offline.Take(addrKey(ctx)); !ok {
		return nil, throttled(retry, "offline messages", s.limits.OfflinePerAddr, "client address")
	}
	ip, host := s.clientAddr(ctx, set.HideVisitorIP)
	r, err := renderOffline(accountName, name, email, ip, host, text, time.Now())
	if err != nil {
		return nil, err
	}
	// The visitor's secret for the message while it waits (GetMyData,
	// ForgetMe): only a value derived from its hash is stored, as the ref.
	token := ids.Token()
	ref := s.OfflineRef(token)
	err = s.store.DB().Tx(ctx, func(tx *sql.Tx) error {
		return s.opts.Mailer.Enqueue(ctx, tx, mail.Message{Ref: ref, AccountID: m.AccountId, To: set.Recipients,
			Subject: r.Subject, Text: r.Text, HTML: r.HTML, RequireTLS: set.RequireTLS, DataSubject: email})
	})
	if err != nil {
		return nil, err
	}
	s.opts.Mailer.Kick()
	if err := s.consent.Accepted(ctx, m.AccountId, accepted); err != nil {
		s.log.WarnContext(ctx, "count consent", slog.String("error", err.Error()))
	}
	s.log.InfoContext(ctx, "offline message queued", slog.String("ref", ref), slog.String("account", m.AccountId))
	return connect.NewResponse(&chatv1.LeaveOfflineMessageResponse{OfflineToken: token}), nil
}

// RequestTranscript implements ChatServiceHandler.
func (s *Service) RequestTranscript(ctx context.Context, req *connect.Request[chatv1.RequestTranscriptRequest]) (*connect.Response[chatv1.RequestTranscriptResponse], error) {
	v, err := s.usedChat(ctx, req.Msg.ChatId)
	if err != nil {
		return nil, err
	}
	email, err := visitorEmail(req.Msg.Email, true)
	if err != nil {
		return nil, err
	}
	if s.opts.Mailer == nil {
		return nil, errs.Precondition("transcripts by e-mail are not available")
	}
	if err := s.store.SetTranscriptEmail(ctx, v.ID, email); err != nil {
		return nil, err
	}
	return connect.NewResponse(&chatv1.RequestTranscriptResponse{}), nil
}
