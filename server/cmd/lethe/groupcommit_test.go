package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	lethe "github.com/lethehq/lethe/sdk/go"
)

// Group commit against the real binary killed with SIGKILL under load:
// many visitors in many chats send as fast as they can, two at a time into
// each chat; the server is killed mid-load and restarted on the same data
// directory. Every message that was acknowledged is there, at the sequence
// number it was acknowledged with; each chat's sequence numbers run 1..n
// without a gap or a repeat; no message is stored twice.
func TestGroupCommit_Kill9KeepsEveryAcknowledgedMessage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := t.TempDir()
	noLimits := []string{"--messages-per-visitor", "off", "--messages-per-addr", "off", "--chats-per-addr", "off",
		"--open-chats-per-addr", "0"}
	p := startBinary(t, binOpts{dataDir: data, args: noLimits})

	const chats, sendersPerChat = 24, 2
	type ack struct {
		seq      int64
		id, text string
	}
	type chatRun struct {
		v    *lethe.Visitor
		mu   sync.Mutex
		acks []ack
	}
	runs := make([]*chatRun, chats)
	for i := range runs {
		v := p.visitor()
		if err := v.Start(ctx, lethe.StartChat{AccountID: demoAccount, Name: fmt.Sprintf("Load %d", i), FirstMessage: fmt.Sprintf("first %d", i)}); err != nil {
			t.Fatal(err)
		}
		runs[i] = &chatRun{v: v}
	}

	var acked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, r := range runs {
		for g := range sendersPerChat {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					text := fmt.Sprintf("c%d-g%d-%d", i, g, n)
					sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					ev, err := r.v.Send(sctx, text)
					cancel()
					if err != nil {
						return // the server is gone: this one was not acknowledged
					}
					r.mu.Lock()
					r.acks = append(r.acks, ack{seq: ev.Seq, id: ev.GetMessage().GetId(), text: text})
					r.mu.Unlock()
					acked.Add(1)
				}
			}()
		}
	}
	// Kill it in the middle of the load.
	deadline := time.Now().Add(20 * time.Second)
	for acked.Load() < 1500 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	p.kill()
	close(stop)
	wg.Wait()
	if acked.Load() < 100 {
		t.Fatalf("only %d messages were acknowledged before the kill", acked.Load())
	}
	t.Logf("%d messages acknowledged before the kill", acked.Load())

	p2 := startBinary(t, binOpts{dataDir: data, args: noLimits})
	seenIDs := map[string]string{}
	for i, r := range runs {
		v := p2.visitor()
		v.Token, v.ChatID = r.v.Token, r.v.ChatID
		// One more message closes the history: its sequence number is the
		// chat's n + 1 after the restart.
		last, err := v.Send(ctx, fmt.Sprintf("after restart %d", i))
		if err != nil {
			t.Fatalf("chat %d: Send after the restart: %v", i, err)
		}
		evs := history(t, v, last.Seq)
		checkSeqs(t, evs, 1, last.Seq)
		texts := map[string]int64{}
		for _, ev := range evs {
			m := ev.GetMessage()
			if m == nil {
				continue
			}
			if other, dup := seenIDs[m.Id]; dup {
				t.Fatalf("chat %d: message id %s stored twice (also in %s)", i, m.Id, other)
			}
			seenIDs[m.Id] = r.v.ChatID
			if s, dup := texts[m.Text]; dup {
				t.Fatalf("chat %d: message %q stored twice, at seq %d and %d", i, m.Text, s, ev.Seq)
			}
			texts[m.Text] = ev.Seq
		}
		for _, a := range r.acks {
			ev := evs[a.seq-1]
			if m := ev.GetMessage(); m == nil || m.Id != a.id || m.Text != a.text {
				t.Fatalf("chat %d: message %q acknowledged at seq %d with id %s; after the restart seq %d is %v", i, a.text, a.seq, a.id, a.seq, ev)
			}
		}
	}
}
