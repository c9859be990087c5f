package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lethehq/lethe/gen/go/lethe/account/v1/accountv1connect"
	"github.com/lethehq/lethe/gen/go/lethe/chat/v1/chatv1connect"
	"github.com/lethehq/lethe/gen/go/lethe/consent/v1/consentv1connect"
	"github.com/lethehq/lethe/gen/go/lethe/files/v1/filesv1connect"
	"github.com/lethehq/lethe/gen/go/lethe/monitor/v1/monitorv1connect"
	"github.com/lethehq/lethe/gen/go/lethe/privacy/v1/privacyv1connect"
	"github.com/lethehq/lethe/server/account"
	"github.com/lethehq/lethe/server/audit"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/chat"
	"github.com/lethehq/lethe/server/consent"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/files"
	"github.com/lethehq/lethe/server/guard"
	"github.com/lethehq/lethe/server/hub"
	"github.com/lethehq/lethe/server/mail"
	"github.com/lethehq/lethe/server/monitor"
	"github.com/lethehq/lethe/server/netinfo"
	"github.com/lethehq/lethe/server/origin"
	"github.com/lethehq/lethe/server/privacy"
	"github.com/lethehq/lethe/server/store"
	"github.com/lethehq/lethe/server/web"
)

// app is the wired server: everything but the listener.
type app struct {
	handler  http.Handler
	metrics  *prometheus.Registry // served on its own listener (--metrics-addr)
	hub      *hub.Hub
	firstRun account.FirstRun
	closers  []func() error
}

// onClose registers a closer; Close runs them in reverse order.
func (a *app) onClose(fn func() error) { a.closers = append(a.closers, fn) }

// Close releases everything newApp opened, last opened first.
func (a *app) Close() error {
	var out []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		out = append(out, a.closers[i]())
	}
	a.closers = nil
	return errors.Join(out...)
}

