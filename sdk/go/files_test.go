package lethe_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	filesv1 "github.com/lethehq/lethe/gen/go/lethe/files/v1"
	lethe "github.com/lethehq/lethe/sdk/go"
	"github.com/lethehq/lethe/sdk/go/internal/lethetest"
)

// These tests send files through the real lethe binary. The visitor's
// connection goes through a cutter, a wrapper around the real transport
// that can lose one call's request or answer on purpose.

// pdf returns size bytes that the server reads as a PDF (an allowed type by
// default): a PDF header followed by random bytes.
func pdf(t *testing.T, size int) []byte {
	t.Helper()
	b := make([]byte, size)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	copy(b, "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	return b
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// A size of three full chunks of 256 KiB and a short last one.
const fileSize = 3*256<<10 + 12345

// cutter is an http.RoundTripper around the real transport. Calls of the
// procedure named by cut, counted from 1, are broken at the n-th one:
// before it reaches the server (lose "request") or after the server
// answered it (lose "response"); a stream's body is cut after bodyBytes.
// It records every call's procedure and every upload id it sees.
type cutter struct {
	next http.RoundTripper

	mu        sync.Mutex
	cut       string // procedure suffix, e.g. "/UploadChunk"
	at        int
	lose      string // "request", "response" or "body"
	bodyBytes int64
	seen      map[string]int
	uploads   []string
	accept    []string // Connect-Accept-Encoding of the streams
}

func (c *cutter) calls(proc string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[proc]
}

func (c *cutter) uploadIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.uploads...)
}

var errCut = errors.New("test: connection cut")

