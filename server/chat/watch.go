package chat

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/hub"
)

// cutOff turns the end of a subscription into the error a client sees.
func cutOff(why error) error { return hub.Ended(why, "resume from the last sequence number") }

func stateAfter(st chatv1.ChatState, ev *chatv1.ChatEvent) chatv1.ChatState {
	switch ev.Kind.(type) {
	case *chatv1.ChatEvent_OperatorJoined:
		return chatv1.ChatState_CHAT_STATE_ACTIVE
	case *chatv1.ChatEvent_Closed:
		return chatv1.ChatState_CHAT_STATE_CLOSED
	}
	return st
}

// WatchChat implements ChatServiceHandler. It subscribes before reading the
// backlog, so nothing published between the two is missed, and drops live
// events it already sent from the backlog (by sequence number).
func (s *Service) WatchChat(ctx context.Context, req *connect.Request[chatv1.WatchChatRequest], stream *connect.ServerStream[chatv1.WatchChatResponse]) error {
	v, err := s.usedChat(ctx, req.Msg.ChatId)
	if errs.CodeOf(err) == connect.CodeFailedPrecondition {
		return sendEnded(stream, v.ChatID)
	}
	if err != nil {
		return err
	}
	if req.Msg.AfterSeq < 0 {
		return errs.Invalid("after_seq must not be negative")
	}
	sub := s.hub.Subscribe(chatTopic(v.ChatID))
	defer sub.Close()
	s.watch(v.ChatID, +1)
	defer s.watch(v.ChatID, -1)
	// A full history replays the state from the start (every chat has its
	// started event, so an empty one means the chat is gone); a resumed one
	// starts from the chat's state as stored.
	state := chatv1.ChatState_CHAT_STATE_WAITING
	if req.Msg.AfterSeq > 0 {
		c, err := s.store.Chat(ctx, v.ChatID)
		if isNotFound(err) {
			return sendEnded(stream, v.ChatID)
		}
		if err != nil {
			return err
		}
		state = c.State.proto()
	}
	backlog, err := s.store.Events(ctx, v.ChatID, req.Msg.AfterSeq)
	if err != nil {
		return err
	}
	if req.Msg.AfterSeq == 0 && len(backlog) == 0 {
		return sendEnded(stream, v.ChatID)
	}
	last := req.Msg.AfterSeq
	send := func(ev *chatv1.ChatEvent) error {
		if ev.Seq > 0 {
			last = ev.Seq
		}
		state = stateAfter(state, ev)
		return stream.Send(&chatv1.WatchChatResponse{Event: ev, State: state})
	}
	for _, ev := range backlog {
		if err := send(ev); err != nil {
			return err
		}
	}
	if state == chatv1.ChatState_CHAT_STATE_CLOSED {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sub.Ready():
		}
		ms, ended := sub.Take()
		for _, m := range ms {
			ev, isEvent := m.(*chatv1.ChatEvent)
			if !isEvent || (ev.Seq > 0 && ev.Seq <= last) {
				continue
			}
			if err := send(ev); err != nil {
				return err
			}
			if state == chatv1.ChatState_CHAT_STATE_CLOSED {
				return nil
			}
		}
		if ended != nil {
			return cutOff(ended)
		}
	}
}

// sendEnded tells a client watching a chat that has ended (and may already
// be destroyed) that it is closed, with an unsequenced closed event.
func sendEnded(stream *connect.ServerStream[chatv1.WatchChatResponse], chatID string) error {
	return stream.Send(&chatv1.WatchChatResponse{State: chatv1.ChatState_CHAT_STATE_CLOSED,
		Event: &chatv1.ChatEvent{ChatId: chatID, Time: timestamppb.Now(), Kind: &chatv1.ChatEvent_Closed{Closed: &chatv1.ChatClosed{}}}})
}

// maxInboxPendingChats bounds how many chats with changes not yet sent one
// WatchInbox stream may hold (latest state each, so a console that reads
// slowly only gets fewer, fresher updates). A console that stops reading
// for that long is cut off and starts again from a snapshot.
const maxInboxPendingChats = 100_000

