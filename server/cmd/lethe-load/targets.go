package main

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/gen/go/lethe/chat/v1/chatv1connect"
	lethe "github.com/lethehq/lethe/sdk/go"
)

// target is one server a scenario runs against: Lethe or the floor.
type target struct {
	name string // "floor" or "lethe"
	url  string
	pid  int // 0: no /proc figures
}

// row is one line of a scenario's result.
type row struct{ what, value string }

// compare runs the same scenario against each target in turn (the floor
// first) and prints the results side by side with the load average at the
// start and the end of each run.
func compare(ctx context.Context, scenario string, targets []target, run func(context.Context, target) ([]row, error)) error {
	results := make([][]row, len(targets))
	for i, t := range targets {
		fmt.Printf("== %s against %s (%s)\n", scenario, t.name, t.url)
		before := loadavg()
		rows, err := run(ctx, t)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		results[i] = append([]row{{"load average at start", before}}, append(rows, row{"load average at end", loadavg()})...)
	}
	fmt.Printf("\n== %s, %s\n", scenario, time.Now().UTC().Format(time.RFC3339))
	var order []string
	byTarget := make([]map[string]string, len(targets))
	for i, rows := range results {
		byTarget[i] = map[string]string{}
		for _, r := range rows {
			if !containsStr(order, r.what) {
				order = append(order, r.what)
			}
			byTarget[i][r.what] = r.value
		}
	}
	w := 0
	for _, k := range order {
		w = max(w, len(k))
	}
	header := fmt.Sprintf("%-*s", w, "measure")
	for _, t := range targets {
		header += " | " + t.name
	}
	fmt.Println(header)
	for _, k := range order {
		line := fmt.Sprintf("%-*s", w, k)
		for i := range targets {
			v, ok := byTarget[i][k]
			if !ok {
				v = "—"
			}
			line += " | " + v
		}
		fmt.Println(line)
	}
	return nil
}

func containsStr(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// srcAddr is the i-th of the client source addresses 127.0.0.2–127.0.0.20.
func srcAddr(i int) string { return fmt.Sprintf("127.0.0.%d", 2+i%19) }

// h2From is an h2c client whose connections leave from ip. Each client has
// its own transport, so the streams of one client share its connections
// (one, up to the server's concurrent-stream limit).
func h2From(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr.Protocols = &p
	return &http.Client{Transport: tr}
}

// pool is a few h2c chat clients spread over the source addresses.
type pool struct {
	http []*http.Client
	chat []chatv1connect.ChatServiceClient
}

func newPool(url string, n int) *pool {
	p := &pool{}
	for i := range n {
		c := h2From(srcAddr(i))
		p.http = append(p.http, c)
		p.chat = append(p.chat, chatv1connect.NewChatServiceClient(c, url))
	}
	return p
}

func (p *pool) get(i int) chatv1connect.ChatServiceClient { return p.chat[i%len(p.chat)] }

func (p *pool) close() {
	for _, c := range p.http {
		c.CloseIdleConnections()
	}
}

// visitor is one chat's visitor: its token and chat.
type visitor struct {
	chat        chatv1connect.ChatServiceClient
	token, id   string
	startedAt   time.Time // when StartChat answered
	startedCall time.Duration
}

func withToken[T any](m *T, token string) *connect.Request[T] {
	r := connect.NewRequest(m)
	r.Header().Set("Authorization", "Bearer "+token)
	return r
}

func startChat(ctx context.Context, cli chatv1connect.ChatServiceClient, account string, i int) (*visitor, error) {
	t0 := time.Now()
	res, err := cli.StartChat(ctx, connect.NewRequest(&chatv1.StartChatRequest{AccountId: account,
		VisitorName: fmt.Sprintf("Load %d", i), FirstMessage: "hello"}))
	if err != nil {
		return nil, fmt.Errorf("visitor %d: start: %w", i, err)
	}
	return &visitor{chat: cli, token: res.Msg.VisitorToken, id: res.Msg.ChatId, startedAt: time.Now(), startedCall: time.Since(t0)}, nil
}

func (v *visitor) send(ctx context.Context, text string) error {
	_, err := v.chat.SendMessage(ctx, withToken(&chatv1.SendMessageRequest{ChatId: v.id, Text: text}, v.token))
	return err
}

// parallel runs fn(i) for i = 0 … n-1 on workers goroutines and returns
// the first error.
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return context.Cause(ctx)
}

// openChats starts n chats (and has op accept them when op is not nil).
func openChats(ctx context.Context, p *pool, op *lethe.Operator, account string, n int) ([]*visitor, error) {
	vs := make([]*visitor, n)
	err := parallel(ctx, n, 32, func(ctx context.Context, i int) error {
		v, err := startChat(ctx, p.get(i), account, i)
		if err != nil {
			return err
		}
		if op != nil {
			if err := op.Accept(ctx, v.id); err != nil {
				return fmt.Errorf("visitor %d: accept: %w", i, err)
			}
		}
		vs[i] = v
		return nil
	})
	return vs, err
}

// signIn signs the operator in (the floor takes anyone) over h2c.
func signIn(ctx context.Context, t target, email, password string) (*lethe.Operator, error) {
	op := lethe.NewOperator(h2From("127.0.0.1"), t.url)
	if err := op.Login(ctx, email, password); err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	return op, nil
}

