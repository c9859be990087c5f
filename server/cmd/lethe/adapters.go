package main

import (
	"context"
	"time"

	"github.com/lethehq/lethe/server/account"
	"github.com/lethehq/lethe/server/chat"
	"github.com/lethehq/lethe/server/monitor"
	"github.com/lethehq/lethe/server/privacy"
)

// The adapters give each domain what it asks of another in the shape of its
// own small interface, so that no domain imports another's types.

// hideIPSetting gives the monitor package the "hide IP and host" setting,
// whether the account honours Global Privacy Control, and the websites whose
// pages may report visits.
type hideIPSetting struct{ accounts *account.Store }

func (m hideIPSetting) Settings(ctx context.Context, accountID string) (monitor.AccountSettings, error) {
	s, err := m.accounts.Settings(ctx, accountID)
	if err != nil {
		return monitor.AccountSettings{}, err
	}
	return monitor.AccountSettings{HideIP: s.HideVisitorIP, HonourGPC: !s.GPCIgnored, AllowedOrigins: s.AllowedOrigins}, nil
}

// accountInfo gives the privacy service what its inventory says of an
// account's configuration; maxFile and maxChat are the server's file caps.
type accountInfo struct {
	accounts         *account.Store
	maxFile, maxChat int64
}

func (a accountInfo) Info(ctx context.Context, accountID string) (privacy.AccountInfo, error) {
	acc, err := a.accounts.Account(ctx, accountID)
	if err != nil {
		return privacy.AccountInfo{}, err
	}
	s, err := a.accounts.Settings(ctx, accountID)
	if err != nil {
		return privacy.AccountInfo{}, err
	}
	orCap := func(v, limit int64) int64 {
		if v <= 0 || v > limit {
			return limit
		}
		return v
	}
	return privacy.AccountInfo{Name: acc.Name, TranscriptsEnabled: s.TranscriptsEnabled, Recipients: s.Recipients,
		HideIP: s.HideVisitorIP, IdleTimeout: time.Duration(s.IdleTimeoutSeconds) * time.Second,
		GPCIgnored: s.GPCIgnored, GPCIgnoredReason: s.GPCIgnoredReason, AuditRetention: s.AuditRetention(),
		FilesDisabled: s.FilesDisabled, MaxFileBytes: orCap(s.MaxFileBytes, a.maxFile), MaxChatFileBytes: orCap(s.MaxChatFileBytes, a.maxChat),
		MonitoringDisabled: s.MonitoringDisabled}, nil
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

// MonitoringDisabled gives the chat service's GetWidgetConfig the account's
// "no monitoring before the click" setting, for the widget loader.
func (d directory) MonitoringDisabled(ctx context.Context, accountID string) (bool, error) {
	s, err := d.Store.Settings(ctx, accountID)
	if err != nil {
		return false, err
	}
	return s.MonitoringDisabled, nil
}
