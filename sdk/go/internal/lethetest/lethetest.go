// Package lethetest starts the real lethe binary for the SDK's tests and
// examples, so they run against the server an integrator talks to rather
// than a fake of it. The first run of a fresh data directory creates the
// "demo" account with an admin whose password the harness chooses.
package lethetest

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The demo account and its admin, as the first run creates them.
const (
	Account       = "demo"
	AdminEmail    = "admin@lethe.local"
	AdminPassword = "sdk-test-admin-1"
)

var listening = regexp.MustCompile(`listening on (http://\S+)`)

// Start builds the lethe binary from this checkout, starts it on a random
// loopback port with a fresh data directory and the extra flags given, and
// returns its base URL. The server is stopped when the test ends. Start
// skips the test under -short.
func Start(t testing.TB, flags ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the real lethe binary; skipped with -short")
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	bin := filepath.Join(t.TempDir(), "lethe")
	build := exec.Command("go", "build", "-o", bin, "./server/cmd/lethe")
	build.Dir = root
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build lethe: %v\n%s", err, b)
	}
	args := append([]string{"--addr", "127.0.0.1:0", "--data", t.TempDir()}, flags...)
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
