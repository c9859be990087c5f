package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	lethe "github.com/lethehq/lethe/sdk/go"
	"github.com/lethehq/lethe/server/account"
	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/limit"
)

func TestConfig_SignInFlags(t *testing.T) {
	c, err := parseFlags(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.hashConcurrency != 0 || c.hashQueue != account.DefaultHashQueue || c.hashWait != account.DefaultHashWait ||
		c.login != account.DefaultLoginLimits() || *c.hashFailedRate != account.DefaultHashFailedRate ||
		c.loginTarpit != account.DefaultTarpit {
		t.Fatalf("defaults: concurrency %d queue %d wait %v login %+v", c.hashConcurrency, c.hashQueue, c.hashWait, c.login)
	}
	t.Setenv("LETHE_HASH_CONCURRENCY", "3")
	t.Setenv("LETHE_LOGIN_ADDRESS_FAILURES", "off")
	t.Setenv("LETHE_LOGIN_ACCOUNT_FAILURES", "50/1h")
	c, err = parseFlags([]string{"--hash-queue", "8", "--hash-wait", "2s", "--login-free-failures", "3", "--login-backoff-max", "1m",
		"--login-account-failures", "40/1h", "--hash-failed-rate", "off"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := account.LoginLimits{PerAccount: limit.Rate{N: 40, Per: time.Hour}, FreeFailures: 3, BackoffMax: time.Minute}
	if c.hashConcurrency != 3 || c.hashQueue != 8 || c.hashWait != 2*time.Second || c.login != want || !c.hashFailedRate.Off() {
		t.Fatalf("set: concurrency %d queue %d wait %v login %+v", c.hashConcurrency, c.hashQueue, c.hashWait, c.login)
	}
	for _, bad := range [][]string{{"--hash-queue", "0"}, {"--hash-concurrency", "-1"}, {"--login-backoff-max", "0s"},
		{"--login-address-failures", "30"}} {
		if _, err := parseFlags(bad, nil); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// procKiB reads a field of /proc/<pid>/status ("VmRSS", "VmHWM") in KiB.
func procKiB(t *testing.T, pid int, field string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatalf("the server's memory is read from /proc (Linux, where CI runs): %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	t.Fatalf("no %s in /proc status", field)
	return 0
}

// Issue 9: 24 concurrent sign-ins with the real parameters (64 MiB each)
// took the process from 545 MiB to 2 GiB, never returned. With two
// computations at once the flood costs a few of them at most, and the
// memory goes back to the system afterwards.
func TestBinary_LoginFloodMemoryIsBoundedAndReturned(t *testing.T) {
	// Each sign-in from its own address (forwarded by a trusted proxy), so
	// that only the hasher stands between the flood and the memory.
	p := startBinary(t, binOpts{dataDir: t.TempDir(),
		args: []string{"--hash-concurrency", "2", "--hash-queue", "64", "--hash-wait", "60s", "--trusted-proxies", "127.0.0.1"}})
	pid := p.cmd.Process.Pid
	p.admin() // warm: the first sign-in's allocations are not the flood's
	const mib = 1024
	before := procKiB(t, pid, "VmRSS")
	const logins = 24
	var wg sync.WaitGroup
	errc := make(chan error, logins)
	for i := range logins {
		wg.Go(func() {
			o := lethe.NewOperator(p.client, p.URL, forwardedFor("198.51.100."+strconv.Itoa(i+1)))
			errc <- o.Login(context.Background(), adminEmail, adminPassword)
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil && connect.CodeOf(err) != connect.CodeResourceExhausted {
			t.Fatalf("sign-in during the flood: %v", err)
		}
	}
	// Unbounded, 24 × 64 MiB would be live at once. Two at a time, with
	// the garbage collector's headroom, stay well below half of that.
	grew := procKiB(t, pid, "VmHWM") - before
	t.Logf("RSS before %d MiB, peak growth %d MiB", before/mib, grew/mib)
	if grew > 600*mib {
		t.Fatalf("peak RSS grew by %d MiB during %d concurrent sign-ins; two 64 MiB computations at once should cost far less",
			grew/mib, logins)
	}
	testkit.Eventually(t, waitTimeout, "RSS back near its value before the flood", func() bool {
		return procKiB(t, pid, "VmRSS") < before+96*mib
	})
	p.cmd.Process.Signal(syscall.SIGTERM)
}
