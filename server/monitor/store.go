package monitor

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	monitorv1 "github.com/lethehq/lethe/gen/go/lethe/monitor/v1"
	privacyv1 "github.com/lethehq/lethe/gen/go/lethe/privacy/v1"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/store"
)

//go:embed migrations/scratch/*.sql migrations/durable/*.sql
var migrations embed.FS

// ErrNotFound is returned when a visit, ticket or key does not exist.
var ErrNotFound = errs.ErrNotFound

// MaxPages is how many page views of a visit are kept (the most recent).
const MaxPages = 50

// Store owns the monitoring tables in scratch.db: visits, their pages and
// custom data, and integrators' tickets.
type Store struct {
	db *store.DB
}

// NewStore migrates and returns the monitoring store on the scratch database.
func NewStore(ctx context.Context, scratch *store.DB) (*Store, error) {
	sub, _ := fs.Sub(migrations, "migrations/scratch")
	if err := scratch.Migrate(ctx, "monitor", sub); err != nil {
		return nil, err
	}
	return &Store{db: scratch}, nil
}

// DB is the scratch database.
func (s *Store) DB() *store.DB { return s.db }

func ms(t time.Time) int64 { return t.UnixMilli() }

func tsOrNil(msec int64) *timestamppb.Timestamp {
	if msec == 0 {
		return nil
	}
	return timestamppb.New(time.UnixMilli(msec))
}

// Visit is one visit row.
type Visit struct {
	ID, AccountID string
	Version       int64
	FirstSeen     time.Time
	SeenAt        time.Time
	// Left is set once the visitor left the site (the retention window runs).
	Left bool

	Browser, BrowserVersion, OS, Device            string
	City, Region, Country, CountryCode, PostalCode string
	ISP                                            string
	// IP and Host are empty when the account hides them (P5).
	IP, Host string

	InvID, InvOperatorID, InvOperatorName, InvMessage string
	InvState                                          monitorv1.InvitationState
	InvSentAt, InvAnsweredAt                          int64
}

func (v *Visit) invitation() *monitorv1.Invitation {
	return &monitorv1.Invitation{InvitationId: v.InvID, OperatorName: v.InvOperatorName, Message: v.InvMessage, SentAt: tsOrNil(v.InvSentAt)}
}

const visitCols = `id, account_id, version, first_seen, seen_at, left_at IS NOT NULL, browser, browser_version, os, device,
	city, region, country, country_code, postal_code, isp, ip, host,
	inv_id, inv_operator_id, inv_operator_name, inv_message, inv_state, inv_sent_at, inv_answered_at`

type scanner interface{ Scan(...any) error }

