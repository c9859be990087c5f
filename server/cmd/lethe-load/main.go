// Command lethe-load is Lethe's load generator. It speaks the real protocol
// (through sdk/go) to a running server and reports latency percentiles.
//
// Scenario "destroy" measures how long after an operator closes a chat its
// content is gone from every file of the server's data directory: each chat
// carries a unique canary, and after CloseChat returns the tool polls the
// files under --data until no byte of any of them holds the canary.
//
// Scenario "messages" measures visitor → operator message latency (send
// call to arrival on the operator's inbox stream) over many concurrent chats.
//
//	go run ./server/cmd/lethe-load -url http://127.0.0.1:8080 -data ./lethe-data \
//	    -password "$LETHE_ADMIN_PASSWORD" -scenario destroy -chats 200
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	lethe "github.com/lethehq/lethe/sdk/go"
	"github.com/lethehq/lethe/server/ids"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8080", "server base URL")
	data := flag.String("data", "", "the server's data directory (scenario destroy)")
	email := flag.String("email", "admin@lethe.local", "operator e-mail")
	password := flag.String("password", os.Getenv("LETHE_ADMIN_PASSWORD"), "operator password")
	account := flag.String("account", "demo", "account id")
	scenario := flag.String("scenario", "destroy", "destroy or messages")
	chats := flag.Int("chats", 100, "number of chats")
	messages := flag.Int("messages", 20, "messages per chat")
	concurrency := flag.Int("concurrency", 8, "chats at once")
	flag.Parse()
	ctx := context.Background()
	var err error
	switch *scenario {
	case "destroy":
		err = destroy(ctx, *url, *data, *email, *password, *account, *chats, *messages)
	case "messages":
		err = messageLatency(ctx, *url, *email, *password, *account, *chats, *messages, *concurrency)
	default:
		err = fmt.Errorf("unknown scenario %q", *scenario)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lethe-load:", err)
		os.Exit(1)
	}
}

func operator(ctx context.Context, url, email, password string) (*lethe.Operator, error) {
	op := lethe.NewOperator(http.DefaultClient, url)
	if err := op.Login(ctx, email, password); err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	return op, nil
}

// inDir reports whether any file under dir contains needle.
func inDir(dir string, needle []byte) (bool, error) {
	found := false
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || found {
			return nil
		}
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		found = bytes.Contains(b, needle)
		return nil
	})
	return found, err
}

func destroy(ctx context.Context, url, data, email, password, account string, chats, messages int) error {
	if data == "" {
		return errors.New("-data is required for scenario destroy")
	}
	op, err := operator(ctx, url, email, password)
	if err != nil {
		return err
	}
	var lat []time.Duration
	for i := range chats {
		canary := "canary-" + ids.New()
		v := lethe.NewVisitor(http.DefaultClient, url)
		if err := v.Start(ctx, lethe.StartChat{AccountID: account, Name: "Load " + canary, FirstMessage: "hello " + canary}); err != nil {
			return fmt.Errorf("chat %d: start: %w", i, err)
		}
		if err := op.Accept(ctx, v.ChatID); err != nil {
			return fmt.Errorf("chat %d: accept: %w", i, err)
		}
		for m := range messages {
			if m%2 == 0 {
				_, err = op.Send(ctx, v.ChatID, fmt.Sprintf("reply %d %s", m, canary))
			} else {
				_, err = v.Send(ctx, fmt.Sprintf("message %d %s", m, canary))
				time.Sleep(200 * time.Millisecond) // the visitor rate limit (5/s)
			}
			if err != nil {
				return fmt.Errorf("chat %d: send: %w", i, err)
			}
		}
		present, err := inDir(data, []byte(canary))
		if err != nil {
			return err
		}
		if !present {
			return fmt.Errorf("chat %d: canary not found in %s before close (wrong -data?)", i, data)
		}
		start := time.Now()
		if err := op.Close(ctx, v.ChatID); err != nil {
			return fmt.Errorf("chat %d: close: %w", i, err)
		}
		for {
			present, err := inDir(data, []byte(canary))
			if err != nil {
				return err
			}
			if !present {
				break
			}
			if time.Since(start) > 30*time.Second {
				return fmt.Errorf("chat %d: canary still on disk 30 s after close", i)
			}
			time.Sleep(time.Millisecond)
		}
		lat = append(lat, time.Since(start))
	}
	report("close → gone from every file", lat)
	return nil
}

func messageLatency(ctx context.Context, url, email, password, account string, chats, messages, concurrency int) error {
	op, err := operator(ctx, url, email, password)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	sent := map[string]time.Time{}
	var lat []time.Duration
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan struct{})
	go op.WatchInbox(wctx, func(r *chatv1.WatchInboxResponse) error {
		switch k := r.Kind.(type) {
		case *chatv1.WatchInboxResponse_SnapshotDone:
			select {
			case <-ready:
			default:
				close(ready)
			}
		case *chatv1.WatchInboxResponse_Event:
			if m := k.Event.GetMessage(); m != nil && m.AuthorKind == chatv1.AuthorKind_AUTHOR_KIND_VISITOR {
				mu.Lock()
				if t, ok := sent[m.Text]; ok {
					lat = append(lat, time.Since(t))
					delete(sent, m.Text)
				}
				mu.Unlock()
			}
		}
		return nil
	})
	<-ready
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	errc := make(chan error, chats)
	for i := range chats {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			v := lethe.NewVisitor(http.DefaultClient, url)
			if err := v.Start(ctx, lethe.StartChat{AccountID: account, Name: fmt.Sprintf("Load %d", i), FirstMessage: "hello"}); err != nil {
				errc <- err
				return
			}
			if err := op.Accept(ctx, v.ChatID); err != nil {
				errc <- err
				return
			}
			for m := range messages {
				text := fmt.Sprintf("chat %d message %d %s", i, m, ids.New())
				mu.Lock()
				sent[text] = time.Now()
				mu.Unlock()
				if _, err := v.Send(ctx, text); err != nil {
					errc <- err
					return
				}
				time.Sleep(210 * time.Millisecond)
			}
			errc <- op.Close(ctx, v.ChatID)
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			return err
		}
	}
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(sent) > 0 {
		return fmt.Errorf("%d messages never reached the operator", len(sent))
	}
	report("visitor send → operator stream", lat)
	return nil
}

func report(what string, lat []time.Duration) {
	slices.Sort(lat)
	p := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	fmt.Printf("%s: n=%d p50=%v p90=%v p99=%v max=%v\n", what, len(lat), p(0.5).Round(10*time.Microsecond),
		p(0.9).Round(10*time.Microsecond), p(0.99).Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond))
}
