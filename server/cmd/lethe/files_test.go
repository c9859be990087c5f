package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"connectrpc.com/connect"
	_ "modernc.org/sqlite"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	filesv1 "github.com/lethehq/lethe/gen/go/lethe/files/v1"
	"github.com/lethehq/lethe/gen/go/lethe/files/v1/filesv1connect"
	monitorv1 "github.com/lethehq/lethe/gen/go/lethe/monitor/v1"
	lethe "github.com/lethehq/lethe/sdk/go"
	"github.com/lethehq/lethe/server/files"
	"github.com/lethehq/lethe/server/internal/testkit"
)

// P6 against the real server: a file of a chat reaches its participants
// only, is ciphertext on disk while the chat is open, and is gone from every
// file (with its key) once the chat closes.

// textFile is a plain-text file of n bytes carrying canary in every chunk.
func textFile(canary string, n int) []byte {
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString("line of a plain text file " + canary + "\n")
	}
	return b.Bytes()[:n]
}

// upload sends b into chatID through c with the Go SDK.
func upload(ctx context.Context, c filesv1connect.FileServiceClient, chatID, name string, b []byte) (*filesv1.FinishUploadResponse, error) {
	f, ev, err := lethe.Upload(ctx, c, chatID, name, bytes.NewReader(b), int64(len(b)), lethe.UploadOptions{})
	if err != nil {
		return nil, err
	}
	return &filesv1.FinishUploadResponse{File: f, Event: ev}, nil
}

func startUpload(ctx context.Context, c filesv1connect.FileServiceClient, chatID, name string, size int64) (string, error) {
	res, err := c.StartUpload(ctx, connect.NewRequest(&filesv1.StartUploadRequest{ChatId: chatID, Name: name, Size: size}))
	if err != nil {
		return "", err
	}
	return res.Msg.UploadId, nil
}

// sendChunks sends the chunks of b that start in [from, to).
func sendChunks(ctx context.Context, c filesv1connect.FileServiceClient, uploadID string, b []byte, from, to int) error {
	for off := from; off < to; off += files.ChunkSize {
		end := min(off+files.ChunkSize, len(b))
		if _, err := c.UploadChunk(ctx, connect.NewRequest(&filesv1.UploadChunkRequest{UploadId: uploadID, Offset: int64(off), Data: b[off:end]})); err != nil {
			return err
		}
	}
	return nil
}

// download reads a whole file through the stream.
func download(ctx context.Context, c filesv1connect.FileServiceClient, fileID string) ([]byte, error) {
	s, err := c.DownloadFile(ctx, connect.NewRequest(&filesv1.DownloadFileRequest{FileId: fileID}))
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var out []byte
	for s.Receive() {
		out = append(out, s.Msg().Data...)
	}
	return out, s.Err()
}

// fetch GETs a download link; it returns the status and body.
func fetch(t *testing.T, c *http.Client, base, url string) (int, []byte, http.Header) {
	t.Helper()
	res, err := c.Get(base + url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b, res.Header
}

// apiKeyClient is a files client sending an account API key.
func apiKeyClient(t *testing.T, ts *testServer, admin *lethe.Operator) filesv1connect.FileServiceClient {
	t.Helper()
	res, err := admin.Monitor.CreateApiKey(context.Background(), connect.NewRequest(&monitorv1.CreateApiKeyRequest{Name: "shop backend"}))
	if err != nil {
		t.Fatal(err)
	}
	key := res.Msg.Key
	c := *ts.client()
	c.Transport = headerTransport{base: ts.client().Transport, key: "Authorization", value: "Bearer " + key}
	return filesv1connect.NewFileServiceClient(&c, ts.URL)
}

type headerTransport struct {
	base       http.RoundTripper
	key, value string
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.key, h.value)
	return h.base.RoundTrip(r)
}

