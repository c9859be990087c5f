package main

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	lethe "github.com/lethehq/lethe/sdk/go"
)

// loadConfig is what the issue-8 scenarios share.
type loadConfig struct {
	email, password, account string
	chats                    int
	clients                  int           // h2c clients (connections) the visitors' calls spread over
	inflight                 int           // unanswered sends at most, beyond which sends are skipped
	drain                    time.Duration // how long deliveries are awaited after the last send
	p99Max                   time.Duration
	rates                    []float64     // scenario throughput: the offered rates, in order
	stepFor                  time.Duration // scenario throughput: how long each is offered
	warmup                   time.Duration // scenario throughput: load at the first rate before the steps, not counted
	maxFails                 int           // scenario throughput: failing steps before it stops
	rate                     float64       // scenario chats10k: the offered rate
	window                   time.Duration // scenario chats10k: how long it is offered
}

// throughput: -chats chats, all accepted by one operator (so that every
// message is a full event on the operator's inbox, whether or not the
// server coalesces summaries), visitors sending at each offered rate in
// turn (open loop), each message timed from the SendMessage call to its
// arrival on the operator's WatchInbox. A step passes when ≥ 99 % of what
// was offered was persisted (SendMessage answered OK) and delivered, with
// p99 ≤ -p99; the load stops after -max-fails steps that fail.
func throughput(ctx context.Context, c loadConfig, t target) ([]row, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	op, err := signIn(ctx, t, c.email, c.password)
	if err != nil {
		return nil, err
	}
	total := 0
	for _, r := range c.rates {
		total += int(math.Round(r * c.stepFor.Seconds()))
	}
	tr := newTracker(total)
	inbox, p, vs, err := acceptedChats(ctx, t, op, c, tr)
	if err != nil {
		return nil, err
	}
	defer p.close()
	rows := []row{{"chats (accepted by one operator)", fmt.Sprint(c.chats)}}
	if c.warmup > 0 {
		// Not counted: the first calls of every connection and code path.
		wtr := newTracker(int(c.rates[0]*c.warmup.Seconds()) + 1)
		pace(ctx, c.rates[0], c.warmup, c.inflight, func(i int) { wtr.markSent(i); _ = vs[i%len(vs)].send(ctx, "warm-up") })
	}
	okSent := make([]atomic.Bool, total)
	var errs errCount
	var steps []step
	lo, fails := 0, 0
	cpu0 := cpuTicks(t.pid)
	var busy time.Duration
	for _, rate := range c.rates {
		start := time.Now()
		n, skipped := pace(ctx, rate, c.stepFor, c.inflight, func(i int) {
			k := lo + i
			tr.markSent(k)
			if err := vs[k%len(vs)].send(ctx, tr.text(k)); err != nil {
				errs.add(err)
				return
			}
			okSent[k].Store(true)
		})
		tr.waitDelivered(lo, lo+n, func(k int) bool { return okSent[k].Load() }, c.drain)
		busy += time.Since(start)
		lat := tr.span(lo, lo+n)
		failed := skipped
		for k := lo; k < lo+n; k++ {
			if !okSent[k].Load() {
				failed++
			}
		}
		s := step{rate: rate, d: c.stepFor, offered: n, delivered: len(lat), failed: failed, lat: distOf(lat)}
		steps = append(steps, s)
		verdict := "passes"
		if !s.passes(c.p99Max) {
			verdict = "FAILS"
		}
		fmt.Printf("  %v — %s\n", s, verdict)
		rows = append(rows, row{fmt.Sprintf("offered %.0f/s", rate), fmt.Sprintf("%.0f/s, p50 %s, p99 %s %s", s.achieved(), ms(s.lat.p50), ms(s.lat.p99), verdict)})
		lo += n
		if !s.passes(c.p99Max) {
			fails++
		}
		if fails >= c.maxFails || ctx.Err() != nil {
			break
		}
	}
	if b, ok := best(steps, c.p99Max); ok {
		rows = append(rows, row{fmt.Sprintf("highest rate with p99 ≤ %v", c.p99Max), fmt.Sprintf("%.0f/s (achieved %.0f/s, p99 %s)", b.rate, b.achieved(), ms(b.lat.p99))})
	} else {
		rows = append(rows, row{fmt.Sprintf("highest rate with p99 ≤ %v", c.p99Max), "none of the offered rates"})
	}
	delivered := 0
	for _, s := range steps {
		delivered += s.delivered
	}
	if t.pid > 0 && delivered > 0 {
		cpu := time.Duration(cpuTicks(t.pid)-cpu0) * 10 * time.Millisecond
		rows = append(rows, row{"server CPU per message", fmt.Sprintf("%s (%.0f %% of a core over %v)", ms(cpu/time.Duration(delivered)),
			float64(cpu)/float64(busy)*100, busy.Round(time.Second))})
	}
	rows = append(rows, row{"failed sends", errs.String()}, row{"operator inbox", inbox.String()})
	return rows, nil
}

