package account

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Role of an operator.
type Role int

const (
	RoleOperator Role = 1
	RoleAdmin    Role = 2
)

// Account is a tenant.
type Account struct {
	ID             string
	Name           string
	AllowedOrigins []string
	CreatedAt      time.Time
}

// Operator is a person answering chats.
type Operator struct {
	ID           string
	AccountID    string
	Email        string
	Name         string
	PasswordHash string
	Role         Role
	Disabled     bool
	CreatedAt    time.Time
}

// ErrNotFound is returned by lookups that find nothing.
var ErrNotFound = errs.ErrNotFound

// ErrEmailTaken is returned when an operator's e-mail address is in use.
var ErrEmailTaken = errors.New("e-mail address in use")

// Store owns the accounts and operators tables in lethe.db.
type Store struct {
	db *store.DB
	// accounts and settings remember what every chat start reads (its
	// account, name and settings); every write here forgets its account.
	accounts *store.Memo[*Account]
	settings *store.Memo[*Settings]
	// operators remembers operators by id: every operator request reads
	// its operator (SessionOperator); every write of an operator forgets it.
	operators *store.Memo[*Operator]
}

// NewStore migrates and returns the account store.
func NewStore(ctx context.Context, db *store.DB) (*Store, error) {
	sub, _ := fs.Sub(migrations, "migrations")
	if err := db.Migrate(ctx, "account", sub); err != nil {
		return nil, err
	}
	return &Store{db: db, accounts: store.NewMemo((*Account).clone), settings: store.NewMemo((*Settings).clone),
		operators: store.NewMemo(func(o *Operator) *Operator { c := *o; return &c })}, nil
}

// CreateAccount inserts an account.
func (s *Store) CreateAccount(ctx context.Context, a Account) error {
	origins, _ := json.Marshal(a.AllowedOrigins)
	_, err := s.db.W.ExecContext(ctx, `INSERT INTO accounts (id, name, allowed_origins, created_at) VALUES (?, ?, ?, ?)`,
		a.ID, a.Name, string(origins), a.CreatedAt.Unix())
	s.forget(a.ID)
	return err
}

// Account returns one account.
func (s *Store) Account(ctx context.Context, id string) (*Account, error) {
	return s.accounts.Get(id, func() (*Account, error) { return s.account(ctx, id) })
}

func (a *Account) clone() *Account {
	c := *a
	c.AllowedOrigins = slices.Clone(a.AllowedOrigins)
	return &c
}

