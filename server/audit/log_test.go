package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"

	privacyv1 "github.com/lethehq/lethe/gen/go/lethe/privacy/v1"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/store"
)

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     *testing.T
	db    *store.DB
	log   *Log
	logs  *testkit.LogBuffer
	clock *clock
}

// newEnv opens lethe.db in a temp dir and the audit log on it, its clock
// at a fixed time. o's Now is set by the env.
func newEnv(t *testing.T, o Options) *env {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "lethe.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &env{t: t, db: db, clock: &clock{t: time.Date(2030, 5, 1, 10, 30, 0, 0, time.UTC)}}
	log, logs := testkit.Logger(t)
	e.logs = logs
	o.Now = e.clock.now
	if e.log, err = NewLog(context.Background(), db, log, o); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.log.Close() })
	return e
}

// list returns every entry of the account, newest first, paging by size.
func (e *env) list(account string, size int) []Entry {
	e.t.Helper()
	var all []Entry
	tok := ""
	for range 100 {
		page, next, err := e.log.List(context.Background(), account, tok, size)
		if err != nil {
			e.t.Fatal(err)
		}
		if len(page) > size {
			e.t.Fatalf("page of %d entries, asked for %d", len(page), size)
		}
		all = append(all, page...)
		if next == "" {
			return all
		}
		tok = next
	}
	e.t.Fatal("List never ended")
	return nil
}

func actions(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Action)
	}
	return out
}

func TestRecord_ListsNewestFirstWithTheActorFromTheContext(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := auth.WithOperator(context.Background(), &auth.Operator{ID: "op-1", AccountID: "acct-a", Admin: true})
	e.log.Record(ctx, Entry{AccountID: "acct-a", Action: SettingsChanged, Fields: []string{"hide_visitor_ip", "recipients"}})
	e.clock.add(time.Minute)
	e.log.Record(context.Background(), Entry{AccountID: "acct-a", Action: Login, ActorKind: ActorOperator, ActorID: "op-2",
		Network: "203.0.113.0/24"})
	e.log.Record(ctx, Entry{AccountID: "acct-b", Action: Logout})

	got := e.list("acct-a", 10)
	if want := []string{Login, SettingsChanged}; !slices.Equal(actions(got), want) {
		t.Fatalf("actions = %v, want %v", actions(got), want)
	}
	s := got[1]
	if s.ActorKind != ActorOperator || s.ActorID != "op-1" || s.AccountID != "acct-a" {
		t.Errorf("actor = %s/%s in %s, want operator/op-1 in acct-a", s.ActorKind, s.ActorID, s.AccountID)
	}
	if !slices.Equal(s.Fields, []string{"hide_visitor_ip", "recipients"}) {
		t.Errorf("fields = %v", s.Fields)
	}
	if !s.At.Equal(time.Date(2030, 5, 1, 10, 30, 0, 0, time.UTC)) {
		t.Errorf("at = %v, want the clock's time", s.At)
	}
	if l := got[0]; l.ActorID != "op-2" || l.Network != "203.0.113.0/24" || l.Seq <= s.Seq {
		t.Errorf("login entry = %+v", l)
	}
	if b := e.list("acct-b", 10); len(b) != 1 || b[0].Action != Logout {
		t.Errorf("acct-b = %v", actions(b))
	}
}

func TestList_PagesWithAnOpaqueToken(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	for i := range 7 {
		e.log.Record(ctx, Entry{AccountID: "acct-a", Action: OperatorCreated, TargetID: string(rune('a' + i))})
		e.log.Record(ctx, Entry{AccountID: "acct-b", Action: OperatorCreated, TargetID: "other"})
	}
	all := e.list("acct-a", 3)
	var targets []string
	for _, x := range all {
		targets = append(targets, x.TargetID)
	}
	if want := []string{"g", "f", "e", "d", "c", "b", "a"}; !slices.Equal(targets, want) {
		t.Fatalf("targets over pages of 3 = %v, want %v", targets, want)
	}

	page, next, err := e.log.List(ctx, "acct-a", "", 7)
	if err != nil || len(page) != 7 || next != "" {
		t.Fatalf("a page as large as the trail: %d entries, next %q, %v; want 7 and no next", len(page), next, err)
	}
	page, next, err = e.log.List(ctx, "acct-a", "", 0)
	if err != nil || len(page) != 7 || next != "" {
		t.Fatalf("size 0: %d entries, next %q, %v; want the default size", len(page), next, err)
	}

	_, next, _ = e.log.List(ctx, "acct-a", "", 2)
	if _, err := strconv.Atoi(next); err == nil || next == "" {
		t.Errorf("page token %q: want an opaque token, not a number", next)
	}
	for _, bad := range []string{"12", "not a token", encodeToken(0)[:2]} {
		_, _, err := e.log.List(ctx, "acct-a", bad, 2)
		if errs.CodeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("List with token %q: %v, want InvalidArgument", bad, err)
		}
	}
}

