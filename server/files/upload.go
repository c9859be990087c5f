package files

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	filesv1 "github.com/lethehq/lethe/gen/go/lethe/files/v1"
	"github.com/lethehq/lethe/server/errs"
)

// limits are an account's file limits capped by the server's.
type limits struct {
	enabled          bool
	maxFile, maxChat int64
	cats             []filesv1.FileCategory
}

func capped(account, server int64) int64 {
	if account <= 0 || account > server {
		return server
	}
	return account
}

func (s *Service) limitsFor(ctx context.Context, accountID string) (limits, error) {
	a, err := s.settings.FileSettings(ctx, accountID)
	if err != nil {
		return limits{}, err
	}
	l := limits{enabled: !a.Disabled,
		maxFile: capped(a.MaxFileBytes, s.o.MaxFileBytes),
		maxChat: capped(a.MaxChatBytes, s.o.MaxChatBytes),
		cats:    categoriesOr(a.Categories)}
	l.maxFile = min(l.maxFile, l.maxChat)
	return l, nil
}

// Bytes writes a size in binary units as people read them ("10 MiB",
// "1.5 GiB", "300 KiB", "12 bytes").
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	s := fmt.Sprintf("%.1f", v)
	if s[len(s)-2:] == ".0" {
		s = s[:len(s)-2]
	}
	return s + " " + []string{"KiB", "MiB", "GiB", "TiB", "PiB"}[i]
}

// GetFileLimits implements FileServiceHandler.
func (s *Service) GetFileLimits(ctx context.Context, req *connect.Request[filesv1.GetFileLimitsRequest]) (*connect.Response[filesv1.GetFileLimitsResponse], error) {
	p, err := s.chats.Participant(ctx, req.Msg.ChatId)
	if err != nil {
		return nil, err
	}
	l, err := s.limitsFor(ctx, p.AccountID)
	if err != nil {
		return nil, err
	}
	used, err := s.st.usage(ctx, p.ChatID)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&filesv1.GetFileLimitsResponse{Enabled: l.enabled, MaxFileBytes: l.maxFile,
		MaxChatBytes: l.maxChat, UsedChatBytes: used, ChunkSize: ChunkSize, Categories: l.cats, Accept: accept(l.cats)}), nil
}

// StartUpload implements FileServiceHandler.
func (s *Service) StartUpload(ctx context.Context, req *connect.Request[filesv1.StartUploadRequest]) (*connect.Response[filesv1.StartUploadResponse], error) {
	m := req.Msg
	p, err := s.chats.Participant(ctx, m.ChatId)
	if err != nil {
		return nil, err
	}
	l, err := s.limitsFor(ctx, p.AccountID)
	if err != nil {
		return nil, err
	}
	if !l.enabled {
		return nil, errs.Precondition("files are turned off for this chat")
	}
	if m.Size < 1 {
		return nil, errs.Invalid("size must be at least 1 byte")
	}
	if m.Size > l.maxFile {
		return nil, errs.Exhausted("a file may be at most %s", Bytes(l.maxFile))
	}
	if err := s.chats.ChargeUpload(ctx, p); err != nil {
		return nil, err
	}
	u := upload{ID: newID(), ChatID: p.ChatID, AccountID: p.AccountID, Kind: p.Kind, UploaderID: p.ID,
		Uploader: p.Name, Name: SanitizeName(m.Name), Size: m.Size}
	path, err := s.blobPath(u.ChatID, u.ID)
	if err != nil {
		return nil, err
	}
	unlock := s.locks.shared(u.ChatID)
	defer unlock()
	// Under the chat's lock: a chat destroyed since the participant check
	// gets no new key or directory. (Not a call to Chats.Open here: the
	// chat's close may hold its own lock while it waits for ours.)
	if s.wasDestroyed(u.ChatID) {
		return nil, errClosed
	}
	if err := s.st.startUpload(ctx, u, quota{maxChat: l.maxChat, maxTotal: s.o.MaxTotalBytes}); err != nil {
		if q, ok := errors.AsType[*errQuota](err); ok {
			if q.chat {
				return nil, errs.Exhausted("the files of a chat may total at most %s (%s used)", Bytes(l.maxChat), Bytes(q.used))
			}
			return nil, errs.Exhausted("the server's file storage is full (%s for all chats); try again later", Bytes(s.o.MaxTotalBytes))
		}
		return nil, diskFull(err)
	}
	if err := s.createBlob(path); err != nil {
		if _, derr := s.st.deleteUpload(context.WithoutCancel(ctx), u.ID); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, diskFull(err)
	}
	s.running.start(u.ID, u.ChatID)
	s.log.LogAttrs(ctx, slog.LevelDebug, "upload started", slog.String("chat", u.ChatID), slog.String("upload", u.ID), slog.Int64("size", u.Size))
	return connect.NewResponse(&filesv1.StartUploadResponse{UploadId: u.ID, ChunkSize: ChunkSize, Name: u.Name}), nil
}

