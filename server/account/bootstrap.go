package account

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/lethehq/lethe/server/ids"
	"github.com/lethehq/lethe/server/origin"
)

// DemoAccountID is the account created on first run, embedded on /demo.
const DemoAccountID = "demo"

// DefaultAdminEmail is the first admin's sign-in address.
const DefaultAdminEmail = "admin@lethe.local"

// FirstRun says what Bootstrap did.
type FirstRun struct {
	// Created: this start created the demo account's admin.
	Created bool
	Email   string
	// GeneratedPassword is the admin's password when Bootstrap chose it
	// (to be shown once); empty when the caller supplied one.
	GeneratedPassword string
}

// Bootstrap creates, when no operator exists yet, the demo account (its
// widget allowed on the server's own origin) and an admin whose password is
// adminPassword, or a random one when that is empty.
func Bootstrap(ctx context.Context, st *Store, svc *Service, adminPassword string) (FirstRun, error) {
	n, err := st.CountOperators(ctx)
	if err != nil || n > 0 {
		return FirstRun{}, err
	}
	if _, err := st.Account(ctx, DemoAccountID); errors.Is(err, ErrNotFound) {
		if err := st.CreateAccount(ctx, Account{ID: DemoAccountID, Name: "Demo Company", AllowedOrigins: []string{origin.Self}, CreatedAt: time.Now()}); err != nil {
			return FirstRun{}, fmt.Errorf("first-run setup: %w", err)
		}
	} else if err != nil {
		return FirstRun{}, err
	}
	fr := FirstRun{Created: true, Email: DefaultAdminEmail}
	password := adminPassword
	if password == "" {
		password = randomPassword()
		fr.GeneratedPassword = password
	}
	hash, err := svc.HashPassword(ctx, password)
	if err != nil {
		return FirstRun{}, err
	}
	if err := st.CreateOperator(ctx, Operator{ID: ids.New(), AccountID: DemoAccountID, Email: DefaultAdminEmail, Name: "Admin",
		PasswordHash: hash, Role: RoleAdmin, CreatedAt: time.Now()}); err != nil {
		return FirstRun{}, fmt.Errorf("first-run setup: %w", err)
	}
	return fr, nil
}

func randomPassword() string {
	const alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 16)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
