package files

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	filesv1 "github.com/lethehq/lethe/gen/go/lethe/files/v1"
	"github.com/lethehq/lethe/gen/go/lethe/files/v1/filesv1connect"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/store"
)

// testChat is a chat of the stand-in chat domain.
type testChat struct {
	id, account, visitor, operator string
	open                           bool
	posted                         []*chatv1.FileShared
}

// chats stands in for the chat domain behind the Chats interface (another
// domain, not our storage): chats in a map, participants resolved from the
// caller in ctx as *chat.Service does.
type chats struct {
	mu      sync.Mutex
	m       map[string]*testChat
	charges int
	postErr error
	// staleParticipant: Participant answers as if the chat were still
	// open (a check that ran just before the close).
	staleParticipant bool
}

func (c *chats) get(id string) *testChat {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id]
}

func (c *chats) Participant(ctx context.Context, chatID string) (Participant, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := c.m[chatID]
	if ch == nil {
		return Participant{}, errs.NotFound("no such chat")
	}
	var p Participant
	if v, ok := auth.VisitorFrom(ctx); ok {
		if v.ChatID != chatID || v.ID != ch.visitor || v.AccountID != ch.account {
			return Participant{}, errs.Denied("not your chat")
		}
		p = Participant{ChatID: chatID, AccountID: ch.account, Kind: chatv1.AuthorKind_AUTHOR_KIND_VISITOR, ID: v.ID, Name: "Visitor"}
	} else if op, ok := auth.OperatorFrom(ctx); ok {
		if op.AccountID != ch.account || op.ID != ch.operator {
			return Participant{}, errs.Denied("not in this chat")
		}
		p = Participant{ChatID: chatID, AccountID: ch.account, Kind: chatv1.AuthorKind_AUTHOR_KIND_OPERATOR, ID: op.ID, Name: op.Name}
	} else {
		return Participant{}, errs.Unauthenticated("who are you?")
	}
	if !ch.open && !c.staleParticipant {
		return Participant{}, errs.Precondition("the chat is closed")
	}
	return p, nil
}

func (c *chats) ChargeUpload(ctx context.Context, p Participant) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.charges++
	return nil
}

func (c *chats) PostFile(ctx context.Context, p Participant, f *chatv1.FileShared) (*chatv1.ChatEvent, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := c.m[p.ChatID]
	if c.postErr != nil {
		return nil, c.postErr
	}
	if ch == nil || !ch.open {
		return nil, errs.Precondition("the chat is closed")
	}
	ch.posted = append(ch.posted, f)
	return &chatv1.ChatEvent{ChatId: p.ChatID, Seq: int64(len(ch.posted)), Kind: &chatv1.ChatEvent_File{File: f}}, nil
}

func (c *chats) Open(ctx context.Context, chatID string) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := c.m[chatID]
	return ch != nil && ch.open, nil
}

// settings stands in for the account store's file settings.
type settings struct {
	mu sync.Mutex
	m  map[string]AccountFiles
}

func (s *settings) FileSettings(ctx context.Context, accountID string) (AccountFiles, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[accountID], nil
}

func (s *settings) set(accountID string, a AccountFiles) {
	s.mu.Lock()
	s.m[accountID] = a
	s.mu.Unlock()
}

// Test headers standing in for the visitor token and the session cookie.
const (
	visitorHeader  = "X-Test-Visitor"
	operatorHeader = "X-Test-Operator"
)

// testAuth puts the caller its headers name into ctx, as auth.Interceptor
// does for auth.Participant procedures.
type testAuth struct{ e *env }

func (a testAuth) with(ctx context.Context, h http.Header) context.Context {
	a.e.mu.Lock()
	defer a.e.mu.Unlock()
	if v := a.e.visitors[h.Get(visitorHeader)]; v != nil {
		return auth.WithVisitor(ctx, v)
	}
	if op := a.e.operators[h.Get(operatorHeader)]; op != nil {
		return auth.WithOperator(ctx, op)
	}
	return ctx
}

func (a testAuth) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		return next(a.with(ctx, req.Header()), req)
	}
}
func (a testAuth) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}
func (a testAuth) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return next(a.with(ctx, conn.RequestHeader()), conn)
	}
}

type env struct {
	t        testing.TB
	dir      string // the data directory: scratch.db and files/
	filesDir string
	db       *store.DB
	st       *Store
	chats    *chats
	settings *settings
	o        Options
	svc      *Service
	srv      *httptest.Server
	client   filesv1connect.FileServiceClient
	logs     *testkit.LogBuffer

	mu        sync.Mutex
	visitors  map[string]*auth.Visitor
	operators map[string]*auth.Operator
	chatSeq   int
}

