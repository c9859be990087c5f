package files

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	filesv1 "github.com/lethehq/lethe/gen/go/lethe/files/v1"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/internal/testkit"
)

// pngBytes is a real PNG of random pixels, at least n bytes long.
func pngBytes(t testing.TB, n int) []byte {
	t.Helper()
	side := 16
	for side*side*4 < n {
		side *= 2
	}
	img := image.NewNRGBA(image.Rect(0, 0, side, side))
	rand.Read(img.Pix)
	for i := 3; i < len(img.Pix); i += 4 {
		img.Pix[i] = 255
	}
	img.Set(0, 0, color.White)
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// textBytes is n bytes of plain text with canary in every line.
func textBytes(n int, canary string) []byte {
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString("line " + testkit.RandomText(20) + " " + canary + "\n")
	}
	return b.Bytes()[:n]
}

func wantMsg(t testing.TB, err error, want ...string) {
	t.Helper()
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Fatalf("error %v does not say %q", err, w)
		}
	}
}

func TestUpload_RoundTripBothWays(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	chatID, vis, op := e.newChat("acct-a")
	data := textBytes(2*ChunkSize+1234, testkit.Tag())

	res, err := e.upload(vis, chatID, "notes.txt", data)
	if err != nil {
		t.Fatal(err)
	}
	f := res.File
	if f.Size != int64(len(data)) || f.Sha256 != sha(data) || f.ContentType != "text/plain" || f.Name != "notes.txt" || f.ChatId != chatID {
		t.Fatalf("file = %v", f)
	}
	posted := e.chats.get(chatID).posted
	if len(posted) != 1 {
		t.Fatalf("%d FileShared posted, want 1", len(posted))
	}
	if p := posted[0]; p.FileId != f.FileId || p.Name != "notes.txt" || p.Size != f.Size || p.ContentType != "text/plain" ||
		p.Sha256 != f.Sha256 || p.AuthorKind != chatv1.AuthorKind_AUTHOR_KIND_VISITOR || p.AuthorName != "Visitor" {
		t.Fatalf("FileShared = %v", p)
	}
	if res.Event.GetFile().GetFileId() != f.FileId {
		t.Fatalf("the response's event is %v", res.Event)
	}
	// Both participants download identical bytes, from the start and from
	// an offset inside a chunk.
	for _, c := range []caller{vis, op} {
		got, gf, err := e.download(c, f.FileId, 0)
		if err != nil {
			t.Fatal(err)
		}
		if sha(got) != f.Sha256 || gf.Sha256 != f.Sha256 {
			t.Fatalf("downloaded %d bytes with sha %s, want %s", len(got), sha(got), f.Sha256)
		}
	}
	got, _, err := e.download(op, f.FileId, ChunkSize+7)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data[ChunkSize+7:]) {
		t.Fatal("download from an offset returned other bytes")
	}
	// The operator sends one back.
	img := pngBytes(t, 100_000)
	of := e.mustUpload(op, chatID, "scan.png", img)
	got, _, err = e.download(vis, of.FileId, 0)
	if err != nil || !bytes.Equal(got, img) {
		t.Fatalf("visitor's download of the operator's file: %v", err)
	}
	if e.chats.charges != 2 {
		t.Fatalf("%d uploads charged against rate limits, want 2", e.chats.charges)
	}
	lim, err := e.client.GetFileLimits(context.Background(), req(vis, &filesv1.GetFileLimitsRequest{ChatId: chatID}))
	if err != nil {
		t.Fatal(err)
	}
	if m := lim.Msg; !m.Enabled || m.MaxFileBytes != DefaultMaxFileBytes || m.MaxChatBytes != DefaultMaxChatBytes ||
		m.UsedChatBytes != int64(len(data)+len(img)) || m.ChunkSize != ChunkSize || len(m.Categories) != len(DefaultCategories) || !strings.Contains(m.Accept, ".pdf") {
		t.Fatalf("limits = %v", m)
	}
}

