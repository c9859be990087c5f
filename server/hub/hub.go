// Package hub fans events out to subscribers in process.
//
// A publisher never waits for a subscriber. A subscriber either queues what
// it was sent (Subscribe) or merges it into its own state at once
// (SubscribeFunc, for streams that only need the latest state of each thing).
//
// A queueing subscriber starts with no buffer at all: its queue is allocated
// when something is published to it and dropped when it takes what was
// queued, so an idle subscription costs a few dozen bytes plus its entry in
// the topic map. The queue grows on demand up to the hub's limit; a
// subscriber that falls that far behind is cut off (Err reports ErrSlow) and
// is expected to resume from the last sequence number it saw, reading what it
// missed from storage. Nothing published after a cut is delivered to it, so
// what it did receive is always a prefix, in order, of what was published.
//
// Topics are plain strings ("chat:<id>", "account:<id>"); the hub knows
// nothing of the domains, so a multi-node deployment can replace it with a
// broker behind the same small interface.
package hub

import (
	"errors"
	"sync"

	"connectrpc.com/connect"

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
	mu sync.RWMutex
	// topics lists each topic's subscribers. A topic has few (a chat's
	// visitor streams, an account's consoles), so a slice beats a map:
	// smaller, and removal scans a handful of pointers.
	topics map[string][]*Sub
	limit  int
	closed bool
}

// New returns a hub whose subscribers may fall up to buffer events behind
// (DefaultBuffer when buffer <= 0).
func New(buffer int) *Hub {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	return &Hub{topics: map[string][]*Sub{}, limit: buffer}
}

// Buffer is how many events a subscriber may fall behind before it is cut
// off.
func (h *Hub) Buffer() int { return h.limit }

// Sub is one subscription to one or more topics.
type Sub struct {
	h *Hub
	// ready holds a token while values are queued (or merged) that the
	// owner has not taken, or once the subscription ended.
	ready chan struct{}
	// merge, when set, takes each value instead of the queue (SubscribeFunc).
	merge  func(v any) bool
	topics []string

	mu   sync.Mutex
	q    []any // queued values, oldest first; nil when empty
	err  error // why it ended
	done bool
}

// Subscribe creates a queueing subscription to the given topics: values
// published to them are queued, in order, until Take.
func (h *Hub) Subscribe(topics ...string) *Sub {
	return h.subscribe(nil, topics)
}

// SubscribeFunc creates a subscription that hands each published value to
// merge at once, on the publisher's goroutine and one value at a time, so
// that the subscriber can fold it into state of its own (keeping the latest
// state of each chat, say) instead of queueing it. merge must be quick and
// must not call the hub; it returns false when the subscriber has fallen too
// far behind, which cuts it off with ErrSlow. Ready is signalled only when
// the subscription ends; merge signals its owner of new state itself.
func (h *Hub) SubscribeFunc(merge func(v any) bool, topics ...string) *Sub {
	return h.subscribe(merge, topics)
}

func (h *Hub) subscribe(merge func(any) bool, topics []string) *Sub {
	s := &Sub{h: h, ready: make(chan struct{}, 1), merge: merge, topics: topics}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		s.end(ErrClosed)
		return s
	}
	for _, t := range topics {
		h.topics[t] = append(h.topics[t], s)
	}
	return s
}

// Ready is signalled when values were queued since the last Take, and when
// the subscription ends. A signal may find nothing to take.
func (s *Sub) Ready() <-chan struct{} { return s.ready }

// Take returns the values queued since the last call, oldest first, and,
// once the subscription has ended, why (ErrSlow or ErrClosed). Handle the
// values before the error: a subscriber cut off for being slow still gets
// everything it was sent before the cut.
func (s *Sub) Take() ([]any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.q
	s.q = nil
	if s.done {
		return q, s.err
	}
	return q, nil
}

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

// Err tells why the subscription ended (ErrSlow or ErrClosed); nil while it
// is live.
func (s *Sub) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close ends the subscription. It is safe to call more than once.
func (s *Sub) Close() {
	s.mu.Lock()
	s.end(ErrClosed)
	s.mu.Unlock()
	s.h.unlink(s)
}

// end marks s ended with reason unless it already was, and wakes its owner.
// Call with s.mu held (or before s is shared).
func (s *Sub) end(reason error) {
	if s.done {
		return
	}
	s.done, s.err = true, reason
	s.signal()
}

func (s *Sub) signal() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// unlink takes s out of the topic lists.
func (h *Hub) unlink(s *Sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range s.topics {
		subs := h.topics[t]
		for i, x := range subs {
			if x == s {
				last := len(subs) - 1
				subs[i] = subs[last]
				subs[last] = nil
				subs = subs[:last]
				break
			}
		}
		if len(subs) == 0 {
			delete(h.topics, t)
		} else {
			h.topics[t] = subs
		}
	}
}

// deliver gives v to s; false when s is (now) cut off and must be unlinked.
func (s *Sub) deliver(v any, limit int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return true // whoever ended it unlinks it
	}
	if s.merge != nil {
		if !s.merge(v) {
			s.end(ErrSlow)
			return false
		}
		return true
	}
	if len(s.q) >= limit {
		// Cut off now, under the lock: nothing later may reach a
		// subscriber that missed v, or it would resume past the gap.
		s.end(ErrSlow)
		return false
	}
	if s.q == nil {
		s.q = make([]any, 0, min(4, limit))
	} else if len(s.q) == cap(s.q) {
		q := make([]any, len(s.q), min(2*cap(s.q), limit))
		copy(q, s.q)
		s.q = q
	}
	s.q = append(s.q, v)
	s.signal()
	return true
}

// Publish delivers v to every subscriber of topic without blocking. A
// subscriber that fell too far behind is cut off with ErrSlow.
func (h *Hub) Publish(topic string, v any) {
	h.mu.RLock()
	var slow []*Sub
	for _, s := range h.topics[topic] {
		if !s.deliver(v, h.limit) {
			slow = append(slow, s)
		}
	}
	h.mu.RUnlock()
	for _, s := range slow {
		h.unlink(s)
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
	for _, subs := range h.topics {
		for _, s := range subs {
			s.mu.Lock()
			s.end(ErrClosed)
			s.mu.Unlock()
		}
	}
	h.topics = map[string][]*Sub{}
}