func TestAbout_ListsEntriesWhoseActorOrTargetIsTheOperator(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	rec := func(account, actor, action, target string) {
		e.log.Record(ctx, Entry{AccountID: account, ActorKind: ActorOperator, ActorID: actor, Action: action, TargetID: target})
	}
	rec("acct-a", "op-1", Login, "")
	rec("acct-a", "admin", OperatorDisabled, "op-1")
	rec("acct-a", "admin", OperatorCreated, "op-2")
	rec("acct-a", "op-2", Login, "")
	rec("acct-b", "op-1", Login, "") // another account: never
	rec("acct-a", "op-1", Logout, "")

	got, err := e.log.About(ctx, "acct-a", "op-1", 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{Logout, OperatorDisabled, Login}; !slices.Equal(actions(got), want) {
		t.Fatalf("about op-1 = %v, want %v", actions(got), want)
	}
	got, _ = e.log.About(ctx, "acct-a", "op-1", 2)
	if len(got) != 2 || got[0].Action != Logout {
		t.Fatalf("limit 2 = %v", actions(got))
	}
}

func TestCount_OneEntryPerAccountActionAndHour(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	e.log.Count(ctx, "acct-a", ChatsDestroyed, 2)
	e.clock.add(10 * time.Minute)
	e.log.Count(ctx, "acct-a", ChatsDestroyed, 3)
	e.log.Count(ctx, "acct-b", ChatsDestroyed, 1)
	e.log.Record(ctx, Entry{AccountID: "acct-a", Action: Login})
	e.clock.add(time.Hour)
	e.log.Count(ctx, "acct-a", ChatsDestroyed, 4)

	got := e.list("acct-a", 10)
	if want := []string{ChatsDestroyed, Login, ChatsDestroyed}; !slices.Equal(actions(got), want) {
		t.Fatalf("actions = %v, want %v", actions(got), want)
	}
	if got[2].Count != 5 || got[0].Count != 4 {
		t.Errorf("counts = %d then %d, want 5 then 4", got[2].Count, got[0].Count)
	}
	if want := time.Date(2030, 5, 1, 10, 0, 0, 0, time.UTC); !got[2].At.Equal(want) || got[2].ActorKind != ActorSystem {
		t.Errorf("first hour's entry at %v by %q, want %v by the system", got[2].At, got[2].ActorKind, want)
	}
	if b := e.list("acct-b", 10); len(b) != 1 || b[0].Count != 1 {
		t.Errorf("acct-b = %+v", b)
	}
}

func TestPrune_DeletesEntriesPastEachAccountsRetention(t *testing.T) {
	retention := map[string]time.Duration{"acct-short": 24 * time.Hour}
	e := newEnv(t, Options{
		Retention: func(_ context.Context, account string) (time.Duration, error) {
			switch account {
			case "acct-gone":
				return 0, errs.ErrNotFound
			case "acct-broken":
				return 0, errors.New("settings unreadable")
			}
			return retention[account], nil // 0 for acct-default: 90 days
		},
		JanitorInterval: time.Hour,
	})
	ctx := context.Background()
	start := e.clock.now()
	for _, a := range []string{"acct-short", "acct-default", "acct-gone", "acct-broken"} {
		e.log.Record(ctx, Entry{AccountID: a, Action: Login, TargetID: "old", At: start.Add(-100 * 24 * time.Hour)})
		e.log.Record(ctx, Entry{AccountID: a, Action: Login, TargetID: "week", At: start.Add(-7 * 24 * time.Hour)})
		e.log.Record(ctx, Entry{AccountID: a, Action: Login, TargetID: "new", At: start.Add(-time.Hour)})
	}
	n, err := e.log.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("pruned %d, want 4", n)
	}
	for account, want := range map[string][]string{
		"acct-short":   {"new"},
		"acct-default": {"new", "week"},
		"acct-gone":    {"new", "week"},
		"acct-broken":  {"new", "week", "old"},
	} {
		var got []string
		for _, x := range e.list(account, 10) {
			got = append(got, x.TargetID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s keeps %v, want %v", account, got, want)
		}
	}
}

func TestJanitor_PrunesUntilClosed(t *testing.T) {
	e := newEnv(t, Options{JanitorInterval: 20 * time.Millisecond})
	ctx := context.Background()
	e.log.Record(ctx, Entry{AccountID: "acct-a", Action: Login, TargetID: "old", At: e.clock.now().Add(-91 * 24 * time.Hour)})
	testkit.Eventually(t, testkit.Wait, "the janitor to delete the expired entry", func() bool { return len(e.list("acct-a", 10)) == 0 })
	if err := e.log.Close(); err != nil {
		t.Fatal(err)
	}
	e.log.Record(ctx, Entry{AccountID: "acct-a", Action: Login, TargetID: "old", At: e.clock.now().Add(-91 * 24 * time.Hour)})
	time.Sleep(100 * time.Millisecond)
	if len(e.list("acct-a", 10)) != 1 {
		t.Fatal("the janitor ran after Close")
	}
}

func TestWriteJSONLines_OneAuditEntryPerLineOldestFirst(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	const n = exportBatch + 3 // more than one batch
	for i := range n {
		e.log.Record(ctx, Entry{AccountID: "acct-a", Action: SettingsChanged, ActorKind: ActorOperator, ActorID: "op-1",
			Fields: []string{"gpc_ignored"}, Count: int64(i)})
	}
	e.log.Record(ctx, Entry{AccountID: "acct-b", Action: Login})
	var buf bytes.Buffer
	if err := e.log.WriteJSONLines(ctx, &buf, "acct-a"); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	lines := 0
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d is not a JSON object: %v: %s", lines+1, err, sc.Bytes())
		}
		for _, k := range []string{"id", "at", "actor_kind", "actor_id", "action", "fields"} {
			if _, ok := m[k]; !ok {
				t.Fatalf("line %d has no %q (proto field names): %s", lines+1, k, sc.Bytes())
			}
		}
		var pe privacyv1.AuditEntry
		if err := protojson.Unmarshal(sc.Bytes(), &pe); err != nil {
			t.Fatalf("line %d is not an AuditEntry: %v", lines+1, err)
		}
		if pe.Count != int64(lines) || pe.Action != SettingsChanged || !slices.Equal(pe.Fields, []string{"gpc_ignored"}) {
			t.Fatalf("line %d = %v, want count %d (oldest first)", lines+1, &pe, lines)
		}
		lines++
	}
	if lines != n {
		t.Fatalf("%d lines, want %d", lines, n)
	}
}