// Every files RPC, and the download link, against everyone who is not a
// participant of the chat (P6, P11).
func TestFiles_OnlyTheChatsParticipantsReachItsFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	admin := ts.admin()
	ana := ts.createOperator(admin, "ana@lethe.local", "Ana")
	bob := ts.createOperator(admin, "bob@lethe.local", "Bob")
	other := addTenant(t, ts)
	keyed := apiKeyClient(t, ts, admin)
	nobody := filesv1connect.NewFileServiceClient(ts.client(), ts.URL)
	bobInbox := watchInbox(t, bob)
	defer bobInbox.Stop()

	v := ts.startChat("Vera", "", "I have a screenshot")
	stranger := ts.startChat("Sam", "", "another visitor of the same account")
	if err := ana.Accept(ctx, v.ChatID); err != nil {
		t.Fatal(err)
	}
	content := textFile("matrix", 1000)
	fin, err := upload(ctx, v.Files, v.ChatID, "notes.txt", content)
	if err != nil {
		t.Fatalf("the chat's visitor uploads: %v", err)
	}
	fileID := fin.File.FileId
	openID, err := startUpload(ctx, v.Files, v.ChatID, "half.txt", 2*files.ChunkSize)
	if err != nil {
		t.Fatal(err)
	}

	chunk := textFile("a chunk", files.ChunkSize)
	// calls runs every RPC as c and returns each one's error.
	calls := func(c filesv1connect.FileServiceClient) map[string]error {
		out := map[string]error{}
		_, out["GetFileLimits"] = c.GetFileLimits(ctx, connect.NewRequest(&filesv1.GetFileLimitsRequest{ChatId: v.ChatID}))
		_, out["StartUpload"] = c.StartUpload(ctx, connect.NewRequest(&filesv1.StartUploadRequest{ChatId: v.ChatID, Name: "x.txt", Size: 10}))
		_, out["UploadChunk"] = c.UploadChunk(ctx, connect.NewRequest(&filesv1.UploadChunkRequest{UploadId: openID, Offset: 0, Data: chunk}))
		_, out["GetUpload"] = c.GetUpload(ctx, connect.NewRequest(&filesv1.GetUploadRequest{UploadId: openID}))
		_, out["FinishUpload"] = c.FinishUpload(ctx, connect.NewRequest(&filesv1.FinishUploadRequest{UploadId: openID}))
		_, out["CancelUpload"] = c.CancelUpload(ctx, connect.NewRequest(&filesv1.CancelUploadRequest{UploadId: openID}))
		_, out["DownloadFile"] = download(ctx, c, fileID)
		_, out["CreateDownloadLink"] = c.CreateDownloadLink(ctx, connect.NewRequest(&filesv1.CreateDownloadLinkRequest{FileId: fileID}))
		return out
	}
	refused := func(who string, c filesv1connect.FileServiceClient, codes ...connect.Code) {
		t.Helper()
		for rpc, err := range calls(c) {
			// Cancelling an upload one cannot see is a no-op by contract;
			// stillOpen checks that it changed nothing.
			if rpc == "CancelUpload" && err == nil {
				continue
			}
			if !oneOf(err, codes...) {
				t.Errorf("%s: %s = %v, want one of %v", who, rpc, err, codes)
			}
		}
	}
	// CancelUpload by an outsider must not have cancelled it, nor a chunk
	// have landed.
	stillOpen := func(who string) {
		t.Helper()
		res, err := v.Files.GetUpload(ctx, connect.NewRequest(&filesv1.GetUploadRequest{UploadId: openID}))
		if err != nil || res.Msg.ReceivedBytes != 0 {
			t.Fatalf("after %s the upload is %v, %v; want open with nothing received", who, res, err)
		}
	}
	denied := []connect.Code{connect.CodePermissionDenied, connect.CodeNotFound}
	refused("another visitor", stranger.Files, denied...)
	stillOpen("another visitor")
	refused("an operator not in the chat", bob.Files, denied...)
	stillOpen("an operator not in the chat")
	refused("the admin, not in the chat", admin.Files, denied...)
	stillOpen("the admin")
	refused("another account's admin", other.Files, denied...)
	stillOpen("another account's admin")
	refused("an API key", keyed, connect.CodePermissionDenied, connect.CodeUnauthenticated)
	stillOpen("an API key")
	refused("nobody", nobody, connect.CodeUnauthenticated)
	stillOpen("nobody")

	// The participants: the visitor and Ana read it; a link works once.
	for who, c := range map[string]filesv1connect.FileServiceClient{"the visitor": v.Files, "the operator in the chat": ana.Files} {
		got, err := download(ctx, c, fileID)
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("%s downloads %d bytes, %v", who, len(got), err)
		}
		link, err := c.CreateDownloadLink(ctx, connect.NewRequest(&filesv1.CreateDownloadLinkRequest{FileId: fileID}))
		if err != nil {
			t.Fatalf("%s: CreateDownloadLink: %v", who, err)
		}
		code, body, h := fetch(t, ts.client(), ts.URL, link.Msg.Url)
		if code != http.StatusOK || !bytes.Equal(body, content) {
			t.Fatalf("%s: link answers %d with %d bytes", who, code, len(body))
		}
		if !strings.HasPrefix(h.Get("Content-Disposition"), "attachment") || h.Get("X-Content-Type-Options") != "nosniff" ||
			!strings.Contains(h.Get("Content-Security-Policy"), "sandbox") {
			t.Fatalf("%s: link headers %v", who, h)
		}
		if code, _, _ := fetch(t, ts.client(), ts.URL, link.Msg.Url); code != http.StatusNotFound && code != http.StatusGone {
			t.Fatalf("%s: a used link answers %d, want 404 or 410", who, code)
		}
	}

	// A transfer: Bob is in, Ana is out — even with a link minted before.
	anaLink, err := ana.Files.CreateDownloadLink(ctx, connect.NewRequest(&filesv1.CreateDownloadLinkRequest{FileId: fileID}))
	if err != nil {
		t.Fatal(err)
	}
	if err := ana.Transfer(ctx, v.ChatID, bob.Me.Id); err != nil {
		t.Fatalf("Transfer: %v", err)
	}
	refused("the operator transferred away", ana.Files, denied...)
	stillOpen("the operator transferred away")
	if code, _, _ := fetch(t, ts.client(), ts.URL, anaLink.Msg.Url); code != http.StatusNotFound && code != http.StatusGone {
		t.Fatalf("the link of the operator transferred away answers %d", code)
	}
	if got, err := download(ctx, bob.Files, fileID); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("the new operator downloads %d bytes, %v", len(got), err)
	}
	// Bob sends a file too; it reaches the visitor's chat as an event.
	pdf := append([]byte("%PDF-1.4\n"), textFile("pdf", 3000)...)
	sent, err := upload(ctx, bob.Files, v.ChatID, "offer.pdf", pdf)
	if err != nil {
		t.Fatalf("the operator uploads: %v", err)
	}
	if f := sent.Event.GetFile(); f == nil || f.AuthorKind != chatv1.AuthorKind_AUTHOR_KIND_OPERATOR || f.ContentType != "application/pdf" || f.Size != int64(len(pdf)) {
		t.Fatalf("the operator's file event is %v", sent.Event)
	}
	evs := history(t, v, sent.Event.Seq)
	if f := evs[len(evs)-1].GetFile(); f == nil || f.FileId != sent.File.FileId || f.Name != "offer.pdf" {
		t.Fatalf("the visitor's chat ends with %v", evs[len(evs)-1])
	}
	if got, err := download(ctx, v.Files, sent.File.FileId); err != nil || !bytes.Equal(got, pdf) {
		t.Fatalf("the visitor downloads the operator's file: %d bytes, %v", len(got), err)
	}
}

