// Package monitor owns visitor monitoring: who is on the website right now,
// the pages they view, what is known of them (browser, OS, location, ISP, IP
// and host, custom data from the page and, verified, from the integrator's
// back end), proactive chat invitations, and the account API keys and
// single-use tickets integrators pass verified data with. It implements
// lethe.monitor.v1.MonitorService.
//
// Promises kept here: a visit's data lives in scratch.db only while the
// visitor is on site and is destroyed a configured time after they leave
// (default 3 minutes) — rows deleted with secure_delete, WAL truncated — so it
// is gone from every file (P4); with the account's "hide IP and host" on the
// address and host name are dropped at ingress and never stored, streamed or
// logged (P5); a browser sending Global Privacy Control (Sec-GPC: 1) leaves
// no visit at all unless its account ignores GPC with a stated reason, and a
// visitor's visit can be shown to them and destroyed at once on request
// (privacy.go); logs carry ids and counts only (P9); nothing of one account is
// visible to another account's operators, visitors or API keys (P11). Only
// hashes of visit tokens, tickets and API keys are stored.
package monitor

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lethehq/lethe/gen/go/lethe/monitor/v1/monitorv1connect"
	"github.com/lethehq/lethe/server/audit"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/hub"
	"github.com/lethehq/lethe/server/netinfo"
)

// AccountSettings is what the monitor needs of an account's settings.
type AccountSettings struct {
	// HideIP: "hide IP and host" is on; IP and host are never stored (P5).
	HideIP bool
	// HonourGPC: a browser sending Global Privacy Control (Sec-GPC: 1) is
	// not monitored (the default; an account may ignore GPC with a reason).
	HonourGPC bool
	// AllowedOrigins are the websites (normalised origins, "self" for the
	// server's own) whose pages may report visits: a browser on any other
	// page is refused (PERMISSION_DENIED).
	AllowedOrigins []string
}

// Settings tells the monitor what it needs of an account's settings. It
// returns an error wrapping errs.ErrNotFound for an unknown account.
type Settings interface {
	Settings(ctx context.Context, accountID string) (AccountSettings, error)
}

// Options tune the service; zero values take the defaults.
type Options struct {
	// OnSiteTimeout: a visitor without an open WatchVisit stream is on site
	// until this long after their last Track or Heartbeat (default 60 s).
	OnSiteTimeout time.Duration
	// Retention is how long after leaving a visit is destroyed (default 3 min).
	Retention time.Duration
	// JanitorInterval is how often departures, destruction and invitation
	// timeouts are checked (default 5 s).
	JanitorInterval time.Duration
	// CoalesceInterval is the least time between two change messages on an
	// operator's WatchVisitors stream (default 500 ms).
	CoalesceInterval time.Duration
	// InvitationTimeout: an invitation not answered in this time is
	// reported as ignored (default 2 min).
	InvitationTimeout time.Duration
	// LeaveGrace: after Leave, the visitor has left unless a sign of life
	// comes within this time (default 3 s).
	LeaveGrace time.Duration
	// Hosts finds host names (nil: no reverse DNS).
	Hosts *netinfo.Resolver
	// GeoIPCity and GeoIPASN are paths of MaxMind-format databases (City
	// and ASN); empty: no location / no ISP.
	GeoIPCity, GeoIPASN string
	// OnDestroyed, if set, is told how many visits each purge destroyed and
	// how long it took, checkpoint included (benchmarks, metrics).
	OnDestroyed func(visits int, took time.Duration)
	// Limits on anonymous clients (nil: DefaultLimits).
	Limits *Limits
	// Audit records API keys created and revoked (nil: audit.Discard).
	Audit audit.Recorder
}

// Limits, stated in the proto and enforced here.
const (
	MaxURLChars        = 2048
	MaxTitleChars      = 300
	MaxReferrerChars   = 2048
	MaxDataKeys        = 20
	MaxDataKeyChars    = 64
	MaxDataValueChars  = 512
	MaxInvitationChars = 500
	MaxTicketTTL       = 600 * time.Second
	DefaultTicketTTL   = 300 * time.Second
	// MaxRequestBytes bounds any MonitorService request on the wire.
	MaxRequestBytes = 64 << 10
	// ticketGrace is how long a used or expired ticket's hash is kept (to
	// answer FAILED_PRECONDITION rather than NOT_FOUND) after it expired.
	ticketGrace = 10 * time.Minute
	// snapshotChunk is the most visitors in one WatchVisitors message.
	snapshotChunk = 500
)