func TestUpload_ResumesAfterACut(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	chatID, vis, _ := e.newChat("acct-a")
	data := textBytes(4*ChunkSize+10, "x")
	st, err := e.begin(vis, chatID, "big.txt", int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	// Chunks 0, 1 and 3 arrive, then the connection drops.
	if err := e.sendChunks(vis, st.UploadId, data, 0, 1, 3); err != nil {
		t.Fatal(err)
	}
	_, err = e.finish(vis, st.UploadId, "")
	testkit.WantCode(t, "finish with a hole", err, connect.CodeFailedPrecondition)
	wantMsg(t, err, "offset 524288")
	g, err := e.getUpload(vis, st.UploadId)
	if err != nil {
		t.Fatal(err)
	}
	if g.NextOffset != 2*ChunkSize || g.ReceivedBytes != 3*ChunkSize || g.Size != int64(len(data)) || g.Name != "big.txt" || g.ChatId != chatID {
		t.Fatalf("GetUpload = %v", g)
	}
	if err := e.sendChunks(vis, st.UploadId, data, 2, 4); err != nil {
		t.Fatal(err)
	}
	g, _ = e.getUpload(vis, st.UploadId)
	if g.NextOffset != int64(len(data)) || g.ReceivedBytes != int64(len(data)) {
		t.Fatalf("complete: GetUpload = %v", g)
	}
	// A wrong hash is data loss and the upload stays open for repair.
	_, err = e.finish(vis, st.UploadId, sha([]byte("other")))
	testkit.WantCode(t, "finish with a wrong sha256", err, connect.CodeDataLoss)
	res, err := e.finish(vis, st.UploadId, sha(data))
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := e.download(vis, res.File.FileId, 0)
	if err != nil || sha(got) != sha(data) {
		t.Fatalf("download after resume: %v", err)
	}
	_, err = e.getUpload(vis, st.UploadId)
	testkit.WantCode(t, "GetUpload after finish", err, connect.CodeNotFound)
}

func TestUploadChunk_ReplayChangesNothingAndOtherBytesAreRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	chatID, vis, _ := e.newChat("acct-a")
	data := textBytes(ChunkSize+100, "y")
	st, _ := e.begin(vis, chatID, "a.txt", int64(len(data)))
	if err := e.sendChunks(vis, st.UploadId, data, 0, 1); err != nil {
		t.Fatal(err)
	}
	blob := filepath.Join(e.filesDir, chatID, st.UploadId)
	before, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.chunk(vis, st.UploadId, 0, data[:ChunkSize])
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if res.ReceivedBytes != int64(len(data)) || res.NextOffset != int64(len(data)) {
		t.Fatalf("replay answered %v", res)
	}
	other := bytes.Clone(data[ChunkSize:])
	other[5] ^= 1
	_, err = e.chunk(vis, st.UploadId, ChunkSize, other)
	testkit.WantCode(t, "other bytes at a received offset", err, connect.CodeInvalidArgument)
	after, _ := os.ReadFile(blob)
	if !bytes.Equal(before, after) {
		t.Fatal("a replayed or refused chunk rewrote the ciphertext")
	}
	if _, err := e.finish(vis, st.UploadId, sha(data)); err != nil {
		t.Fatal(err)
	}
}

func TestUploadChunk_RefusesMisalignedAndWrongLength(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	chatID, vis, _ := e.newChat("acct-a")
	data := textBytes(2*ChunkSize+5, "z")
	st, _ := e.begin(vis, chatID, "a.txt", int64(len(data)))
	for _, tc := range []struct {
		name string
		off  int64
		n    int
	}{
		{"misaligned", 100, ChunkSize},
		{"negative", -ChunkSize, ChunkSize},
		{"short middle chunk", 0, ChunkSize - 1},
		{"oversized chunk", ChunkSize, ChunkSize + 1},
		{"last chunk too long", 2 * ChunkSize, 6},
		{"past the end", 3 * ChunkSize, 5},
	} {
		_, err := e.chunk(vis, st.UploadId, tc.off, make([]byte, tc.n))
		testkit.WantCode(t, tc.name, err, connect.CodeInvalidArgument)
	}
	if g, _ := e.getUpload(vis, st.UploadId); g.ReceivedBytes != 0 {
		t.Fatalf("refused chunks were recorded: %v", g)
	}
}

