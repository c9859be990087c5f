package files

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"sync"
)

// A file's ciphertext is a sequence of fixed-size records, one per chunk:
// record i starts at i*recordSize and holds a fresh random 12-byte nonce
// followed by the chunk sealed with AES-256-GCM (its 16-byte tag included).
// The last record is shorter when the last chunk is. Fixed positions let
// chunks arrive in any order (WriteAt) and be read from any offset (ReadAt)
// with nothing but one chunk in memory; plaintext never goes to disk.
const (
	nonceSize  = 12
	tagSize    = 16
	recordSize = nonceSize + ChunkSize + tagSize
)

// errCorrupt means a record failed authentication (tampered, torn or never
// written).
var errCorrupt = errors.New("chunk does not decrypt")

func newAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// aad binds a record to its file and position, so that a record moved to
// another file or another index does not decrypt.
func aad(fileID string, idx int64) []byte {
	b := make([]byte, 0, len("lethe.files.v1\x00")+len(fileID)+9)
	b = append(b, "lethe.files.v1\x00"...)
	b = append(b, fileID...)
	b = append(b, 0)
	return binary.BigEndian.AppendUint64(b, uint64(idx))
}

// chunkLen is the plaintext length of chunk idx of a file of size bytes.
func chunkLen(size, idx int64) int64 {
	return min(ChunkSize, size-idx*ChunkSize)
}

// chunkCount is the number of chunks of a file of size bytes.
func chunkCount(size int64) int64 { return (size + ChunkSize - 1) / ChunkSize }

// sealChunk encrypts plain as record idx of fileID and writes it at its
// place in f. Every write draws a new nonce: a record is never rewritten
// with the same one.
func sealChunk(f *os.File, a cipher.AEAD, fileID string, idx int64, plain []byte) error {
	buf := records.Get().(*[]byte)
	defer records.Put(buf)
	rec := (*buf)[:nonceSize]
	if _, err := rand.Read(rec); err != nil {
		return err
	}
	rec = a.Seal(rec, rec[:nonceSize], plain, aad(fileID, idx))
	_, err := f.WriteAt(rec, idx*recordSize)
	return err
}

// Buffers for one record (ciphertext) and one chunk (plaintext), reused:
// an upload or download moves every byte through them, and fresh ones per
// chunk were most of the server's allocations and garbage collection.
var (
	records = sync.Pool{New: func() any { b := make([]byte, recordSize); return &b }}
	plains  = sync.Pool{New: func() any { b := make([]byte, ChunkSize); return &b }}
)

// release wipes a plaintext returned by openChunk and gives its buffer
// back. The caller must not use plain afterwards.
func release(plain []byte) {
	b := plain[:cap(plain)]
	clear(b)
	if cap(b) == ChunkSize {
		plains.Put(&b)
	}
}

// openChunk reads record idx of fileID (a file of size bytes) from f and
// returns the plaintext, to be given back with release; errCorrupt when it
// does not authenticate.
func openChunk(f io.ReaderAt, a cipher.AEAD, fileID string, size, idx int64) ([]byte, error) {
	buf := records.Get().(*[]byte)
	defer records.Put(buf)
	rec := (*buf)[:nonceSize+chunkLen(size, idx)+tagSize]
	if _, err := f.ReadAt(rec, idx*recordSize); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errCorrupt
		}
		return nil, err
	}
	dst := plains.Get().(*[]byte)
	plain, err := a.Open((*dst)[:0], rec[:nonceSize], rec[nonceSize:], aad(fileID, idx))
	if err != nil {
		plains.Put(dst)
		return nil, errCorrupt
	}
	return plain, nil
}
