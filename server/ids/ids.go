// Package ids makes random identifiers and bearer tokens.
package ids

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"strings"
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// New returns a random 80-bit identifier in lower-case base32 (16 characters).
// Identifiers are not secrets.
func New() string {
	b := make([]byte, 10)
	rand.Read(b)
	return strings.ToLower(b32.EncodeToString(b))
}

// Token returns a random 256-bit bearer token (URL-safe base64).
func Token() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Hash returns the SHA-256 of a token: only hashes of tokens are stored.
func Hash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}
