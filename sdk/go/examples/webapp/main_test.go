package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	monitorv1 "github.com/lethehq/lethe/gen/go/lethe/monitor/v1"
	"github.com/lethehq/lethe/gen/go/lethe/monitor/v1/monitorv1connect"
	lethe "github.com/lethehq/lethe/sdk/go"
)

// startLethe builds and starts the real lethe binary on a random port.
func startLethe(t *testing.T) string {
	t.Helper()
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
	cmd := exec.Command(bin, "--addr", "127.0.0.1:0", "--data", t.TempDir())
	cmd.Env = append(os.Environ(), "LETHE_ADMIN_PASSWORD=example-admin-1")
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(sc.Text()); m != nil {
				urls <- strings.Replace(m[1], "localhost", "127.0.0.1", 1)
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

// The example site mints a ticket per page with the Go SDK; the widget
// hands it to Lethe, and the operator sees the data as verified.
func TestExampleWebApp_TicketReachesOperatorAsVerifiedData(t *testing.T) {
	base := startLethe(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	op := lethe.NewOperator(http.DefaultClient, base)
	if err := op.Login(ctx, "admin@lethe.local", "example-admin-1"); err != nil {
		t.Fatal(err)
	}
	key, err := op.Monitor.CreateApiKey(ctx, connect.NewRequest(&monitorv1.CreateApiKeyRequest{Name: "example shop"}))
	if err != nil {
		t.Fatal(err)
	}
	site := httptest.NewServer(newSite(base, "demo", key.Msg.Key))
	defer site.Close()

	res, err := http.Get(site.URL + "/pricing")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := regexp.MustCompile(`data-ticket="([^"]+)"`).FindSubmatch(page)
	if m == nil || len(m[1]) == 0 {
		t.Fatalf("no ticket in the page:\n%s", page)
	}
	if strings.Contains(string(page), key.Msg.Key) {
		t.Fatal("the API key leaked into the page")
	}
	ticket := string(m[1])

	// What the widget does with the ticket on the page.
	visitor := monitorv1connect.NewMonitorServiceClient(http.DefaultClient, base)
	tr, err := visitor.Track(ctx, connect.NewRequest(&monitorv1.TrackRequest{AccountId: "demo",
		Page: &monitorv1.Page{Url: site.URL + "/pricing", Title: "Pricing"}, Ticket: ticket}))
	if err != nil {
		t.Fatal(err)
	}

	stream, err := op.Monitor.WatchVisitors(ctx, connect.NewRequest(&monitorv1.WatchVisitorsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	found := false
	for !found && stream.Receive() {
		for _, v := range stream.Msg().Visitors {
			if v.VisitorId == tr.Msg.VisitorId {
				if v.VerifiedData["customer_id"] != "C-1042" || v.VerifiedData["plan"] != "pro" {
					t.Fatalf("verified data = %v", v.VerifiedData)
				}
				found = true
			}
		}
	}
	if !found {
		t.Fatalf("visitor never appeared: %v", stream.Err())
	}

	// A ticket is single-use.
	again := connect.NewRequest(&monitorv1.IdentifyRequest{Ticket: ticket})
	again.Header().Set("Authorization", "Bearer "+tr.Msg.VisitToken)
	if _, err := visitor.Identify(ctx, again); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("reused ticket: got %v, want FailedPrecondition", err)
	}
}
