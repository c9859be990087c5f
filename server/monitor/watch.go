package monitor

import (
	"context"
	"sort"
	"sync"
	"time"

	"connectrpc.com/connect"

	monitorv1 "github.com/lethehq/lethe/gen/go/lethe/monitor/v1"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/hub"
)

// coalescer collects visitor changes published for one operator stream,
// keeping only the newest state of each visitor until the stream takes them.
// The hub hands it each change on the publisher's goroutine
// (hub.SubscribeFunc), so a stream busy writing a batch never falls behind
// the hub, and no goroutine or queue is kept per stream.
type coalescer struct {
	mu      sync.Mutex
	pending map[string]visitorState
	ready   chan struct{} // signalled when pending becomes non-empty or the operator signed out
	// signedOut: the operator signed out; the stream ends.
	signedOut bool
}

func newCoalescer() *coalescer {
	return &coalescer{pending: map[string]visitorState{}, ready: make(chan struct{}, 1)}
}

// merge is the hub subscription's sink.
func (c *coalescer) merge(m any) bool {
	switch m := m.(type) {
	case visitorState:
		c.add(m)
	case signOut:
		c.mu.Lock()
		c.signedOut = true
		c.mu.Unlock()
		c.signal()
	}
	return true
}

func (c *coalescer) signal() {
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

func (c *coalescer) add(st visitorState) {
	c.mu.Lock()
	if old, ok := c.pending[st.id]; !ok || st.version >= old.version {
		c.pending[st.id] = st
	}
	c.mu.Unlock()
	c.signal()
}

// take returns the pending changes.
func (c *coalescer) take() map[string]visitorState {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pending
	if len(p) == 0 {
		return nil
	}
	c.pending = map[string]visitorState{}
	return p
}

func (c *coalescer) isSignedOut() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.signedOut
}

// sentVisitor is what one stream last sent of a visitor.
type sentVisitor struct {
	version int64
	left    bool
	at      time.Time
}

// WatchVisitors implements MonitorServiceHandler: a snapshot of the
// account's visitors on site, then coalesced joins, updates and departures.
func (s *Service) WatchVisitors(ctx context.Context, req *connect.Request[monitorv1.WatchVisitorsRequest], stream *connect.ServerStream[monitorv1.WatchVisitorsResponse]) error {
	op, err := operator(ctx)
	if err != nil {
		return err
	}
	// Subscribe before reading the snapshot so no change is missed; the
	// versions drop whatever the snapshot already contains.
	c := newCoalescer()
	sub := s.hub.SubscribeFunc(c.merge, visitorsTopic(op.AccountID), operatorTopic(op.ID))
	defer sub.Close()

	snap, err := s.store.OnSite(ctx, op.AccountID)
	if err != nil {
		return err
	}
	sent := make(map[string]sentVisitor, len(snap))
	now := time.Now()
	vs := make([]*monitorv1.Visitor, 0, len(snap))
	for _, st := range snap {
		sent[st.id] = sentVisitor{version: st.version, at: now}
		vs = append(vs, st.v)
	}
	if err := sendChunks(stream, vs, nil, true); err != nil {
		return err
	}

	interval := s.opts.CoalesceInterval
	last := time.Now()
	lastPrune := last
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.ready:
		case <-sub.Ready(): // the subscription ended
		}
		// At most one batch per interval: wait out the rest of it, letting
		// changes accumulate.
		if wait := time.Until(last.Add(interval)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
		pending := c.take()
		subErr := sub.Err()
		done := subErr != nil
		if c.isSignedOut() {
			return errs.Unauthenticated("signed out")
		}
		if done && len(pending) == 0 {
			return hub.Ended(subErr, "reconnect for a fresh snapshot")
		}
		now := time.Now()
		var changed []*monitorv1.Visitor
		var left []string
		for id, st := range pending {
			prev, known := sent[id]
			if known && st.version <= prev.version {
				continue // the snapshot or an earlier batch was newer
			}
			if st.v == nil {
				if known && !prev.left {
					left = append(left, id)
				}
				sent[id] = sentVisitor{version: st.version, left: true, at: now}
				continue
			}
			sent[id] = sentVisitor{version: st.version, at: now}
			changed = append(changed, st.v)
		}
		if len(changed) > 0 || len(left) > 0 {
			sort.Slice(changed, func(i, j int) bool { return changed[i].VisitorId < changed[j].VisitorId })
			sort.Strings(left)
			if err := sendChunks(stream, changed, left, false); err != nil {
				return err
			}
			last = time.Now()
		}
		// Forget departed visitors once no late update of theirs can come
		// (they are destroyed after Retention; their ids never return).
		if now.Sub(lastPrune) > time.Minute {
			lastPrune = now
			for id, sv := range sent {
				if sv.left && now.Sub(sv.at) > s.opts.Retention+time.Minute {
					delete(sent, id)
				}
			}
		}
		if done {
			c.signal() // report the end on the next round
		}
	}
}

// sendChunks sends visitors and departures in messages of at most
// snapshotChunk visitors; with snapshot, the last one is marked as the end
// of the snapshot (sent even when there is nothing).
func sendChunks(stream *connect.ServerStream[monitorv1.WatchVisitorsResponse], vs []*monitorv1.Visitor, left []string, snapshot bool) error {
	for {
		n := min(len(vs), snapshotChunk)
		msg := &monitorv1.WatchVisitorsResponse{Visitors: vs[:n]}
		vs = vs[n:]
		last := len(vs) == 0
		if last {
			msg.LeftVisitorIds = left
			msg.SnapshotDone = snapshot
		}
		if err := stream.Send(msg); err != nil {
			return err
		}
		if last {
			return nil
		}
	}
}
