package monitor

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"

	monitorv1 "github.com/lethehq/lethe/gen/go/lethe/monitor/v1"
	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/netinfo"
)

// shortWindow makes a visitor leave 300 ms after their last sign of life and
// be destroyed 300 ms after that.
var shortWindow = Options{OnSiteTimeout: 300 * time.Millisecond, Retention: 300 * time.Millisecond,
	JanitorInterval: 40 * time.Millisecond, CoalesceInterval: 50 * time.Millisecond}

func TestLifecycle_OnSiteSurvivesNavigationThenDestroyedFromEveryFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t, shortWindow)
	ctx := context.Background()
	const urlCanary, dataCanary = "CANARY-URL-7f3a9", "CANARY-DATA-51c2e"

	vis := &visitor{e: e, ua: chromeWindows}
	first := vis.mustTrack("acct-a", "https://shop.example/"+urlCanary)
	if first.VisitToken == "" || first.VisitorId == "" {
		t.Fatalf("first Track: %+v", first)
	}
	if err := vis.setData(map[string]string{"plan": dataCanary}); err != nil {
		t.Fatal(err)
	}
	// Navigation: same token, same visit, no new token.
	second := vis.mustTrack("acct-a", "https://shop.example/checkout")
	if second.VisitToken != "" || second.VisitorId != first.VisitorId {
		t.Fatalf("second Track: %+v", second)
	}
	st, err := e.svc.store.Visitor(ctx, vis.id)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.v.Pages) != 2 || st.v.CurrentPage.Page.Url != "https://shop.example/checkout" || st.v.PageData["plan"] != dataCanary {
		t.Fatalf("visitor: %v", st.v)
	}
	if hits := e.filesContaining(urlCanary, dataCanary); len(hits) < 2 {
		t.Fatalf("canaries not on disk before the window: %v", hits)
	}

	// While the visitor's stream is open they stay on site well past the
	// on-site timeout.
	sctx, stop := context.WithCancel(ctx)
	stream := vis.watchVisit(sctx)
	time.Sleep(3 * shortWindow.OnSiteTimeout)
	v, err := e.svc.store.Visit(ctx, vis.id)
	if err != nil || v.Left {
		t.Fatalf("visitor with an open stream left: %v %+v", err, v)
	}
	stop()
	stream.Close()

	// Leaves, then is destroyed: gone from the store and from every file.
	eventually(t, 5*time.Second, "visit destroyed", func() bool { return e.svc.Destroyed() >= 1 })
	if _, err := e.svc.store.Visit(ctx, vis.id); !isNotFound(err) {
		t.Fatalf("visit still in the store: %v", err)
	}
	if hits := e.filesContaining(urlCanary, dataCanary); len(hits) > 0 {
		t.Fatalf("canaries survive destruction: %v", hits)
	}
	for _, table := range []string{"monitor_visits", "monitor_pages", "monitor_custom_data"} {
		var n int
		if err := e.scratch.R.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%s: %d rows (%v)", table, n, err)
		}
	}
	// The token is dead; Track starts a new visit.
	req := connect.NewRequest(&monitorv1.HeartbeatRequest{})
	vis.header(req.Header())
	_, err = e.client.Heartbeat(ctx, req)
	wantCode(t, "heartbeat after destruction", err, connect.CodeUnauthenticated)
	again := vis.mustTrack("acct-a", "https://shop.example/")
	if again.VisitToken == "" || again.VisitorId == first.VisitorId {
		t.Fatalf("Track after destruction: %+v", again)
	}
}

