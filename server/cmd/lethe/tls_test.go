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

// writeCert writes a self-signed ECDSA certificate for 127.0.0.1.
func writeCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lethe test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
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
