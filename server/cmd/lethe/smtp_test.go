package main

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
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// A real SMTP server (github.com/emersion/go-smtp) in the test process,
// optionally offering STARTTLS with a self-signed certificate whose PEM the
// server under test trusts through --smtp-ca (the same approach as
// server/mail's own tests).

const (
	// mailFrom is the server's From address in these tests (not the default
	// lethe@localhost, so that "localhost" in a mail means the visitor's host).
	mailFrom = "Lethe <lethe@example.test>"
	// recipient receives transcripts and offline messages.
	recipient = "inbox@example.org"
)

// mailCA is a self-signed certificate for 127.0.0.1 and localhost, and the
// path of its PEM (for --smtp-ca).
type mailCA struct {
	cert tls.Certificate
	file string
}

func newMailCA(t *testing.T) *mailCA {
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
	file := filepath.Join(t.TempDir(), "smtp-ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &mailCA{cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, file: file}
}

// smtpMail is one message the server accepted after DATA.
type smtpMail struct {
	tls  bool
	from string
	to   []string
	data []byte
}

type smtpServer struct {
	t    *testing.T
	srv  *smtp.Server
	port int

	mu        sync.Mutex
	mailFroms int // MAIL FROM commands seen
	mails     []smtpMail
}

// freePort returns a local port nobody listens on (yet): a relay that is
// down until startSMTP is called with it.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

type nopSMTPLog struct{}

func (nopSMTPLog) Printf(string, ...any) {}
func (nopSMTPLog) Println(...any)        {}

// startSMTP starts a relay on port (0: any free port), offering STARTTLS
// with ca's certificate when starttls is set. It stops at the end of the
// test.
func startSMTP(t *testing.T, ca *mailCA, starttls bool, port int) *smtpServer {
	t.Helper()
	ss := &smtpServer{t: t}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{ss: ss, c: c}, nil
	}))
	s.Domain = "relay.example.test"
	if starttls {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{ca.cert}, MinVersion: tls.VersionTLS12}
	}
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	s.MaxMessageBytes = 4 << 20
	s.ErrorLog = nopSMTPLog{}
	addr := net.JoinHostPort("127.0.0.1", "0")
	if port != 0 {
		addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	var ln net.Listener
	var err error
	// A port handed out by freePort may linger for a moment.
	for i := 0; ; i++ {
		ln, err = net.Listen("tcp", addr)
		if err == nil || i == 100 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("smtp listen: %v", err)
	}
	ss.srv = s
	ss.port = ln.Addr().(*net.TCPAddr).Port
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return ss
}

type smtpSession struct {
	ss   *smtpServer
	c    *smtp.Conn
	from string
	to   []string
}

func (s *smtpSession) isTLS() bool { _, ok := s.c.TLSConnectionState(); return ok }

func (s *smtpSession) Reset()        { s.from, s.to = "", nil }
func (s *smtpSession) Logout() error { return nil }

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	s.ss.mu.Lock()
	s.ss.mailFroms++
	s.ss.mu.Unlock()
	s.from = from
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.ss.mu.Lock()
	s.ss.mails = append(s.ss.mails, smtpMail{tls: s.isTLS(), from: s.from, to: append([]string(nil), s.to...), data: b})
	s.ss.mu.Unlock()
	return nil
}

// received returns the messages accepted so far.
func (ss *smtpServer) received() []smtpMail {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return append([]smtpMail(nil), ss.mails...)
}

func (ss *smtpServer) mailFromCount() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.mailFroms
}

// waitMails waits until at least n messages were accepted and returns them.
func (ss *smtpServer) waitMails(n int, timeout time.Duration) []smtpMail {
	ss.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := ss.received()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			ss.t.Fatalf("the relay received %d messages, want %d", len(got), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitMail waits for a message whose decoded content contains s.
func (ss *smtpServer) waitMail(s string, timeout time.Duration) smtpMail {
	ss.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, m := range ss.received() {
			if strings.Contains(m.all(ss.t), s) {
				return m
			}
		}
		if time.Now().After(deadline) {
			ss.t.Fatalf("the relay never received a message containing %q (got %d messages)", s, len(ss.received()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mailParts is a parsed message: its headers and its decoded bodies by media
// type (text/plain, text/html).
type mailParts struct {
	header mail.Header
	bodies map[string]string
	// topType is the media type of the whole message.
	topType string
}

func (m smtpMail) parse(t *testing.T) mailParts {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(m.data))
	if err != nil {
		t.Fatalf("mail does not parse: %v\n%s", err, m.data)
	}
	p := mailParts{header: msg.Header, bodies: map[string]string{}}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("mail content type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	p.topType = mt
	collectParts(t, mt, params, msg.Header.Get("Content-Transfer-Encoding"), msg.Body, p.bodies)
	return p
}

func collectParts(t *testing.T, mt string, params map[string]string, cte string, body io.Reader, out map[string]string) {
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

// all is the raw message plus every decoded body: what a search for a
// string in the mail must look at.
func (m smtpMail) all(t *testing.T) string {
	p := m.parse(t)
	var b strings.Builder
	b.Write(m.data)
	for _, v := range p.bodies {
		b.WriteString("\n")
		b.WriteString(v)
	}
	for k, vs := range p.header {
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