// newApp opens the databases, runs migrations and first-run setup, and wires
// the services into one handler. Everything it opened is closed again when
// it fails.
func newApp(ctx context.Context, cfg config, log *slog.Logger) (_ *app, err error) {
	a := &app{}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()

	// Storage: the durable database and the scratch store for visitor data.
	if err := os.MkdirAll(cfg.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	durable, err := store.Open(filepath.Join(cfg.dataDir, "lethe.db"), store.Options{})
	if err != nil {
		return nil, err
	}
	a.onClose(durable.Close)
	scratch, err := store.Open(filepath.Join(cfg.dataDir, "scratch.db"), store.Options{SecureDelete: true})
	if err != nil {
		return nil, err
	}
	a.onClose(scratch.Close)
	if err := auth.Migrate(ctx, durable); err != nil {
		return nil, err
	}
	accounts, err := account.NewStore(ctx, durable)
	if err != nil {
		return nil, err
	}
	// The audit trail: who did what and when, never what was said (P13).
	auditLog, err := audit.NewLog(ctx, durable, log, audit.Options{Retention: accounts.AuditRetention})
	if err != nil {
		return nil, err
	}
	a.onClose(auditLog.Close)
	consents, err := consent.NewStore(ctx, durable)
	if err != nil {
		return nil, err
	}
	apiKeys, err := monitor.NewKeyStore(ctx, durable)
	if err != nil {
		return nil, err
	}
	chats, err := chat.NewStore(ctx, scratch)
	if err != nil {
		return nil, err
	}
	visits, err := monitor.NewStore(ctx, scratch)
	if err != nil {
		return nil, err
	}
	fileRows, err := files.NewStore(ctx, scratch)
	if err != nil {
		return nil, err
	}

	// Infrastructure: event fan-out, client addresses, host names, mail.
	a.hub = hub.New(cfg.hubBuffer)
	a.onClose(func() error { a.hub.Close(); return nil })
	clients := netinfo.NewClients(cfg.trustedProxies)
	hosts := netinfo.NewResolver()
	queue, err := openMail(ctx, cfg, scratch, log)
	if err != nil {
		return nil, err
	}

	// Domains.
	anon := cfg.anon
	if anon == nil {
		anon = defaultAnonLimits()
	}
	chatOpts := chat.Options{PresenceGrace: cfg.presenceGrace, JanitorInterval: cfg.janitorInterval, Hosts: hosts, Limits: &anon.chat,
		Audit: auditLog}
	if queue != nil {
		chatOpts.Mailer = queue
	}
	chatSvc, err := chat.NewService(ctx, chats, a.hub, directory{accounts}, consent.NewChecker(consents), log, chatOpts)
	if err != nil {
		return nil, err
	}
	a.onClose(chatSvc.Close)
	// Files: the chat service destroys a chat's files when it closes; the
	// files service asks the chat service who takes part in a chat.
	filesSvc, err := files.NewService(ctx, fileRows, chatSvc, accounts, log, files.Options{
		Dir:           filepath.Join(cfg.dataDir, "files"),
		MaxFileBytes:  int64(cfg.filesMaxFile),
		MaxChatBytes:  int64(cfg.filesMaxChat),
		MaxTotalBytes: int64(cfg.filesMaxTotal),
		LinkTTL:       cfg.filesLinkTTL,
	})
	if err != nil {
		return nil, err
	}
	a.onClose(filesSvc.Close)
	chatSvc.SetFiles(filesSvc)
	monitorSvc, err := monitor.NewService(visits, apiKeys, a.hub, hideIPSetting{accounts}, log, monitor.Options{
		Retention:       cfg.visitorRetention,
		OnSiteTimeout:   cfg.visitorOnSite,
		JanitorInterval: cfg.monitorJanitor,
		Hosts:           hosts,
		GeoIPCity:       cfg.geoipCity,
		GeoIPASN:        cfg.geoipASN,
		Limits:          &anon.monitor,
		Audit:           auditLog,
	})
	if err != nil {
		return nil, err
	}
	a.onClose(monitorSvc.Close)
	if queue != nil {
		a.onClose(runMail(queue, func(ctx context.Context, ref string, _ bool) { chatSvc.MailDone(ctx, ref) }))
	}
	sessions := auth.NewSessions(durable, cfg.tlsCert != "")
	a.onClose(func() error { auth.StopSessions(sessions); return nil })
	accountSvc, err := account.NewService(accounts, sessions, log, account.Options{
		PasswordParams:  cfg.passwordParams,
		HashConcurrency: cfg.hashConcurrency,
		HashQueue:       cfg.hashQueue,
		HashWait:        cfg.hashWait,
		HashFailedRate:  cfg.hashFailedRate,
		Tarpit:          cfg.loginTarpit,
		Login:           cfg.login,
		MailConfigured:  queue != nil,
		MaxFileBytes:    int64(cfg.filesMaxFile),
		MaxChatBytes:    int64(cfg.filesMaxChat),
		Audit:           auditLog,
		OnSignOut: func(operatorID string) {
			chatSvc.SignOut(operatorID)
			monitorSvc.SignOut(operatorID)
		},
	})
	if err != nil {
		return nil, err
	}
	consentSvc := consent.NewService(consents, chatSvc, consent.WithAudit(auditLog))

	// Privacy: the rights over the data the domains hold right now.
	var privacyMail privacy.Mail
	relay := ""
	if queue != nil {
		privacyMail = queue
		relay = net.JoinHostPort(cfg.smtpHost, strconv.Itoa(cfg.smtpPort))
	}
	maxFile, maxChat := int64(cfg.filesMaxFile), int64(cfg.filesMaxChat)
	if maxFile <= 0 {
		maxFile = files.DefaultMaxFileBytes
	}
	if maxChat <= 0 {
		maxChat = files.DefaultMaxChatBytes
	}
	privacySvc := privacy.NewService(chatSvc, privacyMail, monitorSvc, accountSvc, auditLog,
		accountInfo{accounts: accounts, maxFile: maxFile, maxChat: maxChat}, log, privacy.Options{
			MailRelay:      relay,
			MailMaxHold:    cfg.mailMaxHold,
			VisitRetention: cfg.visitorRetention,
			VisitorRate:    anon.privacy,
			DefaultAccount: account.DemoAccountID,
		})

	// First run and the demo account's websites.
	if a.firstRun, err = account.Bootstrap(ctx, accounts, accountSvc, cfg.adminPW); err != nil {
		return nil, err
	}
	if cfg.demoOrigins != "" {
		origins := []string{origin.Self}
		for _, o := range strings.Split(cfg.demoOrigins, ",") {
			n, err := origin.Normalize(o)
			if err != nil {
				return nil, fmt.Errorf("--demo-origins: %w", err)
			}
			origins = append(origins, n)
		}
		if err := accounts.SetAllowedOrigins(ctx, account.DemoAccountID, origins); err != nil {
			return nil, err
		}
	}

	// One handler: the RPC services behind the error and access
	// interceptors, then pages and health. Metrics are served elsewhere.
	a.metrics = metricsRegistry(chatSvc, queue)
	policy := map[string]auth.Kind{}
	for _, p := range []map[string]auth.Kind{chat.Policy(), account.Policy(), consent.Policy(), monitor.Policy(), files.Policy(), privacy.Policy()} {
		for k, v := range p {
			policy[k] = v
		}
	}
	access := &auth.Interceptor{Sessions: sessions, Operators: accountSvc, Visitors: chatSvc, APIKeys: monitorSvc, Policy: policy}
	opts := []connect.HandlerOption{
		connect.WithInterceptors(
			errs.Interceptor{Log: log},
			guard.NewStreams(policy, anon.streams),
			access,
		),
		connect.WithRecover(func(ctx context.Context, spec connect.Spec, _ http.Header, p any) error {
			log.ErrorContext(ctx, "panic in handler", slog.String("procedure", spec.Procedure))
			return connect.NewError(connect.CodeInternal, errors.New("internal error"))
		}),
		connect.WithReadMaxBytes(chat.MaxRequestBytes),
		connect.WithRequireConnectProtocolHeader(),
		// Gzip only messages worth it: most answers are a few hundred
		// bytes, and gzipping each cost more CPU than the wire it saved.
		connect.WithCompressMinBytes(compressMinBytes),
	}
	mux := http.NewServeMux()
	mux.Handle(chatv1connect.NewChatServiceHandler(chatSvc, opts...))
	mux.Handle(accountv1connect.NewAccountServiceHandler(accountSvc, opts...))
	mux.Handle(consentv1connect.NewConsentServiceHandler(consentSvc, opts...))
	mux.Handle(monitorv1connect.NewMonitorServiceHandler(monitorSvc, opts...))
	// A files request carries one chunk: a larger read limit for it alone;
	// and no gzip: files are mostly compressed already, and gzipping a
	// download costs the server more than the wire it saves.
	mux.Handle(filesv1connect.NewFileServiceHandler(filesSvc, append(slices.Clip(opts),
		connect.WithReadMaxBytes(files.MaxRequestBytes), connect.WithCompression("gzip", nil, nil))...))
	mux.Handle("GET "+files.DownloadPath+"{token}", filesSvc.DownloadHandler())
	mux.Handle(privacyv1connect.NewPrivacyServiceHandler(privacySvc, opts...))
	mux.Handle("GET "+privacy.InventoryPath, privacySvc.InventoryHandler())
	mux.Handle("GET "+privacy.AuditPath, privacySvc.AuditHandler(func(ctx context.Context) (*auth.Operator, error) {
		return access.Operator(ctx, true)
	}))
	services := []string{chatv1connect.ChatServiceName, accountv1connect.AccountServiceName, consentv1connect.ConsentServiceName,
		monitorv1connect.MonitorServiceName, filesv1connect.FileServiceName, privacyv1connect.PrivacyServiceName}
	reflector := grpcreflect.NewStaticReflector(services...)
	mux.Handle(grpcreflect.NewHandlerV1(reflector))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	mux.Handle(grpchealth.NewHandler(grpchealth.NewStaticChecker(services...)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	pages := web.New(accounts)
	mux.Handle("/", pages)

	// Outermost first: the client's address (and the server's own origin),
	// then CORS for the widget loader's procedures only, then refusal of
	// cross-site state-changing requests (they would carry the operator's
	// cookie) but for those, then the operator's session.
	crossSite := http.NewCrossOriginProtection()
	web.AllowLoaderCrossOrigin(crossSite)
	// Static files never see the session: no cookie lookup, and no
	// "Vary: Cookie" that would keep caches and CDNs from keeping them.
	outer := http.NewServeMux()
	outer.Handle("GET /static/", pages)
	outer.Handle("GET /widget.js", pages)
	outer.Handle("/", crossSite.Handler(auth.SessionMiddleware(sessions, mux)))
	a.handler = clients.Middleware(web.LoaderCORS(outer))
	return a, nil
}

// compressMinBytes is the smallest RPC message (response or stream
// message) gzipped when the client accepts gzip.
const compressMinBytes = 1024

// openMail opens the mail queue when a relay is configured (nil otherwise).
func openMail(ctx context.Context, cfg config, scratch *store.DB, log *slog.Logger) (*mail.Queue, error) {
	if cfg.smtpHost == "" {
		return nil, nil
	}
	mcfg := mail.Config{Host: cfg.smtpHost, Port: cfg.smtpPort, Username: cfg.smtpUser, Password: cfg.smtpPassword,
		From: cfg.smtpFrom, MaxHold: cfg.mailMaxHold, RetryMin: cfg.mailRetryMin, RetryMax: cfg.mailRetryMax}
	if cfg.smtpCA != "" {
		pem, err := os.ReadFile(cfg.smtpCA)
		if err != nil {
			return nil, fmt.Errorf("--smtp-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("--smtp-ca: no certificate found")
		}
		mcfg.TLSConfig = &tls.Config{RootCAs: pool}
	}
	return mail.NewQueue(ctx, scratch, mcfg, log)
}

// runMail starts the mail dispatcher and returns the closer that stops it.
func runMail(q *mail.Queue, done mail.DoneFunc) func() error {
	ctx, stop := context.WithCancel(context.Background())
	finished := make(chan struct{})
	go func() { defer close(finished); q.Run(ctx, done) }()
	return func() error { stop(); <-finished; return nil }
}
