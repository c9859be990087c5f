package main

// The lazy widget (issue 8) across the whole app: CORS for the loader's
// procedures only, the page token refused by the privacy rights, and
// monitoring_disabled from the admin's setting to the loader's config.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	monitorv1 "github.com/lethehq/lethe/gen/go/lethe/monitor/v1"
	"github.com/lethehq/lethe/gen/go/lethe/monitor/v1/monitorv1connect"
	privacyv1 "github.com/lethehq/lethe/gen/go/lethe/privacy/v1"
	"github.com/lethehq/lethe/gen/go/lethe/privacy/v1/privacyv1connect"
	"github.com/lethehq/lethe/server/web"
)

const shopOrigin = "https://shop.example"

// preflight asks, as a browser on origin would, whether it may POST
// Connect JSON with a bearer token to procedure.
func preflight(t *testing.T, ts *testServer, procedure, origin string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodOptions, ts.URL+procedure, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization,connect-protocol-version,content-type")
	res, err := ts.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

// crossSite is what a browser on a host page sends with a fetch to Lethe.
func crossSite(origin, pageToken string) http.Header {
	h := http.Header{"Origin": {origin}, "Sec-Fetch-Site": {"cross-site"}, "Sec-Fetch-Mode": {"cors"}}
	if pageToken != "" {
		h.Set("Authorization", "Bearer "+pageToken)
	}
	return h
}

func TestCORS_LoaderProceduresOnly(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *config) { c.demoOrigins = shopOrigin })

	for _, p := range web.LoaderProcedures {
		res := preflight(t, ts, p, shopOrigin)
		h := res.Header
		if res.StatusCode/100 != 2 || h.Get("Access-Control-Allow-Origin") != shopOrigin {
			t.Errorf("preflight %s: HTTP %d, Allow-Origin %q", p, res.StatusCode, h.Get("Access-Control-Allow-Origin"))
		}
		if h.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("preflight %s allows credentials", p)
		}
		if h.Get("Access-Control-Max-Age") != "7200" {
			t.Errorf("preflight %s: Max-Age %q, want 7200", p, h.Get("Access-Control-Max-Age"))
		}
		allowed := strings.ToLower(h.Get("Access-Control-Allow-Headers"))
		for _, want := range []string{"authorization", "connect-protocol-version", "content-type"} {
			if !strings.Contains(allowed, want) {
				t.Errorf("preflight %s: Allow-Headers %q lacks %s", p, allowed, want)
			}
		}
	}
	// Nothing else answers a cross-origin browser: not the visit-token
	// calls, not ClaimVisit, not the privacy rights, not operators' calls.
	for _, p := range []string{
		monitorv1connect.MonitorServiceClaimVisitProcedure,
		monitorv1connect.MonitorServiceRespondToInvitationProcedure,
		monitorv1connect.MonitorServiceWatchVisitorsProcedure,
		"/lethe.privacy.v1.PrivacyService/GetMyData",
		"/lethe.chat.v1.ChatService/StartChat",
		loginProcedure,
	} {
		res := preflight(t, ts, p, shopOrigin)
		if o := res.Header.Get("Access-Control-Allow-Origin"); o != "" {
			t.Errorf("preflight %s: Allow-Origin %q, want none", p, o)
		}
		post := rawPost(t, ts, p, `{}`, crossSite(shopOrigin, ""))
		if o := post.Header.Get("Access-Control-Allow-Origin"); o != "" {
			t.Errorf("cross-site POST %s: Allow-Origin %q, want none", p, o)
		}
		if post.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site POST %s: HTTP %d, want 403 (cross-origin protection)", p, post.StatusCode)
		}
	}

	// The loader's actual calls: config, then a page view with a page token.
	res := rawPost(t, ts, "/lethe.chat.v1.ChatService/GetWidgetConfig", `{"accountId":"demo"}`, crossSite(shopOrigin, ""))
	if res.StatusCode != http.StatusOK || res.Header.Get("Access-Control-Allow-Origin") != shopOrigin {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("cross-site GetWidgetConfig: HTTP %d, Allow-Origin %q: %s", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"), b)
	}
	res = rawPost(t, ts, monitorv1connect.MonitorServiceTrackProcedure,
		`{"accountId":"demo","page":{"url":"https://shop.example/"},"writeOnly":true}`, crossSite(shopOrigin, ""))
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || res.Header.Get("Access-Control-Allow-Origin") != shopOrigin || res.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("cross-site Track: HTTP %d, Allow-Origin %q: %s", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"), b)
	}
	var tr struct{ PageToken, VisitToken string }
	if err := json.Unmarshal(b, &tr); err != nil || tr.PageToken == "" || tr.VisitToken != "" {
		t.Fatalf("Track write_only answered %s", b)
	}
	res = rawPost(t, ts, monitorv1connect.MonitorServiceHeartbeatProcedure, `{}`, crossSite(shopOrigin, tr.PageToken))
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("cross-site Heartbeat with the page token: HTTP %d: %s", res.StatusCode, b)
	}
	// The host page cannot claim the visit: the cross-origin protection
	// stops it (and ClaimVisit's own Origin check would: monitor's tests).
	res = rawPost(t, ts, monitorv1connect.MonitorServiceClaimVisitProcedure, `{}`,
		http.Header{"Origin": {shopOrigin}, "Authorization": {"Bearer " + tr.PageToken}})
	if b, _ := io.ReadAll(res.Body); res.StatusCode != http.StatusForbidden || strings.Contains(string(b), "visitToken") {
		t.Fatalf("ClaimVisit from the host page: HTTP %d: %s", res.StatusCode, b)
	}
	// The panel, on the Lethe origin, can.
	res = rawPost(t, ts, monitorv1connect.MonitorServiceClaimVisitProcedure, `{}`,
		http.Header{"Origin": {ts.URL}, "Sec-Fetch-Site": {"same-origin"}, "Authorization": {"Bearer " + tr.PageToken}})
	if b, _ := io.ReadAll(res.Body); res.StatusCode != http.StatusOK || !strings.Contains(string(b), "visitToken") {
		t.Fatalf("ClaimVisit from the panel: HTTP %d: %s", res.StatusCode, b)
	}
}