// newEnv starts the files service on a real scratch database in a temp
// dir, served over HTTP/2 with TLS through the real error interceptor, with
// the download handler on DownloadPath.
func newEnv(t testing.TB, o Options) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), chats: &chats{m: map[string]*testChat{}},
		settings:  &settings{m: map[string]AccountFiles{}},
		visitors:  map[string]*auth.Visitor{},
		operators: map[string]*auth.Operator{}}
	e.filesDir = filepath.Join(e.dir, "files")
	if o.Dir == "" {
		o.Dir = e.filesDir
	}
	e.o = o
	var err error
	e.db, err = store.Open(filepath.Join(e.dir, "scratch.db"), store.Options{SecureDelete: true})
	if err != nil {
		t.Fatal(err)
	}
	e.st, err = NewStore(context.Background(), e.db)
	if err != nil {
		t.Fatal(err)
	}
	e.start()
	t.Cleanup(func() {
		e.stop()
		e.db.Close()
	})
	return e
}

// start builds the service (running its startup sweep) and serves it.
func (e *env) start() {
	e.t.Helper()
	log, logs := testkit.Logger(e.t)
	if e.logs == nil {
		e.logs = logs
	}
	svc, err := NewService(context.Background(), e.st, e.chats, e.settings, log, e.o)
	if err != nil {
		e.t.Fatal(err)
	}
	e.svc = svc
	mux := http.NewServeMux()
	mux.Handle(filesv1connect.NewFileServiceHandler(svc, connect.WithInterceptors(errs.Interceptor{Log: log}, testAuth{e}),
		connect.WithReadMaxBytes(MaxRequestBytes)))
	mux.Handle(DownloadPath, svc.DownloadHandler())
	e.srv = httptest.NewUnstartedServer(mux)
	e.srv.EnableHTTP2 = true
	e.srv.StartTLS()
	e.client = filesv1connect.NewFileServiceClient(e.srv.Client(), e.srv.URL, connect.WithSendMaxBytes(MaxRequestBytes))
}

// stop ends the server and the service (a restart's first half).
func (e *env) stop() {
	if e.srv != nil {
		e.srv.Close()
		e.svc.Close()
		e.srv = nil
	}
}

// caller is a participant's credentials.
type caller struct{ header, value string }

func (c caller) set(h http.Header) {
	if c.header != "" {
		h.Set(c.header, c.value)
	}
}

var nobody = caller{}

// newChat opens a chat of account with a visitor and an operator, and
// returns the chat id and both callers.
func (e *env) newChat(account string) (chatID string, visitor, operator caller) {
	e.mu.Lock()
	e.chatSeq++
	n := e.chatSeq
	e.mu.Unlock()
	chatID = fmt.Sprintf("chat%d%s", n, newID())
	vid, oid := "vis-"+chatID, "op-"+chatID
	e.mu.Lock()
	e.visitors[vid] = &auth.Visitor{ID: vid, AccountID: account, ChatID: chatID}
	e.operators[oid] = &auth.Operator{ID: oid, AccountID: account, Name: "Olga"}
	e.mu.Unlock()
	e.chats.mu.Lock()
	e.chats.m[chatID] = &testChat{id: chatID, account: account, visitor: vid, operator: oid, open: true}
	e.chats.mu.Unlock()
	return chatID, caller{visitorHeader, vid}, caller{operatorHeader, oid}
}

// closeChat closes a chat the way the chat service does: closed first,
// then DestroyChat.
func (e *env) closeChat(chatID string) {
	e.t.Helper()
	e.markClosed(chatID)
	if err := e.svc.DestroyChat(context.Background(), chatID); err != nil {
		e.t.Fatalf("DestroyChat: %v", err)
	}
}

// markClosed closes a chat without telling the files service (a close
// during downtime).
func (e *env) markClosed(chatID string) {
	e.chats.mu.Lock()
	e.chats.m[chatID].open = false
	e.chats.mu.Unlock()
}

func req[T any](c caller, m *T) *connect.Request[T] {
	r := connect.NewRequest(m)
	c.set(r.Header())
	return r
}

