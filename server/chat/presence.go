package chat

import (
	"sort"
	"sync"
	"time"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
)

// presence tracks operators in memory. An operator is ONLINE or AWAY (their
// own choice) while at least one console stream is connected, OFFLINE
// otherwise; a short grace period rides out a reconnect.
type presence struct {
	mu      sync.Mutex
	ops     map[string]*opPresence
	grace   time.Duration
	publish func(accountID string, p *chatv1.OperatorPresence)
}

type opPresence struct {
	accountID string
	name      string
	desired   chatv1.OperatorStatus
	streams   int
	effective chatv1.OperatorStatus
	timer     *time.Timer
}

func newPresence(grace time.Duration, publish func(string, *chatv1.OperatorPresence)) *presence {
	return &presence{ops: map[string]*opPresence{}, grace: grace, publish: publish}
}

func (p *presence) get(accountID, id, name string) *opPresence {
	o := p.ops[id]
	if o == nil {
		o = &opPresence{accountID: accountID, name: name, desired: chatv1.OperatorStatus_OPERATOR_STATUS_ONLINE,
			effective: chatv1.OperatorStatus_OPERATOR_STATUS_OFFLINE}
		p.ops[id] = o
	}
	o.name = name
	return o
}

// update recomputes o's effective status and publishes a change. Call with mu held.
func (p *presence) update(id string, o *opPresence) {
	eff := chatv1.OperatorStatus_OPERATOR_STATUS_OFFLINE
	if o.streams > 0 || o.timer != nil {
		eff = o.desired
	}
	if eff == o.effective {
		return
	}
	o.effective = eff
	p.publish(o.accountID, &chatv1.OperatorPresence{OperatorId: id, Name: o.name, Status: eff})
}

// connect counts a console stream of the operator.
func (p *presence) connect(accountID, id, name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	o := p.get(accountID, id, name)
	if o.timer != nil {
		o.timer.Stop()
		o.timer = nil
	}
	o.streams++
	p.update(id, o)
}

// disconnect uncounts a stream; the operator goes offline after the grace
// period if no stream comes back.
func (p *presence) disconnect(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	o := p.ops[id]
	if o == nil {
		return
	}
	if o.streams == 0 {
		return // already signed out
	}
	o.streams--
	if o.streams > 0 {
		return
	}
	// Still shown as connected during the grace period.
	var t *time.Timer
	t = time.AfterFunc(p.grace, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if o.timer != t {
			return
		}
		o.timer = nil
		p.update(id, o)
	})
	o.timer = t
}

// signOut sets the operator offline at once.
func (p *presence) signOut(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	o := p.ops[id]
	if o == nil {
		return
	}
	if o.timer != nil {
		o.timer.Stop()
		o.timer = nil
	}
	o.streams = 0
	o.desired = chatv1.OperatorStatus_OPERATOR_STATUS_ONLINE
	p.update(id, o)
}

// setDesired records the operator's choice of ONLINE or AWAY.
func (p *presence) setDesired(accountID, id, name string, st chatv1.OperatorStatus) chatv1.OperatorStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	o := p.get(accountID, id, name)
	o.desired = st
	p.update(id, o)
	return o.effective
}

func (p *presence) status(id string) chatv1.OperatorStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	if o := p.ops[id]; o != nil {
		return o.effective
	}
	return chatv1.OperatorStatus_OPERATOR_STATUS_OFFLINE
}

// anyOnline reports whether an operator of the account is online.
func (p *presence) anyOnline(accountID string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, o := range p.ops {
		if o.accountID == accountID && o.effective == chatv1.OperatorStatus_OPERATOR_STATUS_ONLINE {
			return true
		}
	}
	return false
}

// list returns the known operators of an account.
func (p *presence) list(accountID string) []*chatv1.OperatorPresence {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*chatv1.OperatorPresence
	for id, o := range p.ops {
		if o.accountID == accountID {
			out = append(out, &chatv1.OperatorPresence{OperatorId: id, Name: o.name, Status: o.effective})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].OperatorId < out[j].OperatorId })
	return out
}