func (s *Service) createBlob(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// ownUpload reads an upload and checks that the caller is the participant
// who started it.
func (s *Service) ownUpload(ctx context.Context, id string) (*upload, Participant, error) {
	u, err := s.st.upload(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, Participant{}, errs.NotFound("no such upload (it was finished or cancelled, or its chat closed)")
	}
	if err != nil {
		return nil, Participant{}, err
	}
	p, err := s.chats.Participant(ctx, u.ChatID)
	if err != nil {
		return nil, Participant{}, err
	}
	if p.Kind != u.Kind || p.ID != u.UploaderID {
		return nil, Participant{}, errs.Denied("this upload belongs to someone else")
	}
	return u, p, nil
}

// reread reads u again under its lock: it may have been finished,
// cancelled or destroyed meanwhile.
func (s *Service) reread(ctx context.Context, u *upload) (*upload, error) {
	u, err := s.st.upload(ctx, u.ID)
	if errors.Is(err, ErrNotFound) {
		return nil, errs.NotFound("no such upload (it was finished or cancelled, or its chat closed)")
	}
	return u, err
}

// progress says how much of an upload arrived and where to go on.
func (s *Service) progress(ctx context.Context, u *upload) (received, next int64, err error) {
	got, err := s.st.chunks(ctx, u.ID)
	if err != nil {
		return 0, 0, err
	}
	next = -1
	for i, idx := range got {
		received += chunkLen(u.Size, idx)
		if next < 0 && idx != int64(i) {
			next = int64(i) * ChunkSize
		}
	}
	if next < 0 {
		next = min(int64(len(got))*ChunkSize, u.Size)
	}
	return received, next, nil
}

// UploadChunk implements FileServiceHandler.
func (s *Service) UploadChunk(ctx context.Context, req *connect.Request[filesv1.UploadChunkRequest]) (*connect.Response[filesv1.UploadChunkResponse], error) {
	m := req.Msg
	u, _, err := s.ownUpload(ctx, m.UploadId)
	if err != nil {
		return nil, err
	}
	if m.Offset < 0 || m.Offset%ChunkSize != 0 {
		return nil, errs.Invalid("the offset must be a multiple of %d", ChunkSize)
	}
	idx := m.Offset / ChunkSize
	if idx >= chunkCount(u.Size) {
		return nil, errs.Invalid("the offset %d is past the end of the file (%d bytes)", m.Offset, u.Size)
	}
	if want := chunkLen(u.Size, idx); int64(len(m.Data)) != want {
		return nil, errs.Invalid("the chunk at offset %d must be %d bytes, not %d", m.Offset, want, len(m.Data))
	}
	unlock := s.lockUpload(u)
	defer unlock()
	if u, err = s.reread(ctx, u); err != nil {
		return nil, err
	}
	if err := s.writeChunk(ctx, u, idx, m.Data); err != nil {
		return nil, err
	}
	received, next, err := s.progress(ctx, u)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&filesv1.UploadChunkResponse{ReceivedBytes: received, NextOffset: next}), nil
}

