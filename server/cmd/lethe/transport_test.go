package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/gen/go/lethe/chat/v1/chatv1connect"
	lethe "github.com/lethehq/lethe/sdk/go"
	"github.com/lethehq/lethe/server/internal/testkit"
)

// serve runs the server the way main does (run: the listener, the
// transport layer, TLS when cfg says so) in this process until the test
// ends, and returns its base URL ("http://127.0.0.1:port") and its log.
func serve(t *testing.T, cfg config) (base string, stderr *testkit.LogBuffer) {
	t.Helper()
	if cfg.addr == "" {
		cfg.addr = "127.0.0.1:0"
	}
	cfg.dataDir, cfg.adminPW, cfg.logLevel, cfg.passwordParams = t.TempDir(), adminPassword, "debug", testkit.CheapPasswords
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &testkit.LogBuffer{}, &testkit.LogBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, stdout, stderr) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	deadline := time.Now().Add(waitTimeout)
	for {
		if m := listening.FindStringSubmatch(stdout.String()); m != nil {
			return strings.Replace(m[1], "localhost", "127.0.0.1", 1), stderr
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("server stopped at start: %v\n%s", err, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start:\n%s", stderr.String())
		}
	}
}

// h1 speaks HTTP/1.1 only; h2c speaks HTTP/2 in clear text only.
func h1Client(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func h2cClient(t *testing.T) *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

const slowBody = 600 // bytes, sent one per 100 ms: a minute, far past any wait of the test

// slowH1 sends a unary call over its own HTTP/1.1 connection with a body
// of slowBody bytes, one byte per 100 ms, and returns how many bytes it got
// out before the server closed the connection. It fails the test if the
// connection is still open after waitTimeout.
func slowH1(t *testing.T, addr string) int {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Error(err)
		return 0
	}
	defer c.Close()
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: lethe\r\nContent-Type: application/json\r\nConnect-Protocol-Version: 1\r\nContent-Length: %d\r\n\r\n",
		chatv1connect.ChatServiceGetWidgetConfigProcedure, slowBody)
	closed := make(chan struct{})
	var answer []byte
	go func() { answer, _ = io.ReadAll(c); close(closed) }()
	deadline := time.After(waitTimeout)
	for sent := 0; sent < slowBody; sent++ {
		select {
		case <-closed:
			// One answer, with the code, then the end of the connection.
			if !bytes.HasPrefix(answer, []byte("HTTP/1.1 504 ")) || !bytes.Contains(answer, []byte(`"code":"deadline_exceeded"`)) ||
				bytes.Count(answer, []byte("HTTP/1.1")) != 1 || bytes.Contains(answer, []byte("127.0.0.1")) {
				t.Errorf("slow HTTP/1.1 body answered with %q, want one DeadlineExceeded without addresses", answer)
			}
			return sent
		case <-deadline:
			t.Errorf("a slow HTTP/1.1 body still open after %v (%d bytes sent)", waitTimeout, sent)
			return sent
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := c.Write([]byte{' '}); err != nil {
			return sent
		}
	}
	t.Error("a slow HTTP/1.1 body was read to its end")
	return slowBody
}

// slowH2 is slowH1 as one stream of an HTTP/2 connection: the stream ends
// (answered with an error) while the connection carries on.
func slowH2(t *testing.T, client *http.Client, base string) (connect.Code, bool) {
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, base+chatv1connect.ChatServiceGetWidgetConfigProcedure, pr)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connect-Protocol-Version", "1")
	type answer struct {
		status int
		body   []byte
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		res, err := client.Do(req)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		answered <- answer{status: res.StatusCode, body: b}
	}()
	defer pw.CloseWithError(errors.New("test over"))
	deadline := time.After(waitTimeout)
	for sent := 0; sent < slowBody; sent++ {
		select {
		case a := <-answered:
			if a.err != nil {
				t.Logf("slow HTTP/2 body: %v", a.err)
				return connect.CodeUnknown, true
			}
			var code connect.Code
			if m := regexp.MustCompile(`"code":"([a-z_]+)"`).FindSubmatch(a.body); m != nil {
				code.UnmarshalText(m[1])
			}
			return code, true
		case <-deadline:
			t.Errorf("a slow HTTP/2 body still open after %v (%d bytes sent)", waitTimeout, sent)
			return 0, false
		case <-time.After(100 * time.Millisecond):
		}
		go pw.Write([]byte{' '}) // returns when the transport takes it, or fails when the stream ends
	}
	t.Error("a slow HTTP/2 body was read to its end")
	return 0, false
}

