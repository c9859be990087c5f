package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	monitorv1 "github.com/lethehq/lethe/gen/go/lethe/monitor/v1"
	"github.com/lethehq/lethe/gen/go/lethe/monitor/v1/monitorv1connect"
	"github.com/lethehq/lethe/sdk/go/internal/lethetest"
)

// The example site mints a ticket per page with the Go SDK; the widget
// hands it to Lethe, and the operator sees the data as verified.
func TestExampleWebApp_TicketReachesOperatorAsVerifiedData(t *testing.T) {
	base := lethetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	op := lethetest.Admin(ctx, t, base)
	key, err := op.Monitor.CreateApiKey(ctx, connect.NewRequest(&monitorv1.CreateApiKeyRequest{Name: "example shop"}))
	if err != nil {
		t.Fatal(err)
	}
	site := httptest.NewServer(newSite(base, lethetest.Account, key.Msg.Key))
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
	tr, err := visitor.Track(ctx, connect.NewRequest(&monitorv1.TrackRequest{AccountId: lethetest.Account,
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

func TestMain(m *testing.M) { lethetest.Main(m) }
