package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	"github.com/lethehq/lethe/gen/go/lethe/account/v1/accountv1connect"
	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/gen/go/lethe/chat/v1/chatv1connect"
)

// The floor: what the same transport costs without Lethe. It is the same
// connect-go h2c server as Lethe (same connect version, read limit and
// protocol-header rule) answering the ChatService RPCs the scenarios use
// (and AccountService.Login, so the same client signs in to both) with the
// same shapes, backed by memory only: no persistence, no auth (any
// operator, a random visitor token), and a fan-out of one buffered channel
// of 256 per subscriber, a subscriber whose channel is full being cut off
// with Unavailable, as Lethe's hub did. Chat history stays in memory (the
// last floorHistory events of each chat) so that WatchChat and WatchInbox
// replay and resume as Lethe's do.

const (
	floorBuffer  = 256  // events a subscriber may fall behind
	floorHistory = 1024 // events kept per chat for replay
	floorOpID    = "floor-operator"
	floorOpName  = "Floor"
)

// floorMaxRequestBytes is above Lethe's read limit on chat requests
// (chat.MaxRequestBytes, 64 KiB): the floor's 256-slot inbox falls behind
// under chats10k and resumes with the seqs of 10,000 chats (a 74 KB
// request), which Lethe's limit would refuse over and over. A higher limit
// costs the floor nothing.
const floorMaxRequestBytes = 1 << 20

// serveFloor serves the floor on addr until ctx ends. compressMin is
// connect's compress-min-bytes (0: compress every response, connect's
// default).
func serveFloor(ctx context.Context, addr string, compressMin int) error {
	srv := &http.Server{Handler: floorHandler(compressMin), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv.Protocols = &p
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("lethe-load floor is listening on http://%s (pid %d)\n", ln.Addr(), os.Getpid())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return srv.Close() // streams would hold a graceful shutdown up
	}
}

type floor struct {
	chatv1connect.UnimplementedChatServiceHandler

	mu     sync.RWMutex
	chats  map[string]*floorChat // by id
	tokens map[string]*floorChat // by visitor token

	inboxMu sync.RWMutex
	inboxes map[*floorSub]struct{}
}

func newFloor() *floor {
	return &floor{chats: map[string]*floorChat{}, tokens: map[string]*floorChat{}, inboxes: map[*floorSub]struct{}{}}
}

type floorChat struct {
	id, token, name string
	started         time.Time

	mu       sync.Mutex
	state    chatv1.ChatState
	operator bool
	seq      int64
	events   []*chatv1.ChatEvent // the last floorHistory
	subs     map[*floorSub]struct{}
}

// floorSub is one subscriber: a buffered channel; when it is full the
// subscriber is cut off (done closes) and its stream ends Unavailable.
type floorSub struct {
	c    chan any
	done chan struct{}
	once sync.Once
}

func newFloorSub() *floorSub {
	return &floorSub{c: make(chan any, floorBuffer), done: make(chan struct{})}
}

func (s *floorSub) send(m any) {
	select {
	case s.c <- m:
	default:
		s.once.Do(func() { close(s.done) })
	}
}

var errFellBehind = connect.NewError(connect.CodeUnavailable, errors.New("stream fell behind; resume from the last sequence number"))

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var floorIDs atomic.Int64

func (f *floor) summary(c *floorChat) *chatv1.ChatSummary {
	s := &chatv1.ChatSummary{ChatId: c.id, State: c.state, VisitorName: c.name, StartedAt: timestamppb.New(c.started), LastSeq: c.seq}
	if c.operator {
		s.OperatorId, s.OperatorName = floorOpID, floorOpName
	}
	return s
}

// publish stores and fans out an event of c; call with c.mu held.
func (f *floor) publish(c *floorChat, ev *chatv1.ChatEvent) *chatv1.ChatEvent {
	c.seq++
	ev.ChatId, ev.Seq, ev.Time = c.id, c.seq, timestamppb.Now()
	c.events = append(c.events, ev)
	if len(c.events) > floorHistory {
		c.events = append(c.events[:0:0], c.events[len(c.events)-floorHistory/2:]...)
	}
	for s := range c.subs {
		s.send(ev)
	}
	if c.operator {
		f.toInboxes(ev)
	}
	return ev
}

func (f *floor) toInboxes(m any) {
	f.inboxMu.RLock()
	for s := range f.inboxes {
		s.send(m)
	}
	f.inboxMu.RUnlock()
}

