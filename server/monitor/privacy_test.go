package monitor

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"

	monitorv1 "github.com/lethehq/lethe/gen/go/lethe/monitor/v1"
	privacyv1 "github.com/lethehq/lethe/gen/go/lethe/privacy/v1"
	"github.com/lethehq/lethe/server/audit"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/privacy"
)

// The privacy service reads and destroys visits through this interface.
var _ privacy.Visits = (*Service)(nil)

// count returns the rows of a scratch table.
func (e *env) count(table string) int {
	e.t.Helper()
	var n int
	if err := e.scratch.R.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func counts(cs []*privacyv1.DestroyedCount) map[string]int64 {
	out := map[string]int64{}
	for _, c := range cs {
		out[c.Category] = c.Count
	}
	return out
}

func TestVisitByToken_TheWholeVisitAndNothingOfAnother(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{Retention: 3 * time.Minute})
	ctx := context.Background()
	_, key := e.mintKey(opA)
	ticket, err := e.mintTicket(key, map[string]string{"customer_id": "C-1042"}, 0)
	if err != nil {
		t.Fatal(err)
	}

	vis := &visitor{e: e, ua: chromeWindows}
	vis.mustTrack("acct-a", "https://shop.example/")
	vis.mustTrack("acct-a", "https://shop.example/checkout")
	if err := vis.setData(map[string]string{"plan": "gold"}); err != nil {
		t.Fatal(err)
	}
	if err := vis.identify(ticket); err != nil {
		t.Fatal(err)
	}
	// Another visit of the same account and one of another account.
	other := &visitor{e: e, ua: firefoxLinux}
	other.mustTrack("acct-a", "https://shop.example/OTHER-PAGE-3c1")
	if err := other.setData(map[string]string{"plan": "OTHER-VALUE-9d2"}); err != nil {
		t.Fatal(err)
	}
	(&visitor{e: e}).mustTrack("acct-b", "https://b.example/OTHER-ACCOUNT-77e")

	acct, id, d, err := e.svc.VisitByToken(ctx, vis.token)
	if err != nil {
		t.Fatal(err)
	}
	if acct != "acct-a" || id != vis.id {
		t.Fatalf("VisitByToken: account %q visitor %q, want acct-a %q", acct, id, vis.id)
	}
	if !d.OnSite || d.FirstSeen == nil || d.LastSeen == nil || d.LastSeen.AsTime().Before(d.FirstSeen.AsTime()) {
		t.Fatalf("times: on_site %v first %v last %v", d.OnSite, d.FirstSeen, d.LastSeen)
	}
	if len(d.Pages) != 2 || d.Pages[0].Url != "https://shop.example/" || d.Pages[1].Url != "https://shop.example/checkout" ||
		d.Pages[1].Title != "Page https://shop.example/checkout" || d.Pages[1].ViewedAt == nil {
		t.Fatalf("pages: %v", d.Pages)
	}
	if d.Browser != "Chrome" || d.Os != "Windows" || d.Ip == "" || d.IpHidden {
		t.Fatalf("browser %q os %q ip %q hidden %v", d.Browser, d.Os, d.Ip, d.IpHidden)
	}
	wantData := []*privacyv1.CustomDatum{{Key: "customer_id", Value: "C-1042", Verified: true}, {Key: "plan", Value: "gold"}}
	if len(d.CustomData) != len(wantData) {
		t.Fatalf("custom data: %v", d.CustomData)
	}
	for i, w := range wantData {
		if g := d.CustomData[i]; g.Key != w.Key || g.Value != w.Value || g.Verified != w.Verified {
			t.Fatalf("custom data %d: %v, want %v", i, g, w)
		}
	}
	if d.Destruction.GetRule() != "3 minutes after you leave the site" || d.Destruction.NotAfter != nil {
		t.Fatalf("destruction while on site: %v", d.Destruction)
	}
	j, err := protojson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"OTHER-PAGE-3c1", "OTHER-VALUE-9d2", "OTHER-ACCOUNT-77e", other.id, "Firefox"} {
		if strings.Contains(string(j), s) {
			t.Fatalf("the visit data shows %q of another visit: %s", s, j)
		}
	}

	// Hidden IP: neither shown nor said to be there.
	e.accounts.setHide("acct-a", true)
	if _, _, d, err = e.svc.VisitByToken(ctx, vis.token); err != nil {
		t.Fatal(err)
	}
	if d.Ip != "" || d.Host != "" || !d.IpHidden {
		t.Fatalf("hidden: ip %q host %q ip_hidden %v", d.Ip, d.Host, d.IpHidden)
	}

	// Once the visitor left, the time it will be gone by is known.
	left := time.Now().Add(2 * time.Minute)
	if err := e.svc.sweep(ctx, left); err != nil {
		t.Fatal(err)
	}
	if _, _, d, err = e.svc.VisitByToken(ctx, vis.token); err != nil {
		t.Fatal(err)
	}
	if d.OnSite || !d.Destruction.NotAfter.AsTime().Equal(left.Add(3*time.Minute).Truncate(time.Millisecond)) {
		t.Fatalf("after leaving: on_site %v destruction %v, want not after %v", d.OnSite, d.Destruction, left.Add(3*time.Minute))
	}

	for _, tok := range []string{"", "not-a-token", other.token + "x"} {
		if _, _, _, err := e.svc.VisitByToken(ctx, tok); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("VisitByToken(%q): %v, want not found", tok, err)
		}
	}
}