// scratchKey reads a chat's file key straight from scratch.db.
func scratchKey(t *testing.T, dir, chatID string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "scratch.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var key []byte
	if err := db.QueryRow(`SELECT key FROM file_keys WHERE chat_id = ?`, chatID).Scan(&key); err != nil {
		t.Fatalf("the chat's key: %v", err)
	}
	if len(key) != 32 {
		t.Fatalf("the chat's key is %d bytes, want 32 (AES-256)", len(key))
	}
	return string(key)
}

// ciphertextSample returns a slice from the middle of each file under the
// chat's ciphertext directory.
func ciphertextSample(t *testing.T, dir, chatID string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "files", chatID, "*"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no ciphertext for the chat under %s: %v", filepath.Join(dir, "files", chatID), err)
	}
	var out []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b[len(b)/2:len(b)/2+48]))
	}
	return out
}

// P2, P6 with the real binary: while the chat is open its file is on disk
// as ciphertext only (nothing in the data dir or TMPDIR holds the
// plaintext); after close neither the plaintext, the key nor the
// ciphertext is in any file, and every link is dead.
func TestForensic_FileIsCiphertextWhileOpenAndGoneWithItsKeyAfterClose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data, tmp := t.TempDir(), t.TempDir()
	p := startBinary(t, binOpts{dataDir: data, tmpDir: tmp})
	admin := p.admin()
	v := p.visitor()
	if err := v.Start(ctx, startReq("Fay", "files inbound")); err != nil {
		t.Fatal(err)
	}
	if err := admin.Accept(ctx, v.ChatID); err != nil {
		t.Fatal(err)
	}
	canary := "canary-" + testkit.RandomText(24)
	content := textFile(canary, 3*files.ChunkSize+777)
	fin, err := upload(ctx, v.Files, v.ChatID, "log.txt", content)
	if err != nil {
		t.Fatal(err)
	}
	// A second, unfinished upload: it dies with the chat too.
	half, err := startUpload(ctx, v.Files, v.ChatID, "half.txt", int64(len(content)))
	if err != nil {
		t.Fatal(err)
	}
	if err := sendChunks(ctx, v.Files, half, content, 0, files.ChunkSize); err != nil {
		t.Fatal(err)
	}
	got, err := download(ctx, admin.Files, fin.File.FileId)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("the operator downloads %d bytes, %v", len(got), err)
	}
	if hits := append(testkit.FilesContaining(t, data, canary), testkit.FilesContaining(t, tmp, canary)...); len(hits) > 0 {
		t.Fatalf("plaintext of the open chat's file on disk: %v", hits)
	}
	key := scratchKey(t, data, v.ChatID)
	cipher := ciphertextSample(t, data, v.ChatID)
	link, err := v.Files.CreateDownloadLink(ctx, connect.NewRequest(&filesv1.CreateDownloadLinkRequest{FileId: fin.File.FileId}))
	if err != nil {
		t.Fatal(err)
	}

	if err := admin.Close(ctx, v.ChatID); err != nil {
		t.Fatal(err)
	}
	p.waitDestroyed(v.ChatID)
	if code, _, _ := fetch(t, p.client, p.URL, link.Msg.Url); code != http.StatusNotFound && code != http.StatusGone {
		t.Fatalf("a link minted before the close answers %d", code)
	}
	needles := append([]string{canary, key}, cipher...)
	if hits := append(testkit.FilesContaining(t, data, needles...), testkit.FilesContaining(t, tmp, needles...)...); len(hits) > 0 {
		t.Fatalf("after close the file, its key or its ciphertext is still in %v", hits)
	}
	if _, err := os.Stat(filepath.Join(data, "files", v.ChatID)); !os.IsNotExist(err) {
		t.Fatalf("the chat's file directory is still there: %v", err)
	}
	if _, err := download(ctx, v.Files, fin.File.FileId); err == nil {
		t.Fatal("the closed chat's file still downloads")
	}
}

