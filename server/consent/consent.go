// Package consent owns the consent texts visitors accept before a chat or an
// offline message (P7): per account, form and locale, versioned, in lethe.db
// with acceptance counts only. The chat package asks it to check a version
// the visitor claims to have accepted; the server, not the widget, decides.
package consent

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	consentv1 "github.com/lethehq/lethe/gen/go/lethe/consent/v1"
	"github.com/lethehq/lethe/gen/go/lethe/consent/v1/consentv1connect"
	"github.com/lethehq/lethe/server/audit"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Limits.
const (
	MaxTextChars   = 5000
	MaxLocaleChars = 35
	DefaultLocale  = "en"
)

// Form says where a text is shown.
type Form = consentv1.ConsentForm

const (
	Prechat = consentv1.ConsentForm_CONSENT_FORM_PRECHAT
	Offline = consentv1.ConsentForm_CONSENT_FORM_OFFLINE
)

// Text is one version of a consent text.
type Text struct {
	Form      Form
	Locale    string
	Version   int32
	Text      string
	Required  bool
	UpdatedAt time.Time
}

// Store owns consent_texts and consent_counts.
type Store struct {
	db *store.DB
	// texts remembers each account's current texts, which every chat
	// start reads; set forgets the account's.
	texts *store.Memo[[]Text]
}

// NewStore migrates and returns the store.
func NewStore(ctx context.Context, db *store.DB) (*Store, error) {
	sub, _ := fs.Sub(migrations, "migrations")
	if err := db.Migrate(ctx, "consent", sub); err != nil {
		return nil, err
	}
	return &Store{db: db, texts: store.NewMemo(slices.Clone[[]Text])}, nil
}

// current returns the latest version of every (form, locale) of an account.
func (s *Store) current(ctx context.Context, accountID string) ([]Text, error) {
	return s.texts.Get(accountID, func() ([]Text, error) { return s.readCurrent(ctx, accountID) })
}

func (s *Store) readCurrent(ctx context.Context, accountID string) ([]Text, error) {
	rows, err := s.db.R.QueryContext(ctx, `SELECT t.form, t.locale, t.version, t.text, t.required, t.updated_at FROM consent_texts t
		WHERE t.account_id = ? AND t.version = (SELECT max(version) FROM consent_texts u
			WHERE u.account_id = t.account_id AND u.form = t.form AND u.locale = t.locale)
		ORDER BY t.form, t.locale`, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Text
	for rows.Next() {
		var t Text
		var at int64
		if err := rows.Scan(&t.Form, &t.Locale, &t.Version, &t.Text, &t.Required, &at); err != nil {
			return nil, err
		}
		t.UpdatedAt = time.UnixMilli(at)
		out = append(out, t)
	}
	return out, rows.Err()
}

// set stores a new version and returns it.
func (s *Store) set(ctx context.Context, accountID string, t Text) (Text, error) {
	defer s.texts.Forget(accountID)
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) + 1 FROM consent_texts WHERE account_id = ? AND form = ? AND locale = ?`,
			accountID, t.Form, t.Locale).Scan(&t.Version); err != nil {
			return err
		}
		t.UpdatedAt = time.Now()
		_, err := tx.ExecContext(ctx, `INSERT INTO consent_texts (account_id, form, locale, version, text, required, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			accountID, t.Form, t.Locale, t.Version, t.Text, t.Required, t.UpdatedAt.UnixMilli())
		return err
	})
	return t, err
}

func (s *Store) count(ctx context.Context, accountID string, t Text) error {
	_, err := s.db.W.ExecContext(ctx, `INSERT INTO consent_counts (account_id, form, locale, version, accepted) VALUES (?, ?, ?, ?, 1)
		ON CONFLICT (account_id, form, locale, version) DO UPDATE SET accepted = accepted + 1`, accountID, t.Form, t.Locale, t.Version)
	return err
}

