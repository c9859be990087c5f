package account

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	filesv1 "github.com/lethehq/lethe/gen/go/lethe/files/v1"
	"github.com/lethehq/lethe/server/audit"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/files"
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
	// Files in chats: off for the account, the largest file and the largest
	// total of a chat's files in bytes (0: the server's limits), and the
	// kinds allowed (empty: files.DefaultCategories).
	FilesDisabled    bool
	MaxFileBytes     int64
	MaxChatFileBytes int64
	FileCategories   []filesv1.FileCategory
	// GPCIgnored: Global Privacy Control is not honoured, for
	// GPCIgnoredReason (shown in the data inventory; "" while honoured).
	GPCIgnored       bool
	GPCIgnoredReason string
	// AuditRetentionDays is how long the audit trail is kept
	// (DefaultAuditRetentionDays unless set).
	AuditRetentionDays int
	// MonitoringDisabled: the widget loader sends nothing (no page view,
	// heartbeat or stream) until the visitor opens the chat. The server
	// does not refuse Track for it: the loader simply does not call it.
	MonitoringDisabled bool
}

// Limits on settings.
const (
	MaxRecipients      = 20
	MaxOrigins         = 20
	MinIdleTimeout     = 10
	MaxIdleTimeout     = 86400
	DefaultIdleTimeout = 600

	MinGPCReasonChars         = 10
	MaxGPCReasonChars         = 500
	DefaultAuditRetentionDays = 90
	MaxAuditRetentionDays     = 3650
)

// AuditRetention is how long the account's audit trail is kept.
func (st *Settings) AuditRetention() time.Duration {
	days := st.AuditRetentionDays
	if days <= 0 {
		days = DefaultAuditRetentionDays
	}
	return time.Duration(days) * 24 * time.Hour
}

// AuditRetention is how long an account's audit trail is kept; ErrNotFound
// for no such account. Its signature is audit.Options.Retention's.
func (s *Store) AuditRetention(ctx context.Context, accountID string) (time.Duration, error) {
	st, err := s.Settings(ctx, accountID)
	if err != nil {
		return 0, err
	}
	return st.AuditRetention(), nil
}

// Settings returns an account's settings (defaults when never saved).
func (s *Store) Settings(ctx context.Context, accountID string) (*Settings, error) {
	return s.settings.Get(accountID, func() (*Settings, error) { return s.readSettings(ctx, accountID) })
}

func (st *Settings) clone() *Settings {
	c := *st
	c.Recipients = slices.Clone(st.Recipients)
	c.AllowedOrigins = slices.Clone(st.AllowedOrigins)
	c.FileCategories = slices.Clone(st.FileCategories)
	return &c
}

func (s *Store) readSettings(ctx context.Context, accountID string) (*Settings, error) {
	a, err := s.Account(ctx, accountID)
	if err != nil {
		return nil, err
	}
	st := &Settings{IdleTimeoutSeconds: DefaultIdleTimeout, AllowedOrigins: a.AllowedOrigins, AuditRetentionDays: DefaultAuditRetentionDays}
	var recipients, categories string
	var policy int
	err = s.db.R.QueryRowContext(ctx, `SELECT transcripts_enabled, recipients, hide_visitor_ip, mail_tls_policy, idle_timeout_seconds,
		files_disabled, max_file_bytes, max_chat_file_bytes, file_categories, gpc_ignored, gpc_ignored_reason, audit_retention_days,
		monitoring_disabled
		FROM account_settings WHERE account_id = ?`, accountID).Scan(&st.TranscriptsEnabled, &recipients, &st.HideVisitorIP, &policy, &st.IdleTimeoutSeconds,
		&st.FilesDisabled, &st.MaxFileBytes, &st.MaxChatFileBytes, &categories, &st.GPCIgnored, &st.GPCIgnoredReason, &st.AuditRetentionDays,
		&st.MonitoringDisabled)
	if errors.Is(err, sql.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	st.RequireTLS = policy == int(accountv1.MailTlsPolicy_MAIL_TLS_POLICY_MANDATORY)
	if st.AuditRetentionDays <= 0 {
		st.AuditRetentionDays = DefaultAuditRetentionDays
	}
	if err := json.Unmarshal([]byte(recipients), &st.Recipients); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(categories), &st.FileCategories); err != nil {
		return nil, err
	}
	return st, nil
}

