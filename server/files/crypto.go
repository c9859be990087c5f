package files

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"os"
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
	rec := make([]byte, nonceSize, nonceSize+len(plain)+tagSize)
	if _, err := rand.Read(rec); err != nil {
		return err
	}
	rec = a.Seal(rec, rec[:nonceSize], plain, aad(fileID, idx))
	_, err := f.WriteAt(rec, idx*recordSize)
	return err
}

// openChunk reads record idx of fileID (a file of size bytes) from f and
// returns the plaintext; errCorrupt when it does not authenticate.
func openChunk(f io.ReaderAt, a cipher.AEAD, fileID string, size, idx int64) ([]byte, error) {
	rec := make([]byte, nonceSize+chunkLen(size, idx)+tagSize)
	if _, err := f.ReadAt(rec, idx*recordSize); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errCorrupt
		}
		return nil, err
	}
	plain, err := a.Open(rec[nonceSize:nonceSize], rec[:nonceSize], rec[nonceSize:], aad(fileID, idx))
	if err != nil {
		return nil, errCorrupt
	}
	return plain, nil
}
