package chat

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/lethehq/lethe/server/limit"
)

// BenchmarkSendMessageParallel: many visitors in many chats send messages
// at once over HTTP, each answered after its commit (a sanity check of the
// write path's throughput; the figures of record come from lethe-load).
func BenchmarkSendMessageParallel(b *testing.B) {
	e := newEnv(b, withLimits(func(l *Limits) {
		l.StartsPerAddr = limit.Rate{}
		l.OpenPerAddr = 0
		l.MessagesPerVisitor = limit.Rate{}
		l.MessagesPerAddr = limit.Rate{}
	}))
	const chats = 64
	vs := make([]*visitor, chats)
	for i := range vs {
		vs[i] = e.startChat(fmt.Sprintf("V%d", i), "", "hello")
	}
	var next atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			v := vs[next.Add(1)%chats]
			if _, err := v.send(ctx, "a message"); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if batches, changes := e.svc.WriterStats(); batches > 0 {
		b.ReportMetric(float64(changes)/float64(batches), "changes/commit")
	}
}
