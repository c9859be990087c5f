package chat

import (
	"context"
	"sync"
	"time"

	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/limit"
	"github.com/lethehq/lethe/server/netinfo"
)

// Limits bound what one anonymous client can make the service store or
// fan out, per client address (netinfo.ClientAddr, counted under
// netinfo.AddrKey hashes) and per visitor. A zero Rate or a ceiling below 1
// turns a limit off.
type Limits struct {
	// StartsPerAddr: chats started per client address.
	StartsPerAddr limit.Rate
	// OpenPerAddr: chats open (waiting or active) at once per client
	// address; a chat stops counting when it closes. This is what keeps one
	// source from flooding the operators' queue.
	OpenPerAddr int
	// MessagesPerVisitor: messages per visitor token.
	MessagesPerVisitor limit.Rate
	// MessagesPerAddr: messages per client address, across visitor tokens.
	MessagesPerAddr limit.Rate
	// OfflinePerAddr: offline messages per client address.
	OfflinePerAddr limit.Rate
}

// DefaultLimits are the limits unless configured otherwise.
func DefaultLimits() Limits {
	return Limits{
		StartsPerAddr:      limit.Rate{N: 20, Per: time.Hour},
		OpenPerAddr:        10,
		MessagesPerVisitor: limit.Rate{N: 10, Per: 2 * time.Second},
		MessagesPerAddr:    limit.Rate{N: 120, Per: time.Minute},
		OfflinePerAddr:     limit.Rate{N: 5, Per: time.Minute},
	}
}

// Typing updates are limited per visitor only: they are never stored, and
// one address can only type into the chats it has open (OpenPerAddr), so
// the per-visitor rate bounds them per address too.
var typingRate = limit.Rate{N: 10, Per: 2 * time.Second}

// addrKey is the limiter key of the calling client's address.
func addrKey(ctx context.Context) string { return netinfo.AddrKey(netinfo.ClientAddr(ctx)) }

// openChats counts each client address's open chats against the ceiling,
// holding the slot of each open chat it counts until the chat closes.
//
// The count lives in memory only: the scratch store keeps no address of a
// chat whose account hides it (P5), not even a hash (an IPv4 address is
// found from its hash by trying them all). After a restart the chats
// already open are counted again as their visitors come back: the first
// call that uses a chat's token counts it under the caller's address
// (adopt), and refuses it when that address is at its ceiling. A chat
// nobody comes back to closes on the idle timeout; so an address never
// holds more than the ceiling of chats it uses.
type openChats struct {
	g    *limit.Gauge
	mu   sync.Mutex
	held map[string]func() // chat id → release of its slot
}

func newOpenChats(max int) *openChats {
	return &openChats{g: limit.NewGauge(max), held: map[string]func(){}}
}

func (o *openChats) off() bool { return o.g.Max() < 1 }

func (o *openChats) full() error {
	return errs.Exhausted("at most %d open chats per client address; end one first", o.g.Max())
}

// acquire takes a slot for a chat about to start from addr; hold the
// release with the chat's id once it is stored, or call it if it is not.
func (o *openChats) acquire(addr string) (func(), error) {
	release, ok := o.g.Acquire(addr)
	if !ok {
		return nil, o.full()
	}
	return release, nil
}

// hold keeps a started chat's slot until release(chatID).
func (o *openChats) hold(chatID string, release func()) {
	if o.off() {
		return
	}
	o.mu.Lock()
	o.held[chatID] = release
	o.mu.Unlock()
}

// counted reports whether the chat holds a slot.
func (o *openChats) counted(chatID string) bool {
	if o.off() {
		return true
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.held[chatID]
	return ok
}

// adopt counts an open chat that holds no slot (one open before a restart)
// under addr.
func (o *openChats) adopt(chatID, addr string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.held[chatID]; ok {
		return nil
	}
	release, ok := o.g.Acquire(addr)
	if !ok {
		return o.full()
	}
	o.held[chatID] = release
	return nil
}

// release frees a closed or destroyed chat's slot (harmless if it has none).
func (o *openChats) release(chatID string) {
	o.mu.Lock()
	release := o.held[chatID]
	delete(o.held, chatID)
	o.mu.Unlock()
	if release != nil {
		release()
	}
}

// len is the number of chats holding a slot.
func (o *openChats) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.held)
}

// throttled is the refusal of a rate-limited call: what is limited, per
// what, and when to retry.
func throttled(retry time.Duration, what string, r limit.Rate, per string) error {
	return errs.Throttled(retry, "too many %s (at most %s per %s)", what, r.Describe(), per)
}
