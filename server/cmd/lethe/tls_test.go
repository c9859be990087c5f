package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lethehq/lethe/server/internal/testkit"

	"connectrpc.com/connect"
	"github.com/alexedwards/argon2id"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	"github.com/lethehq/lethe/gen/go/lethe/account/v1/accountv1connect"
)

// writeCert writes a self-signed ECDSA certificate for 127.0.0.1 and
// 127.0.0.3 (a listener apart from the clients' addresses).
func writeCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lethe test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("127.0.0.3")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// With --tls-cert/--tls-key the server speaks TLS 1.2+ with AEAD cipher
// suites only, negotiates HTTP/2, sends HSTS, marks the session cookie
// Secure, and shuts down cleanly when its context ends.
func TestTLS_AEADOnlyHTTP2SecureCookieGracefulShutdown(t *testing.T) {
	t.Parallel()
	certFile, keyFile, pool := writeCert(t)
	cfg := config{addr: "127.0.0.1:0", dataDir: t.TempDir(), tlsCert: certFile, tlsKey: keyFile, logLevel: "info",
		adminPW: adminPassword, passwordParams: &argon2id.Params{Memory: 1024, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &testkit.LogBuffer{}, &testkit.LogBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, stdout, stderr) }()
	var base string
	deadline := time.Now().Add(30 * time.Second)
	for base == "" {
		if m := regexp.MustCompile(`listening on (https://\S+)`).FindStringSubmatch(stdout.String()); m != nil {
			base = strings.Replace(m[1], "localhost", "127.0.0.1", 1)
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	host := strings.TrimPrefix(base, "https://")

	handshake := func(c *tls.Config) error {
		c.RootCAs = pool
		conn, err := tls.Dial("tcp", host, c)
		if err == nil {
			conn.Close()
		}
		return err
	}
	if err := handshake(&tls.Config{MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10}); err == nil {
		t.Error("TLS 1.1 was accepted")
	}
	if err := handshake(&tls.Config{MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}}); err == nil {
		t.Error("a CBC cipher suite was accepted")
	}
	if err := handshake(&tls.Config{MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}}); err != nil {
		t.Errorf("TLS 1.2 with AES-256-GCM refused: %v", err)
	}

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	res, err := client.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.ProtoMajor != 2 {
		t.Errorf("protocol %s, want HTTP/2", res.Proto)
	}
	if got := res.Header.Get("Strict-Transport-Security"); got != "max-age=63072000; includeSubDomains" {
		t.Errorf("Strict-Transport-Security %q, want two years with subdomains", got)
	}

	var setCookie string
	acc := accountv1connect.NewAccountServiceClient(client, base)
	login, err := acc.Login(ctx, connect.NewRequest(&accountv1.LoginRequest{Email: adminEmail, Password: adminPassword}))
	if err != nil {
		t.Fatal(err)
	}
	setCookie = login.Header().Get("Set-Cookie")
	for _, want := range []string{"Secure", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(setCookie, want) {
			t.Errorf("session cookie %q lacks %s", setCookie, want)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("server did not shut down")
	}
	if !strings.Contains(stderr.String(), "shutting down") {
		t.Error("no shutdown logged")
	}
}

// --tls-aes256-only: AES-256-GCM or nothing. Go cannot restrict TLS 1.3
// suites, so TLS 1.3 is refused too; without the flag, TLS 1.3 is what a
// modern client gets.
func TestTLS_AES256OnlyRefusesEveryOtherSuite(t *testing.T) {
	t.Parallel()
	certFile, keyFile, pool := writeCert(t)
	strict, _ := serve(t, config{tlsCert: certFile, tlsKey: keyFile, tlsAES256Only: true})
	normal, _ := serve(t, config{tlsCert: certFile, tlsKey: keyFile})
	strictHost, normalHost := strings.TrimPrefix(strict, "https://"), strings.TrimPrefix(normal, "https://")

	for _, c := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"TLS 1.2 AES-128-GCM", &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}}},
		{"TLS 1.2 ChaCha20", &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}}},
		{"TLS 1.3 (AES-128-GCM among its suites)", &tls.Config{MinVersion: tls.VersionTLS13}},
	} {
		c.cfg.RootCAs = pool
		if _, err := tlsHandshake(strictHost, c.cfg); err == nil {
			t.Errorf("%s accepted with --tls-aes256-only", c.name)
		}
		if _, err := tlsHandshake(normalHost, c.cfg); err != nil {
			t.Errorf("%s refused without --tls-aes256-only: %v", c.name, err)
		}
	}
	st, err := tlsHandshake(strictHost, &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatalf("a default client refused with --tls-aes256-only: %v", err)
	}
	if st.Version != tls.VersionTLS12 || st.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 {
		t.Errorf("--tls-aes256-only negotiated %s %s, want TLS 1.2 ECDHE-ECDSA-AES256-GCM-SHA384",
			tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
	}
	// HTTP/2 works over it (AES-256-GCM is not on HTTP/2's blocklist).
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	res, err := client.Get(strict + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.ProtoMajor != 2 {
		t.Errorf("--tls-aes256-only: protocol %s, want HTTP/2", res.Proto)
	}
	if st, err := tlsHandshake(normalHost, &tls.Config{RootCAs: pool}); err != nil || st.Version != tls.VersionTLS13 {
		t.Errorf("without the flag a default client got %s (%v), want TLS 1.3", tls.VersionName(st.Version), err)
	}
}

// P5/P9 at the transport: http.Server's own error log names every client
// whose TLS handshake fails. Bad handshakes of every kind from two loopback
// addresses, HTTP/2 verbose logging on, then no client address anywhere in
// what the binary printed (the only address left is its own listener's).
func TestForensic_TLSHandshakeErrorsLogNoClientAddress(t *testing.T) {
	t.Parallel()
	certFile, keyFile, pool := writeCert(t)
	p := startBinary(t, binOpts{dataDir: t.TempDir(), roots: pool,
		args: []string{"--addr", "127.0.0.3:0", "--tls-cert", certFile, "--tls-key", keyFile},
		env:  []string{"GODEBUG=http2debug=1"}})
	host := strings.TrimPrefix(p.URL, "https://")
	from := func(src string) *net.Dialer {
		return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: waitTimeout}
	}
	// raw sends b on a new connection from src and reads until the server
	// closes it.
	raw := func(src string, b []byte) {
		c, err := from(src).Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if b == nil {
			return // hangs up at once
		}
		c.Write(b)
		c.SetReadDeadline(time.Now().Add(waitTimeout))
		io.Copy(io.Discard, c)
	}
	for _, src := range []string{"127.0.0.1", "127.0.0.2"} {
		raw(src, []byte("GET / HTTP/1.1\r\nHost: lethe\r\n\r\n"))         // plain text on the TLS port
		raw(src, []byte("\x16\x03\x01\x00\x10not a client hello"))        // a TLS record of garbage
		raw(src, []byte("\x00\x01\x02\x03 garbage \xff\xfe\xfd\r\n\r\n")) // no TLS at all
		raw(src, nil)                                                     // connects and hangs up
		for _, cfg := range []*tls.Config{
			{ServerName: "127.0.0.1"}, // does not trust the certificate: aborts with an alert
			{RootCAs: pool, MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10},                             // too old
			{RootCAs: pool, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA}}, // no common suite
		} {
			if c, err := tls.DialWithDialer(from(src), "tcp", host, cfg); err == nil {
				c.Close()
				t.Fatalf("a bad handshake succeeded: %+v", cfg)
			}
		}
		// And a good HTTP/2 request, so that the HTTP/2 server logs too.
		tr := &http.Transport{DialContext: from(src).DialContext, TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
		res, err := (&http.Client{Transport: tr}).Get(p.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		tr.CloseIdleConnections()
		if res.ProtoMajor != 2 {
			t.Fatalf("protocol %s, want HTTP/2", res.Proto)
		}
	}
	// Two addresses × (plain text, garbage record, no TLS, hang-up,
	// distrust, too old, no common suite) handshake errors are logged,
	// without the address.
	p.waitLog("http: TLS handshake error from [address]", 14)

	out := strings.ReplaceAll(p.output(), host, "[the server]")
	for _, leak := range []string{"127.0.0.1", "127.0.0.2", "127.0.0."} {
		if i := strings.Index(out, leak); i >= 0 {
			t.Fatalf("the output names a client address (%s): …%s…", leak, out[max(0, i-200):min(len(out), i+100)])
		}
	}
}
