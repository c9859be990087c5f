package mail_test

import (
	"github.com/lethehq/lethe/server/mail"
	"github.com/lethehq/lethe/server/privacy"
)

// The queue is the mail side of the privacy service.
var _ privacy.Mail = (*mail.Queue)(nil)