// inboxWatch is an operator's WatchInbox, reopened after every cut with
// the last sequence number seen of each chat (as the console does), and
// counting the cuts.
type inboxWatch struct {
	ready chan struct{} // closed at the first SnapshotDone
	cuts  atomic.Int64
	mu    sync.Mutex
	why   map[string]int // cut reasons
}

func watchInbox(ctx context.Context, op *lethe.Operator, fn func(*chatv1.WatchInboxResponse)) *inboxWatch {
	w := &inboxWatch{ready: make(chan struct{}), why: map[string]int{}}
	go func() {
		seen := map[string]int64{}
		first := true
		for ctx.Err() == nil {
			stream, err := op.Chat.WatchInbox(ctx, connect.NewRequest(&chatv1.WatchInboxRequest{AfterSeq: maps.Clone(seen)}))
			if err == nil {
				for stream.Receive() {
					m := stream.Msg()
					switch k := m.Kind.(type) {
					case *chatv1.WatchInboxResponse_Event:
						if k.Event.Seq > 0 {
							if k.Event.Seq <= seen[k.Event.ChatId] {
								continue
							}
							seen[k.Event.ChatId] = k.Event.Seq
						}
					case *chatv1.WatchInboxResponse_ChatRemoved:
						delete(seen, k.ChatRemoved.ChatId)
					case *chatv1.WatchInboxResponse_SnapshotDone:
						if first {
							first = false
							close(w.ready)
						}
					}
					fn(m)
				}
				err = stream.Err()
				stream.Close()
			}
			if ctx.Err() != nil {
				return
			}
			w.cuts.Add(1)
			w.mu.Lock()
			why := "ended"
			if err != nil {
				why = err.Error()
			}
			w.why[why]++
			w.mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return w
}

func (w *inboxWatch) wait(ctx context.Context) error {
	select {
	case <-w.ready:
		return nil
	case <-time.After(2 * time.Minute):
		return fmt.Errorf("the inbox snapshot did not end within 2 minutes")
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *inboxWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cuts.Load() == 0 {
		return "never cut off"
	}
	var parts []string
	for why, n := range w.why {
		parts = append(parts, fmt.Sprintf("%d× %q", n, why))
	}
	return fmt.Sprintf("cut off %d times: %s", w.cuts.Load(), strings.Join(parts, ", "))
}

// tracker times messages from their send to their delivery, by number.
// A message's text is the tracker's run prefix and its number, so that
// messages of earlier runs replayed by a snapshot are not taken for ours.
type tracker struct {
	sent, got []atomic.Int64 // unix nanoseconds; 0: not yet
	epoch     time.Time
	prefix    string
}

func newTracker(n int) *tracker {
	return &tracker{sent: make([]atomic.Int64, n), got: make([]atomic.Int64, n), epoch: time.Now(), prefix: "m" + randomToken()[:8] + "."}
}

// text is message n's text.
func (t *tracker) text(n int) string { return t.prefix + strconv.Itoa(n) }

// num reads the number of one of our messages' text; -1 if it is not one.
func (t *tracker) num(text string) int {
	s, ok := strings.CutPrefix(text, t.prefix)
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n >= len(t.got) {
		return -1
	}
	return n
}

func (t *tracker) now() int64 { return int64(time.Since(t.epoch)) + 1 }

func (t *tracker) markSent(n int) { t.sent[n].Store(t.now()) }

// delivered notes the first delivery of message text, if it is one of ours.
func (t *tracker) delivered(text string) {
	if n := t.num(text); n >= 0 {
		t.got[n].CompareAndSwap(0, t.now())
	}
}

// span is the latencies of messages lo … hi-1 delivered, and how many were.
func (t *tracker) span(lo, hi int) []time.Duration {
	var lat []time.Duration
	for n := lo; n < hi; n++ {
		if g, s := t.got[n].Load(), t.sent[n].Load(); g > 0 && s > 0 {
			lat = append(lat, time.Duration(max(g-s, 0)))
		}
	}
	return lat
}

// waitDelivered waits up to d until every sent message of lo … hi-1 that
// was answered OK (ok reports it) is delivered.
func (t *tracker) waitDelivered(lo, hi int, ok func(int) bool, d time.Duration) {
	deadline := time.Now().Add(d)
	for n := lo; n < hi; n++ {
		for ok(n) && t.got[n].Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// errCount counts failed calls by Connect code.
type errCount struct {
	mu sync.Mutex
	n  map[string]int
}

func (e *errCount) add(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.n == nil {
		e.n = map[string]int{}
	}
	e.n[connect.CodeOf(err).String()]++
}

func (e *errCount) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.n) == 0 {
		return "none"
	}
	var parts []string
	for k, v := range e.n {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	return strings.Join(parts, ", ")
}

// cpuTicks is the process's user + system time in clock ticks (1/100 s).
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces: fields are counted after its ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64) // utime, field 14
	k, _ := strconv.ParseInt(f[12], 10, 64) // stime, field 15
	return u + k
}

// cpuPercent is the CPU the process used over d, in % of one core.
func cpuPercent(ctx context.Context, pid int, d time.Duration) float64 {
	t0, w0 := cpuTicks(pid), time.Now()
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	return float64(cpuTicks(pid)-t0) / 100 / time.Since(w0).Seconds() * 100
}

func kib(pid int) string {
	if pid == 0 {
		return "— (no -pid)"
	}
	return fmt.Sprintf("%.1f MiB", float64(rssKiB(pid))/1024)
}