// watch opens a visitor's chat and its WatchChat stream over client.
func watch(t *testing.T, client *http.Client, base string) (*lethe.Visitor, *testkit.Stream[*chatv1.WatchChatResponse]) {
	t.Helper()
	v := lethe.NewVisitor(client, base)
	if err := v.Start(context.Background(), lethe.StartChat{AccountID: demoAccount, Name: "Slow", FirstMessage: "hello"}); err != nil {
		t.Fatalf("StartChat: %v", err)
	}
	s := testkit.FollowServer(t, func(ctx context.Context) (*connect.ServerStreamForClient[chatv1.WatchChatResponse], error) {
		return v.Chat.WatchChat(ctx, connect.NewRequest(&chatv1.WatchChatRequest{ChatId: v.ChatID}))
	})
	s.Next("the first message", func(r *chatv1.WatchChatResponse) bool { return r.GetEvent().GetMessage().GetText() == "hello" })
	return v, s
}

// Slow request bodies (1 byte per 100 ms here, 1 per 5 s in the wild) are
// cut after --read-timeout over HTTP/1.1 and HTTP/2, while WatchChat
// streams over both stay open well past it.
func TestReadTimeout_SlowBodiesAreCutStreamsStayOpen(t *testing.T) {
	t.Parallel()
	const timeout = time.Second
	base, _ := serve(t, config{readTimeout: timeout})
	h1, h2c := h1Client(t), h2cClient(t)
	opened := time.Now()
	v1, s1 := watch(t, h1, base)
	v2, s2 := watch(t, h2c, base)

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if sent := slowH1(t, strings.TrimPrefix(base, "http://")); sent >= slowBody {
				t.Errorf("HTTP/1.1: the whole slow body was sent")
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			if code, ended := slowH2(t, h2c, base); ended && code == 0 {
				t.Error("HTTP/2: a slow body was answered without an error")
			} else if ended {
				t.Logf("HTTP/2 slow body answered with %v", code)
			}
		})
	}
	wg.Wait()

	// The streams have been open for more than twice the read timeout.
	time.Sleep(time.Until(opened.Add(5 * timeout / 2)))
	for _, c := range []struct {
		name string
		v    *lethe.Visitor
		s    *testkit.Stream[*chatv1.WatchChatResponse]
	}{{"HTTP/1.1", v1, s1}, {"HTTP/2", v2, s2}} {
		if _, err := c.v.Send(context.Background(), "still here"); err != nil {
			t.Fatalf("%s: Send after the slow bodies: %v", c.name, err)
		}
		c.s.Next(c.name+": the message sent after the read timeout", func(r *chatv1.WatchChatResponse) bool {
			return r.GetEvent().GetMessage().GetText() == "still here"
		})
	}
}

// A unary handler still working after the read timeout, its body read,
// is not cut: over HTTP/1.1 the deadline is the connection's, and would
// cancel the request if it fired on the server's background read (net/http
// clears it when that read starts; this test keeps it so).
func TestReadTimeout_LiftedOnceTheBodyIsRead(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	srv := httptest.NewServer(transportHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		select {
		case <-r.Context().Done():
			http.Error(w, "cancelled", http.StatusServiceUnavailable)
		case <-time.After(4 * timeout):
			io.WriteString(w, "done")
		}
	}), timeout, nil))
	defer srv.Close()
	res, err := srv.Client().Post(srv.URL+"/x", "text/plain", strings.NewReader("body"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d %s, want 200: the request was cancelled after its body was read", res.StatusCode, b)
	}
}