func (f *floor) visitorChat(h http.Header, chatID string) (*floorChat, error) {
	tok, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	if !ok {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("a visitor token is required"))
	}
	f.mu.RLock()
	c := f.tokens[tok]
	f.mu.RUnlock()
	if c == nil {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("unknown visitor token"))
	}
	if chatID != c.id {
		return nil, connect.NewError(connect.CodePermissionDenied, errors.New("this chat belongs to another visitor"))
	}
	return c, nil
}

func (f *floor) chat(id string) (*floorChat, error) {
	f.mu.RLock()
	c := f.chats[id]
	f.mu.RUnlock()
	if c == nil {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("no such chat"))
	}
	return c, nil
}

func (f *floor) GetWidgetConfig(_ context.Context, req *connect.Request[chatv1.GetWidgetConfigRequest]) (*connect.Response[chatv1.GetWidgetConfigResponse], error) {
	return connect.NewResponse(&chatv1.GetWidgetConfigResponse{AccountName: req.Msg.AccountId, OperatorsOnline: true, MaxMessageChars: 4000}), nil
}

func (f *floor) StartChat(_ context.Context, req *connect.Request[chatv1.StartChatRequest]) (*connect.Response[chatv1.StartChatResponse], error) {
	if req.Msg.FirstMessage == "" || req.Msg.VisitorName == "" {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("a name and a first message are required"))
	}
	c := &floorChat{id: fmt.Sprintf("floor-%d", floorIDs.Add(1)), token: randomToken(), name: req.Msg.VisitorName,
		started: time.Now(), state: chatv1.ChatState_CHAT_STATE_WAITING, subs: map[*floorSub]struct{}{}}
	f.mu.Lock()
	f.chats[c.id], f.tokens[c.token] = c, c
	f.mu.Unlock()
	c.mu.Lock()
	f.publish(c, &chatv1.ChatEvent{Kind: &chatv1.ChatEvent_Started{Started: &chatv1.ChatStarted{VisitorName: c.name}}})
	f.publish(c, &chatv1.ChatEvent{Kind: &chatv1.ChatEvent_Message{Message: &chatv1.Message{Id: randomToken()[:16],
		AuthorKind: chatv1.AuthorKind_AUTHOR_KIND_VISITOR, AuthorName: c.name, Text: req.Msg.FirstMessage}}})
	f.toInboxes(f.summary(c))
	c.mu.Unlock()
	return connect.NewResponse(&chatv1.StartChatResponse{VisitorToken: c.token, ChatId: c.id}), nil
}

func (f *floor) message(c *floorChat, kind chatv1.AuthorKind, name, text string) (*chatv1.ChatEvent, error) {
	if text == "" {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("the message is empty"))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == chatv1.ChatState_CHAT_STATE_CLOSED {
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("the chat is closed"))
	}
	if kind == chatv1.AuthorKind_AUTHOR_KIND_OPERATOR && !c.operator {
		return nil, connect.NewError(connect.CodePermissionDenied, errors.New("this chat is not assigned to you"))
	}
	return f.publish(c, &chatv1.ChatEvent{Kind: &chatv1.ChatEvent_Message{Message: &chatv1.Message{Id: randomToken()[:16],
		AuthorKind: kind, AuthorName: name, Text: text}}}), nil
}

func (f *floor) SendMessage(_ context.Context, req *connect.Request[chatv1.SendMessageRequest]) (*connect.Response[chatv1.SendMessageResponse], error) {
	c, err := f.visitorChat(req.Header(), req.Msg.ChatId)
	if err != nil {
		return nil, err
	}
	ev, err := f.message(c, chatv1.AuthorKind_AUTHOR_KIND_VISITOR, c.name, req.Msg.Text)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&chatv1.SendMessageResponse{Event: ev}), nil
}

func (f *floor) SendOperatorMessage(_ context.Context, req *connect.Request[chatv1.SendOperatorMessageRequest]) (*connect.Response[chatv1.SendOperatorMessageResponse], error) {
	c, err := f.chat(req.Msg.ChatId)
	if err != nil {
		return nil, err
	}
	ev, err := f.message(c, chatv1.AuthorKind_AUTHOR_KIND_OPERATOR, floorOpName, req.Msg.Text)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&chatv1.SendOperatorMessageResponse{Event: ev}), nil
}

