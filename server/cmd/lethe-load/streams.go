package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/gen/go/lethe/chat/v1/chatv1connect"
	monitorv1 "github.com/lethehq/lethe/gen/go/lethe/monitor/v1"
	"github.com/lethehq/lethe/gen/go/lethe/monitor/v1/monitorv1connect"
)

// streamsConfig is scenario streams.
type streamsConfig struct {
	account     string
	n           int           // visitor streams to open
	perConn     int           // streams per HTTP/2 connection
	concurrency int           // visitors opening at once
	idle        time.Duration // how long idle CPU is measured
	// visits: each visitor is the widget's loader before any click (Track
	// with write_only, then WatchVisit on the page token, the stream that
	// brings invitations) instead of a chat (StartChat, then WatchChat).
	visits bool
}

// receiver is an open server stream as the scenario reads it.
type receiver interface {
	Receive() bool
	Err() error
	Close() error
}

// streams opens n visitor streams (StartChat, then WatchChat, each stream
// counted open when its first event arrives), perConn streams per HTTP/2
// connection, the connections spread over 127.0.0.2–127.0.0.20; then
// reports the time it took, the server's RSS before and after (per open
// stream), and the server's CPU while they all sit idle. Each stream holds
// one goroutine that only reads.
func streamsScenario(ctx context.Context, c streamsConfig, t target) ([]row, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conns := (c.n + c.perConn - 1) / c.perConn
	clients := make([]*http.Client, conns)
	chats := make([]chatv1connect.ChatServiceClient, conns)
	monitors := make([]monitorv1connect.MonitorServiceClient, conns)
	for i := range conns {
		clients[i] = h2From(srcAddr(i))
		chats[i] = chatv1connect.NewChatServiceClient(clients[i], t.url)
		monitors[i] = monitorv1connect.NewMonitorServiceClient(clients[i], t.url)
	}
	// open starts visitor i's stream on the scenario's context.
	open1 := func(ctx, streamsCtx context.Context, i int) (receiver, error) {
		if c.visits {
			mon := monitors[i%conns]
			res, err := mon.Track(ctx, connect.NewRequest(&monitorv1.TrackRequest{AccountId: c.account, WriteOnly: true,
				Page: &monitorv1.Page{Url: fmt.Sprintf("https://shop.example/p/%d", i), Title: "Load"}}))
			if err != nil {
				return nil, fmt.Errorf("visitor %d: track: %w", i, err)
			}
			return mon.WatchVisit(streamsCtx, withToken(&monitorv1.WatchVisitRequest{}, res.Msg.PageToken))
		}
		cli := chats[i%conns]
		v, err := startChat(ctx, cli, c.account, i)
		if err != nil {
			return nil, err
		}
		return cli.WatchChat(streamsCtx, withToken(&chatv1.WatchChatRequest{ChatId: v.id}, v.token))
	}
	defer func() {
		cancel()
		for _, cl := range clients {
			cl.CloseIdleConnections()
		}
	}()
	rss0 := settle(t.pid)
	debug.FreeOSMemory() // what an earlier run held is not counted
	self0 := rssKiB(os.Getpid())
	var open, cuts, live atomic.Int64
	var errs errCount
	start := time.Now()
	tenth := max(c.n/10, 1)
	// Visitors i, i+conns, i+2·conns … share connection i, so every
	// connection fills as the run goes.
	// The streams live on the scenario's context: parallel's own ends (and
	// would reset every stream) as soon as the last one is open.
	streamsCtx := ctx
	err := parallel(ctx, c.n, c.concurrency, func(ctx context.Context, i int) error {
		opened := make(chan error, 1)
		go func() {
			stream, err := open1(ctx, streamsCtx, i)
			if err != nil {
				opened <- err
				return
			}
			first := true
			for stream.Receive() {
				if first {
					first = false
					live.Add(1)
					opened <- nil
				}
			}
			if !first {
				live.Add(-1)
			}
			if first {
				opened <- fmt.Errorf("visitor %d: the stream ended before its first event: %w", i, stream.Err())
			} else if streamsCtx.Err() == nil {
				cuts.Add(1)
				errs.add(stream.Err())
			}
			stream.Close()
		}()
		if err := <-opened; err != nil {
			return err
		}
		if o := open.Add(1); o%int64(tenth) == 0 {
			fmt.Printf("  %d open after %v\n", o, time.Since(start).Round(time.Millisecond))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%d streams open: %w", open.Load(), err)
	}
	took := time.Since(start)
	fmt.Printf("%d streams open in %v (%d connections)\n", c.n, took.Round(time.Millisecond), conns)
	rss1 := settle(t.pid)
	self1 := rssKiB(os.Getpid())
	rows := []row{
		{"visitor streams open", fmt.Sprintf("%d on %d HTTP/2 connections (%d per connection) from 19 addresses", c.n, conns, c.perConn)},
		{"time to open them all (" + map[bool]string{false: "StartChat + WatchChat", true: "Track with write_only + WatchVisit"}[c.visits] + " each)", fmt.Sprintf("%.1f s (%.0f streams/s)", took.Seconds(), float64(c.n)/took.Seconds())},
	}
	if t.pid > 0 {
		rows = append(rows,
			row{"server RSS before → after", fmt.Sprintf("%.1f → %.1f MiB", float64(rss0)/1024, float64(rss1)/1024)},
			row{"server RSS per idle open stream", fmt.Sprintf("%.1f KiB", float64(rss1-rss0)/float64(c.n))},
			row{"server fds", fmt.Sprint(fdCount(t.pid))})
		fmt.Printf("measuring idle CPU for %v\n", c.idle)
		rows = append(rows, row{fmt.Sprintf("server idle CPU over %v", c.idle), fmt.Sprintf("%.2f %% of a core", cpuPercent(ctx, t.pid, c.idle))})
	}
	rows = append(rows,
		row{"client RSS per stream (the load client itself)", fmt.Sprintf("%.1f KiB", float64(self1-self0)/float64(c.n))},
		row{"streams cut off while open", fmt.Sprintf("%d (%s)", cuts.Load(), errs.String())},
		row{"streams still open at the end", fmt.Sprint(live.Load())})
	return rows, nil
}