func TestDestroyVisit_GoneFromEveryFileAndFromTheOperatorsList(t *testing.T) {
	t.Parallel()
	// Retention long enough that only DestroyVisit can have destroyed it.
	e := newEnv(t, Options{Retention: time.Hour, CoalesceInterval: 20 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const urlCanary, titleCanary, dataCanary = "CANARY-URL-d41e", "CANARY-TITLE-88b0", "CANARY-DATA-2f6a"

	vis := &visitor{e: e}
	vis.mustTrack("acct-a", "https://shop.example/")
	req := connect.NewRequest(&monitorv1.TrackRequest{AccountId: "acct-a",
		Page: &monitorv1.Page{Url: "https://shop.example/" + urlCanary, Title: titleCanary}})
	vis.header(req.Header())
	if _, err := e.client.Track(ctx, req); err != nil {
		t.Fatal(err)
	}
	if err := vis.setData(map[string]string{"email": dataCanary, "plan": "gold"}); err != nil {
		t.Fatal(err)
	}
	stays := &visitor{e: e}
	stays.mustTrack("acct-a", "https://shop.example/stays")
	if hits := e.filesContaining(urlCanary, titleCanary, dataCanary); len(hits) == 0 {
		t.Fatal("canaries not on disk before destruction")
	}

	ops := e.watchVisitors(ctx, opA)
	if snap := snapshot(t, ops); snap[vis.id] == nil || snap[stays.id] == nil {
		t.Fatalf("snapshot: %v", snap)
	}
	own := vis.watchVisit(ctx)

	// Another account cannot destroy it.
	if got, err := e.svc.DestroyVisit(ctx, "acct-b", vis.id); err != nil || got != nil {
		t.Fatalf("DestroyVisit from another account: %v %v", got, err)
	}

	got, err := e.svc.DestroyVisit(ctx, "acct-a", vis.id)
	if err != nil {
		t.Fatal(err)
	}
	if c := counts(got); len(c) != 3 || c["visit"] != 1 || c["pages"] != 2 || c["custom data"] != 2 {
		t.Fatalf("DestroyVisit counted %v", c)
	}
	// Gone from every file before DestroyVisit returned.
	if hits := e.filesContaining(urlCanary, titleCanary, dataCanary); len(hits) > 0 {
		t.Fatalf("canaries survive DestroyVisit: %v", hits)
	}
	for _, table := range []string{"monitor_pages", "monitor_custom_data", "monitor_visits"} {
		if n := e.count(table); n != map[string]int{"monitor_pages": 1, "monitor_custom_data": 0, "monitor_visits": 1}[table] {
			t.Fatalf("%s: %d rows left", table, n)
		}
	}

	// The operators see the visitor leave, the other stays.
	for left := false; !left; {
		if !ops.Receive() {
			t.Fatalf("operator stream ended: %v", ops.Err())
		}
		for _, v := range ops.Msg().Visitors {
			if v.VisitorId == vis.id {
				t.Fatalf("destroyed visitor sent as on site: %v", v)
			}
		}
		left = slices.Contains(ops.Msg().LeftVisitorIds, vis.id)
		if slices.Contains(ops.Msg().LeftVisitorIds, stays.id) {
			t.Fatal("the other visitor left too")
		}
	}
	// The visitor's own stream ends.
	for ended := false; !ended; {
		if !own.Receive() {
			t.Fatalf("visitor stream closed without ended: %v", own.Err())
		}
		ended = own.Msg().GetEnded() != nil
	}

	// The token is unknown; destroying again answers nothing.
	if _, _, _, err := e.svc.VisitByToken(ctx, vis.token); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("VisitByToken after destruction: %v", err)
	}
	if got, err := e.svc.DestroyVisit(ctx, "acct-a", vis.id); err != nil || got != nil {
		t.Fatalf("second DestroyVisit: %v %v", got, err)
	}
	if e.svc.Destroyed() != 1 {
		t.Fatalf("Destroyed() = %d", e.svc.Destroyed())
	}
	// A later Track starts a new visit.
	old := vis.id
	res := vis.mustTrack("acct-a", "https://shop.example/")
	if res.VisitToken == "" || res.VisitorId == old {
		t.Fatalf("Track after destruction: %+v", res)
	}
	if logs := e.logs.String(); strings.Contains(logs, dataCanary) || strings.Contains(logs, urlCanary) {
		t.Fatalf("logs carry visit data: %s", logs)
	}
}

func TestTrack_GPCRecordsNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	ctx := context.Background()

	vis := &visitor{e: e, gpc: true}
	res := vis.mustTrack("acct-a", "https://shop.example/GPC-PAGE-5e")
	if !res.GpcHonoured || res.VisitToken != "" || res.VisitorId != "" {
		t.Fatalf("Track with GPC: %+v", res)
	}
	if n := e.count("monitor_visits"); n != 0 {
		t.Fatalf("%d visit rows after a GPC Track", n)
	}
	if hits := e.filesContaining("GPC-PAGE-5e"); len(hits) > 0 {
		t.Fatalf("the page of a GPC visitor is on disk: %v", hits)
	}
	// Without a token the other visitor calls stay refused.
	req := connect.NewRequest(&monitorv1.HeartbeatRequest{})
	vis.header(req.Header())
	_, err := e.client.Heartbeat(ctx, req)
	wantCode(t, "Heartbeat with GPC", err, connect.CodeUnauthenticated)

	// Without GPC, a visit.
	plain := &visitor{e: e}
	if res := plain.mustTrack("acct-a", "https://shop.example/"); res.GpcHonoured || res.VisitToken == "" {
		t.Fatalf("Track without GPC: %+v", res)
	}
	if n := e.count("monitor_visits"); n != 1 {
		t.Fatalf("%d visit rows, want 1", n)
	}
}

