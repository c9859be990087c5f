// Package testkit holds the test helpers every package of the server
// shares, once: a log buffer the logger and the test can share, polling
// until a condition holds, the forensic scan of a data directory, Connect
// code checks, and cheap password hashing. It is imported by tests only.
package testkit

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/alexedwards/argon2id"

	"github.com/lethehq/lethe/server/errs"
)

// Wait bounds every wait for something to happen, so that a broken feature
// fails a test instead of hanging the suite.
const Wait = 15 * time.Second

// LogBuffer is a bytes.Buffer safe for a logger (or a server's connections)
// and a reading test to share.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Count is the number of times s occurs in the buffer.
func (l *LogBuffer) Count(s string) int { return strings.Count(l.String(), s) }

// Logger returns a debug-level text logger writing into a new LogBuffer,
// and the buffer. When the test fails the buffer is printed with it.
func Logger(t testing.TB) (*slog.Logger, *LogBuffer) {
	t.Helper()
	buf := &LogBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// Eventually polls cond every 10 ms until it holds, and fails the test if it
// does not within d.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitLog waits until the log holds s at least n times.
func WaitLog(t testing.TB, logs *LogBuffer, s string, n int) {
	t.Helper()
	Eventually(t, Wait, "log line "+s, func() bool { return logs.Count(s) >= n })
}

// FilesContaining lists the files under dir (every file, whatever its name:
// databases, -wal, -shm, -journal, temp files) whose bytes contain any of
// the needles, as "relative/path: needle".
func FilesContaining(t testing.TB, dir string, needles ...string) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) { // a -journal or temp file that just went away
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, n := range needles {
			if bytes.Contains(b, []byte(n)) {
				rel, _ := filepath.Rel(dir, path)
				hits = append(hits, rel+": "+n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

// CodeOf is the Connect code of err, whether it crossed the wire (a
// *connect.Error) or came straight from a handler (an errs.Error).
func CodeOf(err error) connect.Code {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Code()
	}
	return errs.CodeOf(err)
}

// WantCode fails the test unless err carries code.
func WantCode(t testing.TB, what string, err error, code connect.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: got no error, want %v", what, code)
	}
	if got := CodeOf(err); got != code {
		t.Fatalf("%s: got %v (%v), want %v", what, got, err, code)
	}
}

// CheapPasswords are argon2id parameters for tests: production hashing
// (64 MiB) would be half the suite's CPU under -race. The binary tests use
// the real parameters.
var CheapPasswords = &argon2id.Params{Memory: 1024, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// RandomText returns n random characters of [A-Za-z0-9_-].
func RandomText(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

// Tag returns a unique canary: lower-case letters and digits only, so that
// no encoding (HTML, quoted-printable, protobuf) can hide it from a byte
// search.
func Tag() string {
	return "canary" + strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(RandomText(16)))
}