// FileSettings returns an account's file settings (files.Settings). An
// unknown account is a NotFound error that is also ErrNotFound, so it is
// safe to pass on to a client as it is.
func (s *Store) FileSettings(ctx context.Context, accountID string) (files.AccountFiles, error) {
	st, err := s.Settings(ctx, accountID)
	if errors.Is(err, ErrNotFound) {
		return files.AccountFiles{}, fmt.Errorf("%w (%w)", errs.NotFound("no such account"), ErrNotFound)
	}
	if err != nil {
		return files.AccountFiles{}, err
	}
	return files.AccountFiles{Disabled: st.FilesDisabled, MaxFileBytes: st.MaxFileBytes, MaxChatBytes: st.MaxChatFileBytes,
		Categories: slices.Clone(st.FileCategories)}, nil
}

// SaveSettings stores an account's settings (origins included) in one transaction.
func (s *Store) SaveSettings(ctx context.Context, accountID string, st *Settings) error {
	recipients, _ := json.Marshal(nonNil(st.Recipients))
	categories, _ := json.Marshal(nonNil(st.FileCategories))
	origins, _ := json.Marshal(nonNil(st.AllowedOrigins))
	policy := accountv1.MailTlsPolicy_MAIL_TLS_POLICY_OPPORTUNISTIC
	if st.RequireTLS {
		policy = accountv1.MailTlsPolicy_MAIL_TLS_POLICY_MANDATORY
	}
	defer s.forget(accountID)
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET allowed_origins = ? WHERE id = ?`, string(origins), accountID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO account_settings (account_id, transcripts_enabled, recipients, hide_visitor_ip, mail_tls_policy, idle_timeout_seconds,
			files_disabled, max_file_bytes, max_chat_file_bytes, file_categories, gpc_ignored, gpc_ignored_reason, audit_retention_days,
			monitoring_disabled)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (account_id) DO UPDATE SET transcripts_enabled = excluded.transcripts_enabled, recipients = excluded.recipients,
			hide_visitor_ip = excluded.hide_visitor_ip, mail_tls_policy = excluded.mail_tls_policy, idle_timeout_seconds = excluded.idle_timeout_seconds,
			files_disabled = excluded.files_disabled, max_file_bytes = excluded.max_file_bytes, max_chat_file_bytes = excluded.max_chat_file_bytes,
			file_categories = excluded.file_categories, gpc_ignored = excluded.gpc_ignored, gpc_ignored_reason = excluded.gpc_ignored_reason,
			audit_retention_days = excluded.audit_retention_days, monitoring_disabled = excluded.monitoring_disabled`,
			accountID, st.TranscriptsEnabled, string(recipients), st.HideVisitorIP, int(policy), st.IdleTimeoutSeconds,
			st.FilesDisabled, st.MaxFileBytes, st.MaxChatFileBytes, string(categories), st.GPCIgnored, st.GPCIgnoredReason, st.AuditRetentionDays,
			st.MonitoringDisabled)
		return err
	})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (s *Service) settingsToProto(st *Settings) *accountv1.Settings {
	policy := accountv1.MailTlsPolicy_MAIL_TLS_POLICY_OPPORTUNISTIC
	if st.RequireTLS {
		policy = accountv1.MailTlsPolicy_MAIL_TLS_POLICY_MANDATORY
	}
	return &accountv1.Settings{TranscriptsEnabled: st.TranscriptsEnabled, Recipients: nonNil(st.Recipients), HideVisitorIp: st.HideVisitorIP,
		MailTlsPolicy: policy, IdleTimeoutSeconds: int32(st.IdleTimeoutSeconds), AllowedOrigins: nonNil(st.AllowedOrigins),
		FilesDisabled: st.FilesDisabled, MaxFileBytes: st.MaxFileBytes, MaxChatFileBytes: st.MaxChatFileBytes, FileCategories: st.FileCategories,
		GpcIgnored: st.GPCIgnored, GpcIgnoredReason: st.GPCIgnoredReason, AuditRetentionDays: int32(st.AuditRetention() / (24 * time.Hour)),
		MonitoringDisabled: st.MonitoringDisabled}
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
	st := &Settings{TranscriptsEnabled: in.TranscriptsEnabled, HideVisitorIP: in.HideVisitorIp, IdleTimeoutSeconds: int(in.IdleTimeoutSeconds),
		FilesDisabled: in.FilesDisabled, MaxFileBytes: in.MaxFileBytes, MaxChatFileBytes: in.MaxChatFileBytes}
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
	if err := s.checkFileSettings(in, st); err != nil {
		return nil, err
	}
	if err := checkPrivacySettings(in, st); err != nil {
		return nil, err
	}
	old, err := s.store.Settings(ctx, op.AccountID)
	if err != nil {
		return nil, err
	}
	if err := s.store.SaveSettings(ctx, op.AccountID, st); err != nil {
		return nil, err
	}
	saved := s.settingsToProto(st)
	changed := changedFields(s.settingsToProto(old), saved)
	if len(changed) > 0 {
		s.opts.Audit.Record(ctx, audit.Entry{AccountID: op.AccountID, Action: audit.SettingsChanged, Fields: changed})
	}
	s.log.InfoContext(ctx, "settings updated", "account", op.AccountID, "by", op.ID, "fields", changed)
	return connect.NewResponse(&accountv1.UpdateSettingsResponse{Settings: saved}), nil
}

