package monitor

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	monitorv1 "github.com/lethehq/lethe/gen/go/lethe/monitor/v1"
)

// loader is the widget loader on a host page: it starts the visit with
// write_only and holds the page token.
func (e *env) loader(account string) *visitor {
	e.t.Helper()
	l := &visitor{e: e, ua: chromeWindows, writeOnly: true}
	res := l.mustTrack(account, "https://shop.example/")
	if res.PageToken == "" || res.VisitToken != "" || res.VisitorId == "" {
		e.t.Fatalf("Track write_only: page token %q, visit token %q, visitor %q", res.PageToken, res.VisitToken, res.VisitorId)
	}
	return l
}

// claim calls ClaimVisit with the page token, from origin ("": none).
func (e *env) claim(pageToken, origin string) (*monitorv1.ClaimVisitResponse, error) {
	req := connect.NewRequest(&monitorv1.ClaimVisitRequest{})
	if pageToken != "" {
		req.Header().Set("Authorization", "Bearer "+pageToken)
	}
	if origin != "" {
		req.Header().Set("Origin", origin)
	}
	res, err := e.client.ClaimVisit(context.Background(), req)
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

func TestPageToken_StoredAsHashOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	l := e.loader("acct-a")
	if !IsPageToken(l.token) {
		t.Fatalf("page token %q lacks the %q prefix", l.token, PageTokenPrefix)
	}
	var page, tok []byte
	if err := e.scratch.R.QueryRow(`SELECT page_hash, token_hash FROM monitor_visits WHERE id = ?`, l.id).Scan(&page, &tok); err != nil {
		t.Fatal(err)
	}
	if len(page) != 32 || bytes.Equal(page, tok) {
		t.Fatalf("page_hash %x, token_hash %x: want two different SHA-256 hashes", page, tok)
	}
	if files := e.filesContaining(l.token, strings.TrimPrefix(l.token, PageTokenPrefix)); len(files) > 0 {
		t.Fatalf("the page token is stored in clear in %v", files)
	}
}

func TestPageToken_WritesToItsOwnVisit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ops := e.watchVisitors(ctx, opA)
	snapshot(t, ops)
	l := e.loader("acct-a")

	// Track: a page view of the same visit, no new token.
	res := l.mustTrack("acct-a", "https://shop.example/pricing")
	if res.VisitorId != l.id || res.PageToken != "" || res.VisitToken != "" {
		t.Fatalf("second Track: %+v, want visitor %s and no token", res, l.id)
	}
	hb := connect.NewRequest(&monitorv1.HeartbeatRequest{})
	l.header(hb.Header())
	if _, err := e.client.Heartbeat(ctx, hb); err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}
	if err := l.setData(map[string]string{"plan": "gold"}); err != nil {
		t.Fatalf("SetCustomData: %v", err)
	}
	_, key := e.mintKey(opA)
	ticket, err := e.mintTicket(key, map[string]string{"customer_id": "C-7"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.identify(ticket); err != nil {
		t.Fatalf("Identify: %v", err)
	}
	st := l.watchVisit(ctx) // WatchVisit: started, and the visit stays on site
	defer st.Close()

	// Operators see what the page token wrote (the stream ends with the
	// test's context if they never do).
	var got *monitorv1.Visitor
	for got == nil || len(got.Pages) != 2 || got.PageData["plan"] != "gold" || got.VerifiedData["customer_id"] != "C-7" {
		if !ops.Receive() {
			t.Fatalf("operators never saw the visit as the page token wrote it (last %v): %v", got, ops.Err())
		}
		for _, v := range ops.Msg().Visitors {
			if v.VisitorId == l.id {
				got = v
			}
		}
	}

	lv := connect.NewRequest(&monitorv1.LeaveRequest{})
	l.header(lv.Header())
	if _, err := e.client.Leave(ctx, lv); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	if n := e.count("monitor_visits"); n != 1 {
		t.Fatalf("%d visits, want 1", n)
	}
}

func TestPageToken_EverythingElseRefusedAndNothingReadable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	ctx := context.Background()
	l := e.loader("acct-a")
	if err := l.setData(map[string]string{"plan": "SECRET-PLAN-5e1"}); err != nil {
		t.Fatal(err)
	}
	inv, err := e.svc.Invite(asOp(opA), connect.NewRequest(&monitorv1.InviteRequest{VisitorId: l.id, Message: "Hi"}))
	if err != nil {
		t.Fatal(err)
	}

	err = l.respond(inv.Msg.InvitationId, true)
	wantCode(t, "RespondToInvitation with a page token", err, connect.CodePermissionDenied)
	if !strings.Contains(err.Error(), "page token") {
		t.Errorf("refusal %q does not say why", err)
	}
	// The privacy export (lethe.privacy.v1 GetMyData, ForgetMe,
	// StopTracking through privacy.Visits) reads nothing with it.
	_, _, d, err := e.svc.VisitByToken(ctx, l.token)
	wantCode(t, "VisitByToken with a page token", err, connect.CodePermissionDenied)
	if d != nil {
		t.Fatalf("VisitByToken with a page token answered data: %v", d)
	}
	// The operator procedures are not the visitor's either.
	req := connect.NewRequest(&monitorv1.WatchVisitorsRequest{})
	l.header(req.Header())
	if st, err := e.client.WatchVisitors(ctx, req); err == nil {
		if st.Receive() {
			t.Fatalf("WatchVisitors with a page token answered %v", st.Msg())
		}
		st.Close()
	}
	// An unknown page token is refused the same way on a visit-token call:
	// the form alone decides, before any lookup.
	stranger := &visitor{e: e, token: PageTokenPrefix + "unknown"}
	wantCode(t, "RespondToInvitation with an unknown page token", stranger.respond("x", true), connect.CodePermissionDenied)
	wantCode(t, "Heartbeat with an unknown page token", func() error {
		r := connect.NewRequest(&monitorv1.HeartbeatRequest{})
		stranger.header(r.Header())
		_, err := e.client.Heartbeat(ctx, r)
		return err
	}(), connect.CodeUnauthenticated)

	// The invitation is still pending: the refused call changed nothing.
	v, err := e.svc.store.Visit(ctx, l.id)
	if err != nil {
		t.Fatal(err)
	}
	if v.InvState != monitorv1.InvitationState_INVITATION_STATE_PENDING {
		t.Fatalf("invitation state %v after a refused answer", v.InvState)
	}
}