// inboxEventsPerBuffer scales the hub's per-subscriber bound (256 by
// default) into the bound on full events of the operator's own chats
// waiting on one WatchInbox stream (4,096 by default): they cannot be
// merged (every message counts), and an operator's own chats are few, so
// only a console that stopped reading reaches it; it is cut off and resumes
// from the sequence numbers it saw.
const inboxEventsPerBuffer = 16

// inboxFeed is the hub sink of one WatchInbox stream. It merges instead of
// queueing: of each chat only the latest summary (or its removal) waits, of
// each operator only the latest presence; full events wait, in order, only
// for the chats the operator is in, and the events of every other chat are
// dropped on arrival. So thousands of chats starting at once never pile up
// behind a console, whatever its speed.
type inboxFeed struct {
	me string
	// maxEvents bounds the waiting events of the operator's own chats (the
	// hub's buffer); maxChats the chats with a waiting change.
	maxEvents, maxChats int
	ready               chan struct{}

	mu     sync.Mutex
	events []*chatv1.ChatEvent
	// chats holds each changed chat's latest *chatv1.ChatSummary or
	// chatRemoved; order lists them by first change since the last take.
	chats     map[string]any
	order     []string
	presence  map[string]*chatv1.OperatorPresence
	signedOut bool
	// mine: the chats whose events are kept, as of the last summary merged
	// (or the stream adopting a chat of the snapshot).
	mine map[string]bool
}

// inboxBatch is what an inbox stream takes from its feed at once.
type inboxBatch struct {
	events    []*chatv1.ChatEvent
	chats     map[string]any
	order     []string
	presence  map[string]*chatv1.OperatorPresence
	signedOut bool
}

func newInboxFeed(me string, maxEvents int) *inboxFeed {
	return &inboxFeed{me: me, maxEvents: maxEvents, maxChats: maxInboxPendingChats,
		ready: make(chan struct{}, 1), mine: map[string]bool{}}
}

// merge is the subscription's sink (hub.SubscribeFunc): false cuts the
// stream off.
func (f *inboxFeed) merge(m any) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch m := m.(type) {
	case *chatv1.ChatEvent:
		if !f.mine[m.ChatId] {
			return true // summarised only
		}
		if len(f.events) >= f.maxEvents {
			return false
		}
		f.events = append(f.events, m)
	case *chatv1.ChatSummary:
		if m.State == chatv1.ChatState_CHAT_STATE_ACTIVE && m.OperatorId == f.me {
			f.mine[m.ChatId] = true
		} else {
			delete(f.mine, m.ChatId)
		}
		if !f.put(m.ChatId, m) {
			return false
		}
	case chatRemoved:
		delete(f.mine, m.chatID)
		if !f.put(m.chatID, m) {
			return false
		}
	case *chatv1.OperatorPresence:
		if f.presence == nil {
			f.presence = map[string]*chatv1.OperatorPresence{}
		}
		f.presence[m.OperatorId] = m
	case signOut:
		f.signedOut = true
	default:
		return true
	}
	select {
	case f.ready <- struct{}{}:
	default:
	}
	return true
}

// put makes v the latest change of a chat; false when too many wait.
func (f *inboxFeed) put(id string, v any) bool {
	if _, ok := f.chats[id]; !ok {
		if len(f.chats) >= f.maxChats {
			return false
		}
		if f.chats == nil {
			f.chats = map[string]any{}
		}
		f.order = append(f.order, id)
	}
	f.chats[id] = v
	return true
}

// follow keeps the events of a chat the stream adopted from its snapshot,
// unless a change of the chat waits (that change decided already).
func (f *inboxFeed) follow(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, waiting := f.chats[id]; !waiting {
		f.mine[id] = true
	}
}

func (f *inboxFeed) take() inboxBatch {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := inboxBatch{events: f.events, chats: f.chats, order: f.order, presence: f.presence, signedOut: f.signedOut}
	f.events, f.chats, f.order, f.presence = nil, nil, nil, nil
	return b
}

