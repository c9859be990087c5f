package main

import (
	"context"
	"time"

	"github.com/lethehq/lethe/server/account"
	"github.com/lethehq/lethe/server/chat"
)

// The adapters give each domain what it asks of another in the shape of its
// own small interface, so that no domain imports another's types.

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
