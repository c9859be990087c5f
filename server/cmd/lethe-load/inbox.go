package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
)

// inboxScenario: an operator's WatchInbox is open while -chats chats start
// within -within (open loop, evenly paced). It reports whether the stream
// was ever cut off (it must not be) and, for each chat, how long after its
// StartChat answered its summary arrived on the inbox (0 when it arrived
// first): the console's lag.
func inboxScenario(ctx context.Context, c loadConfig, within time.Duration, t target) ([]row, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	op, err := signIn(ctx, t, c.email, c.password)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	arrived := map[string]time.Time{} // chat → its first summary on the inbox
	var updates int
	inbox := watchInbox(ctx, op, func(m *chatv1.WatchInboxResponse) {
		if s := m.GetChatUpdated(); s != nil {
			now := time.Now()
			mu.Lock()
			updates++
			if _, ok := arrived[s.ChatId]; !ok {
				arrived[s.ChatId] = now
			}
			mu.Unlock()
		}
	})
	if err := inbox.wait(ctx); err != nil {
		return nil, err
	}
	mu.Lock()
	before := updates
	mu.Unlock()
	p := newPool(t.url, c.clients)
	defer p.close()
	vs := make([]*visitor, c.chats)
	var errs errCount
	rate := float64(c.chats) / within.Seconds()
	start := time.Now()
	_, skipped := pace(ctx, rate, within, c.inflight, func(i int) {
		v, err := startChat(ctx, p.get(i), c.account, i)
		if err != nil {
			errs.add(err)
			return
		}
		vs[i] = v
	})
	took := time.Since(start)
	fmt.Printf("%d chat starts offered in %v\n", c.chats, took.Round(time.Millisecond))
	// Wait for the stragglers' summaries.
	var lag []time.Duration
	missing := 0
	for deadline := time.Now().Add(c.drain); ; time.Sleep(20 * time.Millisecond) {
		lag, missing = lag[:0], 0
		mu.Lock()
		for _, v := range vs {
			if v == nil {
				continue
			}
			a, ok := arrived[v.id]
			if !ok {
				missing++
				continue
			}
			lag = append(lag, max(a.Sub(v.startedAt), 0))
		}
		mu.Unlock()
		if missing == 0 || time.Now().After(deadline) {
			break
		}
	}
	started := 0
	var call []time.Duration
	for _, v := range vs {
		if v != nil {
			started++
			call = append(call, v.startedCall)
		}
	}
	d := distOf(lag)
	mu.Lock()
	n := updates - before
	mu.Unlock()
	return []row{
		{"chats started", fmt.Sprintf("%d of %d in %.1f s (%d failed: %s; %d skipped)", started, c.chats, took.Seconds(), c.chats-started-skipped, errs.String(), skipped)},
		{"StartChat answer time", distOf(call).String()},
		{"operator inbox", inbox.String()},
		{"summary on the inbox after StartChat answered", fmt.Sprintf("p50 %s, p99 %s, max %s", ms(d.p50), ms(d.p99), ms(d.max))},
		{"chats whose summary never arrived", fmt.Sprint(missing)},
		{"chat summaries received", fmt.Sprint(n)},
	}, nil
}