func TestLimits_PerFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{MaxFileBytes: 2 << 20})
	chatID, vis, _ := e.newChat("acct-a")
	// The account's 5 MiB is capped by the server's 2 MiB.
	e.settings.set("acct-a", AccountFiles{MaxFileBytes: 5 << 20})
	_, err := e.begin(vis, chatID, "a.txt", 2<<20+1)
	testkit.WantCode(t, "over the server's cap", err, connect.CodeResourceExhausted)
	wantMsg(t, err, "2 MiB")
	e.settings.set("acct-a", AccountFiles{MaxFileBytes: 1 << 20})
	_, err = e.begin(vis, chatID, "a.txt", 1<<20+1)
	testkit.WantCode(t, "over the account's limit", err, connect.CodeResourceExhausted)
	wantMsg(t, err, "1 MiB")
	if _, err := e.begin(vis, chatID, "a.txt", 1<<20); err != nil {
		t.Fatalf("exactly at the limit: %v", err)
	}
	_, err = e.begin(vis, chatID, "a.txt", 0)
	testkit.WantCode(t, "empty file", err, connect.CodeInvalidArgument)
	e.settings.set("acct-a", AccountFiles{Disabled: true})
	_, err = e.begin(vis, chatID, "a.txt", 10)
	testkit.WantCode(t, "files off", err, connect.CodeFailedPrecondition)
}

func TestLimits_PerChatCountsOpenUploads(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.settings.set("acct-a", AccountFiles{MaxChatBytes: 1 << 20})
	chatID, vis, op := e.newChat("acct-a")
	e.mustUpload(vis, chatID, "a.txt", textBytes(600<<10, "a"))
	st, err := e.begin(op, chatID, "b.txt", 300<<10)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.begin(vis, chatID, "c.txt", 200<<10)
	testkit.WantCode(t, "over the chat's total", err, connect.CodeResourceExhausted)
	wantMsg(t, err, "1 MiB", "900 KiB used")
	// Cancelling the open upload frees its share.
	if _, err := e.client.CancelUpload(context.Background(), req(op, &filesv1.CancelUploadRequest{UploadId: st.UploadId})); err != nil {
		t.Fatal(err)
	}
	if _, err := e.begin(vis, chatID, "c.txt", 200<<10); err != nil {
		t.Fatalf("after cancel: %v", err)
	}
	// Another chat has its own total.
	other, ov, _ := e.newChat("acct-a")
	if _, err := e.begin(ov, other, "d.txt", 1<<20); err != nil {
		t.Fatal(err)
	}
}

func TestLimits_ServerBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{MaxTotalBytes: 3 << 20})
	a, va, _ := e.newChat("acct-a")
	b, vb, _ := e.newChat("acct-b")
	if _, err := e.begin(va, a, "a.txt", 2<<20); err != nil {
		t.Fatal(err)
	}
	_, err := e.begin(vb, b, "b.txt", 1<<20+1)
	testkit.WantCode(t, "over the server's budget", err, connect.CodeResourceExhausted)
	wantMsg(t, err, "3 MiB")
	if _, err := e.begin(vb, b, "b.txt", 1<<20); err != nil {
		t.Fatal(err)
	}
}

