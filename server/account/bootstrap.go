package account

import (
	"context"
	"crypto/rand"
	"time"

	"github.com/lethehq/lethe/server/ids"
)

// DemoAccountID is the account created on first run, embedded on /demo.
const DemoAccountID = "demo"

// DefaultAdminEmail is the first admin's sign-in address.
const DefaultAdminEmail = "admin@lethe.local"

// Bootstrap creates, when no operator exists yet, the demo account (its
// widget allowed on the server's own origin) and an admin. The admin's
// password is adminPassword, or a random one when that is empty. It returns
// the password only when it created the admin, so it is shown once.
func Bootstrap(ctx context.Context, st *Store, svc *Service, adminPassword string) (created bool, email, password string, err error) {
	n, err := st.CountOperators(ctx)
	if err != nil || n > 0 {
		return false, "", "", err
	}
	if _, err := st.Account(ctx, DemoAccountID); err == ErrNotFound {
		if err := st.CreateAccount(ctx, Account{ID: DemoAccountID, Name: "Demo Company", AllowedOrigins: []string{"self"}, CreatedAt: time.Now()}); err != nil {
			return false, "", "", err
		}
	} else if err != nil {
		return false, "", "", err
	}
	password = adminPassword
	if password == "" {
		password = randomPassword()
	}
	hash, err := svc.HashPassword(password)
	if err != nil {
		return false, "", "", err
	}
	if err := st.CreateOperator(ctx, Operator{ID: ids.New(), AccountID: DemoAccountID, Email: DefaultAdminEmail, Name: "Admin",
		PasswordHash: hash, Role: RoleAdmin, CreatedAt: time.Now()}); err != nil {
		return false, "", "", err
	}
	return true, DefaultAdminEmail, password, nil
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
