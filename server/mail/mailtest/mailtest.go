// Package mailtest is a real SMTP relay (github.com/emersion/go-smtp) for
// tests, started in the test process: optionally offering STARTTLS with a
// self-signed certificate the code under test is told to trust, AUTH PLAIN,
// refusing recipients, and a hook that runs when a message is accepted (to
// kill the server under test between the relay's acceptance and its
// bookkeeping). It records what it was told and parses what it received.
// Every test that needs a mail server uses this one.
package mailtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/lethehq/lethe/server/internal/testkit"
)

// CA is a self-signed certificate for 127.0.0.1 and localhost, a pool
// trusting it, and the path of its PEM file (for --smtp-ca).
type CA struct {
	Cert tls.Certificate
	Pool *x509.CertPool
	File string
}

// NewCA makes a CA valid for the test.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "lethe test smtp"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	file := filepath.Join(t.TempDir(), "smtp-ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, Pool: pool, File: file}
}

// ServerTLS is the relay's TLS configuration with the CA's certificate.
func (c *CA) ServerTLS() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{c.Cert}, MinVersion: tls.VersionTLS12}
}

// ClientTLS is a client configuration trusting the CA.
func (c *CA) ClientTLS() *tls.Config { return &tls.Config{RootCAs: c.Pool} }

// Options configure a relay; the zero value is a plain relay on a free port.
type Options struct {
	// TLS, when set, makes the relay offer STARTTLS with this configuration.
	TLS *tls.Config
	// Addr to listen on (default a free port on 127.0.0.1). FreeAddr gives
	// one that a relay started later can take (a relay that is down first).
	Addr string
	// RejectRcpt, when set, is returned for the first RejectN RCPT commands
	// ("{rcpt}" in its message is replaced by the recipient).
	RejectRcpt *smtp.SMTPError
	RejectN    int
	// User and Pass, when set, make the relay offer AUTH PLAIN.
	User, Pass string
	// OnData runs after a message is recorded and before the relay answers
	// 250 (it may kill the sender). A non-nil error is the relay's answer.
	OnData func(Mail) error
	// OnCommand runs for each command the client sends (its upper-cased
	// verb: EHLO, MAIL, RCPT, DATA, RSET, QUIT…), before the relay handles
	// it — so a test can kill the sender at an exact point of the dialogue,
	// e.g. after it got the 250 for DATA (at RSET or QUIT). Lines of a
	// message body are not commands. Meant for one connection at a time.
	OnCommand func(verb string)
}

// Mail is one message the relay accepted after DATA.
type Mail struct {
	TLS  bool
	From string
	To   []string
	Data []byte
}

// Relay is a running SMTP server.
type Relay struct {
	Addr string
	Port int

	opts Options
	srv  *smtp.Server
	// debug is the whole protocol exchange, both directions, every
	// connection (after STARTTLS: the decrypted commands).
	debug *tap

	mu       sync.Mutex
	sessions int    // EHLO/HELO greetings
	mails    []bool // per MAIL FROM: was the connection TLS
	datas    []Mail // per accepted DATA
	auths    []bool // per successful AUTH: was the connection TLS
	rejected int
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}

// Start starts a relay that stops at the end of the test.
func Start(t testing.TB, o Options) *Relay {
	t.Helper()
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	r := &Relay{opts: o, debug: &tap{onCommand: o.OnCommand}}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		r.mu.Lock()
		r.sessions++
		r.mu.Unlock()
		return &session{r: r, c: c}, nil
	}))
	s.Domain = "relay.example.test"
	s.TLSConfig = o.TLS
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	s.MaxMessageBytes = 4 << 20
	s.AllowInsecureAuth = true
	s.ErrorLog = nopLogger{}
	s.Debug = r.debug
	var ln net.Listener
	var err error
	// An address handed out by FreeAddr may linger for a moment.
	for i := 0; ; i++ {
		ln, err = net.Listen("tcp", o.Addr)
		if err == nil || i == 100 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("smtp listen: %v", err)
	}
	r.srv = s
	r.Addr = ln.Addr().String()
	r.Port = ln.Addr().(*net.TCPAddr).Port
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return r
}