func TestTrack_GPCTurnedOnDestroysTheVisit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{Retention: time.Hour})
	ctx := context.Background()
	vis := &visitor{e: e}
	vis.mustTrack("acct-a", "https://shop.example/")
	if err := vis.setData(map[string]string{"email": "GPC-CANARY-a0c"}); err != nil {
		t.Fatal(err)
	}
	// Someone else's visit on another account, whose token is sent to
	// acct-a with GPC: never touched (P11).
	b := &visitor{e: e}
	bID := b.mustTrack("acct-b", "https://b.example/").VisitorId
	b.gpc = true
	if res := b.mustTrack("acct-a", "https://shop.example/"); !res.GpcHonoured {
		t.Fatalf("Track with GPC: %+v", res)
	}
	if _, err := e.svc.store.Visit(ctx, bID); err != nil {
		t.Fatalf("another account's visit was touched: %v", err)
	}

	vis.gpc = true
	if res := vis.mustTrack("acct-a", "https://shop.example/next"); !res.GpcHonoured || res.VisitorId != "" {
		t.Fatalf("Track with GPC turned on: %+v", res)
	}
	if _, _, _, err := e.svc.VisitByToken(ctx, vis.token); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("the visit survives GPC: %v", err)
	}
	if hits := e.filesContaining("GPC-CANARY-a0c"); len(hits) > 0 {
		t.Fatalf("canary survives: %v", hits)
	}
}