// Service implements lethe.monitor.v1.MonitorService.
type Service struct {
	store    *Store
	keys     *KeyStore
	hub      *hub.Hub
	settings Settings
	log      *slog.Logger
	opts     Options
	enrich   *enricher

	// limits on visitor calls and new visits (limits.go).
	limits limiters

	// watchers counts each visit's open WatchVisit streams.
	wmu      sync.Mutex
	watchers map[string]int

	// leaving holds the time of each visit's pending Leave (leave.go).
	leaveMu sync.Mutex
	leaving map[string]time.Time

	// keysNoted remembers when each account's custom data key was last
	// written to lethe.db, to write it at most once per keyNoteInterval
	// (custom_keys.go).
	keysMu    sync.Mutex
	keysNoted map[string]time.Time

	// sweepMu: one janitor pass at a time; keysPruned is when it last
	// pruned old custom data keys (custom_keys.go).
	sweepMu    sync.Mutex
	keysPruned time.Time

	destroyed atomic.Int64
	// uncheckpointed: rows were deleted and the WAL not yet truncated.
	uncheckpointed atomic.Bool

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

var _ monitorv1connect.MonitorServiceHandler = (*Service)(nil)

// NewService returns the monitor service and starts its janitor. Visits
// found in the store from before a restart are treated like any other: they
// leave when their last sign of life is older than OnSiteTimeout and are
// destroyed after Retention.
func NewService(st *Store, keys *KeyStore, h *hub.Hub, settings Settings, log *slog.Logger, o Options) (*Service, error) {
	if o.OnSiteTimeout <= 0 {
		o.OnSiteTimeout = 60 * time.Second
	}
	if o.Retention <= 0 {
		o.Retention = 3 * time.Minute
	}
	if o.JanitorInterval <= 0 {
		o.JanitorInterval = 5 * time.Second
	}
	if o.CoalesceInterval <= 0 {
		o.CoalesceInterval = 500 * time.Millisecond
	}
	if o.InvitationTimeout <= 0 {
		o.InvitationTimeout = 2 * time.Minute
	}
	if o.LeaveGrace <= 0 {
		o.LeaveGrace = 3 * time.Second
	}
	if o.Audit == nil {
		o.Audit = audit.Discard
	}
	e, err := newEnricher(o)
	if err != nil {
		return nil, err
	}
	l := DefaultLimits()
	if o.Limits != nil {
		l = *o.Limits
	}
	s := &Service{store: st, keys: keys, hub: h, settings: settings, log: log, opts: o, enrich: e,
		watchers: map[string]int{}, leaving: map[string]time.Time{}, keysNoted: map[string]time.Time{}, limits: newLimiters(l), stop: make(chan struct{})}
	s.wg.Add(1)
	go s.janitor()
	return s, nil
}

// Close stops the janitor and closes the GeoIP databases.
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.wg.Wait()
		s.enrich.close()
	})
	return nil
}

// Policy says who may call each procedure. The visitor procedures are Public
// for the auth interceptor: they resolve the visit token themselves.
func Policy() map[string]auth.Kind {
	return map[string]auth.Kind{
		monitorv1connect.MonitorServiceTrackProcedure:               auth.Public,
		monitorv1connect.MonitorServiceClaimVisitProcedure:          auth.Public,
		monitorv1connect.MonitorServiceHeartbeatProcedure:           auth.Public,
		monitorv1connect.MonitorServiceLeaveProcedure:               auth.Public,
		monitorv1connect.MonitorServiceWatchVisitProcedure:          auth.Public,
		monitorv1connect.MonitorServiceSetCustomDataProcedure:       auth.Public,
		monitorv1connect.MonitorServiceIdentifyProcedure:            auth.Public,
		monitorv1connect.MonitorServiceRespondToInvitationProcedure: auth.Public,
		monitorv1connect.MonitorServiceWatchVisitorsProcedure:       auth.OperatorOnly,
		monitorv1connect.MonitorServiceInviteProcedure:              auth.OperatorOnly,
		monitorv1connect.MonitorServiceMintTicketProcedure:          auth.APIKey,
		monitorv1connect.MonitorServiceCreateApiKeyProcedure:        auth.AdminOnly,
		monitorv1connect.MonitorServiceListApiKeysProcedure:         auth.AdminOnly,
		monitorv1connect.MonitorServiceRevokeApiKeyProcedure:        auth.AdminOnly,
	}
}

// Destroyed counts the visits destroyed since start.
func (s *Service) Destroyed() int64 { return s.destroyed.Load() }

func visitorsTopic(accountID string) string { return "visitors:" + accountID }
func visitTopic(visitID string) string      { return "visit:" + visitID }
func operatorTopic(opID string) string      { return "monitor-operator:" + opID }

// signOut is published on an operator's topic to end their streams.
type signOut struct{}

// SignOut ends the operator's WatchVisitors streams (wire it to the account
// service's sign-out, next to the chat service's).
func (s *Service) SignOut(operatorID string) {
	s.hub.Publish(operatorTopic(operatorID), signOut{})
}

// visitEnded is published on a visit's topic when the server ends it.
type visitEnded struct{}

func isNotFound(err error) bool { return errors.Is(err, errs.ErrNotFound) }

// publish tells the account's operators the current state of a visitor.
// Nothing is read when nobody watches.
func (s *Service) publish(ctx context.Context, accountID, visitID string) {
	topic := visitorsTopic(accountID)
	if s.hub.Subscribers(topic) == 0 {
		return
	}
	st, err := s.store.Visitor(ctx, visitID)
	if isNotFound(err) {
		return
	}
	if err != nil {
		s.log.WarnContext(ctx, "load visitor", slog.String("visit", visitID), slog.String("error", err.Error()))
		return
	}
	if st.accountID != accountID {
		return
	}
	s.hub.Publish(topic, st)
}

// publishLeft tells the account's operators a visitor left.
func (s *Service) publishLeft(st visitorState) {
	st.v = nil
	s.hub.Publish(visitorsTopic(st.accountID), st)
}

// watch counts a visit's open WatchVisit streams.
func (s *Service) watch(visitID string, d int) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.watchers[visitID] += d
	if s.watchers[visitID] <= 0 {
		delete(s.watchers, visitID)
	}
}

func (s *Service) watched(visitID string) bool {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.watchers[visitID] > 0
}

// onSite tells whether a visit counts as on site now.
func (s *Service) onSite(v *Visit, now time.Time) bool {
	if v.Left {
		return false
	}
	return s.watched(v.ID) || now.Sub(v.SeenAt) < s.opts.OnSiteTimeout
}
