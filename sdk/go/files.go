package lethe

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	filesv1 "github.com/lethehq/lethe/gen/go/lethe/files/v1"
	"github.com/lethehq/lethe/gen/go/lethe/files/v1/filesv1connect"
)

// newFilesClient is the FileService client of a Visitor or Operator: their
// options, and no gzip for the answers. Files are mostly compressed already
// (images, PDF, office documents), and a server that gzips a download it
// was allowed to spends its CPU for nothing: over loopback that made
// downloads 4 to 8 times slower.
func newFilesClient(httpClient connect.HTTPClient, baseURL string, opts []connect.ClientOption) filesv1connect.FileServiceClient {
	opts = append(slices.Clone(opts), connect.WithAcceptCompression("gzip", nil, nil))
	return filesv1connect.NewFileServiceClient(httpClient, baseURL, opts...)
}

// UploadOptions tunes Upload.
type UploadOptions struct {
	// DeclaredType is the type the caller believes the file has (e.g.
	// "application/pdf"). Informative only: the server reads the type from
	// the bytes.
	DeclaredType string
	// Progress, when set, is called after every chunk the server confirmed,
	// with the bytes it holds so far and the file's size, one call at a
	// time.
	Progress func(sent, total int64)
	// InFlight is how many chunks are sent at once (0: DefaultInFlight).
	// The server stores them in any order; more in flight hides the round
	// trip of each.
	InFlight int
}

// DefaultInFlight is the number of chunks an upload sends at once.
const DefaultInFlight = 4

// cancelTimeout bounds the CancelUpload sent after ctx ended.
const cancelTimeout = 5 * time.Second

// Upload sends size bytes read from r as a file named name into the chat
// chatID, in chunks of the size the server asks for, and returns the file
// and the FileShared event the server posted to the chat for both sides.
//
// The SHA-256 of the bytes is computed while they are read and checked by
// the server at the end (DataLoss if the bytes it received differ; r must
// not change during the upload). A call that fails with a code that is not
// final (see FinalCodes; a network error, Unavailable, a throttled call) is
// retried after Backoff, or after the server's retry hint when it is longer,
// from where GetUpload says the upload stopped; ResourceExhausted without a
// retry hint (a size limit, a full disk) ends the upload. When ctx ends, or
// the upload fails for good, Upload cancels the upload on the server, so
// that nothing of it is kept, and returns the error.
func Upload(ctx context.Context, client filesv1connect.FileServiceClient, chatID, name string, r io.ReaderAt, size int64, opts UploadOptions) (*filesv1.File, *chatv1.ChatEvent, error) {
	u := &upload{client: client, r: r, size: size, opts: opts, sum: sha256.New()}
	var start *filesv1.StartUploadResponse
	err := u.retry(ctx, func() error {
		res, err := client.StartUpload(ctx, connect.NewRequest(&filesv1.StartUploadRequest{
			ChatId: chatID, Name: name, Size: size, DeclaredType: opts.DeclaredType}))
		if err == nil {
			start = res.Msg
		}
		return err
	}, nil)
	if err != nil {
		return nil, nil, err
	}
	u.id, u.chunk = start.UploadId, int64(start.ChunkSize)
	if u.chunk <= 0 {
		return nil, nil, u.abandon(fmt.Errorf("lethe: the server asked for chunks of %d bytes", u.chunk))
	}
	f, ev, err := u.run(ctx)
	if err != nil {
		return nil, nil, u.abandon(err)
	}
	return f, ev, nil
}

// upload is one Upload in progress.
type upload struct {
	client filesv1connect.FileServiceClient
	r      io.ReaderAt
	size   int64
	opts   UploadOptions
	id     string
	chunk  int64

	sum    hash.Hash
	hashed int64    // bytes of r in sum
	buf    []byte   // hashTo's
	bufs   [][]byte // one per chunk of the window

	mu       sync.Mutex // serializes Progress calls
	reported int64
}

// run sends the chunks from the start, a window of them at once, resuming
// after retryable errors, and finishes the upload.
func (u *upload) run(ctx context.Context) (*filesv1.File, *chatv1.ChatEvent, error) {
	next := int64(0)
	window := u.opts.InFlight
	if window <= 0 {
		window = DefaultInFlight
	}
	resync := func() error {
		res, err := u.client.GetUpload(ctx, connect.NewRequest(&filesv1.GetUploadRequest{UploadId: u.id}))
		if err == nil {
			next = res.Msg.NextOffset
		}
		return err
	}
	for next < u.size {
		if err := u.retry(ctx, func() error { return u.sendWindow(ctx, &next, window) }, resync); err != nil {
			return nil, nil, err
		}
	}
	if err := u.hashTo(u.size); err != nil {
		return nil, nil, err
	}
	sum := hex.EncodeToString(u.sum.Sum(nil))
	var fin *filesv1.FinishUploadResponse
	err := u.retry(ctx, func() error {
		res, err := u.client.FinishUpload(ctx, connect.NewRequest(&filesv1.FinishUploadRequest{UploadId: u.id, Sha256: sum}))
		if err == nil {
			fin = res.Msg
		}
		return err
	}, nil)
	if err != nil {
		return nil, nil, err
	}
	return fin.File, fin.Event, nil
}

