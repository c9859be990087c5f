package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	lethe "github.com/lethehq/lethe/sdk/go"
	"github.com/lethehq/lethe/server/chat"
	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/limit"
)

// What one anonymous source can do to a server started with the default
// limits (issue 9, P14).

// A flood of chats from one address puts no more than the per-address
// ceiling of open chats into the operators' queue, and a visitor from
// another address still gets through and is seen.
func TestAbuse_ChatFloodFromOneAddressLeavesOnlyTheCeilingQueued(t *testing.T) {
	t.Parallel()
	p := startBinary(t, binOpts{dataDir: t.TempDir(), args: []string{"--trusted-proxies", "127.0.0.1"}})
	ctx := context.Background()
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	const flood, workers = 1000, 16
	ceiling := chat.DefaultLimits().OpenPerAddr
	var accepted, refused atomic.Int64
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				v := lethe.NewVisitor(client, p.URL, forwardedFor("203.0.113.66"))
				err := v.Start(ctx, startReq("Flood", fmt.Sprint("flood ", i)))
				switch {
				case err == nil:
					accepted.Add(1)
				case testkit.CodeOf(err) == connect.CodeResourceExhausted:
					refused.Add(1)
				default:
					t.Errorf("StartChat %d: %v", i, err)
				}
			}
		})
	}
	for i := range flood {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if accepted.Load() != int64(ceiling) || refused.Load() != flood-int64(ceiling) {
		t.Fatalf("%d starts from one address: %d accepted, %d refused; want %d accepted", flood, accepted.Load(), refused.Load(), ceiling)
	}

	real := lethe.NewVisitor(p.client, p.URL, forwardedFor("198.51.100.5"))
	if err := real.Start(ctx, startReq("Rea", "a real question")); err != nil {
		t.Fatalf("a visitor from another address: %v", err)
	}
	inbox := watchInbox(t, p.admin())
	waiting := map[string]bool{}
	for _, m := range inbox.Seen {
		if s := m.GetChatUpdated(); s != nil && s.State == chatv1.ChatState_CHAT_STATE_WAITING {
			waiting[s.ChatId] = true
		}
	}
	if len(waiting) != ceiling+1 || !waiting[real.ChatID] {
		t.Fatalf("the operator's queue holds %d chats (the real visitor's among them: %v); want the flood's %d and the real one",
			len(waiting), waiting[real.ChatID], ceiling)
	}
}

// One visitor token holds at most a few WatchChat streams; a stream's end
// frees its slot.
func TestAbuse_StreamsOnOneTokenAreCapped(t *testing.T) {
	t.Parallel()
	p := startBinary(t, binOpts{dataDir: t.TempDir(), args: []string{"--streams-per-token", "4"}})
	ctx := context.Background()
	v := p.visitor()
	if err := v.Start(ctx, startReq("Sta", "hello")); err != nil {
		t.Fatal(err)
	}
	open := func() (end func(), err error) {
		return testkit.Held(func(ctx context.Context) (*connect.ServerStreamForClient[chatv1.WatchChatResponse], error) {
			return v.Chat.WatchChat(ctx, connect.NewRequest(&chatv1.WatchChatRequest{ChatId: v.ChatID}))
		})
	}
	testkit.StreamCeiling(t, 4, "at most 4 open WatchChat streams per token", open)
}

// The open chats of an address are counted in memory only (no address is
// stored for an account hiding it, not even a hash); after a restart the
// chats still open are counted again by their visitors' next calls, so an
// address gets no more than its ceiling of chats it can use.
func TestAbuse_OpenChatsAreCountedAgainAfterARestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ceiling := chat.DefaultLimits().OpenPerAddr
	ts := newTestServer(t)
	var old []*lethe.Visitor
	for i := range ceiling {
		old = append(old, ts.startChat("Old", "", fmt.Sprint("before the restart ", i)))
	}
	ts.stop()

	ts2 := newTestServer(t, withDataDir(ts.dir))
	// Half the ceiling in new chats, then the old visitors come back.
	for i := range ceiling / 2 {
		ts2.startChat("New", "", fmt.Sprint("after the restart ", i))
	}
	back, refused := 0, 0
	for _, v := range old {
		v2 := lethe.NewVisitor(ts2.client(), ts2.URL)
		v2.Token, v2.ChatID = v.Token, v.ChatID
		_, err := v2.Send(ctx, "still here")
		switch {
		case err == nil:
			back++
		case testkit.CodeOf(err) == connect.CodeResourceExhausted && strings.Contains(err.Error(), "open chats per client address"):
			refused++
			// Ending a chat is always possible.
			if err := v2.End(ctx); err != nil {
				t.Fatalf("ending a chat refused for the ceiling: %v", err)
			}
		default:
			t.Fatalf("an old visitor's message: %v", err)
		}
	}
	if back != ceiling-ceiling/2 || refused != ceiling/2 {
		t.Fatalf("after the restart %d old chats were counted again and %d refused; want %d and %d", back, refused, ceiling-ceiling/2, ceiling/2)
	}
	v := ts2.visitor()
	err := v.Start(ctx, startReq("More", "one more"))
	testkit.WantCode(t, "a chat past the ceiling", err, connect.CodeResourceExhausted)
}

// Every limit is set by its flag or its LETHE_* variable; the flag wins.
func TestConfig_LimitsFromFlagsAndEnvironment(t *testing.T) {
	t.Setenv("LETHE_CHATS_PER_ADDR", "3/1m")
	t.Setenv("LETHE_OPEN_CHATS_PER_ADDR", "2")
	t.Setenv("LETHE_STREAMS_PER_TOKEN", "7")
	t.Setenv("LETHE_VISIT_CALLS_PER_ADDR", "off")
	c, err := parseFlags([]string{"--open-chats-per-addr", "5", "--messages-per-addr", "30/10s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := c.anon
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"chats per address (env)", a.chat.StartsPerAddr, limit.Rate{N: 3, Per: time.Minute}},
		{"open chats (flag over env)", a.chat.OpenPerAddr, 5},
		{"messages per address (flag)", a.chat.MessagesPerAddr, limit.Rate{N: 30, Per: 10 * time.Second}},
		{"messages per visitor (default)", a.chat.MessagesPerVisitor, chat.DefaultLimits().MessagesPerVisitor},
		{"streams per token (env)", a.streams.PerToken, 7},
		{"visit calls per address (off)", a.monitor.CallsPerAddr, limit.Rate{}},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	t.Setenv("LETHE_OFFLINE_PER_ADDR", "5 a minute")
	if _, err := parseFlags(nil, nil); err == nil || !strings.Contains(err.Error(), "LETHE_OFFLINE_PER_ADDR") {
		t.Fatalf("a malformed rate: %v, want an error naming the variable", err)
	}
	if _, err := parseFlags([]string{"--streams-per-addr", "many"}, nil); err == nil {
		t.Fatal("a malformed ceiling was accepted")
	} else if errors.Is(err, errHelp) {
		t.Fatal(err)
	}
}
