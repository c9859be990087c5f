package mail

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// A real SMTP server (github.com/emersion/go-smtp) in the test process that
// records what it was told.

// lockedBuffer is a bytes.Buffer safe for concurrent writers (server
// connections, slog handlers) and a reading test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type received struct {
	tls  bool
	from string
	to   []string
	data []byte
}

type serverOpts struct {
	// tls, when set, makes the server advertise STARTTLS with this config.
	tls *tls.Config
	// addr to listen on (default a free port on 127.0.0.1).
	addr string
	// rejectRcpt, when set, is returned for the first rejectN RCPT commands.
	rejectRcpt *smtp.SMTPError
	rejectN    int
	// user and pass, when set, make the server offer AUTH PLAIN.
	user, pass string
}

type testSMTP struct {
	opts serverOpts
	srv  *smtp.Server
	addr string
	port int

	// debug is the whole protocol exchange, both directions, every
	// connection (after STARTTLS: the decrypted commands).
	debug lockedBuffer

	mu       sync.Mutex
	sessions int        // EHLO/HELO greetings
	mails    []bool     // per MAIL FROM: was the connection TLS
	datas    []received // per accepted DATA
	auths    []bool     // per successful AUTH: was the connection TLS
	rejected int
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}

func startSMTP(t *testing.T, o serverOpts) *testSMTP {
	t.Helper()
	if o.addr == "" {
		o.addr = "127.0.0.1:0"
	}
	ts := &testSMTP{opts: o}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		ts.mu.Lock()
		ts.sessions++
		ts.mu.Unlock()
		return &session{ts: ts, c: c}, nil
	}))
	s.Domain = "localhost"
	s.TLSConfig = o.tls
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	s.AllowInsecureAuth = true
	s.ErrorLog = nopLogger{}
	s.Debug = &ts.debug
	var ln net.Listener
	var err error
	// The address may have just been released by reservePort.
	for i := 0; ; i++ {
		ln, err = net.Listen("tcp", o.addr)
		if err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ts.srv = s
	ts.addr = ln.Addr().String()
	ts.port = ln.Addr().(*net.TCPAddr).Port
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return ts
}

// reservePort returns a local address nobody listens on (yet).
func reservePort(t *testing.T) (string, int) {
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

func (ts *testSMTP) received() []received {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]received(nil), ts.datas...)
}

func (ts *testSMTP) mailFroms() []bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]bool(nil), ts.mails...)
}

func (ts *testSMTP) greetings() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.sessions
}

// commands returns the client's commands seen on the wire, upper-cased verbs.
func (ts *testSMTP) sawCommand(verb string) bool {
	for line := range strings.Lines(ts.debug.String()) {
		if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(line)), verb) {
			return true
		}
	}
	return false
}

type session struct {
	ts   *testSMTP
	c    *smtp.Conn
	from string
	to   []string
}

func (s *session) isTLS() bool { _, ok := s.c.TLSConnectionState(); return ok }

func (s *session) AuthMechanisms() []string {
	if s.ts.opts.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != s.ts.opts.user || pass != s.ts.opts.pass {
			return smtp.ErrAuthFailed
		}
		s.ts.mu.Lock()
		s.ts.auths = append(s.ts.auths, s.isTLS())
		s.ts.mu.Unlock()
		return nil
	}), nil
}

func (ts *testSMTP) logins() []bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]bool(nil), ts.auths...)
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.ts.mu.Lock()
	s.ts.mails = append(s.ts.mails, s.isTLS())
	s.ts.mu.Unlock()
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.ts.mu.Lock()
	reject := s.ts.opts.rejectRcpt != nil && s.ts.rejected < s.ts.opts.rejectN
	if reject {
		s.ts.rejected++
	}
	s.ts.mu.Unlock()
	if reject {
		e := *s.ts.opts.rejectRcpt
		e.Message = strings.ReplaceAll(e.Message, "{rcpt}", to)
		return &e
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.ts.mu.Lock()
	s.ts.datas = append(s.ts.datas, received{tls: s.isTLS(), from: s.from, to: s.to, data: b})
	s.ts.mu.Unlock()
	return nil
}

// testCert is a self-signed certificate for 127.0.0.1 and localhost, and a
// pool trusting it.
type testCert struct {
	cert tls.Certificate
	pool *x509.CertPool
}

func newTestCert(t *testing.T) testCert {
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
		NotAfter:              time.Now().Add(time.Hour),
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
	return testCert{cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool: pool}
}

func (c testCert) serverTLS() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{c.cert}, MinVersion: tls.VersionTLS12}
}