// checkPrivacySettings checks the Global Privacy Control and audit trail
// settings of in and copies them into st. A reason for ignoring GPC is kept
// only while GPC is ignored.
func checkPrivacySettings(in *accountv1.Settings, st *Settings) error {
	st.MonitoringDisabled = in.MonitoringDisabled
	st.GPCIgnored = in.GpcIgnored
	if in.GpcIgnored {
		st.GPCIgnoredReason = strings.TrimSpace(in.GpcIgnoredReason)
		if n := utf8.RuneCountInString(st.GPCIgnoredReason); n < MinGPCReasonChars || n > MaxGPCReasonChars {
			return errs.Invalid("gpc_ignored_reason is required to ignore Global Privacy Control (%d to %d characters)",
				MinGPCReasonChars, MaxGPCReasonChars)
		}
	}
	switch d := in.AuditRetentionDays; {
	case d == 0:
		st.AuditRetentionDays = DefaultAuditRetentionDays
	case d < 1 || d > MaxAuditRetentionDays:
		return errs.Invalid("audit_retention_days must be 1 to %d (0 means %d)", MaxAuditRetentionDays, DefaultAuditRetentionDays)
	default:
		st.AuditRetentionDays = int(d)
	}
	return nil
}

// changedFields names the fields of b whose value differs from a's (proto
// field names, in field order): what a settings_changed entry records,
// never the values.
func changedFields(a, b proto.Message) []string {
	ma, mb := a.ProtoReflect(), b.ProtoReflect()
	fields := ma.Descriptor().Fields()
	var out []string
	for i := range fields.Len() {
		fd := fields.Get(i)
		if !proto.Equal(only(ma, fd), only(mb, fd)) {
			out = append(out, string(fd.Name()))
		}
	}
	return out
}

// only is a message holding m's field fd and nothing else.
func only(m protoreflect.Message, fd protoreflect.FieldDescriptor) proto.Message {
	x := m.Type().New()
	if m.Has(fd) {
		x.Set(fd, m.Get(fd))
	}
	return x.Interface()
}

// checkFileSettings checks the file settings of in against the server's
// limits and copies its categories into st.
func (s *Service) checkFileSettings(in *accountv1.Settings, st *Settings) error {
	fileCap, chatCap := s.fileCaps()
	for _, f := range []struct {
		field string
		v     int64
		cap   int64
	}{{"max_file_bytes", in.MaxFileBytes, fileCap}, {"max_chat_file_bytes", in.MaxChatFileBytes, chatCap}} {
		if f.v < 0 {
			return errs.Invalid("%s must not be negative (0 means the server's limit)", f.field)
		}
		if f.v > f.cap {
			return errs.Invalid("%s is %d bytes; the server's limit is %d bytes (%s)", f.field, f.v, f.cap, sizeText(f.cap))
		}
	}
	if in.MaxFileBytes > 0 && in.MaxChatFileBytes > 0 && in.MaxChatFileBytes < in.MaxFileBytes {
		return errs.Invalid("max_chat_file_bytes (%d) must be at least max_file_bytes (%d)", in.MaxChatFileBytes, in.MaxFileBytes)
	}
	for i, c := range in.FileCategories {
		if _, known := filesv1.FileCategory_name[int32(c)]; !known || c == filesv1.FileCategory_FILE_CATEGORY_UNSPECIFIED {
			return errs.Invalid("file category %d is not a known category", i+1)
		}
		if slices.Contains(st.FileCategories, c) {
			return errs.Invalid("file category %s is listed twice", c)
		}
		st.FileCategories = append(st.FileCategories, c)
	}
	return nil
}

// fileCaps are the server's limits on one file and on a chat's files.
func (s *Service) fileCaps() (file, chat int64) {
	file, chat = s.opts.MaxFileBytes, s.opts.MaxChatBytes
	if file == 0 {
		file = files.DefaultMaxFileBytes
	}
	if chat == 0 {
		chat = files.DefaultMaxChatBytes
	}
	return file, chat
}

// sizeText writes a byte count in binary units when it is a whole number
// of them ("10 MiB"), in bytes otherwise.
func sizeText(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + " " + u.name
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
