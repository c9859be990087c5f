package files

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/internal/testkit"
)

// The canary of a file is in no file on disk while the chat is open
// (ciphertext only, no temp files), and after the chat's files are
// destroyed neither the canary, nor the key, nor any ciphertext is.
func TestForensic_CanaryKeyAndCiphertextGone(t *testing.T) {
	e := newEnv(t, Options{})
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // whatever the server writes "temporarily" lands here
	chatID, vis, op := e.newChat("acct-a")
	canary := testkit.Tag()
	// The name is chat data like a message: in scratch.db while the chat is
	// open, gone after. The bytes are never on disk in clear.
	name := testkit.Tag()
	data := textBytes(3*ChunkSize+99, canary)

	st, err := e.begin(vis, chatID, name+".txt", int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.sendChunks(vis, st.UploadId, data, 0, 2); err != nil {
		t.Fatal(err)
	}
	// Mid-upload and after, with the chat open: ciphertext only.
	if hits := append(testkit.FilesContaining(t, e.dir, canary), testkit.FilesContaining(t, tmp, canary)...); len(hits) > 0 {
		t.Fatalf("canary on disk mid-upload: %v", hits)
	}
	if err := e.sendChunks(vis, st.UploadId, data, 1, 3); err != nil {
		t.Fatal(err)
	}
	res, err := e.finish(vis, st.UploadId, sha(data))
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := e.download(op, res.File.FileId, 0)
	if err != nil || sha(got) != sha(data) {
		t.Fatalf("download: %v", err)
	}
	// A second, unfinished upload dies with the chat too.
	st2, _ := e.begin(op, chatID, "half.txt", 2*ChunkSize)
	if err := e.sendChunks(op, st2.UploadId, textBytes(2*ChunkSize, canary), 0); err != nil {
		t.Fatal(err)
	}
	if hits := append(testkit.FilesContaining(t, e.dir, canary), testkit.FilesContaining(t, tmp, canary)...); len(hits) > 0 {
		t.Fatalf("canary on disk while the chat is open: %v", hits)
	}
	key, _ := e.st.key(context.Background(), chatID)
	if len(key) != 32 {
		t.Fatalf("key of %d bytes", len(key))
	}
	blob, err := os.ReadFile(filepath.Join(e.filesDir, chatID, res.File.FileId))
	if err != nil {
		t.Fatal(err)
	}
	ciphertext := string(blob[nonceSize : nonceSize+64])

	e.closeChat(chatID)

	if e.chatDirExists(chatID) {
		t.Fatal("the chat's ciphertext directory survived")
	}
	if n := e.rows(chatID); n != 0 {
		t.Fatalf("%d rows of the chat survived", n)
	}
	if hits := testkit.FilesContaining(t, e.dir, canary, name, string(key), ciphertext); len(hits) > 0 {
		t.Fatalf("after destruction: %v", hits)
	}
	_, _, err = e.download(op, res.File.FileId, 0)
	testkit.WantCode(t, "download after close", err, connect.CodeNotFound)
}

// After DestroyChat nothing can write: no key → "the chat is closed", and
// the chat's directory is never made again.
func TestDestroyChat_WritesAfterwardFailCleanly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	chatID, vis, _ := e.newChat("acct-a")
	data := textBytes(2*ChunkSize, "w")
	st, _ := e.begin(vis, chatID, "a.txt", int64(len(data)))
	if err := e.sendChunks(vis, st.UploadId, data, 0); err != nil {
		t.Fatal(err)
	}
	// The chat service destroys the files right after marking the chat
	// closed; a participant check that passed just before races it. Here
	// the service is called directly, as a racing call would reach it.
	if err := e.svc.DestroyChat(context.Background(), chatID); err != nil {
		t.Fatal(err)
	}
	_, err := e.chunk(vis, st.UploadId, ChunkSize, data[ChunkSize:])
	if c := testkit.CodeOf(err); c != connect.CodeNotFound && c != connect.CodeFailedPrecondition {
		t.Fatalf("chunk after destruction: %v", err)
	}
	// A write holding an upload that was read before the destruction.
	u := &upload{ID: st.UploadId, ChatID: chatID, AccountID: "acct-a", Size: int64(len(data))}
	err = e.svc.writeChunk(context.Background(), u, 1, data[ChunkSize:])
	if errs.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "the chat is closed") {
		t.Fatalf("write with a stale upload after destruction: %v", err)
	}
	e.markClosed(chatID)
	_, err = e.begin(vis, chatID, "b.txt", 10)
	testkit.WantCode(t, "start after close", err, connect.CodeFailedPrecondition)
	// StartUpload past the participant check, chat closed meanwhile.
	e.chats.mu.Lock()
	e.chats.staleParticipant = true
	e.chats.mu.Unlock()
	_, err = e.begin(vis, chatID, "c.txt", 10)
	testkit.WantCode(t, "start racing the close", err, connect.CodeFailedPrecondition)
	if e.chatDirExists(chatID) {
		t.Fatal("a write after destruction made the chat's directory again")
	}
	if n := e.rows(chatID); n != 0 {
		t.Fatalf("%d rows after destruction", n)
	}
}

