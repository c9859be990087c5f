// Package hub fans events out to subscribers in process.
//
// A publisher never waits for a subscriber: every subscriber has a bounded
// buffer, and one whose buffer is full is cut off (its channel is closed and
// Err reports ErrSlow). The subscriber is expected to resume from the last
// sequence number it saw, reading what it missed from storage. Topics are plain
// strings ("chat:<id>", "account:<id>"); the hub knows nothing of the domains,
// so a multi-node deployment can replace it with a broker behind the same
// small interface.
package hub

import (
	"connectrpc.com/connect"

	"errors"
	"sync"

	"github.com/lethehq/lethe/server/errs"
)

// ErrSlow is the reason a subscriber was cut off: it did not keep up.
var ErrSlow = errors.New("subscriber too slow")

// ErrClosed is the reason when the subscription was closed by its owner or by
// the hub shutting down.
var ErrClosed = errors.New("subscription closed")

// DefaultBuffer is the number of events a subscriber may fall behind.
const DefaultBuffer = 256

// Hub routes published values to the subscribers of a topic.
type Hub struct {
	mu     sync.RWMutex
	topics map[string]map[*Sub]struct{}
	buffer int
	closed bool
}

// New returns a hub whose subscribers buffer up to buffer events (DefaultBuffer
// when buffer <= 0).
func New(buffer int) *Hub {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	return &Hub{topics: map[string]map[*Sub]struct{}{}, buffer: buffer}
}

// Sub is one subscription to one or more topics.
type Sub struct {
	h      *Hub
	c      chan any
	mu     sync.Mutex
	topics []string
	err    error
	done   bool
}

// Subscribe creates a subscription to the given topics.
func (h *Hub) Subscribe(topics ...string) *Sub {
	s := &Sub{h: h, c: make(chan any, h.buffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		s.done, s.err = true, ErrClosed
		close(s.c)
		return s
	}
	for _, t := range topics {
		h.addLocked(s, t)
	}
	return s
}

func (h *Hub) addLocked(s *Sub, topic string) {
	m := h.topics[topic]
	if m == nil {
		m = map[*Sub]struct{}{}
		h.topics[topic] = m
	}
	m[s] = struct{}{}
	s.topics = append(s.topics, topic)
}

// C delivers published values; it is closed when the subscription ends.
func (s *Sub) C() <-chan any { return s.c }

// Ended turns why a subscription ended (ErrSlow, or the hub closing) into
// the error a stream handler returns: Unavailable, saying why and what the
// client does next (e.g. "resume from the last sequence number"), so that
// it reconnects.
func Ended(why error, next string) error {
	if errors.Is(why, ErrSlow) {
		return errs.E(connect.CodeUnavailable, "stream fell behind; %s", next)
	}
	return errs.E(connect.CodeUnavailable, "server is shutting down; %s", next)
}

// Err tells why C was closed: ErrSlow or ErrClosed.
func (s *Sub) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close ends the subscription. It is safe to call more than once.
func (s *Sub) Close() { s.h.remove(s, ErrClosed) }

func (h *Hub) remove(s *Sub, reason error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removeLocked(s, reason)
}

func (h *Hub) removeLocked(s *Sub, reason error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	s.done, s.err = true, reason
	for _, t := range s.topics {
		if m := h.topics[t]; m != nil {
			delete(m, s)
			if len(m) == 0 {
				delete(h.topics, t)
			}
		}
	}
	close(s.c)
}

// Publish delivers v to every subscriber of topic without blocking. A
// subscriber whose buffer is full is cut off with ErrSlow.
func (h *Hub) Publish(topic string, v any) {
	h.mu.RLock()
	var slow []*Sub
	for s := range h.topics[topic] {
		select {
		case s.c <- v:
		default:
			slow = append(slow, s)
		}
	}
	h.mu.RUnlock()
	for _, s := range slow {
		h.remove(s, ErrSlow)
	}
}

// Subscribers counts the subscribers of topic.
func (h *Hub) Subscribers(topic string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.topics[topic])
}

// Close cuts off every subscriber; later subscriptions end at once.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for _, m := range h.topics {
		for s := range m {
			h.removeLocked(s, ErrClosed)
		}
	}
}