// writeChunk stores chunk idx of u; the caller holds u's locks. A chunk
// that arrived before is compared (decrypted), never re-encrypted.
func (s *Service) writeChunk(ctx context.Context, u *upload, idx int64, data []byte) error {
	key, err := s.st.key(ctx, u.ChatID)
	if err != nil {
		return err
	}
	if key == nil {
		return errClosed
	}
	a, err := newAEAD(key)
	clear(key)
	if err != nil {
		return err
	}
	path, err := s.blobPath(u.ChatID, u.ID)
	if err != nil {
		return err
	}
	// The key was there under the chat's lock, so the chat is not destroyed
	// and the file may be made again (a crash between the upload's row and
	// its file); never the directory, which only StartUpload makes.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if errors.Is(err, os.ErrNotExist) {
		return errClosed
	}
	if err != nil {
		return err
	}
	defer f.Close()
	has, err := s.st.hasChunk(ctx, u.ID, idx)
	if err != nil {
		return err
	}
	if has {
		old, err := openChunk(f, a, u.ID, u.Size, idx)
		same := err == nil && bytes.Equal(old, data)
		if err == nil {
			release(old)
		}
		switch {
		case same:
			return nil
		case err == nil:
			return errs.Invalid("different bytes were already received at offset %d", idx*ChunkSize)
		case !errors.Is(err, errCorrupt):
			return err
		}
		// An unreadable record (a torn write before a crash) is written again.
	}
	var ct string
	if idx == 0 {
		l, err := s.limitsFor(ctx, u.AccountID)
		if err != nil {
			return err
		}
		ct, err = detect(data, l.cats)
		if te, ok := errors.AsType[*typeError](err); ok {
			f.Close()
			if derr := s.destroyUploadLocked(context.WithoutCancel(ctx), u); derr != nil {
				return derr
			}
			s.log.LogAttrs(ctx, slog.LevelInfo, "upload refused by type", slog.String("chat", u.ChatID), slog.String("upload", u.ID))
			return errs.Invalid("%s", te.Error())
		}
	}
	if err := sealChunk(f, a, u.ID, idx, data); err != nil {
		return diskFull(err)
	}
	if err := s.st.addChunk(ctx, u.ID, idx, ct); err != nil {
		return diskFull(err)
	}
	s.running.stored(u, idx, data, f, a)
	return nil
}

// GetUpload implements FileServiceHandler.
func (s *Service) GetUpload(ctx context.Context, req *connect.Request[filesv1.GetUploadRequest]) (*connect.Response[filesv1.GetUploadResponse], error) {
	u, _, err := s.ownUpload(ctx, req.Msg.UploadId)
	if err != nil {
		return nil, err
	}
	received, next, err := s.progress(ctx, u)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&filesv1.GetUploadResponse{ChatId: u.ChatID, Name: u.Name, Size: u.Size,
		ChunkSize: ChunkSize, ReceivedBytes: received, NextOffset: next}), nil
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// FinishUpload implements FileServiceHandler.
func (s *Service) FinishUpload(ctx context.Context, req *connect.Request[filesv1.FinishUploadRequest]) (*connect.Response[filesv1.FinishUploadResponse], error) {
	m := req.Msg
	if m.Sha256 != "" && !isSHA256Hex(m.Sha256) {
		return nil, errs.Invalid("sha256 must be 64 lowercase hex digits")
	}
	u, p, err := s.ownUpload(ctx, m.UploadId)
	if err != nil {
		return nil, err
	}
	u, sum, err := s.seal(ctx, u, m.Sha256)
	if err != nil {
		return nil, err
	}
	f := &filesv1.File{FileId: u.ID, ChatId: u.ChatID, Name: u.Name, Size: u.Size, ContentType: baseType(u.ContentType), Sha256: sum}
	// Not under the chat's lock: posting may wait on the chat, whose close
	// waits on DestroyChat, which waits on that lock.
	ev, err := s.chats.PostFile(ctx, p, &chatv1.FileShared{FileId: f.FileId, AuthorKind: p.Kind, AuthorName: p.Name,
		Name: f.Name, Size: f.Size, ContentType: f.ContentType, Sha256: f.Sha256})
	if err != nil {
		if derr := s.destroyUpload(context.WithoutCancel(ctx), u); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, err
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "file shared", slog.String("chat", u.ChatID), slog.String("file", u.ID),
		slog.Int64("size", u.Size), slog.Int64("chunks", chunkCount(u.Size)))
	return connect.NewResponse(&filesv1.FinishUploadResponse{File: f, Event: ev}), nil
}

