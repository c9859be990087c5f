package chat

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/gen/go/lethe/chat/v1/chatv1connect"
)

// floorChat is the floor server's WatchChat: connect-go with nothing but a
// 256-slot channel per stream in a fan-out map, no storage, no auth.
type floorChat struct {
	chatv1connect.UnimplementedChatServiceHandler
	mu   sync.Mutex
	subs map[string]chan any
}

func (f *floorChat) WatchChat(ctx context.Context, req *connect.Request[chatv1.WatchChatRequest], stream *connect.ServerStream[chatv1.WatchChatResponse]) error {
	c := make(chan any, 256)
	f.mu.Lock()
	f.subs[req.Msg.ChatId] = c
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.subs, req.Msg.ChatId)
		f.mu.Unlock()
	}()
	if err := stream.Send(&chatv1.WatchChatResponse{Event: &chatv1.ChatEvent{ChatId: req.Msg.ChatId, Seq: 1}}); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-c:
			if err := stream.Send(&chatv1.WatchChatResponse{Event: m.(*chatv1.ChatEvent)}); err != nil {
				return err
			}
		}
	}
}

// BenchmarkIdleWatchChat reports the memory (heap in use + goroutine
// stacks, server and client in this one process) each idle open WatchChat
// stream holds, beside the floor's (the same client against floorChat), so
// the difference is what Lethe's handler keeps per stream:
//
//	go test -run '^$' -bench IdleWatchChat -benchtime 1x ./server/chat/
func BenchmarkIdleWatchChat(b *testing.B) {
	const n = 1000
	e := newEnv(b)
	vs := make([]*visitor, n)
	for i := range vs {
		vs[i] = e.startChat("V", "", "hello")
	}
	floor := &floorChat{subs: map[string]chan any{}}
	mux := http.NewServeMux()
	mux.Handle(chatv1connect.NewChatServiceHandler(floor))
	fsrv := httptest.NewUnstartedServer(mux)
	fsrv.EnableHTTP2 = true
	fsrv.StartTLS()
	defer fsrv.Close()
	fclient := chatv1connect.NewChatServiceClient(fsrv.Client(), fsrv.URL)

	open := func(watch func(ctx context.Context, i int) (*connect.ServerStreamForClient[chatv1.WatchChatResponse], error)) (float64, float64) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		streams := make([]*connect.ServerStreamForClient[chatv1.WatchChatResponse], n)
		before, stackBefore := inUse()
		g0 := runtime.NumGoroutine()
		for i := range streams {
			s, err := watch(ctx, i)
			if err != nil {
				b.Fatal(err)
			}
			if !s.Receive() { // the handler is past its setup, idle
				b.Fatalf("stream %d: %v", i, s.Err())
			}
			streams[i] = s
		}
		after, stackAfter := inUse()
		b.Logf("goroutines per stream: %.2f", float64(runtime.NumGoroutine()-g0)/n)
		for _, s := range streams {
			s.Close()
		}
		// Wait for the handlers to end before the next measure.
		for i := 0; runtime.NumGoroutine() > g0+n/100 && i < 200; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		return float64(after-before) / n, float64(stackAfter-stackBefore) / n
	}
	var lethe, fl, letheStack, flStack float64
	for b.Loop() {
		fl, flStack = open(func(ctx context.Context, i int) (*connect.ServerStreamForClient[chatv1.WatchChatResponse], error) {
			return fclient.WatchChat(ctx, connect.NewRequest(&chatv1.WatchChatRequest{ChatId: vs[i].chatID}))
		})
		lethe, letheStack = open(func(ctx context.Context, i int) (*connect.ServerStreamForClient[chatv1.WatchChatResponse], error) {
			return vs[i].watch(ctx, 0)
		})
	}
	b.ReportMetric(lethe, "B/stream")
	b.ReportMetric(fl, "B/floor-stream")
	b.ReportMetric(letheStack, "stack-B/stream")
	b.ReportMetric(flStack, "stack-B/floor-stream")
}

// gcs: collections before a measure (each may halve a goroutine's stack
// that uses under a quarter of it).
const gcs = 8

// inUse is the heap in use plus goroutine stacks, and the stacks alone,
// after collection.
func inUse() (int64, int64) {
	for range gcs {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse), int64(m.StackInuse)
}
