package monitor

import (
	"context"
	"log/slog"
	"time"
)

// janitor marks visitors who went quiet as gone, reports unanswered
// invitations as ignored, and destroys visits past their retention window.
func (s *Service) janitor() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.JanitorInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := s.sweep(ctx, time.Now()); err != nil {
				s.log.Warn("monitor janitor", slog.String("error", err.Error()))
			}
			cancel()
		}
	}
}

// sweep does one janitor pass as of now.
func (s *Service) sweep(ctx context.Context, now time.Time) error {
	s.sweepMu.Lock()
	defer s.sweepMu.Unlock()

	// Departures: no open stream and no sign of life for OnSiteTimeout.
	cutoff := now.Add(-s.opts.OnSiteTimeout)
	stale, err := s.store.staleVisits(ctx, cutoff)
	if err != nil {
		return err
	}
	for _, id := range stale {
		if s.watched(id) {
			continue
		}
		st, ok, err := s.store.markLeft(ctx, id, cutoff, now)
		if err != nil {
			return err
		}
		if ok {
			s.publishLeft(st)
			s.hub.Publish(visitTopic(id), visitEnded{})
		}
	}

	ignored, err := s.store.expireInvitations(ctx, now.Add(-s.opts.InvitationTimeout), now)
	if err != nil {
		return err
	}
	for _, st := range ignored {
		s.publish(ctx, st.accountID, st.id)
	}

	err = s.purge(ctx, now)
	if perr := s.pruneKeys(ctx, now); err == nil {
		err = perr
	}
	return err
}

// purge destroys every visit that left more than Retention ago, and the
// data of expired tickets, then truncates the WAL so no copy of a deleted
// page survives in any file (secure_delete zeroes it in the main file).
func (s *Service) purge(ctx context.Context, now time.Time) error {
	start := time.Now()
	visits, tickets, err := s.store.destroyLeft(ctx, now.Add(-s.opts.Retention), now, ticketGrace)
	if err != nil {
		return err
	}
	if len(visits) == 0 && tickets == 0 && !s.uncheckpointed.Load() {
		return nil
	}
	if err := s.checkpoint(ctx); err != nil {
		return err
	}
	if len(visits) == 0 && tickets == 0 {
		return nil // a checkpoint left over from DestroyVisit
	}
	s.destroyed.Add(int64(len(visits)))
	if len(visits) > 0 {
		s.log.Info("visits destroyed", slog.Int("visits", len(visits)), slog.Duration("took", time.Since(start)))
	}
	if s.opts.OnDestroyed != nil {
		s.opts.OnDestroyed(len(visits), time.Since(start))
	}
	return nil
}

// checkpoint truncates the scratch WAL. Deletions mark it needed first
// (uncheckpointed); it stays marked until a checkpoint succeeds, so the
// janitor's next pass finishes what a failed one left.
func (s *Service) checkpoint(ctx context.Context) error {
	s.uncheckpointed.Store(false)
	if err := s.store.DB().Checkpoint(ctx); err != nil {
		s.uncheckpointed.Store(true)
		return err
	}
	return nil
}