func (f *floor) AcceptChat(_ context.Context, req *connect.Request[chatv1.AcceptChatRequest]) (*connect.Response[chatv1.AcceptChatResponse], error) {
	c, err := f.chat(req.Msg.ChatId)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state {
	case chatv1.ChatState_CHAT_STATE_CLOSED:
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("the chat is closed"))
	case chatv1.ChatState_CHAT_STATE_WAITING:
		c.state, c.operator = chatv1.ChatState_CHAT_STATE_ACTIVE, true
		// Like Lethe's inbox adopting a chat: its summary, then its events.
		f.toInboxes(f.summary(c))
		f.inboxMu.RLock()
		for s := range f.inboxes {
			for _, ev := range c.events {
				s.send(ev)
			}
		}
		f.inboxMu.RUnlock()
		f.publish(c, &chatv1.ChatEvent{Kind: &chatv1.ChatEvent_OperatorJoined{OperatorJoined: &chatv1.OperatorJoined{OperatorId: floorOpID, OperatorName: floorOpName}}})
	}
	return connect.NewResponse(&chatv1.AcceptChatResponse{Chat: f.summary(c)}), nil
}

func (f *floor) close(c *floorChat, by chatv1.AuthorKind) {
	c.mu.Lock()
	if c.state != chatv1.ChatState_CHAT_STATE_CLOSED {
		c.state = chatv1.ChatState_CHAT_STATE_CLOSED
		f.publish(c, &chatv1.ChatEvent{Kind: &chatv1.ChatEvent_Closed{Closed: &chatv1.ChatClosed{ClosedBy: by}}})
		f.toInboxes(&chatv1.ChatRemoved{ChatId: c.id})
	}
	c.mu.Unlock()
	f.mu.Lock()
	delete(f.chats, c.id)
	delete(f.tokens, c.token)
	f.mu.Unlock()
}

func (f *floor) CloseChat(_ context.Context, req *connect.Request[chatv1.CloseChatRequest]) (*connect.Response[chatv1.CloseChatResponse], error) {
	c, err := f.chat(req.Msg.ChatId)
	if err != nil {
		return nil, err
	}
	f.close(c, chatv1.AuthorKind_AUTHOR_KIND_OPERATOR)
	return connect.NewResponse(&chatv1.CloseChatResponse{}), nil
}

func (f *floor) EndChat(_ context.Context, req *connect.Request[chatv1.EndChatRequest]) (*connect.Response[chatv1.EndChatResponse], error) {
	c, err := f.visitorChat(req.Header(), req.Msg.ChatId)
	if err != nil {
		return nil, err
	}
	f.close(c, chatv1.AuthorKind_AUTHOR_KIND_VISITOR)
	return connect.NewResponse(&chatv1.EndChatResponse{}), nil
}

func (f *floor) SetStatus(_ context.Context, req *connect.Request[chatv1.SetStatusRequest]) (*connect.Response[chatv1.SetStatusResponse], error) {
	return connect.NewResponse(&chatv1.SetStatusResponse{Status: req.Msg.Status}), nil
}

// since copies the events of c after seq; call with c.mu held.
func since(c *floorChat, seq int64) []*chatv1.ChatEvent {
	var out []*chatv1.ChatEvent
	for _, ev := range c.events {
		if ev.Seq > seq {
			out = append(out, ev)
		}
	}
	return out
}

func (f *floor) WatchChat(ctx context.Context, req *connect.Request[chatv1.WatchChatRequest], stream *connect.ServerStream[chatv1.WatchChatResponse]) error {
	c, err := f.visitorChat(req.Header(), req.Msg.ChatId)
	if err != nil {
		return err
	}
	sub := newFloorSub()
	c.mu.Lock()
	backlog, state := since(c, req.Msg.AfterSeq), c.state
	if state != chatv1.ChatState_CHAT_STATE_CLOSED {
		c.subs[sub] = struct{}{}
	}
	c.mu.Unlock()
	defer func() { c.mu.Lock(); delete(c.subs, sub); c.mu.Unlock() }()
	last := req.Msg.AfterSeq
	for _, ev := range backlog {
		last = ev.Seq
		if err := stream.Send(&chatv1.WatchChatResponse{Event: ev, State: state}); err != nil {
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
		case <-sub.done:
			return errFellBehind
		case m := <-sub.c:
			ev := m.(*chatv1.ChatEvent)
			if ev.Seq <= last {
				continue
			}
			last = ev.Seq
			switch ev.Kind.(type) {
			case *chatv1.ChatEvent_OperatorJoined:
				state = chatv1.ChatState_CHAT_STATE_ACTIVE
			case *chatv1.ChatEvent_Closed:
				state = chatv1.ChatState_CHAT_STATE_CLOSED
			}
			if err := stream.Send(&chatv1.WatchChatResponse{Event: ev, State: state}); err != nil {
				return err
			}
			if state == chatv1.ChatState_CHAT_STATE_CLOSED {
				return nil
			}
		}
	}
}

