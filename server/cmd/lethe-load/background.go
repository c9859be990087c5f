package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
)

// background is message load in other chats while a scenario measures:
// visitors of chats accepted by an operator send at a rate (open loop),
// each message timed to its arrival on the operator's inbox.
type background struct {
	rate   float64
	tr     *tracker
	sent   atomic.Int64 // messages due so far
	ok     atomic.Int64
	errs   errCount
	inbox  *inboxWatch
	start  time.Time
	done   chan struct{}
	closed time.Time
}

// backgroundFor is the longest background load (its tracker is sized for it).
const backgroundFor = 30 * time.Minute

func startBackground(ctx context.Context, t target, email, password, account string, rate float64, chats int) (*background, error) {
	op, err := signIn(ctx, t, email, password)
	if err != nil {
		return nil, fmt.Errorf("background: %w", err)
	}
	b := &background{rate: rate, tr: newTracker(int(rate * backgroundFor.Seconds())), done: make(chan struct{})}
	b.inbox = watchInbox(ctx, op, func(m *chatv1.WatchInboxResponse) {
		if msg := m.GetEvent().GetMessage(); msg != nil && msg.AuthorKind == chatv1.AuthorKind_AUTHOR_KIND_VISITOR {
			b.tr.delivered(msg.Text)
		}
	})
	if err := b.inbox.wait(ctx); err != nil {
		return nil, err
	}
	p := newPool(t.url, 4)
	vs, err := openChats(ctx, p, op, account, chats)
	if err != nil {
		return nil, fmt.Errorf("background: %w", err)
	}
	b.start = time.Now()
	go func() {
		defer close(b.done)
		defer p.close()
		// One-second rounds, until ctx ends or the tracker is full.
		for lo := 0; ctx.Err() == nil && lo+int(rate) <= len(b.tr.sent); {
			n, skipped := pace(ctx, rate, time.Second, 10000, func(i int) {
				k := lo + i
				b.tr.markSent(k)
				if err := vs[k%len(vs)].send(ctx, b.tr.text(k)); err != nil {
					if ctx.Err() == nil {
						b.errs.add(err)
					}
					return
				}
				b.ok.Add(1)
			})
			b.sent.Add(int64(n - skipped))
			lo += n
		}
		b.closed = time.Now()
	}()
	fmt.Printf("background: %.0f messages/s in %d chats\n", rate, chats)
	return b, nil
}

// report waits for the load to stop and says what it was.
func (b *background) report() string {
	<-b.done
	n := int(b.sent.Load())
	b.tr.waitDelivered(0, n, func(int) bool { return true }, time.Second)
	d := distOf(b.tr.span(0, n))
	secs := b.closed.Sub(b.start).Seconds()
	return fmt.Sprintf("background: offered %.0f/s, %d sent in %.1f s (%.1f/s persisted and delivered); failed: %s; send → operator %v; inbox %s",
		b.rate, n, secs, float64(d.n)/secs, b.errs.String(), d, b.inbox.String())
}