// sendWindow sends up to window chunks from *next at once and, when all
// of them are stored, moves *next to the first offset the server lacks.
// Chunks are independent and idempotent, so a failure leaves nothing to
// undo: the retry asks GetUpload where to go on.
func (u *upload) sendWindow(ctx context.Context, next *int64, window int) error {
	type part struct {
		off  int64
		data []byte
		res  *filesv1.UploadChunkResponse
		err  error
	}
	var parts []*part
	for i := 0; i < window && *next+int64(i)*u.chunk < u.size; i++ {
		off := *next + int64(i)*u.chunk
		data, err := u.read(off, i)
		if err != nil {
			return err
		}
		parts = append(parts, &part{off: off, data: data})
	}
	var wg sync.WaitGroup
	for _, p := range parts {
		wg.Go(func() {
			res, err := u.client.UploadChunk(ctx, connect.NewRequest(&filesv1.UploadChunkRequest{UploadId: u.id, Offset: p.off, Data: p.data}))
			if err == nil {
				p.res = res.Msg
				u.progress(res.Msg.ReceivedBytes)
			}
			p.err = err
		})
	}
	wg.Wait()
	var lacks int64
	for _, p := range parts {
		if p.err != nil {
			return p.err
		}
		lacks = max(lacks, p.res.NextOffset)
	}
	last := parts[len(parts)-1]
	if end := last.off + int64(len(last.data)); lacks < end {
		// The server says what it lacks first: after a whole window stored,
		// that is past it, unless something before it went missing.
		return &permanentError{fmt.Errorf("lethe: upload %s: the chunks up to %d were stored but the server still lacks offset %d", u.id, end, lacks)}
	}
	*next = lacks
	return nil
}

// progress reports a confirmed chunk: the most the server said it holds.
// Answers to a window's chunks arrive in any order, so the report is the
// largest seen, once per chunk.
func (u *upload) progress(received int64) {
	if u.opts.Progress == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.reported = max(u.reported, received)
	u.opts.Progress(u.reported, u.size)
}

// read returns the chunk at off in the window's buffer slot, adding its
// bytes to the hash the first time they are read.
func (u *upload) read(off int64, slot int) ([]byte, error) {
	if err := u.hashTo(off); err != nil {
		return nil, err
	}
	for len(u.bufs) <= slot {
		u.bufs = append(u.bufs, nil)
	}
	n := min(u.chunk, u.size-off)
	if int64(cap(u.bufs[slot])) < n {
		u.bufs[slot] = make([]byte, n)
	}
	data := u.bufs[slot][:n]
	if err := readFull(u.r, data, off); err != nil {
		return nil, err
	}
	if off+n > u.hashed {
		u.sum.Write(data[u.hashed-off:])
		u.hashed = off + n
	}
	return data, nil
}

// hashTo adds the bytes of r before off that were not hashed yet (a resume
// that skips ahead) to the hash.
func (u *upload) hashTo(off int64) error {
	for u.hashed < off {
		n := min(u.chunk, off-u.hashed)
		if int64(cap(u.buf)) < n {
			u.buf = make([]byte, n)
		}
		if err := readFull(u.r, u.buf[:n], u.hashed); err != nil {
			return err
		}
		u.sum.Write(u.buf[:n])
		u.hashed += n
	}
	return nil
}

// readFull reads len(p) bytes at off; a source shorter than the declared
// size is an error.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return &permanentError{fmt.Errorf("lethe: read the file at %d: %w", off, err)}
}

// permanentError is a failure no retry can help: reading the caller's
// file, or a server answer that makes no sense.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// retry runs call until it succeeds, ctx ends or it fails with an error
// that is not retryable. Before every retry it waits (Backoff, or the
// server's retry hint when longer) and runs resync, when given, until that
// succeeds too.
func (u *upload) retry(ctx context.Context, call, resync func() error) error {
	for n := 1; ; n++ {
		err := call()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !retryable(err) {
			return err
		}
		for ; ; n++ {
			if err := sleep(ctx, max(Backoff(n), RetryHint(err))); err != nil {
				return err
			}
			if resync == nil {
				break
			}
			err = resync()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !retryable(err) {
				return err
			}
		}
	}
}

// abandon cancels the upload on the server (with a fresh context: ctx may
// be what ended it) and returns err.
func (u *upload) abandon(err error) error {
	if u.id == "" {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), cancelTimeout)
	defer cancel()
	_, _ = u.client.CancelUpload(ctx, connect.NewRequest(&filesv1.CancelUploadRequest{UploadId: u.id}))
	return err
}

