package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	filesv1 "github.com/lethehq/lethe/gen/go/lethe/files/v1"
	lethe "github.com/lethehq/lethe/sdk/go"
)

// filesConfig is scenario files (issue 10): the throughput of a file's
// upload and download over loopback next to a plain disk write of the same
// bytes, the server's memory during many uploads at once, and how long
// after a chat closes its files are gone.
type filesConfig struct {
	url, data, email, password, account string
	pid                                 int
	size                                int64 // bytes per file
	runs                                int   // sequential upload+download runs
	uploads                             int   // concurrent uploads
	closes                              int   // chats closed with a file
}

// filesBlock is the loopback block of scenario files' visitors (127.6.x.y):
// each chat its own address, so the per-address limits are not what is
// measured.
const filesBlock = 6

func filesScenario(ctx context.Context, c filesConfig) error {
	if c.data == "" {
		return errors.New("-data is required for scenario files (the disk floor is written beside it; closed chats are watched under <data>/files)")
	}
	if c.size < 1 || c.runs < 1 || c.uploads < 1 || c.closes < 1 {
		return errors.New("-file-size, -runs, -uploads and -closes must be at least 1")
	}
	base, err := url.Parse(c.url)
	if err != nil {
		return fmt.Errorf("-url: %w", err)
	}
	load0 := loadavg()
	fmt.Printf("scenario files against %s (pid %d, data %s); load average %s\n", c.url, c.pid, c.data, load0)
	rssStart := rssKiB(c.pid)
	op := lethe.NewOperator(clientFrom("127.0.0.100", true), c.url)
	if err := op.Login(ctx, c.email, c.password); err != nil {
		return fmt.Errorf("operator login: %w", err)
	}
	if err := op.SetStatus(ctx, chatv1.OperatorStatus_OPERATOR_STATUS_ONLINE); err != nil {
		return err
	}
	content := fileBytes(c.size)
	mb := float64(c.size) / 1e6
	next := 0 // the next visitor address
	chat := func() (*lethe.Visitor, error) {
		i := next
		next++
		v := lethe.NewVisitor(clientFrom(addr(filesBlock, i), true), c.url)
		if err := v.Start(ctx, lethe.StartChat{AccountID: c.account, Name: fmt.Sprintf("Files %d", i), FirstMessage: "a file for you"}); err != nil {
			return nil, fmt.Errorf("chat %d: start: %w", i, err)
		}
		if err := op.Accept(ctx, v.ChatID); err != nil {
			return nil, fmt.Errorf("chat %d: accept: %w", i, err)
		}
		return v, nil
	}

	// (a) The floor: the same bytes to a file beside the data directory,
	// with fsync.
	var floor []float64
	for range c.runs {
		d, err := diskWrite(filepath.Dir(filepath.Clean(c.data)), content)
		if err != nil {
			return fmt.Errorf("disk floor: %w", err)
		}
		floor = append(floor, mb/d.Seconds())
	}
	fmt.Printf("\n(a) disk floor: %.1f MiB written + fsync beside %s: %s MB/s\n", float64(c.size)/(1<<20), c.data, rates(floor))

	// (c) first, while the server has not handled a file yet: c.uploads
	// uploads at once, each into its own chat, with the server's RSS
	// sampled.
	var visitors []*lethe.Visitor
	for range c.uploads {
		v, err := chat()
		if err != nil {
			return err
		}
		visitors = append(visitors, v)
	}
	baseline := settle(c.pid)
	rss := &rssWatch{pid: c.pid}
	rss.reset()
	sctx, stopRSS := context.WithCancel(ctx)
	go rss.run(sctx)
	var wg sync.WaitGroup
	errc := make(chan error, len(visitors))
	chunk := make(chan int32, 1)
	began := time.Now()
	for i, v := range visitors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 0 {
				lim, err := v.Files.GetFileLimits(ctx, connect.NewRequest(&filesv1.GetFileLimitsRequest{ChatId: v.ChatID}))
				if err != nil {
					errc <- fmt.Errorf("GetFileLimits: %w", err)
					return
				}
				chunk <- lim.Msg.ChunkSize
			}
			if _, err := v.SendFile(ctx, fmt.Sprintf("concurrent-%d.pdf", i), bytes.NewReader(content), c.size, lethe.UploadOptions{}); err != nil {
				errc <- fmt.Errorf("concurrent upload %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	took := time.Since(began)
	stopRSS()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	peak := rss.peak.Load()
	chunkSize := int64(<-chunk)
	growth := peak - baseline
	perUpload := float64(growth) * 1024 / float64(c.uploads)
	fmt.Printf("\n(c) %d concurrent uploads of %.1f MiB: %.1f MB/s together in %v\n", c.uploads, float64(c.size)/(1<<20),
		mb*float64(c.uploads)/took.Seconds(), took.Round(time.Millisecond))
	if c.pid > 0 {
		fmt.Printf("    server RSS: %.1f MiB before sign-in, %.1f MiB baseline, %.1f MiB peak, growth %.1f MiB = %.2f MiB per upload in flight = %.1f chunks of %d KiB (a whole file: %.1f MiB)\n",
			mib(rssStart), mib(baseline), mib(peak), mib(growth), perUpload/(1<<20), perUpload/float64(chunkSize), chunkSize>>10, float64(c.size)/(1<<20))
	} else {
		fmt.Println("    server RSS not sampled (no -pid)")
	}
	for _, v := range visitors {
		if err := op.Close(ctx, v.ChatID); err != nil {
			return err
		}
	}

	// (b) One upload at a time as a visitor, and its download as the
	// operator, each run in a fresh chat.
	var up, down []float64
	for r := range c.runs {
		v, err := chat()
		if err != nil {
			return err
		}
		t := time.Now()
		f, _, err := lethe.Upload(ctx, v.Files, v.ChatID, "bench.pdf", bytes.NewReader(content), c.size, lethe.UploadOptions{DeclaredType: "application/pdf"})
		if err != nil {
			return fmt.Errorf("run %d: upload: %w", r, err)
		}
		up = append(up, mb/time.Since(t).Seconds())
		t = time.Now()
		if _, err := op.Download(ctx, f.FileId, io.Discard, nil); err != nil {
			return fmt.Errorf("run %d: download: %w", r, err)
		}
		down = append(down, mb/time.Since(t).Seconds())
		if err := op.Close(ctx, v.ChatID); err != nil {
			return err
		}
	}
	fmt.Printf("\n(b) %d runs of one %.1f MiB file: upload (visitor) %s MB/s, download (operator, DownloadFile) %s MB/s\n",
		c.runs, float64(c.size)/(1<<20), rates(up), rates(down))

	// (d) close → the file and its key gone: the chat's ciphertext
	// directory is gone and a link minted before the close answers 404.
	var gone []time.Duration
	for i := range c.closes {
		v, err := chat()
		if err != nil {
			return err
		}
		f, _, err := lethe.Upload(ctx, v.Files, v.ChatID, "closing.pdf", bytes.NewReader(content), c.size, lethe.UploadOptions{})
		if err != nil {
			return fmt.Errorf("close %d: upload: %w", i, err)
		}
		link, err := op.Files.CreateDownloadLink(ctx, connect.NewRequest(&filesv1.CreateDownloadLinkRequest{FileId: f.FileId}))
		if err != nil {
			return fmt.Errorf("close %d: link: %w", i, err)
		}
		dir := filepath.Join(c.data, "files", v.ChatID)
		if _, err := os.Stat(dir); err != nil {
			return fmt.Errorf("close %d: the chat's directory before close: %w (wrong -data?)", i, err)
		}
		ref, err := url.Parse(link.Msg.Url)
		if err != nil {
			return fmt.Errorf("close %d: link %w", i, err)
		}
		d, err := closeUntilGone(ctx, op, v.ChatID, dir, base.ResolveReference(ref).String())
		if err != nil {
			return fmt.Errorf("close %d: %w", i, err)
		}
		gone = append(gone, d)
		// The RPC is dead too.
		if _, err := op.Download(ctx, f.FileId, io.Discard, nil); err == nil {
			return fmt.Errorf("close %d: the file still downloads after close", i)
		}
	}
	fmt.Printf("\n(d) close → directory gone and link 404, %d chats: p50 %v, p99 %v, max %v\n", len(gone),
		pct(gone, 0.5).Round(10*time.Microsecond), pct(gone, 0.99).Round(10*time.Microsecond), slices.Max(gone).Round(10*time.Microsecond))

	fl := median(floor)
	fmt.Printf("\nload average %s at the start, %s at the end\n\n", load0, loadavg())
	fmt.Printf("| measure (%.0f MiB file, loopback) | result | floor: disk write + fsync | ratio (target ≥ 0.5×) |\n|---|---|---|---|\n", float64(c.size)/(1<<20))
	fmt.Printf("| upload, visitor (`lethe.Upload`), median of %d | %.0f MB/s | %.0f MB/s | %.2f× |\n", c.runs, median(up), fl, median(up)/fl)
	fmt.Printf("| download, operator (`DownloadFile`), median of %d | %.0f MB/s | %.0f MB/s | %.2f× |\n", c.runs, median(down), fl, median(down)/fl)
	if c.pid > 0 {
		fmt.Printf("| %d concurrent uploads: server RSS | %.0f → %.0f MiB peak (+%.1f MiB, %.2f MiB per upload in flight = %.1f chunks of %d KiB; a file is %.0f MiB) | — | — |\n",
			c.uploads, mib(baseline), mib(peak), mib(growth), perUpload/(1<<20), perUpload/float64(chunkSize), chunkSize>>10, float64(c.size)/(1<<20))
	}
	fmt.Printf("| %d concurrent uploads: together | %.0f MB/s | — | — |\n", c.uploads, mb*float64(c.uploads)/took.Seconds())
	fmt.Printf("| close → ciphertext directory gone and link 404, %d chats | p50 %v, p99 %v | — | — |\n", len(gone),
		pct(gone, 0.5).Round(10*time.Microsecond), pct(gone, 0.99).Round(10*time.Microsecond))
	return nil
}

// fileBytes is a file the server reads as a PDF (allowed by default): a
// PDF header and random bytes, which neither compress nor deduplicate.
func fileBytes(size int64) []byte {
	b := make([]byte, size)
	rand.Read(b)
	copy(b, "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	return b
}

// diskWrite writes b to a new file in dir, fsyncs it and removes it; it
// returns the time of the write and the fsync.
func diskWrite(dir string, b []byte) (time.Duration, error) {
	f, err := os.CreateTemp(dir, "lethe-load-floor-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	t := time.Now()
	if _, err := f.Write(b); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return time.Since(t), nil
}

// settle waits (up to 10 s) until the server's RSS stops moving, so that
// the sign-in's hashing memory is not taken for the baseline, and returns
// it.
func settle(pid int) int64 {
	if pid == 0 {
		return 0
	}
	last := rssKiB(pid)
	for range 20 {
		time.Sleep(500 * time.Millisecond)
		now := rssKiB(pid)
		if d := now - last; d > -1024 && d < 1024 {
			return now
		}
		last = now
	}
	return last
}

// closeUntilGone closes the chat and polls until its ciphertext directory
// is gone; then the link minted before the close must answer 404. (The
// link is tried only then: a download link is single-use, so trying it
// earlier would spend it.) The key goes before the ciphertext, so a gone
// directory means a gone key.
func closeUntilGone(ctx context.Context, op *lethe.Operator, chatID, dir, link string) (time.Duration, error) {
	start := time.Now()
	if err := op.Close(ctx, chatID); err != nil {
		return 0, fmt.Errorf("close: %w", err)
	}
	for {
		_, err := os.Stat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return 0, err
		}
		if time.Since(start) > 30*time.Second {
			return 0, fmt.Errorf("%s still there 30 s after close", dir)
		}
		time.Sleep(time.Millisecond)
	}
	res, err := http.Get(link)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	took := time.Since(start)
	if res.StatusCode != http.StatusNotFound && res.StatusCode != http.StatusGone {
		return 0, fmt.Errorf("the download link answered %d after close, want 404", res.StatusCode)
	}
	return took, nil
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// rates is "median (min–max)" of MB/s figures.
func rates(v []float64) string {
	return fmt.Sprintf("%.0f (%.0f–%.0f)", median(v), slices.Min(v), slices.Max(v))
}