// WatchInbox: a snapshot (the waiting chats' summaries, the operator's
// chats' summaries and events after the client's sequence numbers), then
// live: summaries when a chat starts or is accepted, events of accepted
// chats, removals. Every operator is the one floor operator.
func (f *floor) WatchInbox(ctx context.Context, req *connect.Request[chatv1.WatchInboxRequest], stream *connect.ServerStream[chatv1.WatchInboxResponse]) error {
	sub := newFloorSub()
	f.inboxMu.Lock()
	f.inboxes[sub] = struct{}{}
	f.inboxMu.Unlock()
	defer func() { f.inboxMu.Lock(); delete(f.inboxes, sub); f.inboxMu.Unlock() }()
	f.mu.RLock()
	chats := make([]*floorChat, 0, len(f.chats))
	for _, c := range f.chats {
		chats = append(chats, c)
	}
	f.mu.RUnlock()
	sent := map[string]int64{} // last seq sent per accepted chat
	for _, c := range chats {
		c.mu.Lock()
		sum, active := f.summary(c), c.operator && c.state == chatv1.ChatState_CHAT_STATE_ACTIVE
		var evs []*chatv1.ChatEvent
		if active {
			evs = since(c, req.Msg.AfterSeq[c.id])
		}
		c.mu.Unlock()
		if sum.State == chatv1.ChatState_CHAT_STATE_CLOSED {
			continue
		}
		if err := stream.Send(&chatv1.WatchInboxResponse{Kind: &chatv1.WatchInboxResponse_ChatUpdated{ChatUpdated: sum}}); err != nil {
			return err
		}
		for _, ev := range evs {
			sent[c.id] = ev.Seq
			if err := stream.Send(&chatv1.WatchInboxResponse{Kind: &chatv1.WatchInboxResponse_Event{Event: ev}}); err != nil {
				return err
			}
		}
	}
	if err := stream.Send(&chatv1.WatchInboxResponse{Kind: &chatv1.WatchInboxResponse_SnapshotDone{SnapshotDone: &chatv1.SnapshotDone{}}}); err != nil {
		return err
	}
	for {
		var r *chatv1.WatchInboxResponse
		select {
		case <-ctx.Done():
			return nil
		case <-sub.done:
			return errFellBehind
		case m := <-sub.c:
			switch m := m.(type) {
			case *chatv1.ChatEvent:
				if m.Seq <= sent[m.ChatId] {
					continue
				}
				sent[m.ChatId] = m.Seq
				r = &chatv1.WatchInboxResponse{Kind: &chatv1.WatchInboxResponse_Event{Event: m}}
			case *chatv1.ChatSummary:
				r = &chatv1.WatchInboxResponse{Kind: &chatv1.WatchInboxResponse_ChatUpdated{ChatUpdated: m}}
			case *chatv1.ChatRemoved:
				delete(sent, m.ChatId)
				r = &chatv1.WatchInboxResponse{Kind: &chatv1.WatchInboxResponse_ChatRemoved{ChatRemoved: m}}
			}
		}
		if err := stream.Send(r); err != nil {
			return err
		}
	}
}

// floorAccounts signs anyone in as the floor operator.
type floorAccounts struct {
	accountv1connect.UnimplementedAccountServiceHandler
}

func (floorAccounts) Login(_ context.Context, req *connect.Request[accountv1.LoginRequest]) (*connect.Response[accountv1.LoginResponse], error) {
	return connect.NewResponse(&accountv1.LoginResponse{
		Operator: &accountv1.Operator{Id: floorOpID, Name: floorOpName, Email: req.Msg.Email},
		Account:  &accountv1.Account{Id: "floor", Name: "Floor"}}), nil
}

// floorHandler is the floor's RPC handler.
func floorHandler(compressMin int) http.Handler {
	f := newFloor()
	opts := []connect.HandlerOption{
		connect.WithRecover(func(context.Context, connect.Spec, http.Header, any) error {
			return connect.NewError(connect.CodeInternal, errors.New("internal error"))
		}),
		connect.WithReadMaxBytes(floorMaxRequestBytes),
		connect.WithRequireConnectProtocolHeader(),
	}
	if compressMin > 0 {
		opts = append(opts, connect.WithCompressMinBytes(compressMin))
	}
	mux := http.NewServeMux()
	mux.Handle(chatv1connect.NewChatServiceHandler(f, opts...))
	mux.Handle(accountv1connect.NewAccountServiceHandler(floorAccounts{}, opts...))
	return mux
}
