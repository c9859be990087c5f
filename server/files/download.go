package files

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	filesv1 "github.com/lethehq/lethe/gen/go/lethe/files/v1"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/ids"
)

// stillIn reports whether the participant a link was minted for still
// takes part in its chat, asking the chat domain as that participant.
func (s *Service) stillIn(ctx context.Context, ln link, accountID string) bool {
	kind := chatv1.AuthorKind(ln.kind)
	switch kind {
	case chatv1.AuthorKind_AUTHOR_KIND_VISITOR:
		ctx = auth.WithVisitor(ctx, &auth.Visitor{ID: ln.participant, AccountID: accountID, ChatID: ln.chatID})
	case chatv1.AuthorKind_AUTHOR_KIND_OPERATOR:
		ctx = auth.WithOperator(ctx, &auth.Operator{ID: ln.participant, AccountID: accountID})
	default:
		return false
	}
	p, err := s.chats.Participant(ctx, ln.chatID)
	return err == nil && p.Kind == kind && p.ID == ln.participant
}

// DownloadPath is where download links live: GET DownloadPath + token.
const DownloadPath = "/files/d/"

// MaxLinksPerChat bounds the live download links of one chat, so one chat
// cannot take the whole table.
const MaxLinksPerChat = 100

// link is what a download token grants: one download of one file, minted
// for one participant.
type link struct {
	fileID, chatID string
	kind           int32
	participant    string
	expires        time.Time
}

// links is the in-memory table of live download links, keyed by the hash
// of the token; bounded in size and per chat, never persisted.
type links struct {
	mu      sync.Mutex
	m       map[string]link
	perChat map[string]int
	max     int
}

func newLinks(max int) *links {
	return &links{m: map[string]link{}, perChat: map[string]int{}, max: max}
}

func (l *links) removeLocked(k string) {
	ln := l.m[k]
	delete(l.m, k)
	if l.perChat[ln.chatID]--; l.perChat[ln.chatID] <= 0 {
		delete(l.perChat, ln.chatID)
	}
}

func (l *links) sweepLocked(now time.Time) {
	for k, ln := range l.m {
		if !now.Before(ln.expires) {
			l.removeLocked(k)
		}
	}
}

// add stores a link for token; false when the table (or the chat's share)
// is full even after dropping expired links.
func (l *links) add(token string, ln link) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if len(l.m) >= l.max || l.perChat[ln.chatID] >= MaxLinksPerChat {
		l.sweepLocked(now)
	}
	if len(l.m) >= l.max || l.perChat[ln.chatID] >= MaxLinksPerChat {
		return false
	}
	l.m[string(ids.Hash(token))] = ln
	l.perChat[ln.chatID]++
	return true
}

// take removes and returns token's link if it is live (single use).
func (l *links) take(token string) (link, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := string(ids.Hash(token))
	ln, ok := l.m[k]
	if !ok {
		return link{}, false
	}
	l.removeLocked(k)
	return ln, time.Now().Before(ln.expires)
}

// dropChat removes every link of a chat.
func (l *links) dropChat(chatID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perChat[chatID] == 0 {
		return
	}
	for k, ln := range l.m {
		if ln.chatID == chatID {
			l.removeLocked(k)
		}
	}
}

// len is the number of links held.
func (l *links) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// participantFile reads a file and checks that the caller is a participant
// of its chat.
func (s *Service) participantFile(ctx context.Context, id string) (*file, Participant, error) {
	f, err := s.st.file(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, Participant{}, errs.NotFound("no such file")
	}
	if err != nil {
		return nil, Participant{}, err
	}
	p, err := s.chats.Participant(ctx, f.ChatID)
	if err != nil {
		return nil, Participant{}, err
	}
	return f, p, nil
}

func (f *file) proto() *filesv1.File {
	return &filesv1.File{FileId: f.ID, ChatId: f.ChatID, Name: f.Name, Size: f.Size, ContentType: baseType(f.ContentType), Sha256: f.SHA256}
}

// readChunk decrypts chunk idx of f, holding the chat's lock only while it
// reads (never while a slow client is sent to): errClosed once the chat's
// files are destroyed.
func (s *Service) readChunk(ctx context.Context, f *file, idx int64) ([]byte, error) {
	unlock := s.locks.shared(f.ChatID)
	defer unlock()
	key, err := s.st.key(ctx, f.ChatID)
	if err != nil {
		return nil, err
	}
	if key == nil {
		return nil, errClosed
	}
	a, err := newAEAD(key)
	clear(key)
	if err != nil {
		return nil, err
	}
	path, err := s.blobPath(f.ChatID, f.ID)
	if err != nil {
		return nil, err
	}
	fh, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errClosed
	}
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return openChunk(fh, a, f.ID, f.Size, idx)
}

