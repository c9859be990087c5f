package monitor

import (
	"context"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	monitorv1 "github.com/lethehq/lethe/gen/go/lethe/monitor/v1"
)

func TestTicket_IdentifyAttachesVerifiedData(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	_, key := e.mintKey(opA)
	ticket, err := e.mintTicket(key, map[string]string{"customer_id": "C-1042", "plan": "gold"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ticket, TicketPrefix) {
		t.Fatalf("ticket %q", ticket)
	}
	vis := &visitor{e: e}
	vis.mustTrack("acct-a", "https://shop.example/")
	if err := vis.setData(map[string]string{"plan": "platinum (the page says so)"}); err != nil {
		t.Fatal(err)
	}
	if err := vis.identify(ticket); err != nil {
		t.Fatal(err)
	}
	st, err := e.svc.store.Visitor(context.Background(), vis.id)
	if err != nil {
		t.Fatal(err)
	}
	if st.v.VerifiedData["customer_id"] != "C-1042" || st.v.VerifiedData["plan"] != "gold" || st.v.PageData["plan"] != "platinum (the page says so)" {
		t.Fatalf("verified %v page %v", st.v.VerifiedData, st.v.PageData)
	}
	// The ticket's data is not kept once used, and the ticket itself never was.
	if hits := e.filesContaining(ticket); len(hits) > 0 {
		t.Fatalf("ticket on disk: %v", hits)
	}
	var n int
	e.scratch.R.QueryRow(`SELECT count(*) FROM monitor_tickets WHERE data IS NOT NULL`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d used tickets still hold data", n)
	}
}

func TestTicket_TrackRedeemsDataTicket(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	_, key := e.mintKey(opA)
	ticket, err := e.mintTicket(key, map[string]string{"email_hash": "ab12"}, 30)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.client.Track(context.Background(), connect.NewRequest(&monitorv1.TrackRequest{
		AccountId: "acct-a", Page: &monitorv1.Page{Url: "https://shop.example/"}, Ticket: ticket}))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := e.svc.store.Visitor(context.Background(), res.Msg.VisitorId)
	if st.v.VerifiedData["email_hash"] != "ab12" {
		t.Fatalf("verified %v", st.v.VerifiedData)
	}
	// A bad ticket refuses the whole Track: nothing is stored.
	_, err = e.client.Track(context.Background(), connect.NewRequest(&monitorv1.TrackRequest{
		AccountId: "acct-a", Page: &monitorv1.Page{Url: "https://shop.example/"}, Ticket: ticket}))
	wantCode(t, "Track with a used ticket", err, connect.CodeFailedPrecondition)
	var n int
	e.scratch.R.QueryRow(`SELECT count(*) FROM monitor_visits`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d visits", n)
	}
}

// Expired, reused, wrong account, revoked key: each refused with its
// documented code.
func TestTicket_RefusedWithDocumentedCodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	keyAID, keyA := e.mintKey(opA)
	_, keyB := e.mintKey(opB)
	vis := &visitor{e: e}
	vis.mustTrack("acct-a", "https://shop.example/")
	data := map[string]string{"customer_id": "C-1"}

	// Reused.
	tk, err := e.mintTicket(keyA, data, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := vis.identify(tk); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "reused ticket", vis.identify(tk), connect.CodeFailedPrecondition)

	// Unknown.
	wantCode(t, "unknown ticket", vis.identify(TicketPrefix+"nope"), connect.CodeNotFound)

	// Wrong account: B's ticket on A's visitor; it stays usable for B.
	tkB, err := e.mintTicket(keyB, data, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "other account's ticket", vis.identify(tkB), connect.CodePermissionDenied)
	visB := &visitor{e: e}
	visB.mustTrack("acct-b", "https://b.example/")
	if err := visB.identify(tkB); err != nil {
		t.Fatalf("B's own ticket: %v", err)
	}

	// Expired.
	tkOld, err := e.mintTicket(keyA, data, 1)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	wantCode(t, "expired ticket", vis.identify(tkOld), connect.CodeFailedPrecondition)
	// The janitor clears an expired ticket's data.
	if err := e.svc.sweep(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	var n int
	e.scratch.R.QueryRow(`SELECT count(*) FROM monitor_tickets WHERE data IS NOT NULL`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d spent tickets hold data", n)
	}
	// Forgotten some minutes after expiry: unknown.
	if err := e.svc.sweep(context.Background(), time.Now().Add(ticketGrace+time.Minute)); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "forgotten ticket", vis.identify(tkOld), connect.CodeNotFound)

	// Revoked key: a ticket it minted is refused, and it mints no more.
	tkRev, err := e.mintTicket(keyA, data, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RevokeApiKey(asOp(opA), connect.NewRequest(&monitorv1.RevokeApiKeyRequest{Id: keyAID})); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "ticket of a revoked key", vis.identify(tkRev), connect.CodeFailedPrecondition)
	_, err = e.mintTicket(keyA, data, 0)
	wantCode(t, "mint with a revoked key", err, connect.CodeUnauthenticated)
	_, err = e.mintTicket("lk_"+strings.Repeat("x", 43), data, 0)
	wantCode(t, "mint with an unknown key", err, connect.CodeUnauthenticated)
	_, err = e.mintTicket(vis.token, data, 0)
	wantCode(t, "mint with a visit token", err, connect.CodeUnauthenticated)
}