// Close stops the relay (a relay going down during a test).
func (r *Relay) Close() { r.srv.Close() }

// FreeAddr returns a local address and port nobody listens on (yet): a
// relay that is down until Start is called with it.
func FreeAddr(t testing.TB) (string, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return addr, port
}

// Received returns the messages accepted so far.
func (r *Relay) Received() []Mail {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Mail(nil), r.datas...)
}

// MailFroms says, per MAIL FROM command seen, whether the connection was TLS.
func (r *Relay) MailFroms() []bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bool(nil), r.mails...)
}

// Greetings counts EHLO/HELO greetings (connections that got that far).
func (r *Relay) Greetings() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sessions
}

// Logins says, per successful AUTH, whether the connection was TLS.
func (r *Relay) Logins() []bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bool(nil), r.auths...)
}

// SawCommand reports whether the client sent a command starting with verb.
func (r *Relay) SawCommand(verb string) bool {
	for line := range strings.Lines(r.debug.buf.String()) {
		if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(line)), verb) {
			return true
		}
	}
	return false
}

// Transcript is the protocol exchange so far (tests grep it for secrets).
func (r *Relay) Transcript() string { return r.debug.buf.String() }

// tap records the protocol exchange and finds the client's commands in it:
// go-smtp writes what it reads and what it writes to one debug writer, so
// a line is a command when it starts with a letter (replies start with a
// code) and the relay is not reading a message body.
type tap struct {
	buf       testkit.LogBuffer
	onCommand func(string)

	mu      sync.Mutex
	partial []byte
	inData  bool
	dataCmd bool // DATA was sent; a 354 starts the body
}