func (e *env) begin(c caller, chatID, name string, size int64) (*filesv1.StartUploadResponse, error) {
	res, err := e.client.StartUpload(context.Background(), req(c, &filesv1.StartUploadRequest{ChatId: chatID, Name: name, Size: size}))
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

func (e *env) chunk(c caller, uploadID string, off int64, data []byte) (*filesv1.UploadChunkResponse, error) {
	res, err := e.client.UploadChunk(context.Background(), req(c, &filesv1.UploadChunkRequest{UploadId: uploadID, Offset: off, Data: data}))
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

func (e *env) finish(c caller, uploadID, sha string) (*filesv1.FinishUploadResponse, error) {
	res, err := e.client.FinishUpload(context.Background(), req(c, &filesv1.FinishUploadRequest{UploadId: uploadID, Sha256: sha}))
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

func (e *env) getUpload(c caller, uploadID string) (*filesv1.GetUploadResponse, error) {
	res, err := e.client.GetUpload(context.Background(), req(c, &filesv1.GetUploadRequest{UploadId: uploadID}))
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

// sendChunks sends the chunks of data with the given indexes.
func (e *env) sendChunks(c caller, uploadID string, data []byte, idxs ...int64) error {
	for _, i := range idxs {
		off := i * ChunkSize
		end := min(off+ChunkSize, int64(len(data)))
		if _, err := e.chunk(c, uploadID, off, data[off:end]); err != nil {
			return fmt.Errorf("chunk %d: %w", i, err)
		}
	}
	return nil
}

func allChunks(n int) []int64 {
	idxs := make([]int64, chunkCount(int64(n)))
	for i := range idxs {
		idxs[i] = int64(i)
	}
	return idxs
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// upload sends a whole file and finishes it with its SHA-256.
func (e *env) upload(c caller, chatID, name string, data []byte) (*filesv1.FinishUploadResponse, error) {
	st, err := e.begin(c, chatID, name, int64(len(data)))
	if err != nil {
		return nil, err
	}
	if err := e.sendChunks(c, st.UploadId, data, allChunks(len(data))...); err != nil {
		return nil, err
	}
	return e.finish(c, st.UploadId, sha(data))
}

func (e *env) mustUpload(c caller, chatID, name string, data []byte) *filesv1.File {
	e.t.Helper()
	res, err := e.upload(c, chatID, name, data)
	if err != nil {
		e.t.Fatalf("upload %s: %v", name, err)
	}
	return res.File
}

// download streams a file from off.
func (e *env) download(c caller, fileID string, off int64) ([]byte, *filesv1.File, error) {
	st, err := e.client.DownloadFile(context.Background(), req(c, &filesv1.DownloadFileRequest{FileId: fileID, Offset: off}))
	if err != nil {
		return nil, nil, err
	}
	defer st.Close()
	var buf bytes.Buffer
	var f *filesv1.File
	for st.Receive() {
		m := st.Msg()
		if f == nil {
			f = m.File
			if f == nil {
				return nil, nil, fmt.Errorf("first message without File")
			}
		} else if m.File != nil {
			return nil, nil, fmt.Errorf("File in a later message")
		}
		if m.Offset != off+int64(buf.Len()) {
			return nil, nil, fmt.Errorf("message at offset %d, want %d", m.Offset, off+int64(buf.Len()))
		}
		buf.Write(m.Data)
	}
	return buf.Bytes(), f, st.Err()
}

func (e *env) link(c caller, fileID string) (string, error) {
	res, err := e.client.CreateDownloadLink(context.Background(), req(c, &filesv1.CreateDownloadLinkRequest{FileId: fileID}))
	if err != nil {
		return "", err
	}
	return res.Msg.Url, nil
}

// get fetches a download URL path with a plain HTTP client (a browser).
func (e *env) get(path string) (*http.Response, []byte) {
	e.t.Helper()
	res, err := e.srv.Client().Get(e.srv.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(res.Body)
	return res, b.Bytes()
}

// chatDirExists reports whether the chat's ciphertext directory exists.
func (e *env) chatDirExists(chatID string) bool {
	_, err := os.Lstat(filepath.Join(e.filesDir, chatID))
	return err == nil
}

// rows counts a chat's rows in every files table.
func (e *env) rows(chatID string) int {
	e.t.Helper()
	var n int
	err := e.db.R.QueryRow(`SELECT (SELECT count(*) FROM file_keys WHERE chat_id = ?1) + (SELECT count(*) FROM file_uploads WHERE chat_id = ?1)
		+ (SELECT count(*) FROM files WHERE chat_id = ?1)`, chatID).Scan(&n)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}
