package monitor

import (
	"context"
	"log/slog"
	"time"

	"connectrpc.com/connect"

	monitorv1 "github.com/lethehq/lethe/gen/go/lethe/monitor/v1"
)

// A visitor who closes the page is noticed at once, not when the heartbeat
// stops: the widget calls Leave on pagehide. Moving to another page of the
// site also fires pagehide, so a departure is only tentative for LeaveGrace:
// a page view, a heartbeat or a new WatchVisit stream in that time means the
// visitor is still here. The page being closed still has its stream open
// when it calls Leave, and that stream's end is not a sign of life.

// Leave implements MonitorServiceHandler.
func (s *Service) Leave(ctx context.Context, req *connect.Request[monitorv1.LeaveRequest]) (*connect.Response[monitorv1.LeaveResponse], error) {
	v, err := s.visitFrom(ctx, req.Header())
	if err != nil {
		return nil, err
	}
	if v.Left {
		return connect.NewResponse(&monitorv1.LeaveResponse{}), nil
	}
	at := time.Now()
	s.leaveMu.Lock()
	s.leaving[v.ID] = at
	s.leaveMu.Unlock()
	time.AfterFunc(s.opts.LeaveGrace, func() { s.checkLeft(v.ID, at) })
	return connect.NewResponse(&monitorv1.LeaveResponse{}), nil
}

// stayed forgets a tentative departure: the visitor showed a sign of life.
func (s *Service) stayed(visitID string) {
	s.leaveMu.Lock()
	delete(s.leaving, visitID)
	s.leaveMu.Unlock()
}

// checkLeft marks the visit left as of at, if the departure announced then
// still stands and no page of the visit is open.
func (s *Service) checkLeft(visitID string, at time.Time) {
	s.leaveMu.Lock()
	still := s.leaving[visitID] == at
	if still {
		delete(s.leaving, visitID)
	}
	s.leaveMu.Unlock()
	if !still || s.watched(visitID) {
		return
	}
	select {
	case <-s.stop:
		return
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Any seen_at counts: the closing page's own stream end touched it.
	st, ok, err := s.store.markLeft(ctx, visitID, time.Now().Add(time.Hour), at)
	if err != nil {
		s.log.Warn("mark visit left", slog.String("visit", visitID), slog.String("error", err.Error()))
		return
	}
	if ok {
		s.publishLeft(st)
		s.hub.Publish(visitTopic(visitID), visitEnded{})
	}
}