func TestCORS_TrackFromAnUnlistedSiteIsRefused(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *config) { c.demoOrigins = shopOrigin })
	res := rawPost(t, ts, monitorv1connect.MonitorServiceTrackProcedure,
		`{"accountId":"demo","page":{"url":"https://evil.example/"},"writeOnly":true}`, crossSite("https://evil.example", ""))
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "permission_denied") || strings.Contains(string(b), "pageToken") {
		t.Fatalf("Track from an unlisted site: HTTP %d: %s", res.StatusCode, b)
	}
}

// The loader learns from GetWidgetConfig that it must send nothing before
// the click. (The server does not refuse Track then: the loader does not
// call it.)
func TestGetWidgetConfig_SaysMonitoringDisabled(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	config := func() *chatv1.GetWidgetConfigResponse {
		t.Helper()
		res, err := ts.visitor().Chat.GetWidgetConfig(ctx, connect.NewRequest(&chatv1.GetWidgetConfigRequest{AccountId: demoAccount}))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg
	}
	if config().MonitoringDisabled {
		t.Fatal("monitoring_disabled is on by default")
	}
	admin := ts.admin()
	set := func(off bool) {
		t.Helper()
		got, err := admin.Account.GetSettings(ctx, connect.NewRequest(&accountv1.GetSettingsRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		s := got.Msg.Settings
		s.MonitoringDisabled = off
		if _, err := admin.Account.UpdateSettings(ctx, connect.NewRequest(&accountv1.UpdateSettingsRequest{Settings: s})); err != nil {
			t.Fatal(err)
		}
	}
	inventorySays := func() bool {
		t.Helper()
		inv, err := admin.Privacy.GetDataInventory(ctx, connect.NewRequest(&privacyv1.GetDataInventoryRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range inv.Msg.Inventory.Categories {
			if c.Name == "Visitor monitoring" {
				return strings.Contains(c.What, "Visitors who do not open the chat: nothing is recorded")
			}
		}
		t.Fatal("the inventory has no visitor monitoring category")
		return false
	}
	if inventorySays() {
		t.Fatal("the inventory says nothing is recorded before the click while monitoring is on")
	}
	set(true)
	if !config().MonitoringDisabled {
		t.Fatal("GetWidgetConfig after the admin turned monitoring off: monitoring_disabled false")
	}
	if !inventorySays() {
		t.Fatal("the inventory does not say that nothing is recorded before the click")
	}
	set(false)
	if config().MonitoringDisabled {
		t.Fatal("GetWidgetConfig after the admin turned monitoring back on: monitoring_disabled true")
	}
}

// The page token reads and erases nothing through the visitor's rights
// either: every privacy call refuses it, as visit_token or as bearer, and
// the visit is untouched.
func TestPageToken_PrivacyCallsRefuseIt(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	m := monitorv1connect.NewMonitorServiceClient(ts.client(), ts.URL)
	tr, err := m.Track(ctx, connect.NewRequest(&monitorv1.TrackRequest{AccountId: demoAccount,
		Page: &monitorv1.Page{Url: "https://shop.example/PAGE-CANARY-41"}, WriteOnly: true}))
	if err != nil {
		t.Fatal(err)
	}
	page := tr.Msg.PageToken
	if page == "" || tr.Msg.VisitToken != "" {
		t.Fatalf("Track write_only: %v", tr.Msg)
	}
	p := privacyv1connect.NewPrivacyServiceClient(ts.client(), ts.URL)
	bearer := func(r interface{ Header() http.Header }) { r.Header().Set("Authorization", "Bearer "+page) }
	calls := map[string]func(asBearer bool) error{
		"GetMyData": func(asBearer bool) error {
			r := connect.NewRequest(&privacyv1.GetMyDataRequest{})
			if asBearer {
				bearer(r)
			} else {
				r.Msg.VisitToken = page
			}
			res, err := p.GetMyData(ctx, r)
			if err == nil && strings.Contains(res.Msg.String(), "PAGE-CANARY-41") {
				t.Error("GetMyData with the page token answered the visit")
			}
			return err
		},
		"ForgetMe": func(asBearer bool) error {
			r := connect.NewRequest(&privacyv1.ForgetMeRequest{})
			if asBearer {
				bearer(r)
			} else {
				r.Msg.VisitToken = page
			}
			_, err := p.ForgetMe(ctx, r)
			return err
		},
		"StopTracking": func(asBearer bool) error {
			r := connect.NewRequest(&privacyv1.StopTrackingRequest{VisitToken: page})
			if asBearer {
				bearer(r)
				r.Msg.VisitToken = "some-visit-token"
			}
			_, err := p.StopTracking(ctx, r)
			return err
		},
		"CorrectMyData": func(bool) error {
			r := connect.NewRequest(&privacyv1.CorrectMyDataRequest{VisitorName: "X"})
			bearer(r)
			_, err := p.CorrectMyData(ctx, r)
			return err
		},
	}
	for name, call := range calls {
		for _, asBearer := range []bool{false, true} {
			err := call(asBearer)
			if connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "page token") {
				t.Errorf("%s with the page token (bearer %v): %v, want PERMISSION_DENIED naming the page token", name, asBearer, err)
			}
		}
	}
	// Nothing was erased: the page token still adds page views to its visit.
	r := connect.NewRequest(&monitorv1.TrackRequest{AccountId: demoAccount, Page: &monitorv1.Page{Url: "https://shop.example/2"}, WriteOnly: true})
	r.Header().Set("Authorization", "Bearer "+page)
	res, err := m.Track(ctx, r)
	if err != nil || res.Msg.VisitorId != tr.Msg.VisitorId || res.Msg.PageToken != "" {
		t.Fatalf("Track after the refused calls: %v, %v; want the same visit", res, err)
	}
}
