package monitor

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkWatchVisitors5000 puts 5,000 visitors on one account's site,
// with one operator watching over real HTTP/2, then spreads b.N page views
// over them as fast as the server takes them. It reports:
//
//   - heap-B/visitor and disk-B/visitor: what tracking one on-site visitor
//     costs (growth of the Go heap and scratch.db's size, each divided by
//     5,000). Visits live in scratch.db, not in Go memory: the disk figure
//     is what grows with visitors; SQLite's page cache (about 2 MB per
//     pooled connection by default) is bounded whatever the visitor count;
//   - snapshot-ms: the operator's first snapshot of 5,000 visitors;
//   - views/s: page views the server ingested per second;
//   - console-msgs/s and visitors/msg: what the watching console received.
//     Coalescing sends at most one batch per CoalesceInterval (2 per second)
//     however many views come in; a batch of more than 500 changed
//     visitors goes out as several messages.
//
// Run: go test -run '^$' -bench WatchVisitors5000 -benchtime 20000x ./server/monitor
func BenchmarkWatchVisitors5000(b *testing.B) {
	const n = 5000
	e := newEnv(b, Options{OnSiteTimeout: time.Hour})
	ctx := context.Background()
	ua := http.Header{"User-Agent": {chromeWindows}}

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	tokens := make([]string, n)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				res, err := e.svc.track(atAddr(ctx, fmt.Sprintf("203.0.113.%d:1", i%250)), ua, trackReq("acct-a", fmt.Sprintf("https://shop.example/p/%d", i)))
				if err != nil {
					b.Error(err)
					return
				}
				tokens[i] = res.VisitToken
			}
		}()
	}
	wg.Wait()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if err := e.scratch.Checkpoint(ctx); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(e.dir, "scratch.db"))
	if err != nil {
		b.Fatal(err)
	}
	heapPer := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
	diskPer := float64(fi.Size()) / n

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	snapStart := time.Now()
	ops := e.watchVisitors(sctx, opA)
	if got := len(snapshot(b, ops)); got != n {
		b.Fatalf("snapshot of %d visitors", got)
	}
	snapTook := time.Since(snapStart)

	var msgs, visitors atomic.Int64
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		for ops.Receive() {
			msgs.Add(1)
			visitors.Add(int64(len(ops.Msg().Visitors)))
		}
	}()

	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	wg = sync.WaitGroup{}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				h := http.Header{"Authorization": {"Bearer " + tokens[i%n]}}
				if _, err := e.svc.track(atAddr(ctx, "203.0.113.1:1"), h, trackReq("acct-a", fmt.Sprintf("https://shop.example/q/%d", i))); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	ingest := time.Since(start)
	b.StopTimer()
	// Let the last batch out.
	time.Sleep(2 * e.svc.opts.CoalesceInterval)
	elapsed := time.Since(start)
	cancel()
	<-recvDone
	// (ResetTimer drops metrics reported before it.)
	b.ReportMetric(heapPer, "heap-B/visitor")
	b.ReportMetric(diskPer, "disk-B/visitor")
	b.ReportMetric(float64(snapTook.Milliseconds()), "snapshot-ms")
	b.ReportMetric(float64(b.N)/ingest.Seconds(), "views/s")
	b.ReportMetric(float64(msgs.Load())/elapsed.Seconds(), "console-msgs/s")
	if m := msgs.Load(); m > 0 {
		b.ReportMetric(float64(visitors.Load())/float64(m), "visitors/msg")
	}
}