// inbox is the state of one operator's WatchInbox stream.
type inbox struct {
	s      *Service
	op     *auth.Operator
	stream *connect.ServerStream[chatv1.WatchInboxResponse]
	feed   *inboxFeed
	// mine maps each chat assigned to the operator to the last sequence
	// number sent.
	mine map[string]int64
	// queued holds the waiting chats the client was shown.
	queued map[string]bool
}

func (in *inbox) send(r *chatv1.WatchInboxResponse) error { return in.stream.Send(r) }

// adopt starts showing a chat assigned to the operator: its summary, then
// its stored events after `after`.
func (in *inbox) adopt(ctx context.Context, sum *chatv1.ChatSummary, after int64) error {
	in.mine[sum.ChatId] = after
	in.feed.follow(sum.ChatId)
	if err := in.send(&chatv1.WatchInboxResponse{Kind: &chatv1.WatchInboxResponse_ChatUpdated{ChatUpdated: sum}}); err != nil {
		return err
	}
	return in.catchUp(ctx, sum.ChatId, after)
}

// catchUp sends a chat's stored events after `after`.
func (in *inbox) catchUp(ctx context.Context, chatID string, after int64) error {
	evs, err := in.s.store.Events(ctx, chatID, after)
	if err != nil {
		return err
	}
	for _, ev := range evs {
		if err := in.event(ev); err != nil {
			return err
		}
	}
	return nil
}

func (in *inbox) event(ev *chatv1.ChatEvent) error {
	last, ok := in.mine[ev.ChatId]
	if !ok || (ev.Seq > 0 && ev.Seq <= last) {
		return nil
	}
	if ev.Seq > 0 {
		in.mine[ev.ChatId] = ev.Seq
	}
	return in.send(&chatv1.WatchInboxResponse{Kind: &chatv1.WatchInboxResponse_Event{Event: ev}})
}

func (in *inbox) removed(id string) error {
	_, mine := in.mine[id]
	if !mine && !in.queued[id] {
		return nil // never shown to this client
	}
	delete(in.mine, id)
	delete(in.queued, id)
	return in.send(&chatv1.WatchInboxResponse{Kind: &chatv1.WatchInboxResponse_ChatRemoved{ChatRemoved: &chatv1.ChatRemoved{ChatId: id}}})
}

func (in *inbox) summary(ctx context.Context, sum *chatv1.ChatSummary) error {
	switch {
	case sum.State == chatv1.ChatState_CHAT_STATE_WAITING:
		in.queued[sum.ChatId] = true
		return in.send(&chatv1.WatchInboxResponse{Kind: &chatv1.WatchInboxResponse_ChatUpdated{ChatUpdated: sum}})
	case sum.State == chatv1.ChatState_CHAT_STATE_ACTIVE && sum.OperatorId == in.op.ID:
		delete(in.queued, sum.ChatId)
		last, ok := in.mine[sum.ChatId]
		if !ok {
			return in.adopt(ctx, sum, 0)
		}
		// The feed drops a chat's events while the chat is not the
		// operator's (it went away and came back between two batches,
		// say); the summary names the last stored one, so fetch what the
		// client lacks before the summary that names it.
		if sum.LastSeq > last {
			if err := in.catchUp(ctx, sum.ChatId, last); err != nil {
				return err
			}
		}
		return in.send(&chatv1.WatchInboxResponse{Kind: &chatv1.WatchInboxResponse_ChatUpdated{ChatUpdated: sum}})
	case sum.State == chatv1.ChatState_CHAT_STATE_CLOSED:
		return nil // the chatRemoved that follows takes it away
	default:
		// Taken by or transferred to someone else.
		return in.removed(sum.ChatId)
	}
}