// Every streaming procedure is known, and only those.
func TestStreamingProcedures_FromTheDescriptors(t *testing.T) {
	t.Parallel()
	s := streamingProcedures()
	for _, p := range []string{chatv1connect.ChatServiceWatchChatProcedure, chatv1connect.ChatServiceWatchInboxProcedure,
		"/grpc.health.v1.Health/Watch", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"} {
		if !s[p] {
			t.Errorf("%s is not listed as streaming", p)
		}
	}
	for _, p := range []string{chatv1connect.ChatServiceSendMessageProcedure, chatv1connect.ChatServiceGetWidgetConfigProcedure} {
		if s[p] {
			t.Errorf("unary %s listed as streaming", p)
		}
	}
}

// A gRPC or gRPC-Web body that ends inside a frame is the client's error
// (InvalidArgument), not the server's (Internal).
func TestFrames_TruncatedIsInvalidArgument(t *testing.T) {
	t.Parallel()
	base, _ := serve(t, config{})
	for _, c := range []struct {
		name   string
		client *http.Client
		ctype  string
		body   []byte
	}{
		{"gRPC, short message", h2cClient(t), "application/grpc", append([]byte{0, 0, 0, 0, 100}, "short"...)},
		{"gRPC, short header", h2cClient(t), "application/grpc", []byte{0, 0, 0}},
		{"gRPC-Web, short message", h1Client(t), "application/grpc-web+proto", append([]byte{0, 0, 0, 0, 100}, "short"...)},
	} {
		req, _ := http.NewRequest(http.MethodPost, base+chatv1connect.ChatServiceGetWidgetConfigProcedure, bytes.NewReader(c.body))
		req.Header.Set("Content-Type", c.ctype)
		req.Header.Set("Te", "trailers")
		res, err := c.client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		status := res.Trailer.Get("Grpc-Status")
		if status == "" {
			status = res.Header.Get("Grpc-Status") // trailers-only answer
		}
		if m := regexp.MustCompile(`grpc-status:\s*(\d+)`).FindSubmatch(body); m != nil {
			status = string(m[1]) // gRPC-Web carries its trailers in the body
		}
		if want := fmt.Sprint(int(connect.CodeInvalidArgument)); status != want {
			t.Errorf("%s: grpc-status %q, want %s (InvalidArgument)", c.name, status, want)
		}
	}
}

// Plain HTTP carries no HSTS header: it would be ignored, and a browser
// must not learn it from a connection an attacker could have forged.
func TestHSTS_NotOnPlainHTTP(t *testing.T) {
	t.Parallel()
	base, _ := serve(t, config{})
	res, err := h1Client(t).Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := res.Header.Get("Strict-Transport-Security"); got != "" {
		t.Fatalf("plain HTTP sends Strict-Transport-Security %q", got)
	}
}

// --max-conns-per-address: connections over the ceiling are closed at once;
// other addresses are not affected; a closed connection gives its place back.
func TestConnsPerAddress_ExcessClosed(t *testing.T) {
	t.Parallel()
	base, _ := serve(t, config{maxConnsPerAddress: 3})
	addr := strings.TrimPrefix(base, "http://")
	// healthz makes one keep-alive request over a new connection from src
	// and returns the connection when it was answered.
	healthz := func(src string) (net.Conn, bool) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: lethe\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return c, false
		}
		res.Body.Close()
		return c, res.StatusCode == http.StatusOK
	}
	var held []net.Conn
	for i := range 3 {
		c, ok := healthz("127.0.0.1")
		if !ok {
			t.Fatalf("connection %d under the ceiling refused", i+1)
		}
		held = append(held, c)
	}
	if _, ok := healthz("127.0.0.1"); ok {
		t.Fatal("a 4th connection from one address was served with a ceiling of 3")
	}
	if _, ok := healthz("127.0.0.2"); !ok {
		t.Fatal("another address was refused")
	}
	held[0].Close()
	testkit.Eventually(t, waitTimeout, "a place given back after a close", func() bool {
		_, ok := healthz("127.0.0.1")
		return ok
	})
}

