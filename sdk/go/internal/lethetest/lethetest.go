// Package lethetest starts the real lethe binary for the SDK's tests and
// examples, so they run against the server an integrator talks to rather
// than a fake of it. The first run of a fresh data directory creates the
// "demo" account with an admin whose password the harness chooses.
package lethetest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	lethe "github.com/lethehq/lethe/sdk/go"
)

// The demo account and its admin, as the first run creates them.
const (
	Account       = "demo"
	AdminEmail    = "admin@lethe.local"
	AdminPassword = "sdk-test-admin-1"
)

var listening = regexp.MustCompile(`listening on (http://\S+)`)

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// binary builds ./server/cmd/lethe once per test process, into a
// directory that outlives single tests (the OS cleans its temp dir).
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = err
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		dir, err := os.MkdirTemp("", "lethe-sdk-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildBin = filepath.Join(dir, "lethe")
		build := exec.Command("go", "build", "-o", buildBin, "./server/cmd/lethe")
		build.Dir = root
		if b, err := build.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build lethe: %w\n%s", err, b)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// Start builds the lethe binary from this checkout, starts it on a random
// loopback port with a fresh data directory and the extra flags given, and
// returns its base URL. The server is stopped when the test ends.
func Start(t testing.TB, flags ...string) string {
	t.Helper()
	bin := binary(t)
	// No metrics listener: parallel servers would compete for its port.
	args := append([]string{"--addr", "127.0.0.1:0", "--data", t.TempDir(), "--metrics-addr="}, flags...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "LETHE_ADMIN_PASSWORD="+AdminPassword)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urls <- strings.Replace(m[1], "localhost", "127.0.0.1", 1):
				default:
				}
			}
		}
	}()
	select {
	case u := <-urls:
		return u
	case <-time.After(60 * time.Second):
		t.Fatal("lethe did not start")
	}
	return ""
}

// Main runs a package's tests and then removes the binary Start built; call
// it from the package's TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if buildBin != "" {
		os.RemoveAll(filepath.Dir(buildBin))
	}
	os.Exit(code)
}

// Admin returns the demo account's admin, signed in to the server at base.
func Admin(ctx context.Context, t testing.TB, base string) *lethe.Operator {
	t.Helper()
	op := lethe.NewOperator(http.DefaultClient, base)
	if err := op.Login(ctx, AdminEmail, AdminPassword); err != nil {
		t.Fatal(err)
	}
	return op
}
