package main

import (
	stdlog "log"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lethehq/lethe/server/chat"
	"github.com/lethehq/lethe/server/mail"
	"github.com/lethehq/lethe/server/netinfo"
)

// metricsRegistry holds the Prometheus metrics: counts only, never content
// (P9). queue is nil when no mail relay is configured.
func metricsRegistry(chats *chat.Service, queue *mail.Queue) *prometheus.Registry {
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
	return reg
}

// metricsHandler serves reg at /metrics and nothing else.
func metricsHandler(reg prometheus.Gatherer, profiles bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if profiles {
		// Go's profiler (--pprof), for the profiles in BENCHMARKS.md: CPU,
		// heap and goroutine stacks, sizes and counts, never data.
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	}
	return mux
}

// serveMetrics serves reg, with the count of connections conns refused, on
// a listener of its own at addr, so that the public port never shows them
// (empty addr: no metrics, a nil server). It returns the address it listens
// on.
func serveMetrics(addr string, profiles bool, reg *prometheus.Registry, conns *netinfo.ConnLimiter, errLog *stdlog.Logger) (*http.Server, string, error) {
	if addr == "" {
		return nil, "", nil
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lethe_connections_refused_total",
		Help: "Connections closed at accept because their address held --max-conns-per-address already."},
		func() float64 { return float64(conns.Refused()) }))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{Handler: metricsHandler(reg, profiles), ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog}
	go srv.Serve(ln)
	return srv, ln.Addr().String(), nil
}