func (c *cutter) RoundTrip(req *http.Request) (*http.Response, error) {
	proc := req.URL.Path[strings.LastIndex(req.URL.Path, "/"):]
	if proc == "/UploadChunk" && req.Body != nil {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body.Close()
		var m filesv1.UploadChunkRequest
		if proto.Unmarshal(body, &m) == nil {
			c.mu.Lock()
			if len(c.uploads) == 0 || c.uploads[len(c.uploads)-1] != m.UploadId {
				c.uploads = append(c.uploads, m.UploadId)
			}
			c.mu.Unlock()
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	c.mu.Lock()
	if c.seen == nil {
		c.seen = map[string]int{}
	}
	c.seen[proc]++
	if proc == "/DownloadFile" {
		c.accept = append(c.accept, req.Header.Get("Connect-Accept-Encoding"))
	}
	broken := proc == c.cut && c.seen[proc] == c.at
	lose, bodyBytes := c.lose, c.bodyBytes
	c.mu.Unlock()
	if broken && lose == "request" {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errCut
	}
	res, err := c.next.RoundTrip(req)
	if err != nil || !broken {
		return res, err
	}
	if lose == "response" {
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return nil, errCut
	}
	res.Body = &cutBody{ReadCloser: res.Body, left: bodyBytes}
	return res, nil
}

// cutBody fails after left bytes, as a connection that drops does.
type cutBody struct {
	io.ReadCloser
	left int64
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errCut
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

// fileChat is a chat accepted by the admin, with the visitor's calls going
// through a cutter.
type fileChat struct {
	op  *lethe.Operator
	v   *lethe.Visitor
	cut *cutter
}

func newFileChat(ctx context.Context, t *testing.T) fileChat {
	t.Helper()
	base := lethetest.Start(t)
	op := adminOf(ctx, t, base)
	if err := op.SetStatus(ctx, chatv1.OperatorStatus_OPERATOR_STATUS_ONLINE); err != nil {
		t.Fatal(err)
	}
	cut := &cutter{next: http.DefaultTransport}
	v := lethe.NewVisitor(&http.Client{Transport: cut}, base)
	if err := v.Start(ctx, lethe.StartChat{AccountID: lethetest.Account, Name: "Ada", FirstMessage: "Hello"}); err != nil {
		t.Fatal(err)
	}
	if err := op.Accept(ctx, v.ChatID); err != nil {
		t.Fatal(err)
	}
	return fileChat{op: op, v: v, cut: cut}
}

// download fetches fileID through d and checks it holds want.
func download(ctx context.Context, t *testing.T, d func(context.Context, string, io.Writer, func(int64, int64)) (*filesv1.File, error), fileID string, want []byte) {
	t.Helper()
	var got bytes.Buffer
	var last int64
	f, err := d(ctx, fileID, &got, func(n, total int64) {
		if n < last || total != int64(len(want)) {
			t.Errorf("download progress %d/%d after %d", n, total, last)
		}
		last = n
	})
	if err != nil {
		t.Fatalf("Download: %v", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("downloaded %d bytes (sha256 %s), want the %d sent (sha256 %s)", got.Len(), sha(got.Bytes()), len(want), sha(want))
	}
	if f.Sha256 != sha(want) || f.Size != int64(len(want)) || f.ContentType != "application/pdf" {
		t.Fatalf("downloaded file described as %v", f)
	}
	if last != int64(len(want)) {
		t.Fatalf("download progress ended at %d of %d", last, len(want))
	}
}

func TestSendFile_VisitorToOperator_SameBytes(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := newFileChat(ctx, t)
	data := pdf(t, fileSize)

	var sent []int64
	ev, err := c.v.SendFile(ctx, "report.pdf", bytes.NewReader(data), int64(len(data)), lethe.UploadOptions{
		DeclaredType: "application/pdf",
		Progress: func(n, total int64) {
			if total != int64(len(data)) {
				t.Errorf("upload progress total %d, want %d", total, len(data))
			}
			sent = append(sent, n)
		}})
	if err != nil {
		t.Fatalf("SendFile: %v", err)
	}
	fs := ev.GetFile()
	if fs == nil || fs.Sha256 != sha(data) || fs.Size != int64(len(data)) || fs.Name != "report.pdf" ||
		fs.AuthorKind != chatv1.AuthorKind_AUTHOR_KIND_VISITOR || ev.Seq == 0 {
		t.Fatalf("SendFile event = %v, want the visitor's report.pdf with the sha256 of its bytes", ev)
	}
	if len(sent) != 4 || sent[len(sent)-1] != int64(len(data)) {
		t.Fatalf("upload progress %v, want one report per chunk ending at %d", sent, len(data))
	}
	download(ctx, t, c.op.Download, fs.FileId, data)
	// The visitor may fetch their own file too.
	download(ctx, t, c.v.Download, fs.FileId, data)
}

func TestSendFile_OperatorToVisitor_SameBytes(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := newFileChat(ctx, t)
	data := pdf(t, 70_000) // a single, short chunk

	ev, err := c.op.SendFile(ctx, c.v.ChatID, "invoice.pdf", bytes.NewReader(data), int64(len(data)), lethe.UploadOptions{})
	if err != nil {
		t.Fatalf("SendFile: %v", err)
	}
	fs := ev.GetFile()
	if fs.GetAuthorKind() != chatv1.AuthorKind_AUTHOR_KIND_OPERATOR || fs.GetSha256() != sha(data) {
		t.Fatalf("SendFile event = %v, want the operator's file with the sha256 of its bytes", ev)
	}
	download(ctx, t, c.v.Download, fs.FileId, data)
}

// A chunk whose call breaks, before or after the server stored it, is sent
// again from where GetUpload says the upload stopped, and the file arrives
// whole.
func TestUpload_ResumesAfterACut(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		lose     string
		inFlight int
		chunks   int // UploadChunk calls for the 4 chunks (0: not counted)
	}{
		{"request", 1, 5},  // the lost chunk never arrived: sent again
		{"response", 1, 4}, // the server stored it: GetUpload says go on after it
		{"request", 0, 0},  // the default window: the others in flight are stored, the lost one is sent again
	} {
		lose := tc.lose
		t.Run(fmt.Sprintf("lost %s, %d in flight", lose, tc.inFlight), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			c := newFileChat(ctx, t)
			c.cut.mu.Lock()
			c.cut.cut, c.cut.at, c.cut.lose = "/UploadChunk", 2, lose
			c.cut.mu.Unlock()
			data := pdf(t, fileSize)

			f, ev, err := lethe.Upload(ctx, c.v.Files, c.v.ChatID, "scan.pdf", bytes.NewReader(data), int64(len(data)), lethe.UploadOptions{InFlight: tc.inFlight})
			if err != nil {
				t.Fatalf("Upload across a cut: %v", err)
			}
			if f.Sha256 != sha(data) || ev.GetFile().GetFileId() != f.FileId {
				t.Fatalf("Upload = %v, %v; want the file with the sha256 of its bytes", f, ev)
			}
			if n := c.cut.calls("/GetUpload"); n != 1 {
				t.Fatalf("GetUpload called %d times, want once, to resume after the cut", n)
			}
			if n := c.cut.calls("/UploadChunk"); tc.chunks > 0 && n != tc.chunks {
				t.Fatalf("UploadChunk called %d times, want %d", n, tc.chunks)
			}
			download(ctx, t, c.op.Download, f.FileId, data)
		})
	}
}

// A download whose stream breaks goes on from the bytes already written.
func TestDownload_ResumesAfterACut(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := newFileChat(ctx, t)
	data := pdf(t, fileSize)
	ev, err := c.op.SendFile(ctx, c.v.ChatID, "manual.pdf", bytes.NewReader(data), int64(len(data)), lethe.UploadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.cut.mu.Lock()
	c.cut.cut, c.cut.at, c.cut.lose, c.cut.bodyBytes = "/DownloadFile", 1, "body", 300_000
	c.cut.mu.Unlock()

	download(ctx, t, c.v.Download, ev.GetFile().GetFileId(), data)
	if n := c.cut.calls("/DownloadFile"); n != 2 {
		t.Fatalf("DownloadFile called %d times, want twice (once cut, once resumed)", n)
	}
	// Files are mostly compressed already: the SDK does not have the server
	// gzip them (which made downloads several times slower).
	for _, a := range c.cut.accept {
		if strings.Contains(a, "gzip") {
			t.Fatalf("DownloadFile accepts %q, want no gzip", a)
		}
	}
}

// When the caller's context ends mid-upload, the upload is cancelled on the
// server: it is gone and holds nothing of the chat's quota.
func TestUpload_CancelRemovesTheUpload(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := newFileChat(ctx, t)
	data := pdf(t, fileSize)

	uctx, stop := context.WithCancel(ctx)
	_, _, err := lethe.Upload(uctx, c.v.Files, c.v.ChatID, "big.pdf", bytes.NewReader(data), int64(len(data)), lethe.UploadOptions{
		Progress: func(n, _ int64) {
			if n >= 256<<10 {
				stop() // after the first chunk
			}
		}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Upload after cancel = %v, want context.Canceled", err)
	}
	ids := c.cut.uploadIDs()
	if len(ids) != 1 {
		t.Fatalf("saw uploads %q, want one", ids)
	}
	_, err = c.v.Files.GetUpload(ctx, connect.NewRequest(&filesv1.GetUploadRequest{UploadId: ids[0]}))
	if connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("GetUpload of the cancelled upload = %v, want NotFound", err)
	}
	lim, err := c.v.Files.GetFileLimits(ctx, connect.NewRequest(&filesv1.GetFileLimitsRequest{ChatId: c.v.ChatID}))
	if err != nil {
		t.Fatal(err)
	}
	if lim.Msg.UsedChatBytes != 0 {
		t.Fatalf("the chat still counts %d bytes after the cancelled upload", lim.Msg.UsedChatBytes)
	}
}

// A file over the size limit is refused at once (ResourceExhausted with no
// retry hint is not retried).
func TestUpload_OverTheLimitIsNotRetried(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := newFileChat(ctx, t)
	const size = 10<<20 + 1
	_, err := c.v.SendFile(ctx, "huge.pdf", bytes.NewReader(make([]byte, size)), size, lethe.UploadOptions{})
	if connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("SendFile of 10 MiB + 1 = %v, want ResourceExhausted", err)
	}
	if n := c.cut.calls("/StartUpload"); n != 1 {
		t.Fatalf("StartUpload called %d times, want once", n)
	}
}
