package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	lethe "github.com/lethehq/lethe/sdk/go"
	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/mail/mailtest"
)

// The real binary, built once per test run, run as a child process.

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
	buildOut  []byte
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// letheBinary builds ./server/cmd/lethe (once) and returns its path.
func letheBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		gomod, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = err
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(gomod)))
		buildDir, buildErr = os.MkdirTemp("", "lethe-bin-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "lethe")
		cmd := exec.Command("go", "build", "-o", buildBin, "./server/cmd/lethe")
		cmd.Dir = root
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, buildOut)
	}
	return buildBin
}

// proc is a running lethe binary.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdout *testkit.LogBuffer
	stderr *testkit.LogBuffer
	URL    string
	client *http.Client
	done   chan struct{}
}

// binOpts configure a run of the binary.
type binOpts struct {
	dataDir string
	// tmpDir, when set, is the process's TMPDIR and SQLITE_TMPDIR.
	tmpDir string
	// smtpPort and ca configure the relay (port 0: no mail).
	smtpPort int
	ca       *mailtest.CA
	// noAdminPassword leaves LETHE_ADMIN_PASSWORD unset (the first run
	// generates one).
	noAdminPassword bool
	// args are extra flags.
	args []string
	// env is extra environment (after cleanEnv).
	env []string
	// roots, when set, are the CAs the client trusts (a run with
	// --tls-cert in args).
	roots *x509.CertPool
}

var listening = regexp.MustCompile(`Lethe is listening on (https?://\S+)`)

// startBinary runs the binary and waits until it listens. It is killed at
// the end of the test if still running.
func startBinary(t *testing.T, o binOpts) *proc {
	t.Helper()
	bin := letheBinary(t)
	args := []string{"--addr", "127.0.0.1:0", "--data", o.dataDir, "--log-level", "debug"}
	if o.smtpPort != 0 {
		args = append(args, "--smtp-host", "127.0.0.1", "--smtp-port", strconv.Itoa(o.smtpPort), "--smtp-ca", o.ca.File, "--smtp-from", mailFrom)
	}
	args = append(args, o.args...)
	cmd := exec.Command(bin, args...)
	env := append(cleanEnv(), o.env...)
	if !o.noAdminPassword {
		env = append(env, "LETHE_ADMIN_PASSWORD="+adminPassword)
	}
	if o.tmpDir != "" {
		env = append(env, "TMPDIR="+o.tmpDir, "SQLITE_TMPDIR="+o.tmpDir)
	}
	cmd.Env = env
	p := &proc{t: t, cmd: cmd, stdout: &testkit.LogBuffer{}, stderr: &testkit.LogBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start lethe: %v", err)
	}
	go func() { defer close(p.done); cmd.Wait() }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("lethe (pid %d) stdout:\n%s\nstderr:\n%s", cmd.Process.Pid, p.stdout.String(), p.stderr.String())
		}
	})
	deadline := time.Now().Add(waitTimeout)
	for {
		if m := listening.FindStringSubmatch(p.stdout.String()); m != nil {
			// The printed address says localhost; dial the address it listens on.
			p.URL = strings.Replace(m[1], "localhost", "127.0.0.1", 1)
			break
		}
		select {
		case <-p.done:
			t.Fatalf("lethe exited at start: %v\nstdout:\n%s\nstderr:\n%s", cmd.ProcessState, p.stdout.String(), p.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("lethe did not say it listens\nstdout:\n%s\nstderr:\n%s", p.stdout.String(), p.stderr.String())
		}
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: o.roots}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	p.client = &http.Client{Transport: tr}
	return p
}

// cleanEnv is the test's environment without LETHE_* variables and temp
// directories, so that nothing of the caller's setup leaks into a run, and
// with the metrics listener off, so that parallel runs do not compete for
// its port (a test wanting it passes --metrics-addr 127.0.0.1:0).
func cleanEnv() []string {
	env := []string{"LETHE_METRICS_ADDR="}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LETHE_") && !strings.HasPrefix(kv, "TMPDIR=") && !strings.HasPrefix(kv, "SQLITE_TMPDIR=") {
			env = append(env, kv)
		}
	}
	return env
}

// kill ends the process with SIGKILL (a crash: no shutdown code runs) and
// waits for it.
func (p *proc) kill() {
	if p.cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// output is everything the process printed.
func (p *proc) output() string { return p.stdout.String() + p.stderr.String() }

// waitLog waits until the process's log (stderr) contains s n times.
func (p *proc) waitLog(s string, n int) {
	p.t.Helper()
	deadline := time.Now().Add(2 * waitTimeout)
	for strings.Count(p.stderr.String(), s) < n {
		if time.Now().After(deadline) {
			p.t.Fatalf("lethe's log contains %q %d times, want %d", s, strings.Count(p.stderr.String(), s), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *proc) waitDestroyed(chatID string) {
	p.t.Helper()
	p.waitLog(`msg="chat destroyed" chat=`+chatID, 1)
}

func (p *proc) visitor() *lethe.Visitor { return lethe.NewVisitor(p.client, p.URL) }

func (p *proc) admin() *lethe.Operator {
	p.t.Helper()
	o := lethe.NewOperator(p.client, p.URL)
	if err := o.Login(context.Background(), adminEmail, adminPassword); err != nil {
		p.t.Fatalf("login: %v", err)
	}
	return o
}
