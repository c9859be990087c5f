package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lethehq/lethe/server/chat"
	"github.com/lethehq/lethe/server/mail"
)

// metricsHandler serves Prometheus metrics: counts only, never content (P9).
// queue is nil when no mail relay is configured.
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
