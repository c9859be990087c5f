package monitor

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"

	monitorv1 "github.com/lethehq/lethe/gen/go/lethe/monitor/v1"
)

func (v *visitor) leave() error {
	req := connect.NewRequest(&monitorv1.LeaveRequest{})
	v.header(req.Header())
	_, err := v.e.client.Leave(context.Background(), req)
	return err
}

// leaveWindow: a long on-site timeout, so only Leave can make a visitor
// leave within the test.
var leaveWindow = Options{OnSiteTimeout: time.Hour, Retention: 400 * time.Millisecond, LeaveGrace: 200 * time.Millisecond,
	JanitorInterval: 40 * time.Millisecond, CoalesceInterval: 50 * time.Millisecond}

func TestLeave_ClosedPageIsLeftAtOnceAndDestroyedRetentionLater(t *testing.T) {
	t.Parallel()
	e := newEnv(t, leaveWindow)
	ctx := context.Background()
	vis := &visitor{e: e}
	vis.mustTrack("acct-a", "https://shop.example/")
	sctx, stop := context.WithCancel(ctx)
	stream := vis.watchVisit(sctx)

	// pagehide: Leave arrives while the page's stream is still open; the
	// stream ends right after.
	left := time.Now()
	if err := vis.leave(); err != nil {
		t.Fatal(err)
	}
	stop()
	stream.Close()

	eventually(t, 5*time.Second, "visit marked left", func() bool {
		v, err := e.svc.store.Visit(ctx, vis.id)
		return err == nil && v.Left
	})
	if took := time.Since(left); took > leaveWindow.LeaveGrace+time.Second {
		t.Errorf("marked left %v after Leave; want about the grace period (%v)", took, leaveWindow.LeaveGrace)
	}
	eventually(t, 5*time.Second, "visit destroyed", func() bool { return e.svc.Destroyed() >= 1 })
	if d := time.Since(left); d < leaveWindow.Retention {
		t.Fatalf("destroyed %v after leaving, before the retention window (%v)", d, leaveWindow.Retention)
	}
	// The token is dead now.
	wantCode(t, "Leave after destruction", vis.leave(), connect.CodeUnauthenticated)
}

// stillOnSite runs before, has the visitor call Leave, runs after, and fails
// unless the visit is still on site well after the grace period.
func stillOnSite(t *testing.T, what string, before, after func(vis *visitor)) {
	t.Helper()
	e := newEnv(t, leaveWindow)
	vis := &visitor{e: e}
	vis.mustTrack("acct-a", "https://shop.example/")
	before(vis)
	if err := vis.leave(); err != nil {
		t.Fatal(err)
	}
	after(vis)
	time.Sleep(3 * leaveWindow.LeaveGrace)
	v, err := e.svc.store.Visit(context.Background(), vis.id)
	if err != nil || v.Left {
		t.Fatalf("visitor who %s left: %v %+v", what, err, v)
	}
}

func TestLeave_NextPageWithinGraceKeepsVisitOnSite(t *testing.T) {
	t.Parallel()
	stillOnSite(t, "moved to another page", func(*visitor) {}, func(vis *visitor) {
		vis.mustTrack("acct-a", "https://shop.example/checkout")
	})
}

func TestLeave_OtherOpenTabKeepsVisitOnSite(t *testing.T) {
	t.Parallel()
	stillOnSite(t, "has another tab open", func(vis *visitor) {
		ctx, stop := context.WithCancel(context.Background())
		t.Cleanup(stop)
		other := vis.watchVisit(ctx) // a second tab stays open
		t.Cleanup(func() { other.Close() })
	}, func(*visitor) {})
}

func TestLeave_WithoutVisitTokenIsUnauthenticated(t *testing.T) {
	t.Parallel()
	e := newEnv(t, leaveWindow)
	wantCode(t, "Leave without token", (&visitor{e: e}).leave(), connect.CodeUnauthenticated)
}
