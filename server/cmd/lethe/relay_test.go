package main

import (
	"net"
	"strconv"
	"testing"

	"github.com/lethehq/lethe/server/mail/mailtest"
)

const (
	// mailFrom is the server's From address in these tests (not the default
	// lethe@localhost, so that "localhost" in a mail means the visitor's host).
	mailFrom = "Lethe <lethe@example.test>"
	// recipient receives transcripts and offline messages.
	recipient = "inbox@example.org"
)

// startRelay starts the in-process relay (server/mail/mailtest) on port (0:
// any free port), offering STARTTLS with ca's certificate when starttls is
// set. It stops at the end of the test.
func startRelay(t *testing.T, ca *mailtest.CA, starttls bool, port int) *mailtest.Relay {
	t.Helper()
	o := mailtest.Options{}
	if starttls {
		o.TLS = ca.ServerTLS()
	}
	if port != 0 {
		o.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	return mailtest.Start(t, o)
}
