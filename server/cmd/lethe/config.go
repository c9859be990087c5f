package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/dustin/go-humanize"

	"github.com/lethehq/lethe/server/account"
	"github.com/lethehq/lethe/server/chat"
	"github.com/lethehq/lethe/server/files"
	"github.com/lethehq/lethe/server/guard"
	"github.com/lethehq/lethe/server/limit"
	"github.com/lethehq/lethe/server/monitor"
	"github.com/lethehq/lethe/server/netinfo"
	"github.com/lethehq/lethe/server/privacy"
)

// config is everything the server is started with.
type config struct {
	addr     string
	dataDir  string
	tlsCert  string
	tlsKey   string
	logLevel string
	// adminPW is the first admin's password (LETHE_ADMIN_PASSWORD; empty:
	// a random one is generated and printed once).
	adminPW string
	// extra website origins for the demo account's widget
	demoOrigins string
	// SMTP relay for transcripts and offline messages
	smtpHost, smtpUser, smtpPassword, smtpFrom, smtpCA string
	smtpPort                                           int
	mailMaxHold                                        time.Duration
	// visitor monitoring
	geoipCity, geoipASN string
	trustedProxies      []netip.Prefix
	visitorRetention    time.Duration
	// limits on anonymous clients (nil: the defaults)
	anon *anonLimits
	// sign-in: password hashing and failed sign-ins
	hashConcurrency, hashQueue int
	hashWait                   time.Duration
	hashFailedRate             *limit.Rate // nil: the default
	loginTarpit                time.Duration
	login                      account.LoginLimits
	// transport: timeouts, connections per address, metrics listener, TLS
	readTimeout        time.Duration
	idleTimeout        time.Duration
	maxHeaderBytes     int
	maxConnsPerAddress int
	metricsAddr        string
	pprof              bool
	tlsAES256Only      bool
	// files in chats: server caps (accounts may lower them), the budget of
	// all chats' files together, and the life of a download link
	filesMaxFile, filesMaxChat, filesMaxTotal byteSize
	filesLinkTTL                              time.Duration

	// Set by tests only: shorter timers, smaller buffers, cheaper hashing.
	mailRetryMin, mailRetryMax    time.Duration
	visitorOnSite, monitorJanitor time.Duration
	passwordParams                *argon2id.Params
	hubBuffer                     int
	presenceGrace                 time.Duration
	janitorInterval               time.Duration
}

// flags binds each flag to its LETHE_* environment variable: the variable
// sets the value, the flag on the command line overrides it, and the help
// text of every flag names its variable.
type flags struct {
	*flag.FlagSet
	env map[string]string // flag name → variable
}

func (f *flags) bind(name, env string) { f.env[name] = env }

func (f *flags) str(p *string, name, env, def, usage string) {
	f.StringVar(p, name, def, usage+" (env "+env+")")
	f.bind(name, env)
}

func (f *flags) integer(p *int, name, env string, def int, usage string) {
	f.IntVar(p, name, def, usage+" (env "+env+")")
	f.bind(name, env)
}

func (f *flags) boolean(p *bool, name, env string, def bool, usage string) {
	f.BoolVar(p, name, def, usage+" (env "+env+")")
	f.bind(name, env)
}

func (f *flags) duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	f.DurationVar(p, name, def, usage+" (env "+env+")")
	f.bind(name, env)
}

// fromEnv applies the environment variables that are set, before the
// command line is parsed.
func (f *flags) fromEnv() error {
	names := make([]string, 0, len(f.env))
	for n := range f.env {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		if v, ok := os.LookupEnv(f.env[name]); ok {
			if err := f.Set(name, v); err != nil {
				return fmt.Errorf("%s=%q: %w", f.env[name], v, err)
			}
		}
	}
	return nil
}

// anonLimits are the limits on anonymous clients.
type anonLimits struct {
	chat    chat.Limits
	monitor monitor.Limits
	streams guard.Limits
	// privacy: the visitor's privacy RPCs and the public /privacy page
	privacy limit.Rate
}

func defaultAnonLimits() *anonLimits {
	return &anonLimits{chat: chat.DefaultLimits(), monitor: monitor.DefaultLimits(), streams: guard.DefaultLimits(),
		privacy: privacy.DefaultVisitorRate}
}

// defaultFilesMaxTotal is the default budget of all chats' files together.
const defaultFilesMaxTotal = 2 << 30

// byteSize is a flag holding a number of bytes, written plain or with a
// unit (10MiB, 2GB, 512k).
type byteSize int64

