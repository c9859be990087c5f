package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// What the HTTP layer adds in front of the application's handler: a
// deadline on reading request bodies (streams excepted), HSTS under TLS, a
// client-side code for truncated frames; and http.Server's own error log
// without client addresses.

// hsts asks browsers to use HTTPS only, for two years, subdomains included.
const hsts = "max-age=63072000; includeSubDomains"

// transportHandler wraps next. readTimeout (0: none) bounds how long a
// request may take to send its body, not how long its handler works;
// procedures in streaming are exempt (a client stream's body stays open as
// long as the stream does).
func transportHandler(next http.Handler, readTimeout time.Duration, streaming map[string]bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			w.Header().Set("Strict-Transport-Security", hsts)
		}
		if readTimeout > 0 && !streaming[r.URL.Path] && r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			// Both HTTP/1.1 (the connection) and HTTP/2 (the stream) support
			// it; should a wrapped writer not, the request goes on unbounded.
			if rc.SetReadDeadline(time.Now().Add(readTimeout)) == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, header: w.Header(), http1: r.ProtoMajor == 1, timeout: readTimeout}
			}
		}
		if framed(r.Header.Get("Content-Type")) && r.Body != nil && r.Body != http.NoBody {
			r.Body = &frameCheck{ReadCloser: r.Body}
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody is a request body read under a deadline. Once it is read to
// its end the deadline no longer matters: over HTTP/1.1 the server clears
// the connection's deadline when it starts its background read at the
// body's end, and over HTTP/2 the deadline only ever cuts the body. Cut by
// the deadline, it answers with a code and a message of its own (connect's
// would quote the connection's addresses) and, over HTTP/1.1, closes the
// connection, which would otherwise read the rest of the slow body as the
// next request.
type deadlineBody struct {
	io.ReadCloser
	header  http.Header
	http1   bool
	timeout time.Duration
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if b.http1 {
			b.header.Set("Connection", "close")
		}
		err = connect.NewError(connect.CodeDeadlineExceeded, fmt.Errorf("the request body took longer than %s to arrive", b.timeout))
	}
	return n, err
}

// streamingProcedures lists the paths ("/pkg.Service/Method") of every
// client- or server-streaming method of the services linked into the
// binary, and of gRPC health and reflection (whose connect packages
// register their descriptors under other names). The content type cannot
// tell: gRPC uses application/grpc for unary calls too.
func streamingProcedures() map[string]bool {
	out := map[string]bool{
		"/grpc.health.v1.Health/Watch":                                   true,
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      true,
		"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": true,
	}
	protoregistry.GlobalFiles.RangeFiles(func(f protoreflect.FileDescriptor) bool {
		for i := range f.Services().Len() {
			s := f.Services().Get(i)
			for j := range s.Methods().Len() {
				m := s.Methods().Get(j)
				if m.IsStreamingClient() || m.IsStreamingServer() {
					out["/"+string(s.FullName())+"/"+string(m.Name())] = true
				}
			}
		}
		return true
	})
	return out
}

// framed reports whether a content type carries length-prefixed frames
// (gRPC, gRPC-Web, Connect streaming).
func framed(contentType string) bool {
	return strings.HasPrefix(contentType, "application/grpc") || strings.HasPrefix(contentType, "application/connect+")
}

// frameCheck follows the 5-byte frame headers of a framed request body so
// that a body ending inside a frame is the client's error. connect-go reads
// such a body as an internal error, before any interceptor sees the call;
// it passes a *connect.Error from the body on as it is.
type frameCheck struct {
	io.ReadCloser
	header [5]byte
	inHead int    // bytes of the current frame header read
	left   uint32 // bytes of the current frame's message still to come
}

func (b *frameCheck) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	for q := p[:n]; len(q) > 0; {
		if b.left > 0 {
			k := min(uint32(len(q)), b.left)
			b.left -= k
			q = q[k:]
			continue
		}
		k := copy(b.header[b.inHead:], q)
		b.inHead += k
		q = q[k:]
		if b.inHead == len(b.header) {
			b.inHead, b.left = 0, binary.BigEndian.Uint32(b.header[1:])
		}
	}
	if err == io.EOF && (b.inHead > 0 || b.left > 0) {
		return n, connect.NewError(connect.CodeInvalidArgument, errors.New("truncated request: the body ended inside a message frame"))
	}
	return n, err
}

// serverErrorLog is the error log of an http.Server: its lines go to log
// with every client address replaced by "[address]" (P5/P9: "http: TLS
// handshake error from 203.0.113.9:51234: EOF" is a visitor's IP).
// Failures of one client's connection are debug noise on the internet;
// anything else, a warning; panics, errors.
func serverErrorLog(log *slog.Logger) *stdlog.Logger {
	return stdlog.New(errorLogWriter{log}, "", 0)
}

type errorLogWriter struct{ log *slog.Logger }

func (w errorLogWriter) Write(p []byte) (int, error) {
	msg := scrubAddrs(strings.TrimSpace(string(p)))
	level := slog.LevelWarn
	switch {
	case strings.Contains(msg, "panic"):
		level = slog.LevelError
	case strings.Contains(msg, "[address]"):
		level = slog.LevelDebug
	}
	w.log.Log(context.Background(), level, msg, slog.String("from", "http.Server"))
	return len(p), nil
}

// addrLike matches what could be an IP address, with or without a port:
// "[v6]:port", or a run of hex digits, dots and colons containing a dot or
// a colon.
var addrLike = regexp.MustCompile(`\[[0-9A-Za-z:.%_-]+\](?::\d+)?|[0-9A-Fa-f]*[.:][0-9A-Fa-f.:]*`)

// dottedQuad catches what is left of an IPv4 address that did not parse
// (an out-of-range part), to be safe rather than exact.
var dottedQuad = regexp.MustCompile(`^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}`)

// scrubAddrs replaces every IPv4 and IPv6 address in s, with its port if
// it has one, by "[address]".
func scrubAddrs(s string) string {
	return addrLike.ReplaceAllStringFunc(s, func(m string) string {
		core := strings.TrimRight(m, ".:")
		if isAddr(core) || dottedQuad.MatchString(core) {
			return "[address]" + m[len(core):]
		}
		return m
	})
}

func isAddr(s string) bool {
	if _, err := netip.ParseAddrPort(s); err == nil {
		return true
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	_, err := netip.ParseAddr(s)
	return err == nil
}
