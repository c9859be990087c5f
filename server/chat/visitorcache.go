package chat

import (
	"sync"

	"github.com/lethehq/lethe/server/auth"
)

// maxCachedVisitors bounds visitorCache: past it, tokens are looked up in
// scratch.db every time.
const maxCachedVisitors = 100_000

// visitorCache remembers which open chat a visitor token opens, so that a
// visitor's calls (a message, a typing notice, a stream) do not look the
// token up in scratch.db each time (at 4,000 messages a second that lookup
// was an eighth of the server's work). It holds token hashes and ids, never
// a token. Only open chats are remembered, and a chat is forgotten when it
// closes (after the commit, in the writer's order) and when it is destroyed;
// a lookup that raced with either is not remembered (a generation counter).
type visitorCache struct {
	mu     sync.Mutex
	byHash map[string]auth.Visitor
	byChat map[string]string // chat id → token hash
	gen    uint64
}

func newVisitorCache() *visitorCache {
	return &visitorCache{byHash: map[string]auth.Visitor{}, byChat: map[string]string{}}
}

// get returns the visitor of a token hash, or the generation to pass to put.
func (vc *visitorCache) get(h []byte) (v *auth.Visitor, gen uint64, ok bool) {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	c, ok := vc.byHash[string(h)]
	if !ok {
		return nil, vc.gen, false
	}
	return &c, vc.gen, true
}

// put remembers an open chat's visitor looked up at generation gen.
func (vc *visitorCache) put(h []byte, v *auth.Visitor, gen uint64) {
	if v.Closed {
		return
	}
	vc.mu.Lock()
	defer vc.mu.Unlock()
	if vc.gen != gen || len(vc.byHash) >= maxCachedVisitors {
		return
	}
	vc.byHash[string(h)] = *v
	vc.byChat[v.ChatID] = string(h)
}

// forgetChat drops what is remembered of a chat (it closed or is gone).
func (vc *visitorCache) forgetChat(chatID string) {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	vc.gen++
	if h, ok := vc.byChat[chatID]; ok {
		delete(vc.byHash, h)
		delete(vc.byChat, chatID)
	}
}