func (t *tap) Write(p []byte) (int, error) {
	t.buf.Write(p)
	if t.onCommand == nil {
		return len(p), nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = append(t.partial, p...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := strings.TrimRight(string(t.partial[:i]), "\r")
		t.partial = t.partial[i+1:]
		switch {
		case t.inData:
			t.inData = line != "."
		case strings.HasPrefix(line, "354") && t.dataCmd:
			t.inData, t.dataCmd = true, false
		case line != "" && (line[0] >= 'A' && line[0] <= 'Z' || line[0] >= 'a' && line[0] <= 'z'):
			verb, _, _ := strings.Cut(line, " ")
			verb = strings.ToUpper(verb)
			t.dataCmd = verb == "DATA"
			t.onCommand(verb)
		}
	}
}

// WaitMails waits until at least n messages were accepted and returns them.
func (r *Relay) WaitMails(t testing.TB, n int) []Mail {
	t.Helper()
	testkit.Eventually(t, testkit.Wait, "mail at the relay", func() bool { return len(r.Received()) >= n })
	return r.Received()
}

// WaitMail waits for a message whose decoded content contains s.
func (r *Relay) WaitMail(t testing.TB, s string) Mail {
	t.Helper()
	var found Mail
	testkit.Eventually(t, testkit.Wait, "a mail containing "+s, func() bool {
		for _, m := range r.Received() {
			if strings.Contains(m.All(t), s) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

type session struct {
	r    *Relay
	c    *smtp.Conn
	from string
	to   []string
}

func (s *session) isTLS() bool { _, ok := s.c.TLSConnectionState(); return ok }

func (s *session) AuthMechanisms() []string {
	if s.r.opts.User == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != s.r.opts.User || pass != s.r.opts.Pass {
			return smtp.ErrAuthFailed
		}
		s.r.mu.Lock()
		s.r.auths = append(s.r.auths, s.isTLS())
		s.r.mu.Unlock()
		return nil
	}), nil
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.r.mu.Lock()
	s.r.mails = append(s.r.mails, s.isTLS())
	s.r.mu.Unlock()
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.r.mu.Lock()
	reject := s.r.opts.RejectRcpt != nil && s.r.rejected < s.r.opts.RejectN
	if reject {
		s.r.rejected++
	}
	s.r.mu.Unlock()
	if reject {
		e := *s.r.opts.RejectRcpt
		e.Message = strings.ReplaceAll(e.Message, "{rcpt}", to)
		return &e
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(rd io.Reader) error {
	b, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	m := Mail{TLS: s.isTLS(), From: s.from, To: append([]string(nil), s.to...), Data: b}
	s.r.mu.Lock()
	s.r.datas = append(s.r.datas, m)
	s.r.mu.Unlock()
	if s.r.opts.OnData != nil {
		return s.r.opts.OnData(m)
	}
	return nil
}

// Parts is a parsed message: its headers and its decoded bodies by media
// type (text/plain, text/html).
type Parts struct {
	Header mail.Header
	Bodies map[string]string
	// TopType is the media type of the whole message.
	TopType string
}

// Parse parses the message, decoding quoted-printable and base64 bodies.
func (m Mail) Parse(t testing.TB) Parts {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatalf("mail does not parse: %v\n%s", err, m.Data)
	}
	p := Parts{Header: msg.Header, Bodies: map[string]string{}}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("mail content type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	p.TopType = mt
	collectParts(t, mt, params, msg.Header.Get("Content-Transfer-Encoding"), msg.Body, p.Bodies)
	return p
}

func collectParts(t testing.TB, mt string, params map[string]string, cte string, body io.Reader, out map[string]string) {
	t.Helper()
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			part, err := mr.NextPart() // decodes quoted-printable
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatalf("mail part: %v", err)
			}
			pmt, pparams, err := mime.ParseMediaType(part.Header.Get("Content-Type"))
			if err != nil {
				t.Fatalf("mail part content type: %v", err)
			}
			collectParts(t, pmt, pparams, part.Header.Get("Content-Transfer-Encoding"), part, out)
		}
	}
	b, err := io.ReadAll(decodeCTE(cte, body))
	if err != nil {
		t.Fatalf("mail body: %v", err)
	}
	out[mt] += string(b)
}

// All is the raw message plus every decoded body and header: what a search
// for a string in the mail must look at.
func (m Mail) All(t testing.TB) string {
	t.Helper()
	p := m.Parse(t)
	var b strings.Builder
	b.Write(m.Data)
	for _, v := range p.Bodies {
		b.WriteString("\n")
		b.WriteString(v)
	}
	for k, vs := range p.Header {
		for _, v := range vs {
			dec, err := new(mime.WordDecoder).DecodeHeader(v)
			if err == nil {
				b.WriteString("\n" + k + ": " + dec)
			}
		}
	}
	return b.String()
}

func decodeCTE(cte string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, &lineStripper{r: r})
	}
	return r
}

// lineStripper drops CR and LF (base64 bodies are wrapped).
type lineStripper struct{ r io.Reader }

func (l *lineStripper) Read(p []byte) (int, error) {
	for {
		n, err := l.r.Read(p)
		j := 0
		for _, c := range p[:n] {
			if c != '\r' && c != '\n' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// CheckAlternative fails the test unless m went to exactly one recipient,
// to, as multipart/alternative whose text and HTML bodies both contain every
// one of wants, and whose HTML body is HTML.
func (m Mail) CheckAlternative(t testing.TB, to string, wants ...string) {
	t.Helper()
	if len(m.To) != 1 || m.To[0] != to {
		t.Errorf("mail went to %v, want [%s]", m.To, to)
	}
	p := m.Parse(t)
	if p.TopType != "multipart/alternative" {
		t.Errorf("mail is %s, want multipart/alternative", p.TopType)
	}
	for _, typ := range []string{"text/plain", "text/html"} {
		body := p.Bodies[typ]
		for _, want := range wants {
			if !strings.Contains(body, want) {
				t.Errorf("the %s body lacks %q:\n%s", typ, want, body)
			}
		}
	}
	if html := p.Bodies["text/html"]; !strings.Contains(html, "</") {
		t.Errorf("the HTML part is not HTML:\n%s", html)
	}
}
