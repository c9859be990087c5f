package main

import (
	"context"
	"database/sql"
	"time"

	"github.com/lethehq/lethe/server/account"
	"github.com/lethehq/lethe/server/chat"
	"github.com/lethehq/lethe/server/mail"
)

// The adapters give each domain what it asks of another in the shape of its
// own small interface, so that no domain imports another's types.

// mailer gives the chat package the mail queue.
type mailer struct{ q *mail.Queue }

func (m mailer) Enqueue(ctx context.Context, tx *sql.Tx, o chat.OutMail) error {
	return m.q.Enqueue(ctx, tx, mail.Message{Ref: o.Ref, AccountID: o.AccountID, To: o.To, Subject: o.Subject,
		Text: o.Text, HTML: o.HTML, RequireTLS: o.RequireTLS})
}
func (m mailer) Kick() { m.q.Kick() }
func (m mailer) Pending(ctx context.Context, ref string) (bool, error) {
	return m.q.Pending(ctx, ref)
}
func (m mailer) DeleteRef(ctx context.Context, ref string) error { return m.q.DeleteRef(ctx, ref) }

// hideIPSetting gives the monitor package the "hide IP and host" setting.
type hideIPSetting struct{ accounts *account.Store }

func (m hideIPSetting) Settings(ctx context.Context, accountID string) (bool, error) {
	s, err := m.accounts.Settings(ctx, accountID)
	if err != nil {
		return false, err
	}
	return s.HideVisitorIP, nil
}

// directory gives the chat package what it needs of accounts.
type directory struct{ *account.Store }

func (d directory) Settings(ctx context.Context, accountID string) (chat.AccountSettings, error) {
	s, err := d.Store.Settings(ctx, accountID)
	if err != nil {
		return chat.AccountSettings{}, err
	}
	return chat.AccountSettings{TranscriptsEnabled: s.TranscriptsEnabled, Recipients: s.Recipients, HideVisitorIP: s.HideVisitorIP,
		RequireTLS: s.RequireTLS, IdleTimeout: time.Duration(s.IdleTimeoutSeconds) * time.Second}, nil
}
