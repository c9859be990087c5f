// Command lethe runs the Lethe live chat server: Connect, gRPC and gRPC-Web
// on one port, the widget, the operator console and a demo page.
//
// With no flags it creates ./lethe-data, a demo account and an admin whose
// password is printed once, and listens on 127.0.0.1:8080. `lethe --help`
// lists every flag and its LETHE_* environment variable.
//
// The files of this package: config.go (flags and environment), app.go (the
// wiring: stores, services, handler), adapters.go (what one domain asks of
// another), metrics.go, tls.go, transport.go (what the HTTP layer adds),
// and this file (start, serve, stop).
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/lethehq/lethe/server/netinfo"
)

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stdout)
	if errors.Is(err, errHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "lethe: %v (see lethe --help)\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "lethe:", oneLine(err))
		os.Exit(1)
	}
}

// oneLine keeps an error to one line of output.
func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// run starts the server and serves until ctx ends, then shuts down
// gracefully. A stop asked for while starting is not an error.
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	a, err := newApp(ctx, cfg, log)
	if err != nil {
		if ctx.Err() != nil {
			log.Info("stopped while starting")
			return nil
		}
		return err
	}
	defer a.Close()

	errLog := serverErrorLog(log)
	srv := &http.Server{
		Handler:           transportHandler(a.handler, cfg.readTimeout, streamingProcedures()),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       cfg.idleTimeout,
		MaxHeaderBytes:    cfg.maxHeaderBytes,
		ErrorLog:          errLog,
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	if cfg.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
		if err != nil {
			return fmt.Errorf("--tls-cert, --tls-key: %w", err)
		}
		protocols.SetHTTP2(true)
		srv.TLSConfig = TLSConfig(cert, cfg.tlsAES256Only)
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}
	srv.Protocols = &protocols

	raw, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	ln := netinfo.LimitConns(raw, cfg.maxConnsPerAddress)
	defer ln.Close()
	msrv, maddr, err := serveMetrics(cfg.metricsAddr, cfg.pprof, a.metrics, ln, errLog)
	if err != nil {
		return fmt.Errorf("--metrics-addr: %w", err)
	}
	scheme := "http"
	if cfg.tlsCert != "" {
		scheme = "https"
	}
	base := scheme + "://" + displayAddr(ln.Addr().String())
	// The banner in one write: whoever reads up to "listening" has it all.
	var banner strings.Builder
	fmt.Fprintf(&banner, "Lethe is listening on %s\n", base)
	fmt.Fprintf(&banner, "  Demo page (visitor): %s/demo\n", base)
	fmt.Fprintf(&banner, "  Console (operator):  %s/console/\n", base)
	if msrv != nil {
		fmt.Fprintf(&banner, "  Metrics:             http://%s/metrics\n", maddr)
	}
	switch fr := a.firstRun; {
	case fr.Created && fr.GeneratedPassword != "":
		fmt.Fprintf(&banner, "  First run: admin %s, password %s (shown once; set LETHE_ADMIN_PASSWORD to choose it)\n", fr.Email, fr.GeneratedPassword)
	case fr.Created:
		fmt.Fprintf(&banner, "  First run: admin %s, password from LETHE_ADMIN_PASSWORD\n", fr.Email)
	}
	io.WriteString(stdout, banner.String())
	log.Info("listening", slog.String("addr", ln.Addr().String()), slog.String("data", cfg.dataDir), slog.Bool("tls", cfg.tlsCert != ""),
		slog.String("metrics", maddr))

	errc := make(chan error, 1)
	go func() {
		if cfg.tlsCert != "" {
			errc <- srv.ServeTLS(ln, "", "")
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
	if msrv != nil {
		msrv.Close()
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