// chats10k: -chats open chats (default 10,000), all accepted by one
// operator, each visitor watching its chat; -rate messages per second in
// all for -window, alternately visitor → operator (SendMessage, timed to
// its arrival on the operator's WatchInbox) and operator → visitor
// (SendOperatorMessage, timed to its arrival on the visitor's WatchChat).
func chats10k(ctx context.Context, c loadConfig, t target) ([]row, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	op, err := signIn(ctx, t, c.email, c.password)
	if err != nil {
		return nil, err
	}
	n := int(math.Round(c.rate * c.window.Seconds()))
	tr := newTracker(n)
	t0 := time.Now()
	inbox, p, vs, err := acceptedChats(ctx, t, op, c, tr)
	if err != nil {
		return nil, err
	}
	defer p.close()
	var cuts atomic.Int64
	var open atomic.Int64
	for _, v := range vs {
		go func() {
			for after := int64(0); ctx.Err() == nil; {
				stream, err := v.chat.WatchChat(ctx, withToken(&chatv1.WatchChatRequest{ChatId: v.id, AfterSeq: after}, v.token))
				if err != nil {
					return
				}
				counted := false
				for stream.Receive() {
					if !counted {
						open.Add(1)
						counted = true
					}
					ev := stream.Msg().Event
					after = max(after, ev.GetSeq())
					if msg := ev.GetMessage(); msg != nil && msg.AuthorKind == chatv1.AuthorKind_AUTHOR_KIND_OPERATOR {
						tr.delivered(msg.Text)
					}
				}
				if counted {
					open.Add(-1)
				}
				stream.Close()
				if ctx.Err() == nil {
					cuts.Add(1)
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	for deadline := time.Now().Add(2 * time.Minute); open.Load() < int64(len(vs)); {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d visitor streams open after 2 minutes", open.Load(), len(vs))
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Printf("%d visitor streams open after %v\n", len(vs), time.Since(t0).Round(time.Millisecond))
	okSent := make([]atomic.Bool, n)
	var errs errCount
	cpu0 := cpuTicks(t.pid)
	start := time.Now()
	_, skipped := pace(ctx, c.rate, c.window, c.inflight, func(i int) {
		v := vs[(i/2)%len(vs)]
		tr.markSent(i)
		var err error
		if i%2 == 0 {
			err = v.send(ctx, tr.text(i))
		} else {
			_, err = op.Chat.SendOperatorMessage(ctx, connect.NewRequest(&chatv1.SendOperatorMessageRequest{ChatId: v.id, Text: tr.text(i)}))
		}
		if err != nil {
			errs.add(err)
			return
		}
		okSent[i].Store(true)
	})
	tr.waitDelivered(0, n, func(k int) bool { return okSent[k].Load() }, c.drain)
	busy := time.Since(start)
	var toOp, toVisitor []time.Duration
	for k := range n {
		if l := tr.span(k, k+1); len(l) == 1 {
			if k%2 == 0 {
				toOp = append(toOp, l[0])
			} else {
				toVisitor = append(toVisitor, l[0])
			}
		}
	}
	all := distOf(append(append([]time.Duration{}, toOp...), toVisitor...))
	rows := []row{
		{"open chats (accepted, each visitor watching)", fmt.Sprint(len(vs))},
		{"offered", fmt.Sprintf("%.0f/s for %v (%d messages)", c.rate, c.window, n)},
		{"achieved (delivered per second of the window)", fmt.Sprintf("%.1f/s", float64(all.n)/c.window.Seconds())},
		{"send → delivered, both ways", fmt.Sprintf("p50 %s, p99 %s, max %s", ms(all.p50), ms(all.p99), ms(all.max))},
		{"visitor → operator", distOf(toOp).String()},
		{"operator → visitor", distOf(toVisitor).String()},
		{"failed sends", errs.String()},
		{"skipped sends (too many unanswered)", fmt.Sprint(skipped)},
		{"operator inbox", inbox.String()},
		{"visitor streams cut off", fmt.Sprint(cuts.Load())},
	}
	if t.pid > 0 && all.n > 0 {
		cpu := time.Duration(cpuTicks(t.pid)-cpu0) * 10 * time.Millisecond
		rows = append(rows, row{"server CPU per message", fmt.Sprintf("%s (%.0f %% of a core)", ms(cpu/time.Duration(all.n)), float64(cpu)/float64(busy)*100)},
			row{"server RSS", kib(t.pid)})
	}
	return rows, nil
}

// acceptedChats watches op's inbox, counting the visitors' messages it
// brings as delivered on tr, then starts c.chats chats (spread over
// c.clients connections) that op accepts, so that their events reach the
// inbox in full. The caller closes the pool.
func acceptedChats(ctx context.Context, t target, op *lethe.Operator, c loadConfig, tr *tracker) (*inboxWatch, *pool, []*visitor, error) {
	inbox := watchInbox(ctx, op, func(m *chatv1.WatchInboxResponse) {
		if msg := m.GetEvent().GetMessage(); msg != nil && msg.AuthorKind == chatv1.AuthorKind_AUTHOR_KIND_VISITOR {
			tr.delivered(msg.Text)
		}
	})
	if err := inbox.wait(ctx); err != nil {
		return nil, nil, nil, err
	}
	p := newPool(t.url, c.clients)
	t0 := time.Now()
	vs, err := openChats(ctx, p, op, c.account, c.chats)
	if err != nil {
		p.close()
		return nil, nil, nil, err
	}
	fmt.Printf("%d chats started and accepted in %v\n", c.chats, time.Since(t0).Round(time.Millisecond))
	return inbox, p, vs, nil
}
