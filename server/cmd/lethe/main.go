// Command lethe runs the Lethe live chat server: Connect, gRPC and gRPC-Web
// on one port, the widget, the operator console and a demo page.
//
// With no flags it creates ./lethe-data, a demo account and an admin whose
// password is printed once, and listens on 127.0.0.1:8080.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"github.com/alexedwards/argon2id"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lethehq/lethe/gen/go/lethe/account/v1/accountv1connect"
	"github.com/lethehq/lethe/gen/go/lethe/chat/v1/chatv1connect"
	"github.com/lethehq/lethe/gen/go/lethe/consent/v1/consentv1connect"
	"github.com/lethehq/lethe/gen/go/lethe/monitor/v1/monitorv1connect"
	"github.com/lethehq/lethe/server/account"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/chat"
	"github.com/lethehq/lethe/server/consent"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/hub"
	"github.com/lethehq/lethe/server/mail"
	"github.com/lethehq/lethe/server/monitor"
	"github.com/lethehq/lethe/server/netinfo"
	"github.com/lethehq/lethe/server/store"
	"github.com/lethehq/lethe/server/web"
)

type config struct {
	addr     string
	dataDir  string
	tlsCert  string
	tlsKey   string
	logLevel string
	adminPW  string
	// extra website origins for the demo account's widget
	demoOrigins string
	// SMTP relay for transcripts and offline messages
	smtpHost, smtpUser, smtpPassword, smtpFrom, smtpCA string
	smtpPort                                           int
	mailMaxHold                                        time.Duration
	mailRetryMin, mailRetryMax                         time.Duration
	// visitor monitoring
	geoipCity, geoipASN string
	trustedProxies      []netip.Prefix
	visitorRetention    time.Duration
	// for tests
	visitorOnSite, monitorJanitor time.Duration
	// for tests: cheaper password hashing
	passwordParams *argon2id.Params
	// for tests
	hubBuffer       int
	presenceGrace   time.Duration
	janitorInterval time.Duration
}

// metricsHandler serves Prometheus metrics: counts only, never content (P9).
func metricsHandler(chats *chat.Service, queue *mail.Queue) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lethe_chats_destroyed_total",
		Help: "Chats destroyed (rows deleted and the WAL truncated) since start."}, func() float64 { return float64(chats.Destroyed()) }))
	if queue != nil {
		mailStat := func(f func(mail.Stats) int64) func() float64 {
			return func() float64 { return float64(f(queue.Stats())) }
		}
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lethe_mail_sent_total",
				Help: "Mails accepted by the relay since start."}, mailStat(func(s mail.Stats) int64 { return s.Sent })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lethe_mail_failed_attempts_total",
				Help: "Failed delivery attempts since start (each retry counts)."}, mailStat(func(s mail.Stats) int64 { return s.Failed })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lethe_mail_dropped_total",
				Help: "Mails destroyed undelivered after the maximum hold since start."}, mailStat(func(s mail.Stats) int64 { return s.Dropped })),
		)
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// mailAdapter gives the chat package the mail queue.
type mailAdapter struct{ q *mail.Queue }

func (m mailAdapter) Enqueue(ctx context.Context, tx *sql.Tx, o chat.OutMail) error {
	return m.q.Enqueue(ctx, tx, mail.Message{Ref: o.Ref, AccountID: o.AccountID, To: o.To, Subject: o.Subject,
		Text: o.Text, HTML: o.HTML, RequireTLS: o.RequireTLS})
}
func (m mailAdapter) Kick() { m.q.Kick() }
func (m mailAdapter) Pending(ctx context.Context, ref string) (bool, error) {
	return m.q.Pending(ctx, ref)
}
func (m mailAdapter) DeleteRef(ctx context.Context, ref string) error { return m.q.DeleteRef(ctx, ref) }

// monitorSettings gives the monitor package the "hide IP and host" setting.
type monitorSettings struct{ accounts *account.Store }

func (m monitorSettings) Settings(ctx context.Context, accountID string) (bool, error) {
	s, err := m.accounts.Settings(ctx, accountID)
	if err != nil {
		return false, err
	}
	return s.HideVisitorIP, nil
}

