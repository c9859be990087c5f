package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/textproto"
	"strings"
	"sync"

	gomail "github.com/wneessen/go-mail"
)

// Attempt stages, as logged. They are fixed strings: an error's own text can
// contain addresses (an SMTP reply often quotes the recipient) and is never
// logged.
const (
	stageCanceled       = "canceled"
	stageTimeout        = "timeout"
	stageBuild          = "build"
	stageConfig         = "config"
	stageConnect        = "connect"
	stageSTARTTLSAbsent = "starttls_unavailable"
	stageTLS            = "tls_handshake"
	stageClearGuard     = "cleartext_refused"
	stageAuth           = "auth"
	stageMailFrom       = "mail_from"
	stageRcptTo         = "rcpt_to"
	stageData           = "data"
	stageSMTP           = "smtp"
	stageConnLost       = "connection_lost"
)

type result struct {
	delivered bool
	tls       bool   // the message went over TLS
	stage     string // where a failed attempt failed
	code      int    // SMTP reply code, when there was one
	enhanced  string // enhanced status code (RFC 3463), when there was one
	permanent bool   // retrying cannot help (the stored message is unusable)
}

// deliver makes one attempt to hand r to the relay. accepted runs as soon
// as the relay accepted the message, before the connection is closed: the
// queue forgets the message there, so that a crash can repeat a delivery
// only in the shortest possible window (at-least-once; a repeat carries the
// same Message-ID, so mail clients fold the copies).
func (q *Queue) deliver(ctx context.Context, r row, accepted func()) result {
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := msg.From(q.cfg.From); err != nil {
		return result{stage: stageConfig}
	}
	if len(r.to) == 0 {
		return result{stage: stageBuild, permanent: true}
	}
	if err := msg.To(r.to...); err != nil {
		return result{stage: stageBuild, permanent: true}
	}
	msg.Subject(r.subject)
	msg.SetMessageIDWithValue(r.id + "@" + q.msgidDom)
	msg.SetDateWithValue(r.created)
	// RFC 3834: no auto-replies (vacation notices) to transcripts.
	msg.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	switch {
	case r.text != "" || r.html == "":
		msg.SetBodyString(gomail.TypeTextPlain, r.text)
		if r.html != "" {
			msg.AddAlternativeString(gomail.TypeTextHTML, r.html)
		}
	default:
		msg.SetBodyString(gomail.TypeTextHTML, r.html)
	}

	var (
		guard      *guardConn
		dialFailed bool
	)
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(dctx, network, addr)
		if err != nil {
			dialFailed = true
			return nil, err
		}
		// go-mail does not close the connection when the dial phase
		// (EHLO, STARTTLS, AUTH) fails, nor watch ctx after dialling: the
		// attempt's end (or Run's) closes it.
		context.AfterFunc(ctx, func() { c.Close() })
		guard = newGuardConn(c, r.requireTLS)
		return guard, nil
	}
	policy := gomail.TLSOpportunistic
	if r.requireTLS {
		policy = gomail.TLSMandatory
	}
	// WithTLSPolicy, not WithTLSPortPolicy: the latter may switch ports and
	// fall back to port 25.
	opts := []gomail.Option{
		gomail.WithPort(q.cfg.Port),
		gomail.WithTLSPolicy(policy),
		gomail.WithTLSConfig(q.tls),
		gomail.WithTimeout(q.cfg.Timeout),
		gomail.WithDialContextFunc(dial),
	}
	if q.cfg.Username != "" {
		// Autodiscovery only picks PLAIN or LOGIN on an encrypted connection.
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(q.cfg.Username), gomail.WithPassword(q.cfg.Password))
	}
	client, err := gomail.NewClient(q.cfg.Host, opts...)
	if err != nil {
		return result{stage: stageConfig}
	}
	sc, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return classify(ctx, err, dialFailed, guard)
	}
	err = client.SendWithSMTPClient(sc, msg)
	if msg.IsDelivered() {
		// Accepted after DATA. An error now (RSET) does not matter:
		// retrying would send the mail twice. Forget it before QUIT.
		accepted()
		client.CloseWithSMTPClient(sc)
		return result{delivered: true, tls: guard != nil && guard.encrypted()}
	}
	client.CloseWithSMTPClient(sc)
	if err == nil {
		// Cannot happen: no error, yet not delivered. Treat as a failure.
		return result{stage: stageSMTP}
	}
	return classify(ctx, err, dialFailed, guard)
}