// Chunks written while the chat is destroyed either land before (and are
// destroyed) or fail; nothing is left behind.
func TestDestroyChat_RacingWritesLeaveNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	chatID, vis, _ := e.newChat("acct-a")
	const uploads = 4
	data := textBytes(8*ChunkSize, "r")
	var ids []string
	for range uploads {
		st, err := e.begin(vis, chatID, "a.txt", int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, st.UploadId)
	}
	var wg sync.WaitGroup
	started := make(chan struct{}, uploads)
	for _, id := range ids {
		wg.Go(func() {
			for i := range int64(8) {
				if i == 1 {
					started <- struct{}{}
				}
				_, err := e.chunk(vis, id, i*ChunkSize, data[i*ChunkSize:(i+1)*ChunkSize])
				if err != nil {
					if c := testkit.CodeOf(err); c != connect.CodeNotFound && c != connect.CodeFailedPrecondition {
						t.Errorf("chunk %d racing destruction: %v", i, err)
					}
					return
				}
			}
		})
	}
	for range uploads {
		<-started
	}
	e.closeChat(chatID)
	wg.Wait()
	if e.chatDirExists(chatID) {
		t.Fatal("the chat's directory exists after the race")
	}
	if n := e.rows(chatID); n != 0 {
		t.Fatalf("%d rows after the race", n)
	}
}

func TestDestroyChat_IdempotentAndCheapWithoutFiles(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	destroyed := map[string]int{}
	e := newEnv(t, Options{OnDestroyed: func(id string, took time.Duration) {
		mu.Lock()
		destroyed[id]++
		mu.Unlock()
	}})
	chatID, vis, _ := e.newChat("acct-a")
	empty, _, _ := e.newChat("acct-a")
	e.mustUpload(vis, chatID, "a.txt", textBytes(100, "c"))
	for range 2 {
		e.closeChat(chatID)
		e.closeChat(empty)
	}
	mu.Lock()
	defer mu.Unlock()
	if destroyed[chatID] != 1 || destroyed[empty] != 0 {
		t.Fatalf("destructions reported: %v (want the chat with files once, the other never)", destroyed)
	}
	if err := e.svc.DestroyChat(context.Background(), "../etc"); err == nil {
		t.Fatal("DestroyChat accepted a path as a chat id")
	}
}

// A restart sweeps what a crash or a close during downtime left: the files
// of chats that are not open, and directories without a key.
func TestNewService_StartupSweep(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	open, vOpen, _ := e.newChat("acct-a")
	closed, vClosed, _ := e.newChat("acct-a")
	keep := e.mustUpload(vOpen, open, "keep.txt", textBytes(1000, "k"))
	e.mustUpload(vClosed, closed, "gone.txt", textBytes(1000, "g"))
	// A crash mid-upload of the closed chat.
	st, _ := e.begin(vClosed, closed, "half.txt", 2*ChunkSize)
	if err := e.sendChunks(vClosed, st.UploadId, textBytes(2*ChunkSize, "h"), 0); err != nil {
		t.Fatal(err)
	}
	e.stop()
	e.markClosed(closed) // closed while the server was down
	orphan := filepath.Join(e.filesDir, "orphanchat")
	os.MkdirAll(orphan, 0o700)
	os.WriteFile(filepath.Join(orphan, "x"), []byte("ciphertext"), 0o600)
	os.WriteFile(filepath.Join(e.filesDir, "stray"), []byte("x"), 0o600)

	e.start()
	if e.chatDirExists(closed) || e.rows(closed) != 0 {
		t.Fatalf("the closed chat's files survived the sweep (dir %v, %d rows)", e.chatDirExists(closed), e.rows(closed))
	}
	for _, p := range []string{orphan, filepath.Join(e.filesDir, "stray")} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s survived the sweep", p)
		}
	}
	got, _, err := e.download(vOpen, keep.FileId, 0)
	if err != nil || sha(got) != keep.Sha256 {
		t.Fatalf("the open chat's file after the sweep: %v", err)
	}
}