// directory gives the chat package what it needs of accounts.
type directory struct{ *account.Store }

func (d directory) Settings(ctx context.Context, accountID string) (chat.AccountSettings, error) {
	s, err := d.Store.Settings(ctx, accountID)
	if err != nil {
		return chat.AccountSettings{}, err
	}
	return chat.AccountSettings{TranscriptsEnabled: s.TranscriptsEnabled, Recipients: s.Recipients, HideVisitorIP: s.HideVisitorIP,
		RequireTLS: s.RequireTLS, IdleTimeout: time.Duration(s.IdleTimeoutSeconds) * time.Second}, nil
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("lethe", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", env("LETHE_ADDR", "127.0.0.1:8080"), "listen address (env LETHE_ADDR)")
	fs.StringVar(&c.dataDir, "data", env("LETHE_DATA", "lethe-data"), "data directory (env LETHE_DATA)")
	fs.StringVar(&c.tlsCert, "tls-cert", env("LETHE_TLS_CERT", ""), "TLS certificate file (PEM); serves HTTPS when set with --tls-key")
	fs.StringVar(&c.tlsKey, "tls-key", env("LETHE_TLS_KEY", ""), "TLS private key file (PEM)")
	fs.StringVar(&c.demoOrigins, "demo-origins", env("LETHE_DEMO_ORIGINS", ""),
		"comma-separated website origins (https://shop.example) where the demo account's widget may be embedded, besides this server")
	fs.StringVar(&c.smtpHost, "smtp-host", env("LETHE_SMTP_HOST", ""), "SMTP relay for transcripts and offline messages (empty: no mail)")
	fs.IntVar(&c.smtpPort, "smtp-port", envInt("LETHE_SMTP_PORT", 587), "SMTP relay port (STARTTLS)")
	fs.StringVar(&c.smtpUser, "smtp-user", env("LETHE_SMTP_USER", ""), "SMTP user name (password from LETHE_SMTP_PASSWORD)")
	fs.StringVar(&c.smtpFrom, "smtp-from", env("LETHE_SMTP_FROM", "Lethe <lethe@localhost>"), "From address of mail")
	fs.StringVar(&c.smtpCA, "smtp-ca", env("LETHE_SMTP_CA", ""), "PEM file of CA certificates to trust for the relay (default: system roots)")
	fs.DurationVar(&c.mailMaxHold, "mail-max-hold", envDuration("LETHE_MAIL_MAX_HOLD", 72*time.Hour),
		"how long undeliverable mail is kept and retried before it is destroyed and counted as dropped")
	fs.StringVar(&c.geoipCity, "geoip-city", env("LETHE_GEOIP_CITY", ""),
		"MaxMind-format City database (GeoLite2-City.mmdb) for visitors' location and zip (empty: none)")
	fs.StringVar(&c.geoipASN, "geoip-asn", env("LETHE_GEOIP_ASN", ""),
		"MaxMind-format ASN database (GeoLite2-ASN.mmdb) for visitors' ISP (empty: none)")
	trusted := fs.String("trusted-proxies", env("LETHE_TRUSTED_PROXIES", ""),
		"comma-separated proxy addresses or CIDR prefixes whose X-Forwarded-For is believed (empty: none; the peer address is the client)")
	fs.DurationVar(&c.visitorRetention, "visitor-retention", envDuration("LETHE_VISITOR_RETENTION", 3*time.Minute),
		"how long after a visitor leaves the site their monitoring data is destroyed")
	fs.StringVar(&c.logLevel, "log-level", env("LETHE_LOG_LEVEL", "info"), "debug, info, warn or error")
	err := fs.Parse(args)
	if err == nil {
		c.trustedProxies, err = monitor.ParseTrustedProxies(*trusted)
	}
	c.adminPW = os.Getenv("LETHE_ADMIN_PASSWORD")
	c.smtpPassword = os.Getenv("LETHE_SMTP_PASSWORD")
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return c, errors.New("--tls-cert and --tls-key go together")
	}
	return c, err
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "lethe:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "lethe:", err)
		os.Exit(1)
	}
}