// classify turns an attempt's error into loggable facts, never its text.
func classify(ctx context.Context, err error, dialFailed bool, guard *guardConn) result {
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return result{stage: stageCanceled}
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return result{stage: stageTimeout}
	case dialFailed:
		return result{stage: stageConnect}
	}
	var se *gomail.SendError
	if errors.As(err, &se) {
		res := result{code: se.ErrorCode(), enhanced: se.EnhancedStatusCode()}
		switch se.Reason {
		case gomail.ErrSMTPMailFrom:
			res.stage = stageMailFrom
		case gomail.ErrSMTPRcptTo:
			res.stage = stageRcptTo
		case gomail.ErrSMTPData, gomail.ErrSMTPDataClose, gomail.ErrWriteContent:
			res.stage = stageData
		case gomail.ErrGetSender, gomail.ErrGetRcpts:
			res.stage = stageBuild
		default:
			res.stage = stageSMTP
		}
		if errors.Is(err, errClearText) {
			res.stage = stageClearGuard
		}
		return res
	}
	res := result{stage: stageSMTP}
	var tpe *textproto.Error
	if errors.As(err, &tpe) {
		res.code = tpe.Code
	}
	var (
		cve  *tls.CertificateVerificationError
		rhe  tls.RecordHeaderError
		ae   tls.AlertError
		uae  x509.UnknownAuthorityError
		he   x509.HostnameError
		cie  x509.CertificateInvalidError
		oe   *net.OpError
		nerr net.Error
	)
	text := err.Error() // matched against go-mail's fixed texts only, never logged
	switch {
	case errors.Is(err, errClearText):
		res.stage = stageClearGuard
	case errors.As(err, &cve), errors.As(err, &rhe), errors.As(err, &ae), errors.As(err, &uae),
		errors.As(err, &he), errors.As(err, &cie),
		errors.As(err, &oe) && oe.Op == "remote error":
		res.stage = stageTLS
	case strings.Contains(text, "does not support STARTTLS"):
		res.stage = stageSTARTTLSAbsent
	case errors.Is(err, gomail.ErrNoSupportedAuthDiscovered), strings.Contains(text, "SMTP AUTH"):
		res.stage = stageAuth
	case guard != nil && guard.encrypted() && res.code == 0:
		// Failed after the ClientHello without an SMTP reply.
		res.stage = stageTLS
	case errors.As(err, &nerr) && nerr.Timeout():
		res.stage = stageTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		res.stage = stageConnLost
	}
	return res
}

// errClearText is returned by the guard when a command would leave in clear
// text although TLS is required or was offered.
var errClearText = errors.New("mail: refusing to send in clear text")

// guardConn enforces P8 beneath go-mail: while the connection is in clear
// text and TLS is required (RequireTLS) or offered (the server's EHLO reply
// listed STARTTLS), only EHLO, HELO, STARTTLS, RSET, NOOP and QUIT may be
// written. Once the TLS ClientHello has been written the connection is
// encrypted for good and the guard steps aside.
type guardConn struct {
	net.Conn

	mu      sync.Mutex
	mustTLS bool   // clear text may carry only the allowed commands
	tlsOn   bool   // the first TLS record has been written
	partial []byte // incomplete reply line read in clear text
}

func newGuardConn(c net.Conn, requireTLS bool) *guardConn {
	return &guardConn{Conn: c, mustTLS: requireTLS}
}

// clearAllowed are the commands that carry no message data.
var clearAllowed = map[string]bool{"EHLO": true, "HELO": true, "STARTTLS": true, "RSET": true, "NOOP": true, "QUIT": true}

func (g *guardConn) Write(p []byte) (int, error) {
	g.mu.Lock()
	if !g.tlsOn && len(p) > 0 && p[0] == 0x16 { // TLS handshake record: ClientHello
		g.tlsOn = true
	}
	if !g.tlsOn && g.mustTLS {
		for line := range bytes.Lines(p) {
			verb, _, _ := strings.Cut(strings.TrimSpace(string(line)), " ")
			if !clearAllowed[strings.ToUpper(verb)] {
				g.mu.Unlock()
				return 0, errClearText
			}
		}
	}
	g.mu.Unlock()
	return g.Conn.Write(p)
}

func (g *guardConn) Read(p []byte) (int, error) {
	n, err := g.Conn.Read(p)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.tlsOn || g.mustTLS {
		return n, err
	}
	// Watch the server's clear-text replies for "250-STARTTLS"/"250 STARTTLS".
	buf := append(g.partial, p[:n]...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		if offersSTARTTLS(buf[:i]) {
			g.mustTLS = true
		}
		buf = buf[i+1:]
	}
	if len(buf) > 1024 { // no reply line is that long; keep memory bounded
		buf = buf[len(buf)-1024:]
	}
	g.partial = append(g.partial[:0], buf...)
	return n, err
}

func offersSTARTTLS(line []byte) bool {
	s := strings.TrimSpace(string(line))
	if len(s) < 4 || s[:3] != "250" || (s[3] != '-' && s[3] != ' ') {
		return false
	}
	return strings.EqualFold(strings.TrimSpace(s[4:]), "STARTTLS")
}

// encrypted reports whether the connection switched to TLS.
func (g *guardConn) encrypted() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tlsOn
}