func TestRecord_NeverFailsTheCallerAndLogsNoContent(t *testing.T) {
	e := newEnv(t, Options{})
	e.log.Close()
	e.db.Close()
	e.log.Record(context.Background(), Entry{AccountID: "acct-a", Action: Login, Network: "198.51.100.0/24", TargetID: "op-secret",
		Fields: []string{"field-secret"}})
	e.log.Count(context.Background(), "acct-a", ChatsDestroyed, 1)
	logs := e.logs.String()
	if !strings.Contains(logs, "audit: record") || !strings.Contains(logs, "audit: count") {
		t.Fatalf("the failures were not logged:\n%s", logs)
	}
	for _, s := range []string{"198.51.100", "op-secret", "field-secret"} {
		if strings.Contains(logs, s) {
			t.Errorf("the log holds %q:\n%s", s, logs)
		}
	}
}

func TestQueries_UseIndexes(t *testing.T) {
	e := newEnv(t, Options{})
	for _, q := range []string{
		`SELECT ` + entryCols + ` FROM audit_log WHERE account_id = 'a' AND (-1 < 0 OR seq < -1) ORDER BY seq DESC LIMIT 5`,
		`SELECT ` + entryCols + ` FROM audit_log WHERE account_id = 'a' AND seq > 0 ORDER BY seq LIMIT 5`,
		`SELECT ` + entryCols + ` FROM audit_log WHERE seq IN (SELECT seq FROM audit_log WHERE account_id = 'a' AND actor_id = 'o'
			UNION SELECT seq FROM audit_log WHERE account_id = 'a' AND target_id = 'o') ORDER BY seq DESC LIMIT 5`,
		`DELETE FROM audit_log WHERE account_id = 'a' AND at < 5`,
		`SELECT DISTINCT account_id FROM audit_log`,
	} {
		rows, err := e.db.R.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		for _, p := range plan {
			if strings.HasPrefix(p, "SCAN") && !strings.Contains(p, "USING") {
				t.Errorf("%s: full scan: %v", q, plan)
			}
		}
	}
}