// app is the wired server: everything but the listener.
type app struct {
	handler http.Handler
	hub     *hub.Hub
	closers []func() error
	// first-run admin credentials, set only when this start created them
	adminCreated        bool
	adminEmail, adminPW string
}

func (a *app) Close() error {
	a.hub.Close()
	var errsOut []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errsOut = append(errsOut, a.closers[i]())
	}
	return errors.Join(errsOut...)
}

// newApp opens the databases, runs migrations and first-run setup, and wires
// the services into one handler.
func newApp(ctx context.Context, cfg config, log *slog.Logger) (_ *app, err error) {
	a := &app{}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if err := os.MkdirAll(cfg.dataDir, 0o700); err != nil {
		return nil, err
	}
	durable, err := store.Open(filepath.Join(cfg.dataDir, "lethe.db"), store.Options{})
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, durable.Close)
	scratch, err := store.Open(filepath.Join(cfg.dataDir, "scratch.db"), store.Options{SecureDelete: true})
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, scratch.Close)

	if err := auth.Migrate(ctx, durable); err != nil {
		return nil, err
	}
	accounts, err := account.NewStore(ctx, durable)
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
	apiKeys, err := monitor.NewKeyStore(ctx, durable)
	if err != nil {
		return nil, err
	}
	resolver := netinfo.NewResolver()
	sessions := auth.NewSessions(durable, cfg.tlsCert != "")
	accountSvc := account.NewService(accounts, sessions, log, cfg.passwordParams)
	a.hub = hub.New(cfg.hubBuffer)
	consents, err := consent.NewStore(ctx, durable)
	if err != nil {
		return nil, err
	}
	consentSvc := consent.NewService(consents)
	accountSvc.NormalizeOrigin = web.NormalizeOrigin
	var mailer chat.Mailer
	var queue *mail.Queue
	if cfg.smtpHost != "" {
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
		queue, err = mail.NewQueue(ctx, scratch, mcfg, log)
		if err != nil {
			return nil, err
		}
		mailer = mailAdapter{queue}
	}
	accountSvc.MailConfigured = queue != nil
	chatSvc, err := chat.NewService(ctx, chats, a.hub, directory{accounts}, log, chat.Options{
		PresenceGrace:   cfg.presenceGrace,
		JanitorInterval: cfg.janitorInterval,
		Mailer:          mailer,
		Consent:         consentSvc,
		Resolver:        resolver,
	})
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() error { chatSvc.Close(); return nil })
	monitorSvc, err := monitor.NewService(visits, apiKeys, a.hub, monitorSettings{accounts}, log, monitor.Options{
		Retention:       cfg.visitorRetention,
		OnSiteTimeout:   cfg.visitorOnSite,
		JanitorInterval: cfg.monitorJanitor,
		Resolver:        resolver,
		GeoIPCity:       cfg.geoipCity,
		GeoIPASN:        cfg.geoipASN,
		TrustedProxies:  cfg.trustedProxies,
	})
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, monitorSvc.Close)
	accountSvc.OnSignOut = func(operatorID string) {
		chatSvc.SignOut(operatorID)
		monitorSvc.SignOut(operatorID)
	}
	if queue != nil {
		queue.OnDone(func(ctx context.Context, ref string, delivered bool) { chatSvc.MailDone(ctx, ref) })
		mctx, stopMail := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); queue.Run(mctx) }()
		a.closers = append(a.closers, func() error { stopMail(); <-done; return nil })
	}
	consentSvc.Withdraw = chatSvc

	a.adminCreated, a.adminEmail, a.adminPW, err = account.Bootstrap(ctx, accounts, accountSvc, cfg.adminPW)
	if err != nil {
		return nil, fmt.Errorf("first-run setup: %w", err)
	}

	if cfg.demoOrigins != "" {
		origins := []string{"self"}
		for _, o := range strings.Split(cfg.demoOrigins, ",") {
			n, err := web.NormalizeOrigin(o)
			if err != nil {
				return nil, fmt.Errorf("--demo-origins: %w", err)
			}
			origins = append(origins, n)
		}
		if err := accounts.SetAllowedOrigins(ctx, account.DemoAccountID, origins); err != nil {
			return nil, err
		}
	}

	policy := map[string]auth.Kind{}
	for _, p := range []map[string]auth.Kind{chat.Policy(), account.Policy(), consent.Policy(), monitor.Policy()} {
		for k, v := range p {
			policy[k] = v
		}
	}
	opts := []connect.HandlerOption{
		connect.WithInterceptors(
			errs.Interceptor{Log: log},
			&auth.Interceptor{Sessions: sessions, Operators: accountSvc, Visitors: chatSvc, APIKeys: monitorSvc, Policy: policy},
		),
		connect.WithRecover(func(ctx context.Context, spec connect.Spec, _ http.Header, p any) error {
			log.ErrorContext(ctx, "panic in handler", slog.String("procedure", spec.Procedure))
			return connect.NewError(connect.CodeInternal, errors.New("internal error"))
		}),
		connect.WithReadMaxBytes(chat.MaxRequestBytes),
		connect.WithRequireConnectProtocolHeader(),
	}
	mux := http.NewServeMux()
	mux.Handle(chatv1connect.NewChatServiceHandler(chatSvc, opts...))
	mux.Handle(accountv1connect.NewAccountServiceHandler(accountSvc, opts...))
	mux.Handle(consentv1connect.NewConsentServiceHandler(consentSvc, opts...))
	mux.Handle(monitorv1connect.NewMonitorServiceHandler(monitorSvc, opts...))
	services := []string{chatv1connect.ChatServiceName, accountv1connect.AccountServiceName, consentv1connect.ConsentServiceName,
		monitorv1connect.MonitorServiceName}
	reflector := grpcreflect.NewStaticReflector(services...)
	mux.Handle(grpcreflect.NewHandlerV1(reflector))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	mux.Handle(grpchealth.NewHandler(grpchealth.NewStaticChecker(services...)))
	mux.Handle("GET /metrics", metricsHandler(chatSvc, queue))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.Handle("/", web.New(accounts))

	var handler http.Handler = auth.SessionMiddleware(sessions, mux)
	// Refuse cross-site state-changing requests (they would carry the
	// operator's cookie): browsers say where a request comes from.
	a.handler = http.NewCrossOriginProtection().Handler(handler)
	return a, nil
}