// seal checks that every chunk of u arrived, hashes the plaintext chunk by
// chunk, checks it against want (if given) and turns the upload into a file.
func (s *Service) seal(ctx context.Context, u *upload, want string) (*upload, string, error) {
	unlock := s.lockUpload(u)
	defer unlock()
	u, err := s.reread(ctx, u)
	if err != nil {
		return nil, "", err
	}
	got, err := s.st.chunks(ctx, u.ID)
	if err != nil {
		return nil, "", err
	}
	n := chunkCount(u.Size)
	for i := range n {
		if i >= int64(len(got)) || got[i] != i {
			return nil, "", errs.Precondition("the chunk at offset %d is missing", i*ChunkSize)
		}
	}
	if b, ok := s.running.take(u.ID).sum(n); ok {
		return s.sealed(ctx, u, hex.EncodeToString(b), want)
	}
	key, err := s.st.key(ctx, u.ChatID)
	if err != nil {
		return nil, "", err
	}
	if key == nil {
		return nil, "", errClosed
	}
	a, err := newAEAD(key)
	clear(key)
	if err != nil {
		return nil, "", err
	}
	path, err := s.blobPath(u.ChatID, u.ID)
	if err != nil {
		return nil, "", err
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer fh.Close()
	h := sha256.New()
	for i := range n {
		plain, err := openChunk(fh, a, u.ID, u.Size, i)
		if errors.Is(err, errCorrupt) {
			if err := s.st.dropChunk(ctx, u.ID, i); err != nil {
				return nil, "", err
			}
			return nil, "", errs.E(connect.CodeDataLoss, "the chunk at offset %d was lost; send it again", i*ChunkSize)
		}
		if err != nil {
			return nil, "", err
		}
		h.Write(plain)
		release(plain)
	}
	return s.sealed(ctx, u, hex.EncodeToString(h.Sum(nil)), want)
}

// sealed turns u, whose bytes hash to sum, into a file, unless the client
// said they should hash to something else.
func (s *Service) sealed(ctx context.Context, u *upload, sum, want string) (*upload, string, error) {
	if want != "" && want != sum {
		return nil, "", errs.E(connect.CodeDataLoss, "the bytes received do not match the sha256 given; the upload stays open")
	}
	if err := s.st.finish(ctx, u, sum); err != nil {
		return nil, "", diskFull(err)
	}
	return u, sum, nil
}

// CancelUpload implements FileServiceHandler.
func (s *Service) CancelUpload(ctx context.Context, req *connect.Request[filesv1.CancelUploadRequest]) (*connect.Response[filesv1.CancelUploadResponse], error) {
	u, _, err := s.ownUpload(ctx, req.Msg.UploadId)
	if errs.CodeOf(err) == connect.CodeNotFound {
		return connect.NewResponse(&filesv1.CancelUploadResponse{}), nil
	}
	if err != nil {
		return nil, err
	}
	unlock := s.lockUpload(u)
	defer unlock()
	if _, err := s.st.upload(ctx, u.ID); errors.Is(err, ErrNotFound) {
		return connect.NewResponse(&filesv1.CancelUploadResponse{}), nil
	}
	if err := s.destroyUploadLocked(ctx, u); err != nil {
		return nil, err
	}
	s.log.LogAttrs(ctx, slog.LevelDebug, "upload cancelled", slog.String("chat", u.ChatID), slog.String("upload", u.ID))
	return connect.NewResponse(&filesv1.CancelUploadResponse{}), nil
}