func TestScrubAddrs_RemovesEveryAddress(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"http: TLS handshake error from 127.0.0.1:54321: EOF", "http: TLS handshake error from [address]: EOF"},
		{"http: TLS handshake error from [::1]:54321: remote error: tls: bad certificate",
			"http: TLS handshake error from [address]: remote error: tls: bad certificate"},
		{"http2: server: error reading preface from client 203.0.113.9:1: bogus greeting \"GET / HTTP/1.1\"",
			"http2: server: error reading preface from client [address]: bogus greeting \"GET / HTTP/1.1\""},
		{"read tcp 10.0.0.1:8080->192.0.2.77:60000: i/o timeout", "read tcp [address]->[address]: i/o timeout"},
		{"from 2001:db8::7 and ::ffff:198.51.100.4, fe80::1%eth0", "from [address] and [address], [address]%eth0"},
		{"[2001:db8::1] and 999.1.2.3", "[address] and [address]"},
		{"http: panic serving 127.0.0.1:1: runtime error", "http: panic serving [address]: runtime error"},
		{"tls: first record does not look like a TLS handshake", "tls: first record does not look like a TLS handshake"},
		{"http: superfluous response.WriteHeader call from main.go:123", "http: superfluous response.WriteHeader call from main.go:123"},
	} {
		if got := scrubAddrs(c.in); got != c.want {
			t.Errorf("scrubAddrs(%q)\n = %q\nwant %q", c.in, got, c.want)
		}
	}
}

// The server's error log lands in slog without addresses, at debug level
// for one client's failed connection, warn otherwise.
func TestServerErrorLog_ThroughSlogWithoutAddresses(t *testing.T) {
	t.Parallel()
	log, logs := testkit.Logger(t)
	l := serverErrorLog(log)
	l.Printf("http: TLS handshake error from %s: %v", "192.0.2.1:4444", io.EOF)
	l.Printf("http: Accept error: %v; retrying in 5ms", errors.New("too many open files"))
	out := logs.String()
	if strings.Contains(out, "192.0.2.1") {
		t.Fatalf("the log carries the client's address:\n%s", out)
	}
	for _, want := range []string{`level=DEBUG msg="http: TLS handshake error from [address]: EOF"`, `level=WARN msg="http: Accept error`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}

// tlsHandshake dials base's host from src with c and closes the
// connection; it returns the handshake's result.
func tlsHandshake(host string, c *tls.Config) (tls.ConnectionState, error) {
	conn, err := tls.Dial("tcp", host, c)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	return conn.ConnectionState(), nil
}

// The transport flags: their defaults, their variables, and what they refuse.
func TestFlags_Transport(t *testing.T) {
	for _, k := range []string{"LETHE_READ_TIMEOUT", "LETHE_IDLE_TIMEOUT", "LETHE_MAX_HEADER_BYTES", "LETHE_MAX_CONNS_PER_ADDRESS",
		"LETHE_METRICS_ADDR", "LETHE_TLS_AES256_ONLY", "LETHE_TLS_CERT", "LETHE_TLS_KEY"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	c, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.readTimeout != 30*time.Second || c.idleTimeout != 120*time.Second || c.maxHeaderBytes != 64<<10 ||
		c.maxConnsPerAddress != 256 || c.metricsAddr != "127.0.0.1:9464" || c.tlsAES256Only {
		t.Fatalf("defaults: %+v", c)
	}
	t.Setenv("LETHE_METRICS_ADDR", "")
	t.Setenv("LETHE_MAX_CONNS_PER_ADDRESS", "0")
	t.Setenv("LETHE_TLS_AES256_ONLY", "true")
	t.Setenv("LETHE_TLS_CERT", "c.pem")
	t.Setenv("LETHE_TLS_KEY", "k.pem")
	if c, err = parseFlags([]string{"--read-timeout", "5s"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if c.metricsAddr != "" || c.maxConnsPerAddress != 0 || !c.tlsAES256Only || c.readTimeout != 5*time.Second {
		t.Fatalf("from the environment: %+v", c)
	}
	for _, args := range [][]string{{"--read-timeout", "-1s"}, {"--max-conns-per-address", "-1"}, {"--tls-cert=", "--tls-key="}} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