func (s *Store) account(ctx context.Context, id string) (*Account, error) {
	var a Account
	var origins string
	var created int64
	err := s.db.R.QueryRowContext(ctx, `SELECT id, name, allowed_origins, created_at FROM accounts WHERE id = ?`, id).
		Scan(&a.ID, &a.Name, &origins, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	a.CreatedAt = time.Unix(created, 0)
	if err := json.Unmarshal([]byte(origins), &a.AllowedOrigins); err != nil {
		return nil, err
	}
	return &a, nil
}

// forget drops what is remembered of an account, after a write of its rows.
func (s *Store) forget(id string) {
	s.accounts.Forget(id)
	s.settings.Forget(id)
}

// SetAllowedOrigins replaces the account's website origins.
func (s *Store) SetAllowedOrigins(ctx context.Context, id string, origins []string) error {
	b, _ := json.Marshal(origins)
	_, err := s.db.W.ExecContext(ctx, `UPDATE accounts SET allowed_origins = ? WHERE id = ?`, string(b), id)
	s.forget(id)
	return err
}

// CreateOperator inserts an operator. A taken e-mail address is AlreadyExists.
func (s *Store) CreateOperator(ctx context.Context, o Operator) error {
	_, err := s.db.W.ExecContext(ctx, `INSERT INTO operators (id, account_id, email, name, password_hash, role, disabled, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, o.ID, o.AccountID, o.Email, o.Name, o.PasswordHash, o.Role, o.Disabled, o.CreatedAt.Unix())
	s.operators.Forget(o.ID)
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		return ErrEmailTaken
	}
	return err
}

const operatorCols = `id, account_id, email, name, password_hash, role, disabled, created_at`

func scanOperator(row interface{ Scan(...any) error }) (*Operator, error) {
	var o Operator
	var created int64
	err := row.Scan(&o.ID, &o.AccountID, &o.Email, &o.Name, &o.PasswordHash, &o.Role, &o.Disabled, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	o.CreatedAt = time.Unix(created, 0)
	return &o, nil
}

// Operator returns one operator by id.
func (s *Store) Operator(ctx context.Context, id string) (*Operator, error) {
	return s.operators.Get(id, func() (*Operator, error) {
		return scanOperator(s.db.R.QueryRowContext(ctx, `SELECT `+operatorCols+` FROM operators WHERE id = ?`, id))
	})
}

// OperatorByEmail returns one operator by sign-in address (case-insensitive).
func (s *Store) OperatorByEmail(ctx context.Context, email string) (*Operator, error) {
	return scanOperator(s.db.R.QueryRowContext(ctx, `SELECT `+operatorCols+` FROM operators WHERE email = ?`, email))
}

// Operators lists an account's operators by name.
func (s *Store) Operators(ctx context.Context, accountID string) ([]*Operator, error) {
	rows, err := s.db.R.QueryContext(ctx, `SELECT `+operatorCols+` FROM operators WHERE account_id = ? ORDER BY name, id`, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Operator
	for rows.Next() {
		o, err := scanOperator(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// SetDisabled sets an operator's disabled flag.
func (s *Store) SetDisabled(ctx context.Context, id string, disabled bool) error {
	_, err := s.db.W.ExecContext(ctx, `UPDATE operators SET disabled = ? WHERE id = ?`, disabled, id)
	s.operators.Forget(id)
	return err
}

// SetPasswordHash replaces an operator's password hash.
func (s *Store) SetPasswordHash(ctx context.Context, id, hash string) error {
	_, err := s.db.W.ExecContext(ctx, `UPDATE operators SET password_hash = ? WHERE id = ?`, hash, id)
	s.operators.Forget(id)
	return err
}

// CountOperators counts all operators (used at first run).
func (s *Store) CountOperators(ctx context.Context) (int, error) {
	var n int
	err := s.db.R.QueryRowContext(ctx, `SELECT count(*) FROM operators`).Scan(&n)
	return n, err
}

// AccountName returns an account's display name (ErrNotFound if none).
func (s *Store) AccountName(ctx context.Context, id string) (string, error) {
	a, err := s.Account(ctx, id)
	if err != nil {
		return "", err
	}
	return a.Name, nil
}

// ActiveOperatorName returns the name of an enabled operator of the account
// (ErrNotFound if there is none with that id in that account).
func (s *Store) ActiveOperatorName(ctx context.Context, accountID, operatorID string) (string, error) {
	o, err := s.Operator(ctx, operatorID)
	if err != nil {
		return "", err
	}
	if o.AccountID != accountID {
		return "", ErrNotFound
	}
	if o.Disabled {
		return "", errs.Precondition("that operator is disabled")
	}
	return o.Name, nil
}

// AllowedOrigins returns the website origins of an account ("self" for the
// server's own origin).
func (s *Store) AllowedOrigins(ctx context.Context, id string) ([]string, error) {
	a, err := s.Account(ctx, id)
	if err != nil {
		return nil, err
	}
	return a.AllowedOrigins, nil
}

// UpdateProfile sets an operator's name and sign-in address. An address
// that is someone else's is ErrEmailTaken; an unknown operator ErrNotFound.
func (s *Store) UpdateProfile(ctx context.Context, id, name, email string) error {
	res, err := s.db.W.ExecContext(ctx, `UPDATE operators SET name = ?, email = ? WHERE id = ?`, name, email, id)
	s.operators.Forget(id)
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		return ErrEmailTaken
	}
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// ErrLastAdmin is returned when deleting the operator would leave their
// account without an enabled admin.
var ErrLastAdmin = errors.New("the account's last enabled admin")

// DeleteOperator deletes an operator, unless they are the last enabled
// admin of their account (ErrLastAdmin): checked and deleted in one
// transaction, so that two admins deleting themselves at once cannot both
// go. An unknown operator is ErrNotFound.
func (s *Store) DeleteOperator(ctx context.Context, id string) error {
	defer s.operators.Forget(id)
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		var account string
		var role Role
		var disabled bool
		err := tx.QueryRowContext(ctx, `SELECT account_id, role, disabled FROM operators WHERE id = ?`, id).Scan(&account, &role, &disabled)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if role == RoleAdmin && !disabled {
			var others int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM operators WHERE account_id = ? AND role = ? AND NOT disabled AND id != ?`,
				account, RoleAdmin, id).Scan(&others); err != nil {
				return err
			}
			if others == 0 {
				return ErrLastAdmin
			}
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM operators WHERE id = ?`, id)
		return err
	})
}