// apply sends one batch: the events of the operator's chats first (in
// order), then presence, then each changed chat's latest state (a summary
// never comes before the events it names).
func (in *inbox) apply(ctx context.Context, b inboxBatch) error {
	for _, ev := range b.events {
		if err := in.event(ev); err != nil {
			return err
		}
	}
	for _, p := range b.presence {
		if err := in.send(&chatv1.WatchInboxResponse{Kind: &chatv1.WatchInboxResponse_Presence{Presence: p}}); err != nil {
			return err
		}
	}
	for _, id := range b.order {
		var err error
		switch v := b.chats[id].(type) {
		case *chatv1.ChatSummary:
			err = in.summary(ctx, v)
		case chatRemoved:
			err = in.removed(v.chatID)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// WatchInbox implements ChatServiceHandler: a snapshot of the queue and the
// operator's chats, then changes as fast as the client reads them,
// coalesced per chat (inboxFeed).
func (s *Service) WatchInbox(ctx context.Context, req *connect.Request[chatv1.WatchInboxRequest], stream *connect.ServerStream[chatv1.WatchInboxResponse]) error {
	op, _ := auth.OperatorFrom(ctx)
	feed := newInboxFeed(op.ID, inboxEventsPerBuffer*s.hub.Buffer())
	sub := s.hub.SubscribeFunc(feed.merge, accountTopic(op.AccountID), operatorTopic(op.ID))
	defer sub.Close()
	s.pres.connect(op.AccountID, op.ID, op.Name)
	defer s.pres.disconnect(op.ID)

	in := &inbox{s: s, op: op, stream: stream, feed: feed, mine: map[string]int64{}, queued: map[string]bool{}}
	for _, p := range s.pres.list(op.AccountID) {
		if err := in.send(&chatv1.WatchInboxResponse{Kind: &chatv1.WatchInboxResponse_Presence{Presence: p}}); err != nil {
			return err
		}
	}
	chats, err := s.store.Chats(ctx, op.AccountID, StateWaiting, StateActive)
	if err != nil {
		return err
	}
	for _, c := range chats {
		switch {
		case c.State == StateWaiting:
			err = in.summary(ctx, c.summary())
		case c.OperatorID == op.ID:
			err = in.adopt(ctx, c.summary(), max(req.Msg.AfterSeq[c.ID], 0))
		}
		if err != nil {
			return err
		}
	}
	if err := in.send(&chatv1.WatchInboxResponse{Kind: &chatv1.WatchInboxResponse_SnapshotDone{SnapshotDone: &chatv1.SnapshotDone{}}}); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-feed.ready:
		case <-sub.Ready(): // the subscription ended
		}
		ended := sub.Err()
		b := feed.take()
		if b.signedOut {
			return errs.Unauthenticated("signed out")
		}
		if err := in.apply(ctx, b); err != nil {
			return err
		}
		if ended != nil {
			return cutOff(ended)
		}
	}
}

// watchers counts each chat's open visitor streams (idle detection).
type watchers struct {
	mu sync.Mutex
	n  map[string]int
}

func newWatchers() *watchers { return &watchers{n: map[string]int{}} }

// add counts d more streams of a chat and returns how many are open.
func (w *watchers) add(chatID string, d int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n[chatID] += d
	n := w.n[chatID]
	if n <= 0 {
		delete(w.n, chatID)
	}
	return n
}

func (w *watchers) watching(chatID string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n[chatID] > 0
}

func (w *watchers) forget(chatID string) {
	w.mu.Lock()
	delete(w.n, chatID)
	w.mu.Unlock()
}

// watch counts a chat's open visitor streams; when the last one ends the
// visitor is "seen" now and the idle timeout starts.
//
// A stream that ends touches the chat before it stops counting: once no
// stream is counted, the last-seen time the janitor reads is already the
// stream's end, never an older one.
func (s *Service) watch(chatID string, d int) {
	if d < 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.store.Touch(ctx, chatID, time.Now()); err != nil && !isNotFound(err) {
			s.log.Warn("touch chat", slog.String("chat", chatID), slog.String("error", err.Error()))
		}
	}
	s.watchers.add(chatID, d)
}
