package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	"github.com/lethehq/lethe/gen/go/lethe/account/v1/accountv1connect"
	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	lethe "github.com/lethehq/lethe/sdk/go"
)

// abuseConfig is scenario abuse: the attacks of issue 9 run in turn against
// one server, each from its own loopback source addresses (127.x.y.z: the
// server sees them as distinct clients without a proxy), while a normal
// visitor keeps using the widget from 127.0.0.200.
type abuseConfig struct {
	url, email, password, account string
	pid                           int
	logins                        int           // concurrent attackers, one address each
	loginFor                      time.Duration // how long the login flood lasts
	starts                        int           // StartChat calls from one address
	streams                       int           // WatchChat streams on one token
	slow                          int           // slow-body connections
	slowWait                      time.Duration // how long the slow bodies are given
	quiet                         time.Duration // the unloaded measurement
	phases                        string        // which attacks: login,starts,streams,slow
	pause                         time.Duration // an attacker's pause after a refusal
}

func (c abuseConfig) runs(phase string) bool {
	return c.phases == "" || slices.Contains(strings.Split(c.phases, ","), phase)
}

// clientFrom is an HTTP client whose connections leave from ip; h2 says
// HTTP/2 over cleartext (many streams on one connection) rather than 1.1.
func clientFrom(ip string, h2 bool) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 64}
	var p http.Protocols
	if h2 {
		p.SetUnencryptedHTTP2(true)
	} else {
		p.SetHTTP1(true)
	}
	tr.Protocols = &p
	return &http.Client{Transport: tr}
}

// addr is the n-th loopback address of a block (block 1 → 127.1.x.y).
func addr(block, n int) string { return fmt.Sprintf("127.%d.%d.%d", block, n/250, n%250+1) }

// rssWatch samples the server's resident memory and keeps the peak.
type rssWatch struct {
	pid  int
	peak atomic.Int64
}

