package main

import (
	"context"
	"time"

	"github.com/lethehq/lethe/server/account"
	"github.com/lethehq/lethe/server/chat"
	"github.com/lethehq/lethe/server/monitor"
)

// The adapters give each domain what it asks of another in the shape of its
// own small interface, so that no domain imports another's types.

// hideIPSetting gives the monitor package the "hide IP and host" setting and
// whether the account honours Global Privacy Control.
type hideIPSetting struct{ accounts *account.Store }

func (m hideIPSetting) Settings(ctx context.Context, accountID string) (monitor.AccountSettings, error) {
	s, err := m.accounts.Settings(ctx, accountID)
	if err != nil {
		return monitor.AccountSettings{}, err
	}
	// TODO(lead, at merge of p11-acct): HonourGPC: !s.GPCIgnored once
	// account.Settings has the field; until then GPC is always honoured
	// (the contract's default).
	return monitor.AccountSettings{HideIP: s.HideVisitorIP, HonourGPC: true}, nil
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