func scanVisit(row scanner) (*Visit, error) {
	var v Visit
	var first, seen int64
	err := row.Scan(&v.ID, &v.AccountID, &v.Version, &first, &seen, &v.Left, &v.Browser, &v.BrowserVersion, &v.OS, &v.Device,
		&v.City, &v.Region, &v.Country, &v.CountryCode, &v.PostalCode, &v.ISP, &v.IP, &v.Host,
		&v.InvID, &v.InvOperatorID, &v.InvOperatorName, &v.InvMessage, &v.InvState, &v.InvSentAt, &v.InvAnsweredAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	v.FirstSeen, v.SeenAt = time.UnixMilli(first), time.UnixMilli(seen)
	return &v, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Visit returns one visit.
func (s *Store) Visit(ctx context.Context, id string) (*Visit, error) {
	return scanVisit(s.db.R.QueryRowContext(ctx, `SELECT `+visitCols+` FROM monitor_visits WHERE id = ?`, id))
}

// VisitByTokenHash returns the visit whose token hashes to hash.
func (s *Store) VisitByTokenHash(ctx context.Context, hash []byte) (*Visit, error) {
	return scanVisit(s.db.R.QueryRowContext(ctx, `SELECT `+visitCols+` FROM monitor_visits WHERE token_hash = ?`, hash))
}

// The page token's queries (their plans are tested).
const (
	qVisitByPage = `SELECT ` + visitCols + ` FROM monitor_visits WHERE page_hash = ?`
	qClaim       = `UPDATE monitor_visits SET token_hash = ? WHERE page_hash = ? RETURNING id`
)

// VisitByPageHash returns the visit whose page token hashes to hash.
func (s *Store) VisitByPageHash(ctx context.Context, hash []byte) (*Visit, error) {
	return scanVisit(s.db.R.QueryRowContext(ctx, qVisitByPage, hash))
}

// claim replaces the visit token hash of the visit whose page token hashes
// to pageHash: the previous visit token stops working.
func (s *Store) claim(ctx context.Context, pageHash, tokenHash []byte) (*Visit, error) {
	var id string
	err := s.db.W.QueryRowContext(ctx, qClaim, tokenHash, pageHash).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return s.Visit(ctx, id)
}

// createVisit inserts a new visit with its first page view. pageHash is nil
// unless the loader started the visit with a page token.
func createVisit(ctx context.Context, tx querier, v *Visit, tokenHash, pageHash []byte, p *monitorv1.Page, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO monitor_visits (id, account_id, token_hash, page_hash, first_seen, seen_at,
		browser, browser_version, os, device, city, region, country, country_code, postal_code, isp, ip, host)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		v.ID, v.AccountID, tokenHash, pageHash, ms(now), ms(now), v.Browser, v.BrowserVersion, v.OS, v.Device,
		v.City, v.Region, v.Country, v.CountryCode, v.PostalCode, v.ISP, v.IP, v.Host)
	if err != nil {
		return err
	}
	return addPage(ctx, tx, v.ID, p, now)
}

func addPage(ctx context.Context, tx querier, visitID string, p *monitorv1.Page, now time.Time) error {
	var seq int64
	if err := tx.QueryRowContext(ctx, `UPDATE monitor_visits SET page_seq = page_seq + 1 WHERE id = ? RETURNING page_seq`, visitID).Scan(&seq); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO monitor_pages (visit_id, seq, url, title, referrer, viewed_at) VALUES (?, ?, ?, ?, ?, ?)`,
		visitID, seq, p.Url, p.Title, p.Referrer, ms(now)); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM monitor_pages WHERE visit_id = ? AND seq <= ?`, visitID, seq-MaxPages)
	return err
}

// touch marks a visit seen now and on site, bumping its version when
// something operators see changed (it came back, or its IP is to be
// dropped). It returns whether the visitor had left, and ErrNotFound when the
// visit is gone.
func touch(ctx context.Context, tx querier, visitID string, now time.Time, dropIP, changed bool) (rejoined bool, err error) {
	var wasLeft bool
	err = tx.QueryRowContext(ctx, `SELECT left_at IS NOT NULL FROM monitor_visits WHERE id = ?`, visitID).Scan(&wasLeft)
	if errors.Is(err, sql.ErrNoRows) {
		return false, ErrNotFound
	}
	if err != nil {
		return false, err
	}
	bump := 0
	if wasLeft || changed {
		bump = 1
	}
	if dropIP {
		// The account turned "hide IP and host" on during the visit.
		res, err := tx.ExecContext(ctx, `UPDATE monitor_visits SET ip = '', host = '', version = version + 1 WHERE id = ? AND (ip != '' OR host != '')`, visitID)
		if err != nil {
			return false, err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			bump = 0 // already bumped
		}
	}
	_, err = tx.ExecContext(ctx, `UPDATE monitor_visits SET seen_at = max(seen_at, ?), left_at = NULL, version = version + ? WHERE id = ?`,
		ms(now), bump, visitID)
	return wasLeft, err
}

