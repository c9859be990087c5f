// Command lethe-load is Lethe's load generator. It speaks the real protocol
// (through sdk/go) to a running server and reports latency percentiles.
//
// Scenario "destroy" measures how long after an operator closes a chat its
// content is gone from every file of the server's data directory: each chat
// carries a unique canary, and after CloseChat returns the tool polls the
// files under --data until no byte of any of them holds the canary.
//
// Scenario "visitors" puts -visitors visitors on the site (each its own
// X-Forwarded-For address: start the server with --trusted-proxies
// 127.0.0.1), keeps them browsing (one page view per visitor every -view
// interval), and measures what one operator's WatchVisitors stream receives
// and, with -pid, the server's resident memory.
//
// Scenario "abuse" runs the attacks of issue 9 in turn against one server
// (a sign-in flood from -logins addresses, -starts chat starts from one
// address, -streams streams on one visitor token, -slow slow request bodies),
// each from its own loopback source addresses, while a normal visitor keeps
// chatting; it reports the server's RSS (-pid) and the normal visitor's p95
// beside the unloaded one, whether the real admin signs in on the first try
// during the flood, and how much the operator's queue grew.
//
// Scenario "files" measures files in chats (issue 10): -runs uploads of a
// -file-size file by a visitor and their downloads by the operator, in MB/s
// beside a plain write + fsync of the same bytes next to -data (the floor);
// the server's RSS (-pid) during -uploads concurrent uploads, each into its
// own chat; and for -closes chats with a file, the time from CloseChat until
// the chat's directory under <data>/files is gone and a download link
// minted before the close answers 404.
//
// Scenario "forget" measures "Forget me now" (issue 11): for -chats chats
// with a visit, each carrying a canary in the name, the messages, a page
// and custom data, the time ForgetMe takes to answer — by then everything
// must be gone — and one scan of the data directory right after it (the
// floor: the cheapest proof that it is gone), which must not find the
// canary.
//
// Issue 8 ("fast at the size of a real site") adds a floor and four
// scenarios. The floor is the same connect-go h2c server as Lethe
// answering the same RPCs with the same shapes from memory, with a
// 256-slot fan-out per subscriber and no persistence or auth:
//
//	lethe-load -serve-floor -addr 127.0.0.1:8090
//
// Each scenario runs against -url (Lethe or the floor); given -floor-url
// too, it runs against the floor first, then -url, and prints both side by
// side with the load average (-pid and -floor-pid: the servers' process ids,
// for RSS and CPU from /proc). Lethe is started with the anonymous limits
// off, a fresh data directory per scenario:
//
//	LETHE_ADMIN_PASSWORD=load-password-1 lethe --addr 127.0.0.1:8080 --data /tmp/lethe-bench \
//	    --chats-per-addr off --open-chats-per-addr 0 --messages-per-visitor off \
//	    --messages-per-addr off --streams-per-addr 0 --metrics-addr ""
//
// (lethe-load -h prints the command of each target.)
//
// Scenario "throughput": -chats chats (1,000) accepted by one operator,
// visitors sending at each of -rates per second for -step each (open
// loop), each message timed from SendMessage to the operator's inbox; the
// answer is the highest rate with ≥ 99 % delivered and p99 ≤ -p99.
//
// Scenario "chats10k": -chats open chats (10,000) accepted by one operator,
// each visitor watching its chat, -rate messages per second (2,000) for
// -window, half visitor → operator and half operator → visitor.
//
// Scenario "streams": -streams-open visitor streams (100,000), -per-conn per
// HTTP/2 connection from 127.0.0.2–127.0.0.20: time to open them, server
// RSS per idle stream, idle CPU over -idle.
//
// Scenario "invitations": the same with the widget's loader before any
// click: Track with write_only, then WatchVisit on the page token (the
// stream that brings invitations), on Lethe alone (the floor serves no
// monitoring); Lethe needs --visits-per-addr off --visit-calls-per-addr off.
//
// Scenario "inbox": an operator's inbox open while -chats chats (10,000)
// start within -within (20 s): cut off or not, and each chat's summary's
// lag behind its StartChat answer.
//
// Scenario "destroy" takes -background-rate: messages per second in
// -background-chats other chats while it measures.
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
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	monitorv1 "github.com/lethehq/lethe/gen/go/lethe/monitor/v1"
	"github.com/lethehq/lethe/gen/go/lethe/monitor/v1/monitorv1connect"
	lethe "github.com/lethehq/lethe/sdk/go"
	"github.com/lethehq/lethe/server/ids"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8080", "server base URL")
	data := flag.String("data", "", "the server's data directory (scenarios destroy, files)")
	email := flag.String("email", "admin@lethe.local", "operator e-mail")
	password := flag.String("password", os.Getenv("LETHE_ADMIN_PASSWORD"), "operator password")
	account := flag.String("account", "demo", "account id")
	scenario := flag.String("scenario", "destroy", "throughput, chats10k, streams, invitations, inbox, destroy, forget, messages, visitors, abuse or files")
	chats := flag.Int("chats", 100, "number of chats (default for throughput 1,000, for chats10k and inbox 10,000)")
	messages := flag.Int("messages", 20, "messages per chat")
	concurrency := flag.Int("concurrency", 8, "chats at once")
	visitors := flag.Int("visitors", 5000, "visitors on site (scenario visitors)")
	view := flag.Duration("view", 30*time.Second, "page view interval per visitor (scenario visitors)")
	window := flag.Duration("window", 30*time.Second, "measurement window (scenarios visitors, chats10k)")
	pid := flag.Int("pid", 0, "server process id, to report its resident memory (scenarios visitors, abuse, files)")
	logins := flag.Int("logins", 200, "concurrent sign-in attackers, one address each (scenario abuse)")
	loginFor := flag.Duration("login-for", 20*time.Second, "how long the sign-in flood lasts (scenario abuse)")
	starts := flag.Int("starts", 1000, "chat starts from one address (scenario abuse)")
	streams := flag.Int("streams", 2000, "WatchChat streams on one visitor token (scenario abuse)")
	slow := flag.Int("slow", 500, "slow-body connections (scenario abuse)")
	slowWait := flag.Duration("slow-wait", 45*time.Second, "how long the slow bodies are given (scenario abuse)")
	quiet := flag.Duration("quiet", 10*time.Second, "unloaded measurement before the attacks (scenario abuse)")
	pause := flag.Duration("pause", 100*time.Millisecond, "an attacker's pause after a refusal, ignoring the retry hint (scenario abuse)")
	phases := flag.String("phases", "", "comma-separated attacks to run: login,starts,streams,slow (scenario abuse; default all)")
	fileSize := flag.Int64("file-size", 10<<20, "bytes per file (scenario files)")
	runs := flag.Int("runs", 5, "one-at-a-time upload and download runs (scenario files)")
	uploads := flag.Int("uploads", 20, "concurrent uploads, each into its own chat (scenario files)")
	closes := flag.Int("closes", 30, "chats closed with a file, timed until it is gone (scenario files)")
	serveFloorFlag := flag.Bool("serve-floor", false, "serve the floor (see -addr) instead of running a scenario")
	floorAddr := flag.String("addr", "127.0.0.1:8090", "the floor's listen address (-serve-floor)")
	compressMin := flag.Int("compress-min-bytes", 1024, "the floor's connect compress-min-bytes (0: gzip every response, connect's default)")
	floorURL := flag.String("floor-url", "", "the floor's base URL: run the scenario against it first, then against -url (throughput, chats10k, streams, inbox)")
	floorPid := flag.Int("floor-pid", 0, "the floor's process id (RSS and CPU)")
	rates := flag.String("rates", "500,1000,1500,2000,3000,4000,5000,6000,8000,10000", "offered messages per second, in turn (scenario throughput)")
	stepFor := flag.Duration("step", 10*time.Second, "how long each rate is offered (scenario throughput)")
	warmup := flag.Duration("warmup", 3*time.Second, "load at the first rate before the steps, not counted (scenario throughput)")
	maxFails := flag.Int("max-fails", 2, "failing steps after which the load stops (scenario throughput)")
	p99 := flag.Duration("p99", 50*time.Millisecond, "the p99 a rate must keep to pass (scenario throughput)")
	rate := flag.Float64("rate", 2000, "messages per second in all (scenario chats10k)")
	clients := flag.Int("clients", 19, "h2c connections the visitors' calls spread over (throughput, chats10k, inbox)")
	inflight := flag.Int("inflight", 20000, "unanswered sends at most; beyond, sends are skipped and count as failed")
	drain := flag.Duration("drain", 3*time.Second, "how long deliveries are awaited after the last send")
	nStreams := flag.Int("streams-open", 100000, "visitor streams to open (scenario streams)")
	perConn := flag.Int("per-conn", 100, "streams per HTTP/2 connection (scenario streams; Lethe's and the floor's limit is 250)")
	idle := flag.Duration("idle", 30*time.Second, "how long idle CPU is measured (scenario streams)")
	within := flag.Duration("within", 20*time.Second, "the chats start within this (scenario inbox)")
	bgRate := flag.Float64("background-rate", 0, "messages per second in other chats while measuring (scenario destroy)")
	bgChats := flag.Int("background-chats", 100, "chats carrying the background messages (scenario destroy)")
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), usageText)
		flag.PrintDefaults()
	}
	flag.Parse()
	ctx := context.Background()
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *serveFloorFlag {
		sctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := serveFloor(sctx, *floorAddr, *compressMin); err != nil {
			fmt.Fprintln(os.Stderr, "lethe-load:", err)
			os.Exit(1)
		}
		return
	}
	targets := []target{{name: "server", url: *url, pid: *pid}}
	if *floorURL != "" {
		targets = []target{{name: "floor", url: *floorURL, pid: *floorPid}, {name: "lethe", url: *url, pid: *pid}}
	}
	lc := loadConfig{email: *email, password: *password, account: *account, chats: *chats, clients: *clients,
		inflight: *inflight, drain: *drain, p99Max: *p99, stepFor: *stepFor, warmup: *warmup, maxFails: max(*maxFails, 1), rate: *rate, window: *window}
	if !set["window"] {
		lc.window = 30 * time.Second
	}
	var err error
	switch *scenario {
	case "throughput", "chats10k", "inbox":
		if !set["chats"] {
			lc.chats = map[string]int{"throughput": 1000, "chats10k": 10000, "inbox": 10000}[*scenario]
		}
		if lc.rates, err = parseRates(*rates); err != nil {
			break
		}
		run := map[string]func(context.Context, loadConfig, target) ([]row, error){"throughput": throughput, "chats10k": chats10k,
			"inbox": func(ctx context.Context, c loadConfig, t target) ([]row, error) {
				return inboxScenario(ctx, c, *within, t)
			}}[*scenario]
		err = compare(ctx, *scenario, targets, func(ctx context.Context, t target) ([]row, error) { return run(ctx, lc, t) })
	case "streams", "invitations":
		sc := streamsConfig{account: *account, n: *nStreams, perConn: *perConn, concurrency: *concurrency, idle: *idle, visits: *scenario == "invitations"}
		if !set["concurrency"] {
			sc.concurrency = 64
		}
		if sc.visits {
			// The floor serves no monitoring: the loader's streams are
			// measured on Lethe alone, beside scenario streams' floor.
			targets = targets[len(targets)-1:]
		}
		err = compare(ctx, *scenario, targets, func(ctx context.Context, t target) ([]row, error) { return streamsScenario(ctx, sc, t) })
	case "destroy":
		err = destroy(ctx, *url, *data, *email, *password, *account, *chats, *messages, *bgRate, *bgChats)
	case "visitors":
		err = visitorLoad(ctx, *url, *email, *password, *account, *visitors, *view, *window, *pid)
	case "abuse":
		err = abuse(ctx, abuseConfig{url: *url, email: *email, password: *password, account: *account, pid: *pid,
			logins: *logins, loginFor: *loginFor, starts: *starts, streams: *streams, slow: *slow, slowWait: *slowWait, quiet: *quiet, phases: *phases, pause: *pause})
	case "files":
		err = filesScenario(ctx, filesConfig{url: *url, data: *data, email: *email, password: *password, account: *account, pid: *pid,
			size: *fileSize, runs: *runs, uploads: *uploads, closes: *closes})
	case "forget":
		err = forget(ctx, *url, *data, *email, *password, *account, *chats, *messages)
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

// canaryChat opens chat i carrying canary in its name and messages from its
// own client address (the per-address limits are not what is measured),
// has op accept it and exchange messages, and checks the canary is on disk.
func canaryChat(ctx context.Context, op *lethe.Operator, url, data, account, canary string, i, messages int) (*lethe.Visitor, error) {
	v := lethe.NewVisitor(clientFrom(addr(5, i), true), url)
	if err := v.Start(ctx, lethe.StartChat{AccountID: account, Name: "Load " + canary, FirstMessage: "hello " + canary}); err != nil {
		return nil, fmt.Errorf("chat %d: start: %w", i, err)
	}
	if err := op.Accept(ctx, v.ChatID); err != nil {
		return nil, fmt.Errorf("chat %d: accept: %w", i, err)
	}
	for m := range messages {
		var err error
		if m%2 == 0 {
			_, err = op.Send(ctx, v.ChatID, fmt.Sprintf("reply %d %s", m, canary))
		} else {
			_, err = v.Send(ctx, fmt.Sprintf("message %d %s", m, canary))
			time.Sleep(200 * time.Millisecond) // the visitor rate limit (5/s)
		}
		if err != nil {
			return nil, fmt.Errorf("chat %d: send: %w", i, err)
		}
	}
	present, err := inDir(data, []byte(canary))
	if err != nil {
		return nil, err
	}
	if !present {
		return nil, fmt.Errorf("chat %d: canary not found in %s before it was destroyed (wrong -data?)", i, data)
	}
	return v, nil
}

func destroy(ctx context.Context, url, data, email, password, account string, chats, messages int, bgRate float64, bgChats int) error {
	if data == "" {
		return errors.New("-data is required for scenario destroy")
	}
	op, err := operator(ctx, url, email, password)
	if err != nil {
		return err
	}
	if bgRate > 0 {
		bctx, stop := context.WithCancel(ctx)
		bg, err := startBackground(bctx, target{name: "lethe", url: url}, email, password, account, bgRate, bgChats)
		if err != nil {
			stop()
			return err
		}
		defer func() { stop(); fmt.Println(bg.report()) }()
	}
	var lat, scan []time.Duration
	for i := range chats {
		canary := "canary-" + ids.New()
		v, err := canaryChat(ctx, op, url, data, account, canary, i, messages)
		if err != nil {
			return err
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
		// The floor: one scan of the data directory, the cheapest proof
		// that it is gone.
		start = time.Now()
		if _, err := inDir(data, []byte(canary)); err != nil {
			return err
		}
		scan = append(scan, time.Since(start))
	}
	report("close → gone from every file", lat)
	report("floor: one scan of the data directory", scan)
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
			v := lethe.NewVisitor(clientFrom(addr(5, i), true), url)
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

func rssKiB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

func visitorLoad(ctx context.Context, url, email, password, account string, n int, view, window time.Duration, pid int) error {
	op, err := operator(ctx, url, email, password)
	if err != nil {
		return err
	}
	rss0 := rssKiB(pid)
	monitor := monitorv1connect.NewMonitorServiceClient(http.DefaultClient, url)
	track := func(i int, token string) (string, error) {
		req := connect.NewRequest(&monitorv1.TrackRequest{AccountId: account,
			Page: &monitorv1.Page{Url: fmt.Sprintf("https://shop.example/p/%d?v=%d", i%200, time.Now().UnixNano()), Title: "Product"}})
		req.Header().Set("X-Forwarded-For", fmt.Sprintf("198.18.%d.%d", i/250, i%250+1))
		req.Header().Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36")
		if token != "" {
			req.Header().Set("Authorization", "Bearer "+token)
		}
		res, err := monitor.Track(ctx, req)
		if err != nil {
			return "", fmt.Errorf("visitor %d: %w", i, err)
		}
		if res.Msg.VisitToken != "" {
			return res.Msg.VisitToken, nil
		}
		return token, nil
	}
	tokens := make([]string, n)
	start := time.Now()
	var wg sync.WaitGroup
	// Joining does the enrichment (a reverse DNS lookup with a 300 ms
	// timeout among it), so join with many visitors at once.
	const joiners = 128
	errc := make(chan error, joiners)
	for w := range joiners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += joiners {
				t, err := track(i, "")
				if err != nil {
					errc <- err
					return
				}
				tokens[i] = t
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	fmt.Printf("%d visitors joined in %v\n", n, time.Since(start).Round(time.Millisecond))

	// The operator's console: count messages and visitors per message.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := op.Monitor.WatchVisitors(wctx, connect.NewRequest(&monitorv1.WatchVisitorsRequest{}))
	if err != nil {
		return err
	}
	snapStart := time.Now()
	snapshot := 0
	for stream.Receive() {
		snapshot += len(stream.Msg().Visitors)
		if stream.Msg().SnapshotDone {
			break
		}
	}
	fmt.Printf("console snapshot: %d visitors in %v\n", snapshot, time.Since(snapStart).Round(time.Millisecond))
	var msgs, updated atomic.Int64
	go func() {
		for stream.Receive() {
			msgs.Add(1)
			updated.Add(int64(len(stream.Msg().Visitors)))
		}
	}()

	// Browsing: every visitor views a page every `view`, spread evenly.
	var views atomic.Int64
	interval := view / time.Duration(n)
	deadline := time.Now().Add(window)
	sem := make(chan struct{}, 32)
	for i := 0; time.Now().Before(deadline); i = (i + 1) % n {
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem }()
			if _, err := track(i, tokens[i]); err == nil {
				views.Add(1)
			}
		}(i)
		time.Sleep(interval)
	}
	for range cap(sem) {
		sem <- struct{}{}
	}
	secs := window.Seconds()
	fmt.Printf("page views: %d (%.0f/s); console received %d messages (%.1f/s) carrying %d visitor updates (%.0f per message)\n",
		views.Load(), float64(views.Load())/secs, msgs.Load(), float64(msgs.Load())/secs, updated.Load(),
		float64(updated.Load())/max(float64(msgs.Load()), 1))
	if pid > 0 {
		rss := rssKiB(pid)
		// The "before" figure includes argon2id's 64 MiB working memory from
		// the sign-in, which the Go runtime returns to the OS only later.
		fmt.Printf("server RSS: %.1f MiB after sign-in, %.1f MiB with %d visitors on site and browsing\n",
			float64(rss0)/1024, float64(rss)/1024, n)
	}
	return nil
}

// usageText is how to measure the targets of issue 8, one command each,
// Lethe beside the floor.
const usageText = `Usage: lethe-load [flags]

Issue 8 targets, each against Lethe and the floor in the same run. Start
Lethe with a fresh data directory for each scenario and its anonymous
limits off:

  go build -o /tmp/lethe ./server/cmd/lethe && go build -o /tmp/lethe-load ./server/cmd/lethe-load
  rm -rf /tmp/lethe-bench && LETHE_ADMIN_PASSWORD=load-password-1 /tmp/lethe --addr 127.0.0.1:8080 \
      --data /tmp/lethe-bench --chats-per-addr off --open-chats-per-addr 0 --messages-per-visitor off \
      --messages-per-addr off --streams-per-addr 0 --metrics-addr "" --log-level warn & LETHE_PID=$!
  /tmp/lethe-load -serve-floor -addr 127.0.0.1:8090 & FLOOR_PID=$!     (restart it too between scenarios)

  L="-url http://127.0.0.1:8080 -pid $LETHE_PID -floor-url http://127.0.0.1:8090 -floor-pid $FLOOR_PID -password load-password-1"
  /tmp/lethe-load -scenario throughput $L            messages/s at p99 ≤ 50 ms (1,000 chats, rates 500 … 10,000/s, 10 s each)
  /tmp/lethe-load -scenario chats10k $L              10k open chats at 2,000 msg/s for 30 s, both directions
  /tmp/lethe-load -scenario streams $L               100k visitor streams, 100 per HTTP/2 connection: open time, RSS per stream, idle CPU
  /tmp/lethe-load -scenario inbox $L                 an operator's inbox while 10k chats start within 20 s
  /tmp/lethe-load -scenario invitations $L           100k loaders' invitation streams (Lethe alone; also start it
                                                   with --visits-per-addr off --visit-calls-per-addr off)
  /tmp/lethe-load -scenario destroy -url http://127.0.0.1:8080 -data /tmp/lethe-bench -password load-password-1 \
      -chats 200 -background-rate 250              close → gone from every file, under 250 msg/s

Flags:
`