// retryable reports whether an upload call that failed with err may be
// tried again: the streams' policy (not Final), except that a
// permanentError, DataLoss (the bytes differ: sending them again cannot help) and
// ResourceExhausted without a retry hint (a size limit or a full disk, not
// a rate limit) are not.
func retryable(err error) bool {
	var permanent *permanentError
	switch {
	case errors.As(err, &permanent), Final(err):
		return false
	}
	switch connect.CodeOf(err) {
	case connect.CodeDataLoss:
		return false
	case connect.CodeResourceExhausted:
		return RetryHint(err) > 0
	}
	return true
}

// RetryHint is the wait the server asked for with a refusal
// (google.rpc.RetryInfo: a rate limit says when to come back), or 0 when
// it gave none.
func RetryHint(err error) time.Duration {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return 0
	}
	for _, d := range ce.Details() {
		if v, err := d.Value(); err == nil {
			if ri, ok := v.(*errdetails.RetryInfo); ok {
				return ri.GetRetryDelay().AsDuration()
			}
		}
	}
	return 0
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ErrChecksum is returned by Download when the bytes received do not have
// the SHA-256 the server announced for the file.
var ErrChecksum = errors.New("lethe: the downloaded bytes do not match the file's SHA-256")

// Download writes the file fileID to w and returns its description. A
// stream that breaks, or ends early, is reopened after Backoff from the
// bytes already written (the same policy as Watch: it stops on a final
// code, see FinalCodes), so w gets every byte once and in order. progress,
// when set, is called after every piece written with the bytes written so
// far and the file's size. At the end the SHA-256 of what was written is
// compared with the file's: ErrChecksum if they differ (w then holds bytes
// that must not be trusted).
func Download(ctx context.Context, client filesv1connect.FileServiceClient, fileID string, w io.Writer, progress func(got, total int64)) (*filesv1.File, error) {
	var (
		file *filesv1.File
		got  int64
		sum  = sha256.New()
	)
	err := resume(ctx,
		func(ctx context.Context) (stream[filesv1.DownloadFileResponse], error) {
			return client.DownloadFile(ctx, connect.NewRequest(&filesv1.DownloadFileRequest{FileId: fileID, Offset: got}))
		},
		func(m *filesv1.DownloadFileResponse) (bool, error) {
			if f := m.GetFile(); f != nil {
				if file != nil && (f.Size != file.Size || f.Sha256 != file.Sha256) {
					return true, fmt.Errorf("lethe: file %s changed between two streams", fileID)
				}
				file = f
			}
			if file == nil {
				return true, fmt.Errorf("lethe: file %s: the stream did not start with the file's description", fileID)
			}
			if len(m.Data) > 0 {
				if m.Offset != got {
					return true, fmt.Errorf("lethe: file %s: data at %d, expected %d", fileID, m.Offset, got)
				}
				if got+int64(len(m.Data)) > file.Size {
					return true, fmt.Errorf("lethe: file %s: more bytes than its size %d", fileID, file.Size)
				}
				if _, err := w.Write(m.Data); err != nil {
					return true, err
				}
				sum.Write(m.Data)
				got += int64(len(m.Data))
				if progress != nil {
					progress(got, file.Size)
				}
			}
			return got == file.Size, nil
		})
	if err != nil {
		return nil, err
	}
	if hex.EncodeToString(sum.Sum(nil)) != file.Sha256 {
		return file, ErrChecksum
	}
	return file, nil
}

// SendFile uploads a file into the visitor's chat (see Upload) and returns
// the FileShared event the server posted, as Send returns a message's.
func (v *Visitor) SendFile(ctx context.Context, name string, r io.ReaderAt, size int64, opts UploadOptions) (*chatv1.ChatEvent, error) {
	_, ev, err := Upload(ctx, v.Files, v.ChatID, name, r, size, opts)
	return ev, err
}

// Download writes a file of the visitor's chat to w (see the function
// Download); fileID is the FileShared event's.
func (v *Visitor) Download(ctx context.Context, fileID string, w io.Writer, progress func(got, total int64)) (*filesv1.File, error) {
	return Download(ctx, v.Files, fileID, w, progress)
}

// SendFile uploads a file into one of the operator's chats (see Upload) and
// returns the FileShared event the server posted, as Send returns a
// message's.
func (o *Operator) SendFile(ctx context.Context, chatID, name string, r io.ReaderAt, size int64, opts UploadOptions) (*chatv1.ChatEvent, error) {
	_, ev, err := Upload(ctx, o.Files, chatID, name, r, size, opts)
	return ev, err
}

// Download writes a file of one of the operator's chats to w (see the
// function Download); fileID is the FileShared event's.
func (o *Operator) Download(ctx context.Context, fileID string, w io.Writer, progress func(got, total int64)) (*filesv1.File, error) {
	return Download(ctx, o.Files, fileID, w, progress)
}