// setData replaces a visit's page-provided or verified custom data.
func setData(ctx context.Context, tx querier, visitID string, verified bool, data map[string]string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM monitor_custom_data WHERE visit_id = ? AND verified = ?`, visitID, verified); err != nil {
		return err
	}
	for k, v := range data {
		if _, err := tx.ExecContext(ctx, `INSERT INTO monitor_custom_data (visit_id, verified, key, value) VALUES (?, ?, ?, ?)`,
			visitID, verified, k, v); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, `UPDATE monitor_visits SET version = version + 1 WHERE id = ?`, visitID)
	return err
}

// visitorState is a visitor as operators see it, with the version it had.
type visitorState struct {
	id        string
	accountID string
	version   int64
	// v is nil when the visitor left.
	v *monitorv1.Visitor
}

func (v *Visit) proto() *monitorv1.Visitor {
	out := &monitorv1.Visitor{
		VisitorId: v.ID, FirstSeen: timestamppb.New(v.FirstSeen), LastSeen: timestamppb.New(v.SeenAt),
		Browser: v.Browser, BrowserVersion: v.BrowserVersion, Os: v.OS, Device: v.Device,
		Location: &monitorv1.Location{City: v.City, Region: v.Region, Country: v.Country, CountryCode: v.CountryCode, PostalCode: v.PostalCode},
		Isp:      v.ISP, Ip: v.IP, Host: v.Host,
		PageData: map[string]string{}, VerifiedData: map[string]string{},
	}
	if v.InvID != "" {
		out.Invitation = &monitorv1.InvitationStatus{InvitationId: v.InvID, OperatorId: v.InvOperatorID, OperatorName: v.InvOperatorName,
			Message: v.InvMessage, State: v.InvState, SentAt: tsOrNil(v.InvSentAt), AnsweredAt: tsOrNil(v.InvAnsweredAt)}
	}
	return out
}

// visitors loads the full operator view of the visits matching where
// (a condition on monitor_visits aliased v), in one read transaction.
func (s *Store) visitors(ctx context.Context, where string, args ...any) ([]visitorState, error) {
	tx, err := s.db.R.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT `+visitCols+` FROM monitor_visits v WHERE `+where+` ORDER BY first_seen, id`, args...)
	if err != nil {
		return nil, err
	}
	var out []visitorState
	byID := map[string]*monitorv1.Visitor{}
	for rows.Next() {
		v, err := scanVisit(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		p := v.proto()
		byID[v.ID] = p
		out = append(out, visitorState{id: v.ID, accountID: v.AccountID, version: v.Version, v: p})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	err = eachPage(ctx, tx, where, args, func(id string, pg *monitorv1.Page, at time.Time) {
		if p := byID[id]; p != nil {
			pv := &monitorv1.PageView{Page: pg, ViewedAt: timestamppb.New(at)}
			p.Pages = append(p.Pages, pv)
			p.CurrentPage = pv
		}
	})
	if err != nil {
		return nil, err
	}
	err = eachDatum(ctx, tx, where, args, func(id string, verified bool, k, val string) {
		if p := byID[id]; p != nil {
			if verified {
				p.VerifiedData[k] = val
			} else {
				p.PageData[k] = val
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eachPage calls fn with every page of the visits matching where (on
// monitor_visits v), by visit and in the order they were viewed.
func eachPage(ctx context.Context, tx querier, where string, args []any, fn func(visitID string, p *monitorv1.Page, viewedAt time.Time)) error {
	rows, err := tx.QueryContext(ctx, `SELECT p.visit_id, p.url, p.title, p.referrer, p.viewed_at FROM monitor_pages p
		JOIN monitor_visits v ON v.id = p.visit_id WHERE `+where+` ORDER BY p.visit_id, p.seq`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var pg monitorv1.Page
		var at int64
		if err := rows.Scan(&id, &pg.Url, &pg.Title, &pg.Referrer, &at); err != nil {
			return err
		}
		fn(id, &pg, time.UnixMilli(at))
	}
	return rows.Err()
}

// eachDatum calls fn with every custom data value of the visits matching
// where (on monitor_visits v), by visit and key.
func eachDatum(ctx context.Context, tx querier, where string, args []any, fn func(visitID string, verified bool, key, value string)) error {
	rows, err := tx.QueryContext(ctx, `SELECT d.visit_id, d.verified, d.key, d.value FROM monitor_custom_data d
		JOIN monitor_visits v ON v.id = d.visit_id WHERE `+where+` ORDER BY d.visit_id, d.key, d.verified`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, k, val string
		var verified bool
		if err := rows.Scan(&id, &verified, &k, &val); err != nil {
			return err
		}
		fn(id, verified, k, val)
	}
	return rows.Err()
}

// Visitor returns the operator view of one visit.
func (s *Store) Visitor(ctx context.Context, id string) (visitorState, error) {
	vs, err := s.visitors(ctx, `v.id = ?`, id)
	if err != nil {
		return visitorState{}, err
	}
	if len(vs) == 0 {
		return visitorState{}, ErrNotFound
	}
	return vs[0], nil
}

// OnSite returns the account's visitors on site, oldest visit first.
func (s *Store) OnSite(ctx context.Context, accountID string) ([]visitorState, error) {
	return s.visitors(ctx, `v.account_id = ? AND v.left_at IS NULL`, accountID)
}

// staleVisits lists visits on site whose last sign of life is before cutoff.
func (s *Store) staleVisits(ctx context.Context, cutoff time.Time) ([]string, error) {
	return store.Column[string](ctx, s.db.W, `SELECT id FROM monitor_visits WHERE left_at IS NULL AND seen_at < ?`, ms(cutoff))
}

// markLeft records that a visitor left at now, unless a sign of life came
// after cutoff. It returns the new state (ok false when nothing changed).
func (s *Store) markLeft(ctx context.Context, id string, cutoff, now time.Time) (visitorState, bool, error) {
	st := visitorState{id: id}
	err := s.db.W.QueryRowContext(ctx, `UPDATE monitor_visits SET left_at = ?, version = version + 1
		WHERE id = ? AND left_at IS NULL AND seen_at < ? RETURNING account_id, version`, ms(now), id, ms(cutoff)).Scan(&st.accountID, &st.version)
	if errors.Is(err, sql.ErrNoRows) {
		return st, false, nil
	}
	return st, err == nil, err
}

// expireInvitations reports pending invitations sent before cutoff as ignored.
func (s *Store) expireInvitations(ctx context.Context, cutoff, now time.Time) ([]visitorState, error) {
	rows, err := s.db.W.QueryContext(ctx, `UPDATE monitor_visits SET inv_state = ?, inv_answered_at = ?, version = version + 1
		WHERE inv_state = ? AND inv_sent_at < ? RETURNING id, account_id, version`,
		monitorv1.InvitationState_INVITATION_STATE_IGNORED, ms(now), monitorv1.InvitationState_INVITATION_STATE_PENDING, ms(cutoff))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []visitorState
	for rows.Next() {
		var st visitorState
		if err := rows.Scan(&st.id, &st.accountID, &st.version); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// destroyLeft deletes every visit that left at or before before, with its
// pages and custom data, and clears or deletes expired tickets. It returns
// how many visits and ticket rows it removed or cleared.
func (s *Store) destroyLeft(ctx context.Context, before, now time.Time, ticketGrace time.Duration) (visits []visitorState, tickets int64, err error) {
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, account_id FROM monitor_visits WHERE left_at IS NOT NULL AND left_at <= ?`, ms(before))
		if err != nil {
			return err
		}
		for rows.Next() {
			var st visitorState
			if err := rows.Scan(&st.id, &st.accountID); err != nil {
				rows.Close()
				return err
			}
			visits = append(visits, st)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, v := range visits {
			if err := deleteVisit(ctx, tx, v.id); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `UPDATE monitor_tickets SET data = NULL WHERE data IS NOT NULL AND expires_at <= ?`, ms(now))
		if err != nil {
			return err
		}
		n1, _ := res.RowsAffected()
		res, err = tx.ExecContext(ctx, `DELETE FROM monitor_tickets WHERE expires_at <= ?`, ms(now.Add(-ticketGrace)))
		if err != nil {
			return err
		}
		n2, _ := res.RowsAffected()
		tickets = n1 + n2
		return nil
	})
	return visits, tickets, err
}

func deleteVisit(ctx context.Context, tx querier, id string) error {
	for _, q := range []string{
		`DELETE FROM monitor_pages WHERE visit_id = ?`,
		`DELETE FROM monitor_custom_data WHERE visit_id = ?`,
		`DELETE FROM monitor_visits WHERE id = ?`,
	} {
		if _, err := tx.ExecContext(ctx, q, id); err != nil {
			return err
		}
	}
	return nil
}

// ticket is a stored ticket.
type ticket struct {
	accountID, keyID string
	data             map[string]string
	used             bool
	expiresAt        time.Time
}

func insertTicket(ctx context.Context, q querier, hash []byte, accountID, keyID string, data map[string]string, expires time.Time) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, `INSERT INTO monitor_tickets (hash, account_id, key_id, data, expires_at) VALUES (?, ?, ?, ?, ?)`,
		hash, accountID, keyID, string(b), ms(expires))
	return err
}

func getTicket(ctx context.Context, q querier, hash []byte) (*ticket, error) {
	var t ticket
	var data sql.NullString
	var used sql.NullInt64
	var exp int64
	err := q.QueryRowContext(ctx, `SELECT account_id, key_id, data, expires_at, used_at FROM monitor_tickets WHERE hash = ?`, hash).
		Scan(&t.accountID, &t.keyID, &data, &exp, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	t.used, t.expiresAt = used.Valid, time.UnixMilli(exp)
	if data.Valid {
		if err := json.Unmarshal([]byte(data.String), &t.data); err != nil {
			return nil, err
		}
	}
	return &t, nil
}

// useTicket clears a ticket's data and marks it used; the row stays until it
// expires so a second use is told apart from an unknown ticket.
func useTicket(ctx context.Context, q querier, hash []byte, now time.Time) error {
	_, err := q.ExecContext(ctx, `UPDATE monitor_tickets SET data = NULL, used_at = ? WHERE hash = ?`, ms(now), hash)
	return err
}

// heldVisit is what is held about one visit, as its visitor is shown it
// (lethe.privacy.v1).
type heldVisit struct {
	v      *Visit
	leftAt time.Time // zero while on site
	pages  []*privacyv1.PageView
	data   []*privacyv1.CustomDatum
}

// withExtra scans a row's first columns with a scanner for them and the rest
// into extra.
type withExtra struct {
	row   scanner
	extra []any
}

func (w withExtra) Scan(dest ...any) error { return w.row.Scan(append(dest, w.extra...)...) }

// held loads everything held about the visits matching where (a condition on
// monitor_visits aliased v), oldest first, in one read transaction.
func (s *Store) held(ctx context.Context, where string, args ...any) ([]*heldVisit, error) {
	tx, err := s.db.R.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT `+visitCols+`, coalesce(left_at, 0) FROM monitor_visits v WHERE `+where+` ORDER BY first_seen, id`, args...)
	if err != nil {
		return nil, err
	}
	var out []*heldVisit
	byID := map[string]*heldVisit{}
	for rows.Next() {
		var left int64
		v, err := scanVisit(withExtra{rows, []any{&left}})
		if err != nil {
			rows.Close()
			return nil, err
		}
		h := &heldVisit{v: v}
		if left != 0 {
			h.leftAt = time.UnixMilli(left)
		}
		byID[v.ID] = h
		out = append(out, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	err = eachPage(ctx, tx, where, args, func(id string, pg *monitorv1.Page, at time.Time) {
		if h := byID[id]; h != nil {
			h.pages = append(h.pages, &privacyv1.PageView{Url: pg.Url, Title: pg.Title, Referrer: pg.Referrer, ViewedAt: timestamppb.New(at)})
		}
	})
	if err != nil {
		return nil, err
	}
	err = eachDatum(ctx, tx, where, args, func(id string, verified bool, k, val string) {
		if h := byID[id]; h != nil {
			h.data = append(h.data, &privacyv1.CustomDatum{Key: k, Value: val, Verified: verified})
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// visitsWithValue lists the ids of the account's visits with a custom data
// value equal to value under Unicode simple case folding (strings.EqualFold).
// Folding maps a character to one character, so only values of the same
// length in characters are read.
func (s *Store) visitsWithValue(ctx context.Context, accountID, value string) ([]string, error) {
	rows, err := s.db.R.QueryContext(ctx, `SELECT DISTINCT d.visit_id, d.value FROM monitor_custom_data d
		JOIN monitor_visits v ON v.id = d.visit_id WHERE v.account_id = ? AND length(d.value) = ?`, accountID, utf8.RuneCountInString(value))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	seen := map[string]bool{}
	for rows.Next() {
		var id, val string
		if err := rows.Scan(&id, &val); err != nil {
			return nil, err
		}
		if strings.EqualFold(val, value) && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, rows.Err()
}

// destroyVisit deletes the account's visit id with its pages and custom
// data, and answers what the operators' streams must be told (a version
// newer than any they saw) and how many pages and custom data values went.
// ok is false when there is no such visit of the account.
func (s *Store) destroyVisit(ctx context.Context, accountID, id string) (st visitorState, pages, data int64, ok bool, err error) {
	st = visitorState{id: id, accountID: accountID}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT version FROM monitor_visits WHERE id = ? AND account_id = ?`, id, accountID).Scan(&st.version)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		ok = true
		st.version++
		counts := []*int64{&pages, &data, new(int64)}
		for i, q := range []string{
			`DELETE FROM monitor_pages WHERE visit_id = ?`,
			`DELETE FROM monitor_custom_data WHERE visit_id = ?`,
			`DELETE FROM monitor_visits WHERE id = ?`,
		} {
			res, err := tx.ExecContext(ctx, q, id)
			if err != nil {
				return err
			}
			if *counts[i], err = res.RowsAffected(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return visitorState{}, 0, 0, false, err
	}
	return st, pages, data, ok, nil
}