func TestClaimVisit_OwnOriginGetsVisitTokenOthersRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	ctx := context.Background()
	l := e.loader("acct-a")
	self := e.srv.URL // https://127.0.0.1:port: what the panel's iframe sends

	for _, o := range []string{"https://shop.example", "null", strings.Replace(self, "https://", "http://", 1), self + "/path", ""} {
		_, err := e.claim(l.token, o)
		wantCode(t, "ClaimVisit from Origin "+o, err, connect.CodePermissionDenied)
	}
	_, err := e.claim("", self)
	wantCode(t, "ClaimVisit without a token", err, connect.CodeUnauthenticated)
	_, err = e.claim(PageTokenPrefix+"unknown", self)
	wantCode(t, "ClaimVisit with an unknown page token", err, connect.CodeUnauthenticated)

	c1, err := e.claim(l.token, self)
	if err != nil {
		t.Fatalf("ClaimVisit from the own origin: %v", err)
	}
	if c1.VisitorId != l.id || c1.VisitToken == "" || IsPageToken(c1.VisitToken) {
		t.Fatalf("ClaimVisit: %+v, want visitor %s and a visit token", c1, l.id)
	}
	// The visit token reads the visit and answers invitations.
	if _, id, _, err := e.svc.VisitByToken(ctx, c1.VisitToken); err != nil || id != l.id {
		t.Fatalf("VisitByToken with the claimed token: %q, %v", id, err)
	}
	panel := &visitor{e: e, token: c1.VisitToken}
	if err := panel.setData(map[string]string{"from": "panel"}); err != nil {
		t.Fatal(err)
	}

	// A second claim (the panel reloaded): a new token, the old one dead.
	c2, err := e.claim(l.token, self)
	if err != nil {
		t.Fatal(err)
	}
	if c2.VisitToken == c1.VisitToken {
		t.Fatal("a second claim answered the same visit token")
	}
	_, _, _, err = e.svc.VisitByToken(ctx, c1.VisitToken)
	if !isNotFound(err) {
		t.Fatalf("the first visit token after a second claim: %v, want not found", err)
	}
	wantCode(t, "SetCustomData with the replaced visit token", panel.setData(nil), connect.CodeUnauthenticated)
	// The loader's page token keeps working.
	l.mustTrack("acct-a", "https://shop.example/after-claim")
}