// ELF header of a tiny x86-64 executable.
var elf = append([]byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00\x01\x00\x00\x00"), make([]byte, 200)...)

func TestUploadChunk_TypeIsReadFromTheBytes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	pngData := pngBytes(t, 1000)
	pdf := []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
	for _, tc := range []struct {
		name     string
		file     string
		data     []byte
		cats     []filesv1.FileCategory
		wantType string // "" = refused
		wantMsg  []string
	}{
		{"png named exe", "setup.exe", pngData, nil, "image/png", nil},
		{"html named txt", "readme.txt", []byte("<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"), nil, "", []string{"text/html", "images"}},
		{"svg named png", "logo.png", []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>`), nil, "", []string{"image/svg+xml"}},
		{"xml", "data.txt", []byte(`<?xml version="1.0"?><a>b</a>`), nil, "", []string{"xml"}},
		{"elf", "photo.jpg", elf, nil, "", []string{"application/x-"}},
		{"pe", "doc.pdf", append([]byte("MZ\x90\x00"), make([]byte, 300)...), allCats(), "", nil},
		{"shell script", "notes.txt", []byte("#!/bin/sh\nrm -rf /\n"), nil, "", []string{"text/x-shellscript"}},
		{"pdf with images only", "doc.pdf", pdf, []filesv1.FileCategory{filesv1.FileCategory_FILE_CATEGORY_IMAGE}, "", []string{"application/pdf", "allowed: images"}},
		{"pdf", "doc", pdf, nil, "application/pdf", nil},
		{"csv", "x.csv", []byte("a,b,c\n1,2,3\n4,5,6\n"), nil, "text/csv", nil},
		{"unknown binary", "x.bin", []byte{0, 1, 2, 3, 0xff, 0xfe, 0, 0, 9}, allCats(), "", []string{"application/octet-stream"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acct := "acct-" + tc.name
			e.settings.set(acct, AccountFiles{Categories: tc.cats})
			chatID, vis, _ := e.newChat(acct)
			st, err := e.begin(vis, chatID, tc.file, int64(len(tc.data)))
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.chunk(vis, st.UploadId, 0, tc.data)
			if tc.wantType == "" {
				testkit.WantCode(t, "refused type", err, connect.CodeInvalidArgument)
				wantMsg(t, err, tc.wantMsg...)
				// The refused upload is gone, ciphertext included.
				_, err = e.getUpload(vis, st.UploadId)
				testkit.WantCode(t, "GetUpload of a refused upload", err, connect.CodeNotFound)
				if _, err := os.Stat(filepath.Join(e.filesDir, chatID, st.UploadId)); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("the refused upload's ciphertext is still there: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			res, err := e.finish(vis, st.UploadId, sha(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			if res.File.ContentType != tc.wantType || res.File.Name != tc.file {
				t.Fatalf("file = %v, want type %s", res.File, tc.wantType)
			}
		})
	}
}

func allCats() []filesv1.FileCategory {
	return []filesv1.FileCategory{1, 2, 3, 4, 5}
}

func TestUpload_OnlyTheUploaderAndParticipants(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	chatID, vis, op := e.newChat("acct-a")
	_, otherVis, otherOp := e.newChat("acct-a")
	data := textBytes(1000, "q")
	st, err := e.begin(vis, chatID, "a.txt", int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.begin(otherVis, chatID, "a.txt", 10)
	testkit.WantCode(t, "another chat's visitor starts an upload", err, connect.CodePermissionDenied)
	_, err = e.begin(nobody, chatID, "a.txt", 10)
	testkit.WantCode(t, "nobody starts an upload", err, connect.CodeUnauthenticated)
	_, err = e.chunk(op, st.UploadId, 0, data)
	testkit.WantCode(t, "the operator writes into the visitor's upload", err, connect.CodePermissionDenied)
	_, err = e.chunk(otherOp, st.UploadId, 0, data)
	testkit.WantCode(t, "another operator writes into the upload", err, connect.CodePermissionDenied)
	if err := e.sendChunks(vis, st.UploadId, data, 0); err != nil {
		t.Fatal(err)
	}
	res, err := e.finish(vis, st.UploadId, "")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = e.download(otherVis, res.File.FileId, 0)
	testkit.WantCode(t, "another visitor downloads", err, connect.CodePermissionDenied)
	_, err = e.link(otherOp, res.File.FileId)
	testkit.WantCode(t, "another operator mints a link", err, connect.CodePermissionDenied)
	_, _, err = e.download(vis, "nosuchfile", 0)
	testkit.WantCode(t, "unknown file", err, connect.CodeNotFound)
}

func TestFinishUpload_ClosedChatDestroysTheUpload(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	chatID, vis, _ := e.newChat("acct-a")
	data := textBytes(1000, "q")
	st, _ := e.begin(vis, chatID, "a.txt", int64(len(data)))
	if err := e.sendChunks(vis, st.UploadId, data, 0); err != nil {
		t.Fatal(err)
	}
	e.chats.mu.Lock()
	e.chats.postErr = errs.Precondition("the chat is closed")
	e.chats.mu.Unlock()
	_, err := e.finish(vis, st.UploadId, "")
	testkit.WantCode(t, "finish into a closing chat", err, connect.CodeFailedPrecondition)
	if n := e.rows(chatID); n != 1 { // the key only
		t.Fatalf("%d rows left, want the key's only", n)
	}
	if _, err := os.Stat(filepath.Join(e.filesDir, chatID, st.UploadId)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ciphertext left: %v", err)
	}
}

func TestCancelUpload_DestroysWhatArrived(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	chatID, vis, _ := e.newChat("acct-a")
	data := textBytes(ChunkSize+10, "q")
	st, _ := e.begin(vis, chatID, "a.txt", int64(len(data)))
	if err := e.sendChunks(vis, st.UploadId, data, 0); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second is a no-op
		if _, err := e.client.CancelUpload(context.Background(), req(vis, &filesv1.CancelUploadRequest{UploadId: st.UploadId})); err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.chunk(vis, st.UploadId, ChunkSize, data[ChunkSize:])
	testkit.WantCode(t, "chunk after cancel", err, connect.CodeNotFound)
	if _, err := os.Stat(filepath.Join(e.filesDir, chatID, st.UploadId)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ciphertext left: %v", err)
	}
}

// A full disk answers ResourceExhausted and breaks nothing: the chunk is
// not recorded, and it goes through once there is room again. /dev/full
// stands in for the full disk (every write to it fails with ENOSPC).
func TestUploadChunk_DiskFull(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Fatalf("/dev/full: %v", err)
	}
	e := newEnv(t, Options{})
	chatID, vis, _ := e.newChat("acct-a")
	data := textBytes(1000, "q")
	st, _ := e.begin(vis, chatID, "a.txt", int64(len(data)))
	blob := filepath.Join(e.filesDir, chatID, st.UploadId)
	os.Remove(blob)
	if err := os.Symlink("/dev/full", blob); err != nil {
		t.Fatal(err)
	}
	_, err := e.chunk(vis, st.UploadId, 0, data)
	testkit.WantCode(t, "chunk onto a full disk", err, connect.CodeResourceExhausted)
	wantMsg(t, err, "disk is full")
	g, err := e.getUpload(vis, st.UploadId)
	if err != nil || g.ReceivedBytes != 0 {
		t.Fatalf("after ENOSPC: %v %v", g, err)
	}
	os.Remove(blob)
	os.WriteFile(blob, nil, 0o600)
	if err := e.sendChunks(vis, st.UploadId, data, 0); err != nil {
		t.Fatalf("after room was made: %v", err)
	}
	if _, err := e.finish(vis, st.UploadId, sha(data)); err != nil {
		t.Fatal(err)
	}
}

func TestLogs_NeverCarryNamesOrBytes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	chatID, vis, _ := e.newChat("acct-a")
	canary := testkit.Tag()
	f := e.mustUpload(vis, chatID, canary+".txt", textBytes(3000, canary))
	e.download(vis, f.FileId, 0)
	e.closeChat(chatID)
	if strings.Contains(e.logs.String(), canary) {
		t.Fatalf("the log holds the file's name or bytes:\n%s", e.logs)
	}
	if !strings.Contains(e.logs.String(), f.FileId) {
		t.Fatal("the log does not even name the file id (is it logging at all?)")
	}
}

// An upload abandoned longer than StaleUpload is destroyed by the janitor,
// and stops counting against its chat's total.
func TestJanitor_DestroysAbandonedUploads(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{StaleUpload: 50 * time.Millisecond, JanitorInterval: 20 * time.Millisecond})
	chatID, vis, _ := e.newChat("acct-a")
	data := textBytes(ChunkSize+1, "j")
	st, _ := e.begin(vis, chatID, "a.txt", int64(len(data)))
	// On a slow machine the janitor may take it before the chunks arrive:
	// then they are refused as unknown, which is what abandonment means.
	if err := e.sendChunks(vis, st.UploadId, data, 0); err != nil && testkit.CodeOf(err) != connect.CodeNotFound {
		t.Fatal(err)
	}
	testkit.Eventually(t, testkit.Wait, "the abandoned upload destroyed", func() bool {
		_, err := e.getUpload(vis, st.UploadId)
		return testkit.CodeOf(err) == connect.CodeNotFound
	})
	if _, err := os.Stat(filepath.Join(e.filesDir, chatID, st.UploadId)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ciphertext left: %v", err)
	}
}

// A crash between an upload's row and its (empty) file: the next chunk
// makes the file again, the upload goes on.
func TestUploadChunk_MissingFileIsMadeAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	chatID, vis, _ := e.newChat("acct-a")
	data := textBytes(1000, "m")
	st, _ := e.begin(vis, chatID, "a.txt", int64(len(data)))
	os.Remove(filepath.Join(e.filesDir, chatID, st.UploadId))
	if err := e.sendChunks(vis, st.UploadId, data, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.finish(vis, st.UploadId, sha(data)); err != nil {
		t.Fatal(err)
	}
}

// Chunks in any order (a client sends several at once) still finish with
// the SHA-256 of the bytes in file order, hashed as they arrive; a wrong
// SHA-256 given at finish leaves the upload open, and finishing again
// hashes from disk.
func TestFinishUpload_HashIsOfTheBytesInOrderWhateverTheArrival(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	chatID, vis, _ := e.newChat("acct-a")
	data := textBytes(4*ChunkSize+99, "order")
	st, err := e.begin(vis, chatID, "a.txt", int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	// 0 first (it decides the type), then the rest out of order.
	if err := e.sendChunks(vis, st.UploadId, data, 0, 3, 2, 4, 1); err != nil {
		t.Fatal(err)
	}
	_, err = e.finish(vis, st.UploadId, sha(textBytes(10, "other")))
	testkit.WantCode(t, "finish with a wrong sha256", err, connect.CodeDataLoss)
	fin, err := e.finish(vis, st.UploadId, sha(data))
	if err != nil || fin.File.Sha256 != sha(data) {
		t.Fatalf("finish after a wrong sha256 = %v, %v", fin, err)
	}
	// And straight through, without a wrong guess first.
	st, _ = e.begin(vis, chatID, "b.txt", int64(len(data)))
	if err := e.sendChunks(vis, st.UploadId, data, 0, 2, 1, 4, 3); err != nil {
		t.Fatal(err)
	}
	fin, err = e.finish(vis, st.UploadId, "")
	if err != nil || fin.File.Sha256 != sha(data) {
		t.Fatalf("finish = %v, %v; want sha256 %s", fin, err, sha(data))
	}
	got, _, err := e.download(vis, fin.File.FileId, 0)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("download = %d bytes, %v", len(got), err)
	}
}