func TestTrack_GPCIgnoredByTheAccountRecordsAVisit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.accounts.setGPCIgnored("acct-b", true)
	vis := &visitor{e: e, gpc: true}
	res := vis.mustTrack("acct-b", "https://b.example/")
	if res.GpcHonoured || res.VisitToken == "" || res.VisitorId == "" {
		t.Fatalf("Track with GPC on an account ignoring it: %+v", res)
	}
	if n := e.count("monitor_visits"); n != 1 {
		t.Fatalf("%d visit rows, want 1", n)
	}
}

func TestCustomDataKeys_KeysWithinTheWindowNeverValues(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	ctx := context.Background()
	const pageValue, verifiedValue, trackValue = "KEYS-VALUE-PAGE-1b", "KEYS-VALUE-VERIFIED-2c", "KEYS-VALUE-TRACK-3d"
	start := time.Now().Add(-time.Second)

	vis := &visitor{e: e}
	vis.mustTrack("acct-a", "https://shop.example/")
	if err := vis.setData(map[string]string{"plan": pageValue, "email": pageValue}); err != nil {
		t.Fatal(err)
	}
	_, key := e.mintKey(opA)
	ticket, err := e.mintTicket(key, map[string]string{"customer_id": verifiedValue}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := vis.identify(ticket); err != nil {
		t.Fatal(err)
	}
	ticket, err = e.mintTicket(key, map[string]string{"tier": trackValue}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Track(ctx, connect.NewRequest(&monitorv1.TrackRequest{AccountId: "acct-a",
		Page: &monitorv1.Page{Url: "https://shop.example/"}, Ticket: ticket})); err != nil {
		t.Fatal(err)
	}
	b := &visitor{e: e}
	b.mustTrack("acct-b", "https://b.example/")
	if err := b.setData(map[string]string{"b_only": "x"}); err != nil {
		t.Fatal(err)
	}

	got, err := e.svc.CustomDataKeys(ctx, "acct-a", start)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"customer_id", "email", "plan", "tier"}; !slices.Equal(got, want) {
		t.Fatalf("CustomDataKeys(acct-a) = %v, want %v", got, want)
	}
	if got, _ := e.svc.CustomDataKeys(ctx, "acct-b", start); !slices.Equal(got, []string{"b_only"}) {
		t.Fatalf("CustomDataKeys(acct-b) = %v", got)
	}
	if got, _ := e.svc.CustomDataKeys(ctx, "acct-a", time.Now().Add(time.Hour)); len(got) != 0 {
		t.Fatalf("keys after the window: %v", got)
	}
	// No value reaches lethe.db.
	for _, f := range e.filesContaining(pageValue, verifiedValue, trackValue) {
		if strings.HasPrefix(filepath.Base(f), "lethe.db") {
			t.Fatalf("a custom data value is in %s", f)
		}
	}

	// A key is written at most once an hour.
	lastSeen := func() int64 {
		var at int64
		if err := e.durable.R.QueryRow(`SELECT last_seen FROM monitor_custom_keys WHERE account_id = 'acct-a' AND key = 'plan'`).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	before := lastSeen()
	time.Sleep(5 * time.Millisecond)
	if err := vis.setData(map[string]string{"plan": "again"}); err != nil {
		t.Fatal(err)
	}
	if after := lastSeen(); after != before {
		t.Fatalf("last_seen rewritten within the hour: %d then %d", before, after)
	}

	// The janitor forgets keys two days old.
	if err := e.svc.sweep(ctx, time.Now().Add(CustomKeyRetention+time.Hour)); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := e.durable.R.QueryRow(`SELECT count(*) FROM monitor_custom_keys`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d keys after two days (%v)", n, err)
	}
}

func TestVisitsWithValue_CaseInsensitiveWithinTheAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	ctx := context.Background()
	_, key := e.mintKey(opA)

	page := &visitor{e: e}
	page.mustTrack("acct-a", "https://shop.example/")
	if err := page.setData(map[string]string{"email": "Ann@Example.com"}); err != nil {
		t.Fatal(err)
	}
	verified := &visitor{e: e}
	verified.mustTrack("acct-a", "https://shop.example/account")
	ticket, err := e.mintTicket(key, map[string]string{"login": "ann@example.COM"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := verified.identify(ticket); err != nil {
		t.Fatal(err)
	}
	unrelated := &visitor{e: e}
	unrelated.mustTrack("acct-a", "https://shop.example/")
	if err := unrelated.setData(map[string]string{"email": "bob@example.com", "name": "ÄRGER"}); err != nil {
		t.Fatal(err)
	}
	b := &visitor{e: e}
	b.mustTrack("acct-b", "https://b.example/")
	if err := b.setData(map[string]string{"email": "ann@example.com"}); err != nil {
		t.Fatal(err)
	}

	ids := func(account, value string) []string {
		t.Helper()
		found, err := e.svc.VisitsWithValue(ctx, account, value)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range found {
			if len(f.Visit.GetPages()) == 0 || len(f.Visit.CustomData) == 0 {
				t.Fatalf("found visit without its data: %v", f)
			}
			out = append(out, f.VisitorId)
		}
		slices.Sort(out)
		return out
	}
	want := []string{page.id, verified.id}
	slices.Sort(want)
	if got := ids("acct-a", " ANN@example.com "); !slices.Equal(got, want) {
		t.Fatalf("acct-a: %v, want %v", got, want)
	}
	if got := ids("acct-b", "ann@EXAMPLE.com"); !slices.Equal(got, []string{b.id}) {
		t.Fatalf("acct-b: %v, want %v", got, []string{b.id})
	}
	if got := ids("acct-a", "ärger"); !slices.Equal(got, []string{unrelated.id}) {
		t.Fatalf("non-ASCII: %v", got)
	}
	for _, v := range []string{"", "ann@example", "nobody@example.com"} {
		if got := ids("acct-a", v); len(got) != 0 {
			t.Fatalf("%q found %v", v, got)
		}
	}
}

// recorder keeps the audit entries it is given.
type recorder struct {
	mu      sync.Mutex
	entries []audit.Entry
}

func (r *recorder) Record(_ context.Context, e audit.Entry) {
	r.mu.Lock()
	r.entries = append(r.entries, e)
	r.mu.Unlock()
}

func (r *recorder) Count(context.Context, string, string, int64) {}

func (r *recorder) all() []audit.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.entries)
}

func TestAPIKeys_CreatedAndRevokedAreAudited(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	e := newEnv(t, Options{Audit: rec})
	id, _ := e.mintKey(opA)
	if _, err := e.svc.RevokeApiKey(asOp(opA), connect.NewRequest(&monitorv1.RevokeApiKeyRequest{Id: id})); err != nil {
		t.Fatal(err)
	}
	// Not found: nothing happened, nothing recorded.
	_, err := e.svc.RevokeApiKey(asOp(opB), connect.NewRequest(&monitorv1.RevokeApiKeyRequest{Id: id}))
	wantCode(t, "revoke again", err, connect.CodeNotFound)

	got := rec.all()
	if len(got) != 2 {
		t.Fatalf("entries: %+v", got)
	}
	for i, action := range []string{audit.APIKeyCreated, audit.APIKeyRevoked} {
		g := got[i]
		if g.Action != action || g.AccountID != "acct-a" || g.TargetID != id || g.ActorKind != audit.ActorOperator ||
			g.ActorID != opA.ID || g.At.IsZero() {
			t.Fatalf("entry %d: %+v, want %s of %s by %s", i, g, action, id, opA.ID)
		}
	}
}