func TestDownloadLink_SingleUseWithSafeHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	chatID, vis, op := e.newChat("acct-a")
	data := textBytes(ChunkSize+5, "d")
	f := e.mustUpload(vis, chatID, "Résumé \"final\".txt", data)
	url, err := e.link(op, f.FileId)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(url, DownloadPath) {
		t.Fatalf("url %q", url)
	}
	res, body := e.get(url)
	if res.StatusCode != http.StatusOK || sha(body) != f.Sha256 {
		t.Fatalf("GET: %d, %d bytes", res.StatusCode, len(body))
	}
	for h, want := range map[string]string{
		"Content-Disposition":          `attachment; filename="R_sum_ _final_.txt"; filename*=UTF-8''R%C3%A9sum%C3%A9%20%22final%22.txt`,
		"X-Content-Type-Options":       "nosniff",
		"Content-Security-Policy":      "sandbox; default-src 'none'",
		"Cross-Origin-Resource-Policy": "same-origin",
		"Cache-Control":                "no-store",
		"Referrer-Policy":              "no-referrer",
		"Content-Type":                 "text/plain; charset=utf-8",
	} {
		if got := res.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if res.ContentLength != f.Size {
		t.Errorf("Content-Length %d, want %d", res.ContentLength, f.Size)
	}
	if res, _ := e.get(url); res.StatusCode != http.StatusNotFound {
		t.Fatalf("second use: %d", res.StatusCode)
	}
	if res, _ := e.get(DownloadPath + "nosuchtoken"); res.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown token: %d", res.StatusCode)
	}
	// Anything that is not an image, a PDF or text is served as bytes.
	e.settings.set("acct-a", AccountFiles{Categories: allCats()})
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	w, _ := zw.Create("notes/a.txt")
	w.Write([]byte("hello"))
	zw.Close()
	z := e.mustUpload(vis, chatID, "a.zip", zb.Bytes())
	url, _ = e.link(vis, z.FileId)
	if res, _ := e.get(url); res.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("zip served as %q", res.Header.Get("Content-Type"))
	}
}

func TestDownloadLink_ExpiresAndDiesWithTheChat(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{LinkTTL: 50 * time.Millisecond})
	chatID, vis, op := e.newChat("acct-a")
	f := e.mustUpload(vis, chatID, "a.txt", textBytes(100, "e"))
	expired, _ := e.link(vis, f.FileId)
	time.Sleep(100 * time.Millisecond)
	if res, _ := e.get(expired); res.StatusCode != http.StatusNotFound {
		t.Fatalf("expired link: %d", res.StatusCode)
	}
	e.svc.o.LinkTTL = time.Minute
	live, _ := e.link(op, f.FileId)
	e.closeChat(chatID)
	if res, _ := e.get(live); res.StatusCode != http.StatusNotFound {
		t.Fatalf("link after close: %d", res.StatusCode)
	}
	if n := e.svc.links.len(); n != 0 {
		t.Fatalf("%d links held after close", n)
	}
}

func TestDownloadLink_BoundedPerChat(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	chatID, vis, _ := e.newChat("acct-a")
	f := e.mustUpload(vis, chatID, "a.txt", textBytes(100, "b"))
	for i := range MaxLinksPerChat {
		if _, err := e.link(vis, f.FileId); err != nil {
			t.Fatalf("link %d: %v", i, err)
		}
	}
	_, err := e.link(vis, f.FileId)
	testkit.WantCode(t, "one link too many", err, connect.CodeResourceExhausted)
	other, ov, _ := e.newChat("acct-a")
	g := e.mustUpload(ov, other, "b.txt", textBytes(100, "b"))
	if _, err := e.link(ov, g.FileId); err != nil {
		t.Fatalf("another chat's link: %v", err)
	}
}
