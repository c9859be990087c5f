package account_test

import (
	"github.com/lethehq/lethe/server/account"
	"github.com/lethehq/lethe/server/privacy"
)

// The privacy service reaches an operator's own data through these.
var _ privacy.Operators = (*account.Service)(nil)
