package files

import (
	"crypto/cipher"
	"crypto/sha256"
	"hash"
	"io"
	"sync"
)

// runningHashes keep, in memory only, the SHA-256 of each upload's chunks
// received in order so far, so that finishing an upload needs no second
// pass over its ciphertext. Chunks that arrive ahead of their turn (a
// client sends several at once) are hashed from disk when their turn
// comes. After a restart an upload has none, and finishing hashes every
// chunk from disk, as it always may.
type runningHashes struct {
	mu sync.Mutex
	m  map[string]*runningHash
}

type runningHash struct {
	chatID string
	h      hash.Hash
	next   int64          // the next chunk to hash
	ahead  map[int64]bool // stored chunks after next
	broken bool           // a chunk could not be read: finish from disk
}

func (r *runningHashes) start(uploadID, chatID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]*runningHash{}
	}
	r.m[uploadID] = &runningHash{chatID: chatID, h: sha256.New(), ahead: map[int64]bool{}}
}

func (r *runningHashes) get(uploadID string) *runningHash {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[uploadID]
}

// take returns the upload's hash and forgets it.
func (r *runningHashes) take(uploadID string) *runningHash {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.m[uploadID]
	delete(r.m, uploadID)
	return h
}

// dropChat forgets the hashes of a chat's uploads.
func (r *runningHashes) dropChat(chatID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, h := range r.m {
		if h.chatID == chatID {
			delete(r.m, id)
		}
	}
}

// stored adds chunk idx (plaintext data, just stored) of upload id to its
// hash, then the chunks stored ahead of it that are now in turn, read back
// from f. The caller holds the upload's lock.
func (r *runningHashes) stored(u *upload, idx int64, data []byte, f io.ReaderAt, a cipher.AEAD) {
	rh := r.get(u.ID)
	if rh == nil || rh.broken || idx < rh.next {
		return
	}
	if idx > rh.next {
		rh.ahead[idx] = true
		return
	}
	rh.h.Write(data)
	rh.next++
	for rh.ahead[rh.next] {
		plain, err := openChunk(f, a, u.ID, u.Size, rh.next)
		if err != nil {
			rh.broken = true
			return
		}
		rh.h.Write(plain)
		release(plain)
		delete(rh.ahead, rh.next)
		rh.next++
	}
}

// sum is the SHA-256 of all n chunks, if every one was hashed in turn.
func (rh *runningHash) sum(n int64) ([]byte, bool) {
	if rh == nil || rh.broken || rh.next != n {
		return nil, false
	}
	return rh.h.Sum(nil), true
}
