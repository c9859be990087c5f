package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	consentv1 "github.com/lethehq/lethe/gen/go/lethe/consent/v1"
	monitorv1 "github.com/lethehq/lethe/gen/go/lethe/monitor/v1"
	"github.com/lethehq/lethe/sdk/go/internal/lethetest"
)

// The quickstart works against the real server, on an account that requires
// consent before a chat.
func TestQuickstart_RunsAgainstRealServer(t *testing.T) {
	base := lethetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	admin := lethetest.Admin(ctx, t, base)
	if _, err := admin.Consent.SetConsentText(ctx, connect.NewRequest(&consentv1.SetConsentTextRequest{
		Form: consentv1.ConsentForm_CONSENT_FORM_PRECHAT, Locale: "en", Text: "This chat is deleted when it ends.", Required: true})); err != nil {
		t.Fatal(err)
	}
	key, err := admin.Monitor.CreateApiKey(ctx, connect.NewRequest(&monitorv1.CreateApiKeyRequest{Name: "quickstart"}))
	if err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if err := run(ctx, base, lethetest.Account, lethetest.AdminEmail, lethetest.AdminPassword, key.Msg.Key, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"consent: This chat is deleted when it ends.\n",
		"Ada: Hello!\n",
		": Hi Ada, how can I help?\n",
		"ticket valid until ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

// Every Go snippet in sdk/go/README.md is taken from main.go, which the test
// above runs, so the README cannot drift from working code.
func TestQuickstart_READMESnippetsAreFromMain(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	norm := func(s string) string {
		var lines []string
		for _, l := range strings.Split(s, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				lines = append(lines, l)
			}
		}
		return strings.Join(lines, "\n")
	}
	code := norm(string(src))
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	if len(blocks) < 3 {
		t.Fatalf("found %d Go snippets in the README, want one per client", len(blocks))
	}
	for _, b := range blocks {
		if !strings.Contains(code, norm(b[1])) {
			t.Errorf("this README snippet is not in examples/quickstart/main.go:\n%s", b[1])
		}
	}
}

func TestMain(m *testing.M) { lethetest.Main(m) }