func (s *Store) counts(ctx context.Context, accountID string) (map[[3]string]int64, error) {
	rows, err := s.db.R.QueryContext(ctx, `SELECT form, locale, version, accepted FROM consent_counts WHERE account_id = ?`, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[[3]string]int64{}
	for rows.Next() {
		var form, version int
		var locale string
		var n int64
		if err := rows.Scan(&form, &locale, &version, &n); err != nil {
			return nil, err
		}
		out[countKey(Form(form), locale, int32(version))] = n
	}
	return out, rows.Err()
}

func countKey(f Form, locale string, v int32) [3]string {
	return [3]string{f.String(), locale, strconv.Itoa(int(v))}
}

// Match picks the text for a locale: exact, then language, then "en", then
// the first. ok is false when the form has no text at all.
func Match(texts []Text, form Form, locale string) (Text, bool) {
	locale = strings.ToLower(strings.TrimSpace(locale))
	lang, _, _ := strings.Cut(locale, "-")
	var best Text
	rank := 0
	for _, t := range texts {
		if t.Form != form {
			continue
		}
		r := 1
		switch strings.ToLower(t.Locale) {
		case locale:
			r = 4
		case lang:
			r = 3
		case DefaultLocale:
			r = 2
		}
		if r > rank {
			best, rank = t, r
		}
	}
	return best, rank > 0
}

// canonicalLocale checks the shape of a BCP 47 tag (a language of letters,
// then subtags of 1 to 8 letters or digits, joined by single hyphens, at most
// MaxLocaleChars) and returns it in the canonical case of RFC 5646 2.1.1:
// lower case, but a two-letter region in upper case and a four-letter script
// in title case, up to the first singleton ("de-CH", "zh-Hant-TW",
// "en-x-priv"). Versions are kept per (form, locale), so "de-ch" and "de-CH"
// must be one key, or a text typed in another case would start a second
// series that Match never picks.
func canonicalLocale(s string) (string, bool) {
	if len(s) > MaxLocaleChars {
		return "", false
	}
	subtags := strings.Split(strings.ToLower(s), "-")
	singleton := false
	for i, sub := range subtags {
		if sub == "" || len(sub) > 8 || strings.ContainsFunc(sub, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
		}) {
			return "", false
		}
		letters := !strings.ContainsFunc(sub, func(r rune) bool { return r >= '0' && r <= '9' })
		switch {
		case i == 0:
			if !letters {
				return "", false
			}
		case len(sub) == 1:
			singleton = true
		case singleton:
		case len(sub) == 2 && letters:
			subtags[i] = strings.ToUpper(sub)
		case len(sub) == 4 && letters:
			subtags[i] = strings.ToUpper(sub[:1]) + sub[1:]
		}
	}
	return strings.Join(subtags, "-"), true
}

// Withdrawer ends a visitor's chat and destroys it now (the chat package).
type Withdrawer interface {
	WithdrawChat(ctx context.Context, chatID string) error
}

// Checker checks consent for the chat package: the server, not the widget,
// decides whether a chat or an offline message may be accepted (P7).
type Checker struct{ store *Store }

// NewChecker returns the checker over st.
func NewChecker(st *Store) *Checker { return &Checker{store: st} }

// Service implements lethe.consent.v1.ConsentService. It is built after the
// chat service, which it asks to end a chat when consent is withdrawn.
type Service struct {
	store    *Store
	withdraw Withdrawer
	audit    audit.Recorder
}

var _ consentv1connect.ConsentServiceHandler = (*Service)(nil)

// Option configures the service.
type Option func(*Service)

// WithAudit records each new consent text version in the audit trail
// (without its text). Without it nothing is recorded.
func WithAudit(r audit.Recorder) Option {
	return func(s *Service) {
		if r != nil {
			s.audit = r
		}
	}
}

// NewService returns the consent service; w ends chats whose visitor
// withdrew consent.
func NewService(st *Store, w Withdrawer, opts ...Option) *Service {
	s := &Service{store: st, withdraw: w, audit: audit.Discard}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Policy says who may call each procedure.
func Policy() map[string]auth.Kind {
	return map[string]auth.Kind{
		consentv1connect.ConsentServiceGetConsentProcedure:       auth.Public,
		consentv1connect.ConsentServiceListConsentTextsProcedure: auth.AdminOnly,
		consentv1connect.ConsentServiceSetConsentTextProcedure:   auth.AdminOnly,
		consentv1connect.ConsentServiceWithdrawConsentProcedure:  auth.VisitorOnly,
	}
}

// Check verifies that a visitor accepted the current version of the text of
// form for locale where it is required, and returns the version accepted (0
// when none was needed or given). A stale or missing acceptance of a required
// text is FailedPrecondition. Call Accepted once the chat or message is stored.
func (c *Checker) Check(ctx context.Context, accountID string, form Form, locale string, version int32) (Text, error) {
	texts, err := c.store.current(ctx, accountID)
	if err != nil {
		return Text{}, err
	}
	t, ok := Match(texts, form, locale)
	if !ok {
		return Text{}, nil
	}
	if version == t.Version {
		return t, nil
	}
	if t.Required {
		if version == 0 {
			return Text{}, errs.Precondition("the consent text must be accepted first")
		}
		return Text{}, errs.Precondition("the consent text has changed; accept the current version (%d)", t.Version)
	}
	return Text{}, nil
}

// Text returns the text of one stored version of the account's consent
// text of form in locale (the locale of the text, as Check returned it):
// what a visitor accepted, for their consent receipt. errs.ErrNotFound
// when there is no such version.
func (c *Checker) Text(ctx context.Context, accountID string, form consentv1.ConsentForm, locale string, version int32) (string, error) {
	var text string
	err := c.store.db.R.QueryRowContext(ctx, `SELECT text FROM consent_texts WHERE account_id = ? AND form = ? AND locale = ? AND version = ?`,
		accountID, form, locale, version).Scan(&text)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("consent text %s %s v%d: %w", form, locale, version, errs.ErrNotFound)
	}
	return text, err
}

