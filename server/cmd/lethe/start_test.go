package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lethehq/lethe/server/internal/testkit"
)

// runBinary runs the binary to its end with args and extra environment,
// and returns its exit code, stdout and stderr.
func runBinary(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(letheBinary(t), args...)
	cmd.Env = append(cleanEnv(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run lethe: %v", err)
	}
	return code, out.String(), errb.String()
}

func TestHelp_PrintsEveryFlagWithItsVariableAndExitsZero(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"--help", "-h"} {
		code, stdout, stderr := runBinary(t, nil, arg)
		if code != 0 {
			t.Fatalf("lethe %s exited %d, want 0; stderr:\n%s", arg, code, stderr)
		}
		if strings.Contains(stdout+stderr, "help requested") {
			t.Errorf("lethe %s printed flag's internal error:\n%s", arg, stdout+stderr)
		}
		for _, want := range []string{"-addr", "LETHE_ADDR", "-data", "LETHE_DATA", "-trusted-proxies", "LETHE_TRUSTED_PROXIES",
			"-visitor-retention", "LETHE_VISITOR_RETENTION", "LETHE_ADMIN_PASSWORD", "LETHE_SMTP_PASSWORD"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("lethe %s does not mention %s:\n%s", arg, want, stdout)
			}
		}
		// Every flag's help names its variable.
		for line := range strings.Lines(stdout) {
			if flag, ok := strings.CutPrefix(strings.TrimSpace(line), "-"); ok {
				name, _, _ := strings.Cut(flag, " ")
				env := "LETHE_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
				if !strings.Contains(stdout, "(env "+env+")") {
					t.Errorf("flag -%s: help does not name %s", name, env)
				}
			}
		}
	}
}

func TestFlags_BadValueIsOneLineAndExitTwo(t *testing.T) {
	t.Parallel()
	code, _, stderr := runBinary(t, []string{"LETHE_VISITOR_RETENTION=soon"})
	if code != 2 || !strings.Contains(stderr, "LETHE_VISITOR_RETENTION") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("bad LETHE_VISITOR_RETENTION: exit %d, stderr %q; want exit 2 and one line naming the variable", code, stderr)
	}
	code, _, stderr = runBinary(t, nil, "--trusted-proxies", "proxy.example")
	if code != 2 || !strings.Contains(stderr, "--trusted-proxies") {
		t.Fatalf("bad --trusted-proxies: exit %d, stderr %q", code, stderr)
	}
}

func TestStart_UnwritableDataDirIsOneLineErrorAndExitOne(t *testing.T) {
	t.Parallel()
	// A path below a regular file cannot be created, even by root.
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runBinary(t, nil, "--addr", "127.0.0.1:0", "--data", filepath.Join(file, "data"))
	if code != 1 {
		t.Fatalf("exit %d, want 1; stdout %q stderr %q", code, stdout, stderr)
	}
	msg := strings.TrimSpace(stderr)
	if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "lethe: data directory:") || strings.Contains(msg, "panic") {
		t.Fatalf("stderr %q: want one line starting with \"lethe: data directory:\"", stderr)
	}
}

func TestStart_PasswordPrintedOnlyWhenGenerated(t *testing.T) {
	t.Parallel()
	// Supplied through LETHE_ADMIN_PASSWORD: not echoed.
	p := startBinary(t, binOpts{dataDir: t.TempDir()})
	if out := p.stdout.String(); strings.Contains(out, adminPassword) || !strings.Contains(out, "password from LETHE_ADMIN_PASSWORD") {
		t.Fatalf("first run with a supplied password printed:\n%s", out)
	}
	p.kill()

	// Generated: printed once, on the first run only.
	dir := t.TempDir()
	g := startBinary(t, binOpts{dataDir: dir, noAdminPassword: true})
	if !strings.Contains(g.stdout.String(), "First run: admin admin@lethe.local, password ") {
		t.Fatalf("first run without LETHE_ADMIN_PASSWORD printed no password:\n%s", g.stdout.String())
	}
	g.kill()
	again := startBinary(t, binOpts{dataDir: dir, noAdminPassword: true})
	if strings.Contains(again.stdout.String(), "First run") {
		t.Fatalf("second start printed the first-run line:\n%s", again.stdout.String())
	}
}

// A stop asked for while starting (SIGTERM during migrations) on a data
// directory that is not new is a clean stop, not a "first-run setup" error.
func TestStart_StoppedWhileStartingIsNotAnError(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := newTestServer(t, withDataDir(dir))
	ts.stop()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	cfg := config{addr: "127.0.0.1:0", dataDir: dir, logLevel: "info", passwordParams: testkit.CheapPasswords}
	if err := run(ctx, cfg, &stdout, &stderr); err != nil {
		t.Fatalf("run with a cancelled context: %v", err)
	}
	if out := stdout.String() + stderr.String(); strings.Contains(out, "first-run") || strings.Contains(out, "First run") {
		t.Fatalf("a stopped start talks of a first run:\n%s", out)
	}
}