// DownloadFile implements FileServiceHandler.
func (s *Service) DownloadFile(ctx context.Context, req *connect.Request[filesv1.DownloadFileRequest], stream *connect.ServerStream[filesv1.DownloadFileResponse]) error {
	f, _, err := s.participantFile(ctx, req.Msg.FileId)
	if err != nil {
		return err
	}
	off := req.Msg.Offset
	if off < 0 || off > f.Size {
		return errs.Invalid("the offset must be between 0 and the file's size (%d)", f.Size)
	}
	first := &filesv1.DownloadFileResponse{File: f.proto(), Offset: off}
	if off == f.Size {
		return stream.Send(first)
	}
	for idx := off / ChunkSize; idx < chunkCount(f.Size); idx++ {
		plain, err := s.readChunk(ctx, f, idx)
		if err != nil {
			return err
		}
		msg := &filesv1.DownloadFileResponse{Offset: off, Data: plain[off-idx*ChunkSize:]}
		if first != nil {
			msg.File, first = first.File, nil
		}
		err = stream.Send(msg)
		release(plain)
		if err != nil {
			return err
		}
		off = (idx + 1) * ChunkSize
	}
	return nil
}

// CreateDownloadLink implements FileServiceHandler.
func (s *Service) CreateDownloadLink(ctx context.Context, req *connect.Request[filesv1.CreateDownloadLinkRequest]) (*connect.Response[filesv1.CreateDownloadLinkResponse], error) {
	f, p, err := s.participantFile(ctx, req.Msg.FileId)
	if err != nil {
		return nil, err
	}
	token := ids.Token()
	exp := time.Now().Add(s.o.LinkTTL)
	if !s.links.add(token, link{fileID: f.ID, chatID: f.ChatID, kind: int32(p.Kind), participant: p.ID, expires: exp}) {
		return nil, errs.Throttled(s.o.LinkTTL, "too many download links at once (%d per chat)", MaxLinksPerChat)
	}
	return connect.NewResponse(&filesv1.CreateDownloadLinkResponse{Url: DownloadPath + token, ExpiresAt: timestamppb.New(exp)}), nil
}

// DownloadHandler serves GET DownloadPath{token}: the file, once, within
// the link's lifetime, as an attachment that no browser will render or run.
// Used, expired and unknown links, and links to a file whose chat closed,
// answer 404.
func (s *Service) DownloadHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if r.Method != http.MethodGet {
			h.Set("Allow", http.MethodGet)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		token, ok := strings.CutPrefix(r.URL.Path, DownloadPath)
		if !ok || token == "" {
			http.NotFound(w, r)
			return
		}
		ln, ok := s.links.take(token)
		if !ok {
			http.NotFound(w, r)
			return
		}
		ctx := r.Context()
		f, err := s.st.file(ctx, ln.fileID)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		// The link's holder must still take part in the chat (an operator
		// the chat was transferred away from does not; a closed chat has
		// no participants).
		if !s.stillIn(ctx, ln, f.AccountID) {
			http.NotFound(w, r)
			return
		}
		// The first chunk is read before any header goes out, so a chat
		// destroyed just now still gets a clean 404.
		first, err := s.readChunk(ctx, f, 0)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		h.Set("Content-Type", servedType(f.ContentType))
		h.Set("Content-Disposition", attachment(f.Name))
		h.Set("Content-Length", strconv.FormatInt(f.Size, 10))
		w.WriteHeader(http.StatusOK)
		n := chunkCount(f.Size)
		for idx := int64(0); idx < n; idx++ {
			plain := first
			if idx > 0 {
				if plain, err = s.readChunk(ctx, f, idx); err != nil {
					// Cut the response short: the client sees fewer bytes
					// than Content-Length, never wrong ones.
					s.log.LogAttrs(ctx, slog.LevelInfo, "download link cut", slog.String("file", f.ID), slog.Int64("chunk", idx))
					panic(http.ErrAbortHandler)
				}
			}
			_, werr := w.Write(plain)
			release(plain)
			if werr != nil {
				return
			}
		}
		s.log.LogAttrs(ctx, slog.LevelDebug, "download link used", slog.String("chat", f.ChatID), slog.String("file", f.ID), slog.Int64("size", f.Size))
	})
}

// attachment is a Content-Disposition header for name (RFC 6266): an ASCII
// fallback in filename and the exact name in filename* (RFC 8187).
func attachment(name string) string {
	var ascii strings.Builder
	for _, r := range name {
		switch {
		case r == '"' || r == '\\' || r < 0x20 || r == 0x7f || r >= utf8.RuneSelf:
			ascii.WriteByte('_')
		default:
			ascii.WriteRune(r)
		}
	}
	// RFC 8187 attr-char: ALPHA / DIGIT / "!#$&+-.^_`|~"; url.PathEscape
	// leaves a few more (such as ' and *) that must be encoded here.
	enc := url.PathEscape(name)
	var b strings.Builder
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		switch {
		case c == '%' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return fmt.Sprintf(`attachment; filename="%s"; filename*=UTF-8''%s`, ascii.String(), b.String())
}