func (b *byteSize) String() string { return humanize.IBytes(uint64(*b)) }

func (b *byteSize) Set(s string) error {
	n, err := humanize.ParseBytes(s)
	if err != nil || n > 1<<50 {
		return fmt.Errorf("%q is not a size (write 10MiB, 2GB or a number of bytes)", s)
	}
	*b = byteSize(n)
	return nil
}

// errHelp: --help was asked for and the usage printed.
var errHelp = errors.New("help requested")

// parseFlags reads the configuration from the environment and args. With
// -h or --help it prints the usage to stdout and returns errHelp.
func parseFlags(args []string, stdout io.Writer) (config, error) {
	var c config
	f := &flags{FlagSet: flag.NewFlagSet("lethe", flag.ContinueOnError), env: map[string]string{}}
	f.SetOutput(io.Discard)
	f.str(&c.addr, "addr", "LETHE_ADDR", "127.0.0.1:8080", "listen address")
	f.str(&c.dataDir, "data", "LETHE_DATA", "lethe-data", "data directory (lethe.db, scratch.db)")
	f.str(&c.tlsCert, "tls-cert", "LETHE_TLS_CERT", "", "TLS certificate file (PEM); serves HTTPS when set with --tls-key")
	f.str(&c.tlsKey, "tls-key", "LETHE_TLS_KEY", "", "TLS private key file (PEM)")
	f.str(&c.demoOrigins, "demo-origins", "LETHE_DEMO_ORIGINS", "",
		"comma-separated website origins (https://shop.example) where the demo account's widget may be embedded, besides this server")
	f.str(&c.smtpHost, "smtp-host", "LETHE_SMTP_HOST", "", "SMTP relay for transcripts and offline messages (empty: no mail)")
	f.integer(&c.smtpPort, "smtp-port", "LETHE_SMTP_PORT", 587, "SMTP relay port (STARTTLS)")
	f.str(&c.smtpUser, "smtp-user", "LETHE_SMTP_USER", "", "SMTP user name (the password comes from LETHE_SMTP_PASSWORD only)")
	f.str(&c.smtpFrom, "smtp-from", "LETHE_SMTP_FROM", "Lethe <lethe@localhost>", "From address of mail")
	f.str(&c.smtpCA, "smtp-ca", "LETHE_SMTP_CA", "", "PEM file of CA certificates to trust for the relay (default: system roots)")
	f.duration(&c.mailMaxHold, "mail-max-hold", "LETHE_MAIL_MAX_HOLD", 72*time.Hour,
		"how long undeliverable mail is kept and retried before it is destroyed and counted as dropped")
	f.str(&c.geoipCity, "geoip-city", "LETHE_GEOIP_CITY", "",
		"MaxMind-format City database (GeoLite2-City.mmdb) for visitors' location and zip (empty: none)")
	f.str(&c.geoipASN, "geoip-asn", "LETHE_GEOIP_ASN", "", "MaxMind-format ASN database (GeoLite2-ASN.mmdb) for visitors' ISP (empty: none)")
	var trusted string
	f.str(&trusted, "trusted-proxies", "LETHE_TRUSTED_PROXIES", "",
		"comma-separated proxy addresses or CIDR prefixes whose X-Forwarded-For is believed (empty: none; the peer address is the client)")
	f.duration(&c.visitorRetention, "visitor-retention", "LETHE_VISITOR_RETENTION", 3*time.Minute,
		"how long after a visitor leaves the site their monitoring data is destroyed")
	// Transport: what one client may hold of the listener, the metrics
	// listener, TLS suites.
	f.duration(&c.readTimeout, "read-timeout", "LETHE_READ_TIMEOUT", 30*time.Second,
		"how long a request may take to send its body, streams excepted (0: no limit)")
	f.duration(&c.idleTimeout, "idle-timeout", "LETHE_IDLE_TIMEOUT", 120*time.Second, "how long an idle keep-alive connection is kept open")
	f.integer(&c.maxHeaderBytes, "max-header-bytes", "LETHE_MAX_HEADER_BYTES", 64<<10, "largest request header accepted, in bytes")
	f.integer(&c.maxConnsPerAddress, "max-conns-per-address", "LETHE_MAX_CONNS_PER_ADDRESS", 256,
		"open connections allowed per peer address; behind a proxy the peer is the proxy, so raise it or turn it off (0: off)")
	f.str(&c.metricsAddr, "metrics-addr", "LETHE_METRICS_ADDR", "127.0.0.1:9464",
		"listen address of the Prometheus /metrics endpoint, kept off the public port (empty: no metrics)")
	f.boolean(&c.pprof, "pprof", "LETHE_PPROF", false, "also serve Go's profiler (/debug/pprof/) on the metrics address, for measuring")
	f.boolean(&c.tlsAES256Only, "tls-aes256-only", "LETHE_TLS_AES256_ONLY", false,
		"with TLS, accept only AES-256-GCM; Go cannot restrict TLS 1.3 suites, so this also limits TLS to 1.2")
	f.str(&c.logLevel, "log-level", "LETHE_LOG_LEVEL", "info", "debug, info, warn or error")

	// Limits on anonymous clients (visitors of the widget), per client
	// address and per token (issue 9).
	c.anon = defaultAnonLimits()
	rate := func(p *limit.Rate, name, env, usage string) {
		f.Var(p, name, usage+": N/period (N at once, refilled over the period) or off (env "+env+")")
		f.bind(name, env)
	}
	ceiling := func(p *int, name, env, usage string) {
		f.IntVar(p, name, *p, usage+" (0: no limit) (env "+env+")")
		f.bind(name, env)
	}
	rate(&c.anon.chat.StartsPerAddr, "chats-per-addr", "LETHE_CHATS_PER_ADDR", "chats started per client address")
	ceiling(&c.anon.chat.OpenPerAddr, "open-chats-per-addr", "LETHE_OPEN_CHATS_PER_ADDR", "chats open at once per client address")
	rate(&c.anon.chat.MessagesPerVisitor, "messages-per-visitor", "LETHE_MESSAGES_PER_VISITOR", "chat messages per visitor")
	rate(&c.anon.chat.MessagesPerAddr, "messages-per-addr", "LETHE_MESSAGES_PER_ADDR", "chat messages per client address")
	rate(&c.anon.chat.OfflinePerAddr, "offline-per-addr", "LETHE_OFFLINE_PER_ADDR", "offline messages per client address")
	rate(&c.anon.monitor.NewVisitsPerAddr, "visits-per-addr", "LETHE_VISITS_PER_ADDR", "new monitored visits per client address")
	rate(&c.anon.monitor.CallsPerVisit, "visit-calls-per-visit", "LETHE_VISIT_CALLS_PER_VISIT",
		"monitoring calls (page views, heartbeats, custom data, ...) per visit")
	rate(&c.anon.monitor.CallsPerAddr, "visit-calls-per-addr", "LETHE_VISIT_CALLS_PER_ADDR", "monitoring calls per client address")
	ceiling(&c.anon.streams.PerToken, "streams-per-token", "LETHE_STREAMS_PER_TOKEN", "open WatchChat or WatchVisit streams per visitor or visit token")
	ceiling(&c.anon.streams.PerAddr, "streams-per-addr", "LETHE_STREAMS_PER_ADDR", "open visitor streams per client address")
	rate(&c.anon.privacy, "privacy-per-addr", "LETHE_PRIVACY_PER_ADDR",
		"visitors' privacy requests (see, correct, forget, stop tracking) and /privacy page views per client address")

	// Sign-in (account): argon2id computations at once, and failed sign-ins.
	f.integer(&c.hashConcurrency, "hash-concurrency", "LETHE_HASH_CONCURRENCY", 0,
		"argon2id password checks at once, each holding 64 MiB and one processor (0: half the processors, 1 to 4)")
	f.integer(&c.hashQueue, "hash-queue", "LETHE_HASH_QUEUE", account.DefaultHashQueue,
		"sign-ins that may wait for a password check; beyond them sign-in is answered busy")
	f.duration(&c.hashWait, "hash-wait", "LETHE_HASH_WAIT", account.DefaultHashWait,
		"how long a sign-in waits for a password check before it is answered busy")
	failedRate := account.DefaultHashFailedRate
	c.hashFailedRate = &failedRate
	rate(c.hashFailedRate, "hash-failed-rate", "LETHE_HASH_FAILED_RATE",
		"password checks for sign-ins from addresses that already failed, all together (clean addresses are not counted)")
	f.duration(&c.loginTarpit, "login-tarpit", "LETHE_LOGIN_TARPIT", account.DefaultTarpit,
		"how long a refused sign-in (throttled or busy) is held before it is answered, at most its retry hint (0: at once)")
	c.login = account.DefaultLoginLimits()
	rate(&c.login.PerAddress, "login-address-failures", "LETHE_LOGIN_ADDRESS_FAILURES",
		"failed sign-ins one client address may make, whatever the e-mail address")
	rate(&c.login.PerAccount, "login-account-failures", "LETHE_LOGIN_ACCOUNT_FAILURES",
		"failed sign-ins for one e-mail address from all client addresses, beyond which addresses that failed on it back off from their first failure; an address that has not failed still signs in")
	f.integer(&c.login.FreeFailures, "login-free-failures", "LETHE_LOGIN_FREE_FAILURES", c.login.FreeFailures,
		"failed sign-ins one client address may make for one e-mail address before it must wait")
	f.duration(&c.login.BackoffMax, "login-backoff-max", "LETHE_LOGIN_BACKOFF_MAX", c.login.BackoffMax,
		"the longest wait after failed sign-ins (the wait starts at 1s and doubles with each failure)")

	// Files in chats (issue 10): sizes as bytes or with a unit (10MiB, 2GB).
	c.filesMaxFile, c.filesMaxChat, c.filesMaxTotal = files.DefaultMaxFileBytes, files.DefaultMaxChatBytes, defaultFilesMaxTotal
	size := func(p *byteSize, name, env, usage string) {
		f.Var(p, name, usage+": bytes, or with a unit (10MiB, 2GB) (env "+env+")")
		f.bind(name, env)
	}
	size(&c.filesMaxFile, "files-max-file", "LETHE_FILES_MAX_FILE", "largest file in a chat (accounts may set less)")
	size(&c.filesMaxChat, "files-max-chat", "LETHE_FILES_MAX_CHAT", "largest total of one chat's files (accounts may set less)")
	size(&c.filesMaxTotal, "files-max-total", "LETHE_FILES_MAX_TOTAL",
		"budget of all open chats' files together on this server, beyond which uploads are refused (0: only the disk's free space)")
	f.duration(&c.filesLinkTTL, "files-link-ttl", "LETHE_FILES_LINK_TTL", time.Minute, "how long a single-use download link for a browser is valid")

	err := f.fromEnv()
	if err == nil {
		err = f.Parse(args)
	}
	if errors.Is(err, flag.ErrHelp) {
		usage(f, stdout)
		return c, errHelp
	}
	if err != nil {
		return c, err
	}
	if f.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (flags start with --)", f.Arg(0))
	}
	if c.trustedProxies, err = netinfo.ParseTrustedProxies(trusted); err != nil {
		return c, fmt.Errorf("--trusted-proxies: %w", err)
	}
	if c.hashConcurrency < 0 || c.hashQueue < 1 || c.hashWait <= 0 {
		return c, errors.New("--hash-concurrency must be 0 or more, --hash-queue 1 or more, --hash-wait positive")
	}
	if c.login.FreeFailures < 0 || c.login.BackoffMax < time.Second {
		return c, errors.New("--login-free-failures must be 0 or more and --login-backoff-max at least 1s")
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return c, errors.New("--tls-cert and --tls-key go together")
	}
	if c.readTimeout < 0 || c.idleTimeout < 0 || c.maxHeaderBytes < 0 || c.maxConnsPerAddress < 0 {
		return c, errors.New("--read-timeout, --idle-timeout, --max-header-bytes and --max-conns-per-address cannot be negative")
	}
	if c.filesMaxFile < 1 || c.filesMaxChat < c.filesMaxFile || (c.filesMaxTotal != 0 && c.filesMaxTotal < c.filesMaxChat) || c.filesLinkTTL <= 0 {
		return c, errors.New("--files-max-file must be at least 1 byte, --files-max-chat at least --files-max-file, --files-max-total 0 or at least --files-max-chat, --files-link-ttl positive")
	}
	if c.tlsAES256Only && c.tlsCert == "" {
		return c, errors.New("--tls-aes256-only needs --tls-cert and --tls-key")
	}
	c.adminPW = os.Getenv("LETHE_ADMIN_PASSWORD")
	c.smtpPassword = os.Getenv("LETHE_SMTP_PASSWORD")
	return c, nil
}

func usage(f *flags, w io.Writer) {
	fmt.Fprintf(w, `Usage: lethe [flags]

Lethe, live chat that forgets: serves the chat API, the widget, the operator
console and a demo page on one port. Every flag can also be set by the
environment variable named with it; the command line wins.

Flags:
`)
	f.SetOutput(w)
	f.PrintDefaults()
	f.SetOutput(io.Discard)
	fmt.Fprintf(w, `
Environment only:
  LETHE_ADMIN_PASSWORD   the first admin's password (first run only; default: random, printed once)
  LETHE_SMTP_PASSWORD    the SMTP AUTH password
`)
}