func (r *rssWatch) run(ctx context.Context) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if v := rssKiB(r.pid); v > r.peak.Load() {
			r.peak.Store(v)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reset starts a new peak at the current value and returns it.
func (r *rssWatch) reset() int64 { v := rssKiB(r.pid); r.peak.Store(v); return v }

// prober is the normal visitor: GetWidgetConfig ten times a second and a
// message twice a second (the per-address message rate allows 2 a second),
// timed, into the current phase's buckets.
type prober struct {
	mu           sync.Mutex
	config, send []time.Duration
	failures     []string
}

func (p *prober) take() (config, send []time.Duration, failures []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	config, send, failures = p.config, p.send, p.failures
	p.config, p.send, p.failures = nil, nil, nil
	return
}

func (p *prober) run(ctx context.Context, v *lethe.Visitor, account string) {
	for i := 0; ctx.Err() == nil; i++ {
		t := time.Now()
		_, err := v.Chat.GetWidgetConfig(ctx, connect.NewRequest(&chatv1.GetWidgetConfigRequest{AccountId: account}))
		p.record(&p.config, time.Since(t), "GetWidgetConfig", err, ctx)
		if i%5 == 0 {
			t = time.Now()
			_, err = v.Send(ctx, fmt.Sprintf("probe %d", i))
			p.record(&p.send, time.Since(t), "SendMessage", err, ctx)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (p *prober) record(into *[]time.Duration, d time.Duration, what string, err error, ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.failures = append(p.failures, what+": "+connect.CodeOf(err).String())
		return
	}
	*into = append(*into, d)
}

func pct(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	d = slices.Clone(d)
	slices.Sort(d)
	return d[min(len(d)-1, int(q*float64(len(d))))]
}

func p95(d []time.Duration) time.Duration { return pct(d, 0.95) }

// phaseResult is what one attack did to the server and to the normal visitor.
type phaseResult struct {
	name               string
	rssPeak            int64
	configP95, sendP95 time.Duration
	probeN             int
	failures           []string
}

func abuse(ctx context.Context, c abuseConfig) error {
	if c.pid == 0 {
		return errors.New("-pid is required for scenario abuse (the server's resident memory is the point)")
	}
	u, err := url.Parse(c.url)
	if err != nil || u.Scheme != "http" {
		return fmt.Errorf("-url %q: scenario abuse speaks h2c to a loopback server (http://127.0.0.1:port)", c.url)
	}
	fmt.Printf("scenario abuse against %s (pid %d); load average %s\n", c.url, c.pid, loadavg())
	startRSS := rssKiB(c.pid)

	// The operator signs in and stays online, watching the inbox.
	op := lethe.NewOperator(clientFrom("127.0.0.100", true), c.url)
	if err := op.Login(ctx, c.email, c.password); err != nil {
		return fmt.Errorf("operator login: %w", err)
	}
	ictx, stopInbox := context.WithCancel(ctx)
	defer stopInbox()
	go op.WatchInbox(ictx, func(*chatv1.WatchInboxResponse) error { return nil })

	// The normal visitor, in an accepted chat.
	normal := lethe.NewVisitor(clientFrom("127.0.0.200", true), c.url)
	if err := normal.Start(ctx, lethe.StartChat{AccountID: c.account, Name: "Normal visitor", FirstMessage: "hello"}); err != nil {
		return fmt.Errorf("normal visitor: %w", err)
	}
	if err := op.Accept(ctx, normal.ChatID); err != nil {
		return fmt.Errorf("accept the normal visitor: %w", err)
	}
	rss := &rssWatch{pid: c.pid}
	go rss.run(ictx)
	time.Sleep(2 * time.Second) // let the sign-in's hashing memory settle
	idle := rss.reset()
	fmt.Printf("server RSS: %.0f MiB before the operator signed in, %.0f MiB idle before the attacks\n", mib(startRSS), mib(idle))
	pr := &prober{}
	pctx, stopProbe := context.WithCancel(ctx)
	defer stopProbe()
	go pr.run(pctx, normal, c.account)

	var results []phaseResult
	phase := func(name string, attack func() error) error {
		rss.reset()
		pr.take()
		fmt.Printf("\n== %s\n", name)
		began := time.Now()
		if err := attack(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		// Every phase lasts at least -quiet, so that the normal visitor's
		// figures have enough calls behind them.
		time.Sleep(c.quiet - time.Since(began))
		config, send, failures := pr.take()
		r := phaseResult{name: name, rssPeak: rss.peak.Load(), configP95: p95(config), sendP95: p95(send),
			probeN: len(config) + len(send), failures: failures}
		fmt.Printf("   server RSS peak %.0f MiB (idle %.0f MiB, +%.0f MiB); normal visitor: GetWidgetConfig p50 %v p95 %v, SendMessage p50 %v p95 %v over %d calls, %d failed %v\n",
			mib(r.rssPeak), mib(idle), mib(r.rssPeak-idle), pct(config, 0.5).Round(10*time.Microsecond), r.configP95.Round(10*time.Microsecond),
			pct(send, 0.5).Round(10*time.Microsecond), r.sendP95.Round(10*time.Microsecond), r.probeN, len(failures), summarize(failures))
		results = append(results, r)
		return nil
	}

	if err := phase("unloaded", func() error { time.Sleep(c.quiet); return nil }); err != nil {
		return err
	}
	attacks := []struct {
		key, name string
		run       func() error
	}{
		{"login", fmt.Sprintf("login flood: %d addresses, wrong passwords for %s, %v", c.logins, c.email, c.loginFor),
			func() error { return loginFlood(ctx, c) }},
		{"starts", fmt.Sprintf("%d chat starts from one address", c.starts), func() error { return startFlood(ctx, c, op) }},
		{"streams", fmt.Sprintf("%d WatchChat streams on one visitor token", c.streams), func() error { return streamFlood(ctx, c) }},
		{"slow", fmt.Sprintf("%d slow request bodies (1 byte every 5 s)", c.slow), func() error { return slowBodies(ctx, c) }},
	}
	for _, a := range attacks {
		if c.runs(a.key) {
			if err := phase(a.name, a.run); err != nil {
				return err
			}
		}
	}
	stopProbe()
	time.Sleep(time.Second)
	fmt.Printf("\nsummary (load average %s):\n", loadavg())
	base := results[0]
	var worst int64
	for _, r := range results[1:] {
		worst = max(worst, r.rssPeak-idle)
		fmt.Printf("  %-62s RSS +%4.0f MiB   GetWidgetConfig p95 %5.1f× unloaded   SendMessage p95 %5.1f× unloaded\n",
			r.name, mib(r.rssPeak-idle), ratio(r.configP95, base.configP95), ratio(r.sendP95, base.sendP95))
	}
	fmt.Printf("  unloaded: GetWidgetConfig p95 %v, SendMessage p95 %v; worst RSS growth +%.0f MiB; server RSS now %.0f MiB\n",
		base.configP95.Round(10*time.Microsecond), base.sendP95.Round(10*time.Microsecond), mib(worst), mib(rssKiB(c.pid)))
	return nil
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func summarize(failures []string) string {
	n := map[string]int{}
	for _, f := range failures {
		n[f]++
	}
	var parts []string
	for k, v := range n {
		parts = append(parts, fmt.Sprintf("%s×%d", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// codes counts answers by Connect code.
type codes struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *codes) add(err error) {
	k := "ok"
	if err != nil {
		k = connect.CodeOf(err).String()
	}
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[k]++
	c.mu.Unlock()
}

func (c *codes) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	for k, v := range c.n {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// loginFlood: c.logins attackers, each from its own address, guess the
// admin's password as fast as the server answers; halfway through, the
// real admin signs in from a fresh address.
func loginFlood(ctx context.Context, c abuseConfig) error {
	fctx, stop := context.WithTimeout(ctx, c.loginFor)
	defer stop()
	var answers codes
	var wg sync.WaitGroup
	for i := range c.logins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acc := accountv1connect.NewAccountServiceClient(clientFrom(addr(1, i), false), c.url)
			for n := 0; fctx.Err() == nil; n++ {
				_, err := acc.Login(fctx, connect.NewRequest(&accountv1.LoginRequest{Email: c.email, Password: fmt.Sprintf("guess-%d-%d", i, n)}))
				if fctx.Err() != nil {
					return
				}
				answers.add(err)
				if connect.CodeOf(err) == connect.CodeResourceExhausted {
					// A polite attacker would wait the hint; a real one does
					// not: keep hammering, a little slower.
					time.Sleep(c.pause)
				}
			}
		}()
	}
	time.Sleep(c.loginFor / 2)
	admin := lethe.NewOperator(clientFrom("127.0.9.9", false), c.url)
	t := time.Now()
	err := admin.Login(ctx, c.email, c.password)
	took := time.Since(t)
	wg.Wait()
	fmt.Printf("   attackers' answers: %s\n", answers.String())
	if err != nil {
		fmt.Printf("   the real admin from a fresh address, first try: REFUSED (%v) after %v\n", err, took.Round(time.Millisecond))
	} else {
		fmt.Printf("   the real admin from a fresh address, first try: signed in, in %v\n", took.Round(time.Millisecond))
	}
	return nil
}

// waiting counts the chats waiting in an operator's queue (a fresh inbox
// snapshot).
func waiting(ctx context.Context, op *lethe.Operator) (int, error) {
	wctx, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()
	n := 0
	done := errors.New("snapshot done")
	err := op.WatchInbox(wctx, func(r *chatv1.WatchInboxResponse) error {
		switch k := r.Kind.(type) {
		case *chatv1.WatchInboxResponse_ChatUpdated:
			if k.ChatUpdated.State == chatv1.ChatState_CHAT_STATE_WAITING {
				n++
			}
		case *chatv1.WatchInboxResponse_SnapshotDone:
			return done
		}
		return nil
	})
	if !errors.Is(err, done) {
		return 0, err
	}
	return n, nil
}

// startFlood: c.starts StartChat calls from one address, 16 at a time.
func startFlood(ctx context.Context, c abuseConfig, op *lethe.Operator) error {
	before, err := waiting(ctx, op)
	if err != nil {
		return err
	}
	hc := clientFrom(addr(2, 0), true)
	var answers codes
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	t := time.Now()
	for i := range c.starts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			v := lethe.NewVisitor(hc, c.url)
			answers.add(v.Start(ctx, lethe.StartChat{AccountID: c.account, Name: fmt.Sprintf("Flood %d", i), FirstMessage: "buy now"}))
		}()
	}
	wg.Wait()
	took := time.Since(t)
	after, err := waiting(ctx, op)
	if err != nil {
		return err
	}
	// A real visitor from another address still reaches the queue.
	real := lethe.NewVisitor(clientFrom(addr(2, 1), true), c.url)
	realErr := real.Start(ctx, lethe.StartChat{AccountID: c.account, Name: "Real visitor", FirstMessage: "hello"})
	fmt.Printf("   answers in %v: %s\n", took.Round(time.Millisecond), answers.String())
	fmt.Printf("   operator's queue: %d waiting before, %d after (+%d); a visitor from another address: %v\n",
		before, after, after-before, errOr(realErr, "started"))
	return nil
}

func errOr(err error, ok string) string {
	if err != nil {
		return "refused (" + err.Error() + ")"
	}
	return ok
}

// streamFlood: one visitor opens c.streams WatchChat streams on its token,
// multiplexed over HTTP/2.
func streamFlood(ctx context.Context, c abuseConfig) error {
	v := lethe.NewVisitor(clientFrom(addr(3, 0), true), c.url)
	if err := v.Start(ctx, lethe.StartChat{AccountID: c.account, Name: "Stream flood", FirstMessage: "hi"}); err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	fds0 := fdCount(c.pid)
	var answers codes
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for range c.streams {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s, err := v.Chat.WatchChat(sctx, connect.NewRequest(&chatv1.WatchChatRequest{ChatId: v.ChatID}))
			if err != nil {
				answers.add(err)
				return
			}
			if s.Receive() {
				answers.add(nil)
				go func() { // hold it open, draining, until the phase ends
					for s.Receive() {
					}
					s.Close()
				}()
				return
			}
			answers.add(s.Err())
			s.Close()
		}()
	}
	wg.Wait()
	fmt.Printf("   streams: %s; server file descriptors %d → %d\n", answers.String(), fds0, fdCount(c.pid))
	time.Sleep(c.quiet) // held open while the normal visitor goes on
	stop()
	return nil
}

func fdCount(pid int) int {
	es, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(es)
}

// slowBodies: c.slow connections from 5 addresses each send a unary
// request's headers and then one byte of its body every 5 s. Counted: how
// many the server has cut after c.slowWait.
func slowBodies(ctx context.Context, c abuseConfig) error {
	host := strings.TrimPrefix(c.url, "http://")
	var open, cut atomic.Int64
	var mu sync.Mutex
	var cutAfter []time.Duration
	sctx, stop := context.WithTimeout(ctx, c.slowWait)
	defer stop()
	var wg sync.WaitGroup
	start := time.Now()
	for i := range c.slow {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(addr(4, i%5))}, Timeout: 10 * time.Second}
			conn, err := d.DialContext(sctx, "tcp", host)
			if err != nil {
				cut.Add(1)
				return
			}
			defer conn.Close()
			open.Add(1)
			fmt.Fprintf(conn, "POST /lethe.chat.v1.ChatService/GetWidgetConfig HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"+
				"Connect-Protocol-Version: 1\r\nContent-Length: 1000\r\n\r\n", host)
			buf := make([]byte, 512)
			for sctx.Err() == nil {
				if _, err := conn.Write([]byte("{")); err != nil {
					break
				}
				conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, err := conn.Read(buf)
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue // still open, still waiting for our body
				}
				if err == nil {
					io.Copy(io.Discard, conn) // the server answered (408): read until it closes
				}
				break
			}
			if sctx.Err() != nil {
				return
			}
			cut.Add(1)
			mu.Lock()
			cutAfter = append(cutAfter, time.Since(start))
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(cutAfter)
	last := time.Duration(0)
	if len(cutAfter) > 0 {
		last = cutAfter[len(cutAfter)-1]
	}
	fmt.Printf("   %d connected; after %v the server had cut %d of %d (the last at %v)\n",
		open.Load(), c.slowWait, cut.Load(), c.slow, last.Round(time.Second))
	return nil
}