func TestLifecycle_HeartbeatKeepsVisitorOnSite(t *testing.T) {
	t.Parallel()
	e := newEnv(t, shortWindow)
	ctx := context.Background()
	vis := &visitor{e: e}
	vis.mustTrack("acct-a", "https://shop.example/")
	for range 8 {
		time.Sleep(shortWindow.OnSiteTimeout / 3)
		req := connect.NewRequest(&monitorv1.HeartbeatRequest{})
		vis.header(req.Header())
		if _, err := e.client.Heartbeat(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	v, err := e.svc.store.Visit(ctx, vis.id)
	if err != nil || v.Left {
		t.Fatalf("heartbeating visitor left: %v %+v", err, v)
	}
}

func TestLifecycle_ReturningBeforeDestructionRejoins(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{OnSiteTimeout: 2 * time.Second, Retention: time.Hour, JanitorInterval: 20 * time.Millisecond})
	ctx := context.Background()
	vis := &visitor{e: e}
	vis.mustTrack("acct-a", "https://shop.example/")
	eventually(t, 20*time.Second, "visitor left", func() bool {
		v, err := e.svc.store.Visit(ctx, vis.id)
		return err == nil && v.Left
	})
	res := vis.mustTrack("acct-a", "https://shop.example/back")
	if res.VisitToken != "" {
		t.Fatal("a returning visitor got a new visit")
	}
	v, _ := e.svc.store.Visit(ctx, vis.id)
	if v.Left {
		t.Fatal("returning visitor still marked as left")
	}
}

// With "hide IP and host" on, neither reaches storage, the operator's stream
// or the logs; the location is still derived.
func TestHideIP_NeverStoredStreamedOrLogged(t *testing.T) {
	t.Parallel()
	city, asn := writeGeoDBs(t)
	const ip, host = "203.0.113.77", "canary-host.isp.example"
	lookups := 0
	r := netinfo.NewResolver()
	r.Lookup = func(ctx context.Context, addr string) ([]string, error) { lookups++; return []string{host + "."}, nil }
	o := shortWindow
	o.OnSiteTimeout = time.Hour
	o.GeoIPCity, o.GeoIPASN, o.Hosts = city, asn, r
	e := newEnvBehind(t, o, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	e.accounts.setHide("acct-a", true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ops := e.watchVisitors(ctx, opA)
	snapshot(t, ops)

	vis := &visitor{e: e, xff: ip, ua: chromeWindows}
	vis.mustTrack("acct-a", "https://shop.example/")
	if err := vis.setData(map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	if !ops.Receive() {
		t.Fatal(ops.Err())
	}
	got := ops.Msg().Visitors
	if len(got) != 1 || got[0].Ip != "" || got[0].Host != "" || got[0].Location.GetCity() != "London" || got[0].Isp != "Canary Telecom" {
		t.Fatalf("operator saw %v", got)
	}
	out, _ := protojson.Marshal(ops.Msg())
	if strings.Contains(string(out), ip) || strings.Contains(string(out), host) {
		t.Fatalf("stream carries IP or host: %s", out)
	}
	v, _ := e.svc.store.Visit(context.Background(), vis.id)
	if v.IP != "" || v.Host != "" {
		t.Fatalf("stored ip %q host %q", v.IP, v.Host)
	}
	if lookups != 0 {
		t.Fatalf("%d reverse lookups for a hidden address", lookups)
	}
	if hits := e.filesContaining(ip, host); len(hits) > 0 {
		t.Fatalf("IP or host on disk: %v", hits)
	}
	if logs := e.logs.String(); strings.Contains(logs, ip) || strings.Contains(logs, host) {
		t.Fatalf("IP or host in logs: %s", logs)
	}
}

// Turning "hide IP and host" on during a visit drops what was kept.
func TestHideIP_TurnedOnDuringVisitDropsStoredAddress(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	ctx := context.Background()
	res, err := e.svc.track(atAddr(ctx, "203.0.113.9:1"), http.Header{}, trackReq("acct-a", "https://shop.example/"))
	if err != nil {
		t.Fatal(err)
	}
	e.accounts.setHide("acct-a", true)
	h := http.Header{"Authorization": {"Bearer " + res.VisitToken}}
	if _, err := e.svc.track(atAddr(ctx, "203.0.113.9:1"), h, trackReq("acct-a", "https://shop.example/2")); err != nil {
		t.Fatal(err)
	}
	v, _ := e.svc.store.Visit(ctx, res.VisitorId)
	if v.IP != "" || v.Host != "" {
		t.Fatalf("ip %q host %q kept", v.IP, v.Host)
	}
}

func TestTrack_PageLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	long := func(n int) string { return "https://x.example/" + strings.Repeat("é", n-len("https://x.example/")) }
	for _, tc := range []struct {
		name string
		page *monitorv1.Page
		ok   bool
	}{
		{"max url", &monitorv1.Page{Url: long(MaxURLChars)}, true},
		{"url too long", &monitorv1.Page{Url: long(MaxURLChars + 1)}, false},
		{"no url", &monitorv1.Page{Title: "x"}, false},
		{"no page", nil, false},
		{"max title", &monitorv1.Page{Url: "u", Title: strings.Repeat("t", MaxTitleChars)}, true},
		{"title too long", &monitorv1.Page{Url: "u", Title: strings.Repeat("t", MaxTitleChars+1)}, false},
		{"referrer too long", &monitorv1.Page{Url: "u", Referrer: strings.Repeat("r", MaxReferrerChars+1)}, false},
	} {
		_, err := e.client.Track(context.Background(), connect.NewRequest(&monitorv1.TrackRequest{AccountId: "acct-a", Page: tc.page}))
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if !tc.ok && testkit.CodeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("%s: got %v, want InvalidArgument", tc.name, err)
		}
	}
	_, err := e.client.Track(context.Background(), connect.NewRequest(trackReq("no-such-account", "u")))
	wantCode(t, "unknown account", err, connect.CodeNotFound)
}

func TestTrack_KeepsLastPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	vis := &visitor{e: e}
	for i := range MaxPages + 5 {
		vis.mustTrack("acct-a", "https://shop.example/p"+strings.Repeat("x", i))
	}
	st, err := e.svc.store.Visitor(context.Background(), vis.id)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.v.Pages) != MaxPages || st.v.CurrentPage.Page.Url != "https://shop.example/p"+strings.Repeat("x", MaxPages+4) {
		t.Fatalf("%d pages, current %v", len(st.v.Pages), st.v.CurrentPage)
	}
}