func run(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	a, err := newApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	created, email, password := a.adminCreated, a.adminEmail, a.adminPW
	handler := a.handler

	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	if cfg.tlsCert != "" {
		protocols.SetHTTP2(true)
		srv.TLSConfig = TLSConfig()
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}
	srv.Protocols = &protocols

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	scheme := "http"
	if cfg.tlsCert != "" {
		scheme = "https"
	}
	base := scheme + "://" + displayAddr(ln.Addr().String())
	fmt.Fprintf(stdout, "Lethe is listening on %s\n", base)
	fmt.Fprintf(stdout, "  Demo page (visitor): %s/demo\n", base)
	fmt.Fprintf(stdout, "  Console (operator):  %s/console/\n", base)
	if created {
		fmt.Fprintf(stdout, "  First run: admin %s, password %s (shown once; set LETHE_ADMIN_PASSWORD to choose it)\n", email, password)
	}
	log.Info("listening", slog.String("addr", ln.Addr().String()), slog.String("data", cfg.dataDir), slog.Bool("tls", cfg.tlsCert != ""))

	errc := make(chan error, 1)
	go func() {
		if cfg.tlsCert != "" {
			errc <- srv.ServeTLS(ln, cfg.tlsCert, cfg.tlsKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	// Cut streams first (clients resume against the next instance), then let
	// unary calls finish.
	a.hub.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown", slog.String("error", err.Error()))
	}
	return nil
}

// displayAddr turns a listen address into one a browser can open.
func displayAddr(a string) string {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return a
	}
	if host == "127.0.0.1" || host == "::1" || host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}

// TLSConfig is TLS 1.2+ with AEAD cipher suites only, AES-256-GCM first.
// (TLS 1.3 suites are all AEAD and not configurable.)
func TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		},
	}
}