func TestAPIKeys_CreateListRevokeStoresOnlyHash(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	ctx := asOp(opA)
	id, key := e.mintKey(opA)
	if !strings.HasPrefix(key, "lk_") || len(key) < 40 {
		t.Fatalf("key %q", key)
	}
	if _, err := e.mintTicket(key, nil, 0); err != nil {
		t.Fatal(err)
	}
	list, err := e.svc.ListApiKeys(ctx, connect.NewRequest(&monitorv1.ListApiKeysRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Msg.ApiKeys) != 1 {
		t.Fatalf("keys: %v", list.Msg.ApiKeys)
	}
	k := list.Msg.ApiKeys[0]
	if k.Id != id || k.Name != "shop backend" || !strings.HasPrefix(key, k.Prefix) || len(k.Prefix) != 11 || k.LastUsedAt == nil || k.CreatedAt == nil {
		t.Fatalf("listed %v", k)
	}
	if hits := e.filesContaining(key, key[len(k.Prefix):]); len(hits) > 0 {
		t.Fatalf("key secret on disk: %v", hits)
	}
	// Another account's admin neither lists nor revokes it (P11).
	other, _ := e.svc.ListApiKeys(asOp(opB), connect.NewRequest(&monitorv1.ListApiKeysRequest{}))
	if len(other.Msg.ApiKeys) != 0 {
		t.Fatalf("B lists A's keys: %v", other.Msg.ApiKeys)
	}
	_, err = e.svc.RevokeApiKey(asOp(opB), connect.NewRequest(&monitorv1.RevokeApiKeyRequest{Id: id}))
	wantCode(t, "B revokes A's key", err, connect.CodeNotFound)
	// Operators who are not admins cannot manage keys.
	_, err = e.svc.CreateApiKey(asOp(opA2), connect.NewRequest(&monitorv1.CreateApiKeyRequest{Name: "x"}))
	wantCode(t, "non-admin creates", err, connect.CodePermissionDenied)
	_, err = e.svc.CreateApiKey(ctx, connect.NewRequest(&monitorv1.CreateApiKeyRequest{Name: "  "}))
	wantCode(t, "empty name", err, connect.CodeInvalidArgument)
	if _, err := e.svc.RevokeApiKey(ctx, connect.NewRequest(&monitorv1.RevokeApiKeyRequest{Id: id})); err != nil {
		t.Fatal(err)
	}
	list, _ = e.svc.ListApiKeys(ctx, connect.NewRequest(&monitorv1.ListApiKeysRequest{}))
	if len(list.Msg.ApiKeys) != 0 {
		t.Fatal("revoked key still listed")
	}
}