func TestCustomData_Limits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	vis := &visitor{e: e}
	vis.mustTrack("acct-a", "https://shop.example/")
	many := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m["k"+strings.Repeat("x", i)] = "v"
		}
		return m
	}
	for _, tc := range []struct {
		name string
		data map[string]string
		ok   bool
	}{
		{"max keys", many(MaxDataKeys), true},
		{"too many keys", many(MaxDataKeys + 1), false},
		{"max key", map[string]string{strings.Repeat("k", MaxDataKeyChars): "v"}, true},
		{"key too long", map[string]string{strings.Repeat("k", MaxDataKeyChars+1): "v"}, false},
		{"key charset", map[string]string{"a.b_c-D9": "v"}, true},
		{"bad key", map[string]string{"has space": "v"}, false},
		{"empty key", map[string]string{"": "v"}, false},
		{"max value", map[string]string{"k": strings.Repeat("ü", MaxDataValueChars)}, true},
		{"value too long", map[string]string{"k": strings.Repeat("v", MaxDataValueChars+1)}, false},
		{"clear", map[string]string{}, true},
	} {
		err := vis.setData(tc.data)
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if !tc.ok && testkit.CodeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("%s: got %v, want InvalidArgument", tc.name, err)
		}
	}
	_, err := e.mintTicket("", map[string]string{"k": "v"}, 0)
	wantCode(t, "mint without key", err, connect.CodeUnauthenticated)
	_, key := e.mintKey(opA)
	_, err = e.mintTicket(key, many(MaxDataKeys+1), 0)
	wantCode(t, "mint with too many keys", err, connect.CodeInvalidArgument)
	_, err = e.mintTicket(key, nil, 601)
	wantCode(t, "ttl too long", err, connect.CodeInvalidArgument)
	_, err = e.mintTicket(key, nil, -1)
	wantCode(t, "negative ttl", err, connect.CodeInvalidArgument)
	req := connect.NewRequest(&monitorv1.SetCustomDataRequest{Data: map[string]string{"k": "v"}})
	_, err = e.client.SetCustomData(context.Background(), req)
	wantCode(t, "set data without visit token", err, connect.CodeUnauthenticated)
}

func TestTrack_NewVisitsPerAddressAreLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	ctx := context.Background()
	var err error
	for i := 0; i <= DefaultLimits().NewVisitsPerAddr.N && err == nil; i++ {
		_, err = e.svc.track(atAddr(ctx, "203.0.113.5:1"), http.Header{}, trackReq("acct-a", "https://shop.example/"))
	}
	wantCode(t, "visit beyond the burst", err, connect.CodeResourceExhausted)
	// Another address is not affected; nor are page views of a visit
	// (which have an allowance of their own).
	res, err := e.svc.track(atAddr(ctx, "203.0.113.6:1"), http.Header{}, trackReq("acct-a", "https://shop.example/"))
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Authorization": {"Bearer " + res.VisitToken}}
	for range DefaultLimits().CallsPerVisit.N - 1 {
		if _, err := e.svc.track(atAddr(ctx, "203.0.113.5:1"), h, trackReq("acct-a", "https://shop.example/next")); err != nil {
			t.Fatal(err)
		}
	}
}