// P10 for files: a kill -9 in the middle of an upload loses nothing
// accepted (the upload resumes after the restart) and resurrects nothing;
// a kill -9 right after a close leaves nothing behind once the server is
// back.
func TestCrash_Kill9MidUploadAndAfterCloseLeavesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := t.TempDir()
	p := startBinary(t, binOpts{dataDir: data})
	admin := p.admin()
	canary := "canary-" + testkit.RandomText(24)
	content := textFile(canary, 2*files.ChunkSize+100)

	// Chat A: half an upload when the server dies.
	a := p.visitor()
	if err := a.Start(ctx, startReq("Abe", "crash one")); err != nil {
		t.Fatal(err)
	}
	up, err := startUpload(ctx, a.Files, a.ChatID, "a.txt", int64(len(content)))
	if err != nil {
		t.Fatal(err)
	}
	if err := sendChunks(ctx, a.Files, up, content, 0, files.ChunkSize); err != nil {
		t.Fatal(err)
	}
	// Chat B: a finished file, closed just before the crash.
	b := p.visitor()
	if err := b.Start(ctx, startReq("Bea", "crash two")); err != nil {
		t.Fatal(err)
	}
	if err := admin.Accept(ctx, b.ChatID); err != nil {
		t.Fatal(err)
	}
	if _, err := upload(ctx, b.Files, b.ChatID, "b.txt", content); err != nil {
		t.Fatal(err)
	}
	bKey := scratchKey(t, data, b.ChatID)
	if err := admin.Close(ctx, b.ChatID); err != nil {
		t.Fatal(err)
	}
	p.kill()

	p = startBinary(t, binOpts{dataDir: data})
	admin = p.admin()
	// B: closed before the crash, so nothing of it may come back, whether
	// or not its destruction finished before the kill.
	testkit.Eventually(t, waitTimeout, "chat B's files gone after the restart", func() bool {
		_, err := os.Stat(filepath.Join(data, "files", b.ChatID))
		return os.IsNotExist(err) && len(testkit.FilesContaining(t, data, bKey)) == 0
	})
	// A: still open, and its upload resumes where it stopped.
	a2 := p.visitor()
	a2.Token, a2.ChatID = a.Token, a.ChatID
	st, err := a2.Files.GetUpload(ctx, connect.NewRequest(&filesv1.GetUploadRequest{UploadId: up}))
	if err != nil || st.Msg.ReceivedBytes != files.ChunkSize || st.Msg.NextOffset != files.ChunkSize {
		t.Fatalf("after the restart the upload is %v, %v; want %d bytes received", st, err, files.ChunkSize)
	}
	if err := sendChunks(ctx, a2.Files, up, content, int(st.Msg.NextOffset), len(content)); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	fin, err := a2.Files.FinishUpload(ctx, connect.NewRequest(&filesv1.FinishUploadRequest{UploadId: up, Sha256: hex.EncodeToString(sum[:])}))
	if err != nil {
		t.Fatalf("finishing the resumed upload: %v", err)
	}
	if err := admin.Accept(ctx, a2.ChatID); err != nil {
		t.Fatal(err)
	}
	if got, err := download(ctx, admin.Files, fin.Msg.File.FileId); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("the resumed file downloads as %d bytes, %v", len(got), err)
	}
	aKey := scratchKey(t, data, a2.ChatID)
	if err := admin.Close(ctx, a2.ChatID); err != nil {
		t.Fatal(err)
	}
	p.waitDestroyed(a2.ChatID)
	if hits := testkit.FilesContaining(t, data, canary, aKey, bKey); len(hits) > 0 {
		t.Fatalf("after both chats closed, a file, key or ciphertext is still in %v", hits)
	}
	if left, _ := os.ReadDir(filepath.Join(data, "files")); len(left) > 0 {
		t.Fatalf("the files directory still holds %d entries", len(left))
	}
}

