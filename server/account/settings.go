package account

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/mail"
	"slices"
	"strings"

	"connectrpc.com/connect"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/origin"
)

// Settings are an account's privacy and mail settings.
type Settings struct {
	TranscriptsEnabled bool
	Recipients         []string
	HideVisitorIP      bool
	// RequireTLS: mail for this account is never sent in clear.
	RequireTLS         bool
	IdleTimeoutSeconds int
	AllowedOrigins     []string
}

// Limits on settings.
const (
	MaxRecipients      = 20
	MaxOrigins         = 20
	MinIdleTimeout     = 10
	MaxIdleTimeout     = 86400
	DefaultIdleTimeout = 600
)

// Settings returns an account's settings (defaults when never saved).
func (s *Store) Settings(ctx context.Context, accountID string) (*Settings, error) {
	a, err := s.Account(ctx, accountID)
	if err != nil {
		return nil, err
	}
	st := &Settings{IdleTimeoutSeconds: DefaultIdleTimeout, AllowedOrigins: a.AllowedOrigins}
	var recipients string
	var policy int
	err = s.db.R.QueryRowContext(ctx, `SELECT transcripts_enabled, recipients, hide_visitor_ip, mail_tls_policy, idle_timeout_seconds
		FROM account_settings WHERE account_id = ?`, accountID).Scan(&st.TranscriptsEnabled, &recipients, &st.HideVisitorIP, &policy, &st.IdleTimeoutSeconds)
	if errors.Is(err, sql.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	st.RequireTLS = policy == int(accountv1.MailTlsPolicy_MAIL_TLS_POLICY_MANDATORY)
	if err := json.Unmarshal([]byte(recipients), &st.Recipients); err != nil {
		return nil, err
	}
	return st, nil
}

// SaveSettings stores an account's settings (origins included) in one transaction.
func (s *Store) SaveSettings(ctx context.Context, accountID string, st *Settings) error {
	recipients, _ := json.Marshal(nonNil(st.Recipients))
	origins, _ := json.Marshal(nonNil(st.AllowedOrigins))
	policy := accountv1.MailTlsPolicy_MAIL_TLS_POLICY_OPPORTUNISTIC
	if st.RequireTLS {
		policy = accountv1.MailTlsPolicy_MAIL_TLS_POLICY_MANDATORY
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET allowed_origins = ? WHERE id = ?`, string(origins), accountID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO account_settings (account_id, transcripts_enabled, recipients, hide_visitor_ip, mail_tls_policy, idle_timeout_seconds)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (account_id) DO UPDATE SET transcripts_enabled = excluded.transcripts_enabled, recipients = excluded.recipients,
			hide_visitor_ip = excluded.hide_visitor_ip, mail_tls_policy = excluded.mail_tls_policy, idle_timeout_seconds = excluded.idle_timeout_seconds`,
			accountID, st.TranscriptsEnabled, string(recipients), st.HideVisitorIP, int(policy), st.IdleTimeoutSeconds)
		return err
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *Service) settingsToProto(st *Settings) *accountv1.Settings {
	policy := accountv1.MailTlsPolicy_MAIL_TLS_POLICY_OPPORTUNISTIC
	if st.RequireTLS {
		policy = accountv1.MailTlsPolicy_MAIL_TLS_POLICY_MANDATORY
	}
	return &accountv1.Settings{TranscriptsEnabled: st.TranscriptsEnabled, Recipients: nonNil(st.Recipients), HideVisitorIp: st.HideVisitorIP,
		MailTlsPolicy: policy, IdleTimeoutSeconds: int32(st.IdleTimeoutSeconds), AllowedOrigins: nonNil(st.AllowedOrigins)}
}

// GetSettings implements AccountServiceHandler.
func (s *Service) GetSettings(ctx context.Context, _ *connect.Request[accountv1.GetSettingsRequest]) (*connect.Response[accountv1.GetSettingsResponse], error) {
	op, _ := auth.OperatorFrom(ctx)
	st, err := s.store.Settings(ctx, op.AccountID)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&accountv1.GetSettingsResponse{Settings: s.settingsToProto(st), MailConfigured: s.opts.MailConfigured}), nil
}

// UpdateSettings implements AccountServiceHandler.
func (s *Service) UpdateSettings(ctx context.Context, req *connect.Request[accountv1.UpdateSettingsRequest]) (*connect.Response[accountv1.UpdateSettingsResponse], error) {
	op, _ := auth.OperatorFrom(ctx)
	in := req.Msg.Settings
	if in == nil {
		return nil, errs.Invalid("settings are required")
	}
	st := &Settings{TranscriptsEnabled: in.TranscriptsEnabled, HideVisitorIP: in.HideVisitorIp, IdleTimeoutSeconds: int(in.IdleTimeoutSeconds)}
	switch in.MailTlsPolicy {
	case accountv1.MailTlsPolicy_MAIL_TLS_POLICY_MANDATORY:
		st.RequireTLS = true
	case accountv1.MailTlsPolicy_MAIL_TLS_POLICY_OPPORTUNISTIC, accountv1.MailTlsPolicy_MAIL_TLS_POLICY_UNSPECIFIED:
	default:
		return nil, errs.Invalid("unknown mail TLS policy")
	}
	if st.IdleTimeoutSeconds < MinIdleTimeout || st.IdleTimeoutSeconds > MaxIdleTimeout {
		return nil, errs.Invalid("idle timeout must be %d to %d seconds", MinIdleTimeout, MaxIdleTimeout)
	}
	if len(in.Recipients) > MaxRecipients {
		return nil, errs.Invalid("at most %d recipients", MaxRecipients)
	}
	seen := map[string]bool{}
	for i, r := range in.Recipients {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		a, err := mail.ParseAddress(r)
		if err != nil || a.Address != r || len(r) > MaxEmailChars {
			return nil, errs.Invalid("recipient %d is not a valid e-mail address", i+1)
		}
		if !seen[strings.ToLower(r)] {
			seen[strings.ToLower(r)] = true
			st.Recipients = append(st.Recipients, r)
		}
	}
	if len(in.AllowedOrigins) > MaxOrigins {
		return nil, errs.Invalid("at most %d website origins", MaxOrigins)
	}
	for i, o := range in.AllowedOrigins {
		if strings.TrimSpace(o) == "" {
			continue
		}
		n, err := origin.Normalize(o)
		if err != nil {
			return nil, errs.Invalid("website origin %d is not an origin (scheme://host[:port])", i+1)
		}
		if !slices.Contains(st.AllowedOrigins, n) {
			st.AllowedOrigins = append(st.AllowedOrigins, n)
		}
	}
	if err := s.store.SaveSettings(ctx, op.AccountID, st); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "settings updated", "account", op.AccountID, "by", op.ID)
	return connect.NewResponse(&accountv1.UpdateSettingsResponse{Settings: s.settingsToProto(st)}), nil
}