// Accepted counts an acceptance (counts only, no visitor data).
func (c *Checker) Accepted(ctx context.Context, accountID string, t Text) error {
	if t.Version == 0 {
		return nil
	}
	return c.store.count(ctx, accountID, t)
}

func toProto(t Text, ok bool) *consentv1.ConsentText {
	if !ok {
		return &consentv1.ConsentText{}
	}
	return &consentv1.ConsentText{Form: t.Form, Locale: t.Locale, Version: t.Version, Text: t.Text, Required: t.Required,
		UpdatedAt: timestamppb.New(t.UpdatedAt)}
}

// GetConsent implements ConsentServiceHandler.
func (s *Service) GetConsent(ctx context.Context, req *connect.Request[consentv1.GetConsentRequest]) (*connect.Response[consentv1.GetConsentResponse], error) {
	if req.Msg.AccountId == "" {
		return nil, errs.Invalid("account_id is required")
	}
	texts, err := s.store.current(ctx, req.Msg.AccountId)
	if err != nil {
		return nil, err
	}
	pre, okPre := Match(texts, Prechat, req.Msg.Locale)
	off, okOff := Match(texts, Offline, req.Msg.Locale)
	res := &consentv1.GetConsentResponse{Prechat: toProto(pre, okPre), Offline: toProto(off, okOff)}
	res.Prechat.Form, res.Offline.Form = Prechat, Offline
	return connect.NewResponse(res), nil
}

// ListConsentTexts implements ConsentServiceHandler.
func (s *Service) ListConsentTexts(ctx context.Context, _ *connect.Request[consentv1.ListConsentTextsRequest]) (*connect.Response[consentv1.ListConsentTextsResponse], error) {
	op, _ := auth.OperatorFrom(ctx)
	texts, err := s.store.current(ctx, op.AccountID)
	if err != nil {
		return nil, err
	}
	counts, err := s.store.counts(ctx, op.AccountID)
	if err != nil {
		return nil, err
	}
	res := &consentv1.ListConsentTextsResponse{}
	for _, t := range texts {
		p := toProto(t, true)
		p.AcceptedCount = counts[countKey(t.Form, t.Locale, t.Version)]
		res.Texts = append(res.Texts, p)
	}
	return connect.NewResponse(res), nil
}

// formName is a form's short name ("prechat", "offline").
func formName(f Form) string {
	if f == Offline {
		return "offline"
	}
	return "prechat"
}

// SetConsentText implements ConsentServiceHandler.
func (s *Service) SetConsentText(ctx context.Context, req *connect.Request[consentv1.SetConsentTextRequest]) (*connect.Response[consentv1.SetConsentTextResponse], error) {
	op, _ := auth.OperatorFrom(ctx)
	m := req.Msg
	if m.Form != Prechat && m.Form != Offline {
		return nil, errs.Invalid("form must be PRECHAT or OFFLINE")
	}
	locale := strings.TrimSpace(m.Locale)
	if locale == "" {
		locale = DefaultLocale
	}
	locale, ok := canonicalLocale(locale)
	if !ok {
		return nil, errs.Invalid("locale must be a language tag such as en or de-CH")
	}
	text := strings.TrimSpace(m.Text)
	if text == "" || utf8.RuneCountInString(text) > MaxTextChars {
		return nil, errs.Invalid("text is required (at most %d characters)", MaxTextChars)
	}
	t, err := s.store.set(ctx, op.AccountID, Text{Form: m.Form, Locale: locale, Text: text, Required: m.Required})
	if err != nil {
		return nil, err
	}
	// Which text, by form and locale, and its version: never the text.
	s.audit.Record(ctx, audit.Entry{AccountID: op.AccountID, Action: audit.ConsentTextSet,
		Fields: []string{"form:" + formName(t.Form), "locale:" + t.Locale}, Count: int64(t.Version)})
	return connect.NewResponse(&consentv1.SetConsentTextResponse{Text: toProto(t, true)}), nil
}

// WithdrawConsent implements ConsentServiceHandler.
func (s *Service) WithdrawConsent(ctx context.Context, req *connect.Request[consentv1.WithdrawConsentRequest]) (*connect.Response[consentv1.WithdrawConsentResponse], error) {
	v, _ := auth.VisitorFrom(ctx)
	if req.Msg.ChatId == "" {
		return nil, errs.Invalid("chat_id is required")
	}
	if req.Msg.ChatId != v.ChatID {
		return nil, errs.Denied("this chat belongs to another visitor")
	}
	if err := s.withdraw.WithdrawChat(ctx, v.ChatID); err != nil {
		var ae *errs.Error
		if errors.As(err, &ae) && ae.Code == connect.CodeFailedPrecondition {
			return connect.NewResponse(&consentv1.WithdrawConsentResponse{}), nil // already gone
		}
		return nil, err
	}
	return connect.NewResponse(&consentv1.WithdrawConsentResponse{}), nil
}