func TestPageToken_DestroyedWithTheVisit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	ctx := context.Background()
	l := e.loader("acct-a")
	c, err := e.claim(l.token, e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.DestroyVisit(ctx, "acct-a", l.id); err != nil {
		t.Fatal(err)
	}
	if n := e.count("monitor_visits"); n != 0 {
		t.Fatalf("%d visits left", n)
	}
	_, err = e.claim(l.token, e.srv.URL)
	wantCode(t, "ClaimVisit after the visit was destroyed", err, connect.CodeUnauthenticated)
	hb := connect.NewRequest(&monitorv1.HeartbeatRequest{})
	l.header(hb.Header())
	_, err = e.client.Heartbeat(ctx, hb)
	wantCode(t, "Heartbeat with the page token of a destroyed visit", err, connect.CodeUnauthenticated)
	if _, _, _, err := e.svc.VisitByToken(ctx, c.VisitToken); !isNotFound(err) {
		t.Fatalf("visit token of a destroyed visit: %v", err)
	}
	// The next page view starts a new visit with a new page token.
	old := l.token
	l.token = ""
	l.mustTrack("acct-a", "https://shop.example/")
	if l.token == old || !IsPageToken(l.token) {
		t.Fatalf("new visit: page token %q", l.token)
	}
}

func TestPageToken_GPCRecordsNothingAndDestroysTheVisit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	gpcLoader := &visitor{e: e, writeOnly: true, gpc: true}
	res := gpcLoader.mustTrack("acct-a", "https://shop.example/")
	if !res.GpcHonoured || res.PageToken != "" || res.VisitToken != "" || res.VisitorId != "" {
		t.Fatalf("Track write_only with GPC: %+v", res)
	}
	if n := e.count("monitor_visits"); n != 0 {
		t.Fatalf("%d visits recorded under GPC", n)
	}
	// GPC turned on during a loader's visit destroys it.
	l := e.loader("acct-a")
	l.gpc = true
	if res := l.mustTrack("acct-a", "https://shop.example/2"); !res.GpcHonoured {
		t.Fatalf("Track with GPC: %+v", res)
	}
	if n := e.count("monitor_visits"); n != 0 {
		t.Fatalf("%d visits left after GPC was turned on", n)
	}
}

func TestTrack_OnlyFromTheAccountsWebsites(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.accounts.setOrigins("acct-a", "https://shop.example", "self")

	for origin, want := range map[string]connect.Code{
		"https://shop.example":     0,
		"https://SHOP.example:443": 0,
		"":                         0, // an SDK client sends no Origin
		e.srv.URL:                  0, // the Lethe server's own pages
		"https://evil.example":     connect.CodePermissionDenied,
		"http://shop.example":      connect.CodePermissionDenied,
		"null":                     connect.CodePermissionDenied,
	} {
		for _, writeOnly := range []bool{true, false} {
			v := &visitor{e: e, origin: origin, writeOnly: writeOnly}
			_, err := v.track("acct-a", "https://shop.example/")
			if want == 0 {
				if err != nil {
					t.Errorf("Track from %q (write_only %v): %v", origin, writeOnly, err)
				}
				continue
			}
			wantCode(t, "Track from "+origin, err, want)
		}
	}
	// A visit started on a listed site cannot be continued from another.
	l := &visitor{e: e, origin: "https://shop.example", writeOnly: true}
	l.mustTrack("acct-a", "https://shop.example/")
	before := e.count("monitor_pages")
	l.origin = "https://evil.example"
	_, err := l.track("acct-a", "https://evil.example/")
	wantCode(t, "Track of a known visit from an unlisted site", err, connect.CodePermissionDenied)
	if n := e.count("monitor_pages"); n != before {
		t.Fatalf("pages %d -> %d after a refused Track", before, n)
	}
}

// Every call with a page token looks its visit up by index, never by a scan
// of all visits.
func TestPageToken_LookupsUseTheIndex(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	for _, q := range []string{qVisitByPage, qClaim} {
		rows, err := e.scratch.R.Query(`EXPLAIN QUERY PLAN `+q, []byte("x"), []byte("y"))
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if got := strings.Join(plan, "; "); !strings.Contains(got, "USING INDEX monitor_visits_page_idx") || strings.Contains(got, "SCAN") {
			t.Errorf("%s: plan %q, want a search by monitor_visits_page_idx", q, got)
		}
	}
}