// An admin lowers the account's file size in the settings: the next upload
// over it is refused with the limit in the message, and the chat goes on.
func TestFiles_AccountLimitAnsweredWithTheLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	admin := ts.admin()
	updateSettings(t, admin, func(s *accountv1.Settings) { s.MaxFileBytes = 100 << 10 })
	v := ts.startChat("Lia", "", "a big one")
	lim, err := v.Files.GetFileLimits(ctx, connect.NewRequest(&filesv1.GetFileLimitsRequest{ChatId: v.ChatID}))
	if err != nil || !lim.Msg.Enabled || lim.Msg.MaxFileBytes != 100<<10 || lim.Msg.ChunkSize != files.ChunkSize {
		t.Fatalf("GetFileLimits = %v, %v", lim, err)
	}
	_, err = startUpload(ctx, v.Files, v.ChatID, "big.txt", 100<<10+1)
	wantCode(t, err, connect.CodeResourceExhausted)
	if !strings.Contains(err.Error(), "100 KiB") {
		t.Fatalf("the refusal does not name the limit: %v", err)
	}
	if _, err := upload(ctx, v.Files, v.ChatID, "fits.txt", textFile("fits", 100<<10)); err != nil {
		t.Fatalf("a file at the limit: %v", err)
	}
	if _, err := v.Send(ctx, "still chatting"); err != nil {
		t.Fatal(err)
	}
	updateSettings(t, admin, func(s *accountv1.Settings) { s.FilesDisabled = true })
	_, err = startUpload(ctx, v.Files, v.ChatID, "no.txt", 10)
	wantCode(t, err, connect.CodeFailedPrecondition)
}
