package auth

import (
	"maps"
	"sync"
	"time"

	"github.com/alexedwards/scs/v2"
)

// memoCodec is scs's gob codec with the decoding of each distinct session
// remembered: scs decodes the session on every request, and a gob decode
// (a fresh decoder, its type information included) costs far more than
// the cached lookup before it. It is keyed by the encoded bytes, so a
// changed session is decoded afresh; values are handed out as a copy of
// the map (scs changes it in place), and only sessions holding immutable
// values (strings, numbers, booleans, times) are remembered. At most max
// sessions are remembered; past that, one is forgotten.
type memoCodec struct {
	inner scs.Codec
	max   int

	mu   sync.Mutex
	memo map[string]decoded
}

type decoded struct {
	deadline time.Time
	values   map[string]any
}

func newMemoCodec(inner scs.Codec, max int) *memoCodec {
	return &memoCodec{inner: inner, max: max, memo: map[string]decoded{}}
}

// Encode implements scs.Codec, remembering what it encoded.
func (c *memoCodec) Encode(deadline time.Time, values map[string]any) ([]byte, error) {
	b, err := c.inner.Encode(deadline, values)
	if err == nil {
		c.remember(b, deadline, values)
	}
	return b, err
}

// Decode implements scs.Codec.
func (c *memoCodec) Decode(b []byte) (time.Time, map[string]any, error) {
	c.mu.Lock()
	d, ok := c.memo[string(b)]
	c.mu.Unlock()
	if ok {
		return d.deadline, maps.Clone(d.values), nil
	}
	deadline, values, err := c.inner.Decode(b)
	if err != nil {
		return deadline, values, err
	}
	c.remember(b, deadline, values)
	return deadline, values, nil
}

func (c *memoCodec) remember(b []byte, deadline time.Time, values map[string]any) {
	for _, v := range values {
		switch v.(type) {
		case string, bool, int, int32, int64, float64, time.Time:
		default:
			return
		}
	}
	d := decoded{deadline: deadline, values: maps.Clone(values)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.memo) >= c.max {
		for k := range c.memo {
			delete(c.memo, k)
			break
		}
	}
	c.memo[string(b)] = d
}
