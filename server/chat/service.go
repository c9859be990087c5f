// Package chat owns live chats: visitors, chats and their events in the
// scratch store, operator presence, and the ChatService handlers.
//
// Promises kept here: every stored event gets a per-chat sequence number in
// the transaction that stores it and is published only after that commit, in
// order, so a stream that resumes "after N" gets exactly what it missed (§6);
// a closed chat is destroyed — every row deleted with secure_delete and the
// WAL truncated — as soon as it closes (P1, P2); logs carry ids and counts,
// never text, names or addresses (P9).
package chat

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/gen/go/lethe/chat/v1/chatv1connect"
	consentv1 "github.com/lethehq/lethe/gen/go/lethe/consent/v1"
	"github.com/lethehq/lethe/server/audit"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/consent"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/hub"
	"github.com/lethehq/lethe/server/ids"
	"github.com/lethehq/lethe/server/limit"
	"github.com/lethehq/lethe/server/netinfo"
)

// Limits, stated in the proto and enforced here.
const (
	MaxMessageChars = 4000
	MaxNameChars    = 100
	MaxEmailChars   = 254
	// MaxRequestBytes bounds any ChatService request on the wire.
	MaxRequestBytes = 64 << 10
)

// Directory answers questions about accounts and operators, which the
// account package owns.
type Directory interface {
	AccountName(ctx context.Context, accountID string) (string, error)
	ActiveOperatorName(ctx context.Context, accountID, operatorID string) (string, error)
	Settings(ctx context.Context, accountID string) (AccountSettings, error)
}

// AccountSettings are the account settings chats follow.
type AccountSettings struct {
	TranscriptsEnabled bool
	Recipients         []string
	// HideVisitorIP: IP and host are never stored, shown, mailed or logged (P5).
	HideVisitorIP bool
	// RequireTLS: mail is never sent in clear (P8).
	RequireTLS  bool
	IdleTimeout time.Duration
}

// Consent checks what a visitor accepted (server/consent).
type Consent interface {
	Check(ctx context.Context, accountID string, form consentv1.ConsentForm, locale string, version int32) (consent.Text, error)
	Accepted(ctx context.Context, accountID string, t consent.Text) error
	// Text returns a stored version of a consent text (the visitor's
	// consent receipt).
	Text(ctx context.Context, accountID string, form consentv1.ConsentForm, locale string, version int32) (string, error)
}

// Service implements lethe.chat.v1.ChatService.
type Service struct {
	store   *Store
	hub     *hub.Hub
	dir     Directory
	consent Consent
	log     *slog.Logger
	opts    Options
	pres    *presence

	// Every stored change and its publication go through the store's
	// writer (writer.go), in one order: subscribers see each chat's events
	// in sequence order with no lock across chats.

	// Rate limits (limits.go): per visitor on messages and typing updates;
	// per client address on chats started, messages and offline messages.
	messages, typings         *limit.Keyed
	starts, addrMsgs, offline *limit.Keyed
	limits                    Limits
	// open counts each client address's open chats.
	open *openChats

	tombstones *tombstones
	// visitors remembers the visitor of each open chat by token hash.
	visitors *visitorCache
	watchers *watchers
	// idle is the janitor's view of chats that may go idle (close.go).
	idle *idleWatch
	// filesHook destroys a chat's files when it closes (files.go).
	filesHook fileHook

	destroyQ  chan string
	dmu       sync.Mutex // one destruction at a time
	destroyed atomic.Int64
	// checkpointOwed: a destruction could not truncate the WAL yet.
	checkpointOwed atomic.Bool
	wg             sync.WaitGroup
	stop           chan struct{}
}

var _ chatv1connect.ChatServiceHandler = (*Service)(nil)

// Options tune the service; zero values take the defaults.
type Options struct {
	// PresenceGrace is how long an operator whose console disconnected stays
	// online (default 5 s).
	PresenceGrace time.Duration
	// JanitorInterval is how often idle chats are closed and leftovers swept
	// (default 15 s).
	JanitorInterval time.Duration
	// Mailer queues transcripts and offline messages; nil when the server
	// has no mail server configured.
	Mailer Mailer
	// Hosts finds visitors' host names (nil: no reverse DNS).
	Hosts *netinfo.Resolver
	// OnDestroyed, if set, is told each destroyed chat and how long the
	// destruction took (benchmarks).
	OnDestroyed func(chatID string, took time.Duration)
	// Limits on anonymous clients (nil: DefaultLimits).
	Limits *Limits
	// Audit counts destroyed chats per account and hour (nil:
	// audit.Discard).
	Audit audit.Recorder
	// WriteBatch is how many queued chat changes the writer commits in one
	// transaction at most (0: DefaultWriteBatch).
	WriteBatch int
}

// NewService returns the chat service and starts its destroyer. Chats found
// closed in the store (a crash between close and destruction) are destroyed.
// Call Close to stop it.
func NewService(ctx context.Context, st *Store, h *hub.Hub, dir Directory, consent Consent, log *slog.Logger, o Options) (*Service, error) {
	if o.PresenceGrace == 0 {
		o.PresenceGrace = 5 * time.Second
	}
	if o.JanitorInterval == 0 {
		o.JanitorInterval = 15 * time.Second
	}
	if o.Audit == nil {
		o.Audit = audit.Discard
	}
	l := DefaultLimits()
	if o.Limits != nil {
		l = *o.Limits
	}
	s := &Service{store: st, hub: h, dir: dir, consent: consent, log: log, opts: o, limits: l,
		messages: limit.NewRate(l.MessagesPerVisitor), typings: limit.NewRate(typingRate),
		starts: limit.NewRate(l.StartsPerAddr), addrMsgs: limit.NewRate(l.MessagesPerAddr), offline: limit.NewRate(l.OfflinePerAddr),
		open:       newOpenChats(l.OpenPerAddr),
		tombstones: newTombstones(), visitors: newVisitorCache(), watchers: newWatchers(), idle: newIdleWatch(),
		destroyQ: make(chan string, 1024), stop: make(chan struct{})}
	s.pres = newPresence(o.PresenceGrace, func(accountID string, p *chatv1.OperatorPresence) {
		s.hub.Publish(accountTopic(accountID), p)
	})
	st.setBatch(o.WriteBatch)
	st.onSeen = s.idle.seen
	// The one look at every open chat: after a restart the janitor starts
	// from each chat's stored last-seen time.
	if err := st.openChatsSeen(ctx, func(id, account string, seen time.Time) { s.idle.seen(id, account, seen) }); err != nil {
		return nil, err
	}
	closed, err := st.closedChatIDs(ctx)
	if err != nil {
		return nil, err
	}
	if len(closed) > 0 {
		log.Info("chats left closing before restart", slog.Int("chats", len(closed)))
	}
	s.wg.Add(1)
	go s.destroyer()
	return s, nil
}

// Close stops the destroyer after it finished its queue, then the store's
// writer after it committed what is queued.
func (s *Service) Close() error {
	close(s.stop)
	s.wg.Wait()
	return s.store.Close()
}

// Policy says who may call each procedure.
func Policy() map[string]auth.Kind {
	return map[string]auth.Kind{
		chatv1connect.ChatServiceGetWidgetConfigProcedure:     auth.Public,
		chatv1connect.ChatServiceStartChatProcedure:           auth.Public,
		chatv1connect.ChatServiceSendMessageProcedure:         auth.VisitorOnly,
		chatv1connect.ChatServiceSetTypingProcedure:           auth.VisitorOnly,
		chatv1connect.ChatServiceEndChatProcedure:             auth.VisitorOnly,
		chatv1connect.ChatServiceWatchChatProcedure:           auth.VisitorOnly,
		chatv1connect.ChatServiceRequestTranscriptProcedure:   auth.VisitorOnly,
		chatv1connect.ChatServiceLeaveOfflineMessageProcedure: auth.Public,
	}
}

func chatTopic(id string) string     { return "chat:" + id }
func accountTopic(id string) string  { return "account:" + id }
func operatorTopic(id string) string { return "operator:" + id }

// chatRemoved is published on an account topic when a chat leaves the
// queue or an operator's list.
type chatRemoved struct{ chatID string }

// signOut is published on an operator topic to end their streams.
type signOut struct{}

// VisitorByToken implements auth.VisitorSource.
func (s *Service) VisitorByToken(ctx context.Context, token string) (*auth.Visitor, error) {
	h := ids.Hash(token)
	v, gen, ok := s.visitors.get(h)
	if ok {
		return v, nil
	}
	c, err := s.store.VisitorByTokenHash(ctx, h)
	if errors.Is(err, ErrNotFound) {
		if v, ok := s.tombstones.get(h); ok {
			return v, nil
		}
		return nil, errs.Unauthenticated("unknown or expired visitor token")
	}
	if err != nil {
		return nil, err
	}
	v = &auth.Visitor{ID: c.VisitorID, AccountID: c.AccountID, ChatID: c.ID, Closed: c.State == StateClosed}
	s.visitors.put(h, v, gen)
	return v, nil
}

// SignOut sets an operator offline and ends their console streams.
func (s *Service) SignOut(operatorID string) {
	s.pres.signOut(operatorID)
	s.hub.Publish(operatorTopic(operatorID), signOut{})
}

// cleanText trims a message and checks its length.
func cleanText(text string) (string, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return "", errs.Invalid("message is empty")
	}
	if n := utf8.RuneCountInString(text); n > MaxMessageChars {
		return "", errs.Invalid("message is %d characters long; the limit is %d", n, MaxMessageChars)
	}
	return text, nil
}

// GetWidgetConfig implements ChatServiceHandler.
func (s *Service) GetWidgetConfig(ctx context.Context, req *connect.Request[chatv1.GetWidgetConfigRequest]) (*connect.Response[chatv1.GetWidgetConfigResponse], error) {
	name, err := s.accountName(ctx, req.Msg.AccountId)
	if err != nil {
		return nil, err
	}
	set, err := s.dir.Settings(ctx, req.Msg.AccountId)
	if err != nil {
		return nil, err
	}
	// The account's "no monitoring before the click", when the directory
	// knows it (the wiring's adapter reads it from the account settings).
	var monitoringOff bool
	if d, ok := s.dir.(interface {
		MonitoringDisabled(ctx context.Context, accountID string) (bool, error)
	}); ok {
		if monitoringOff, err = d.MonitoringDisabled(ctx, req.Msg.AccountId); err != nil {
			return nil, err
		}
	}
	return connect.NewResponse(&chatv1.GetWidgetConfigResponse{
		AccountName: name, OperatorsOnline: s.pres.anyOnline(req.Msg.AccountId), MaxMessageChars: MaxMessageChars,
		OfflineMessagesEnabled: s.opts.Mailer != nil && len(set.Recipients) > 0, TranscriptRequestsEnabled: s.opts.Mailer != nil,
		MonitoringDisabled: monitoringOff,
	}), nil
}

func (s *Service) accountName(ctx context.Context, id string) (string, error) {
	if id == "" {
		return "", errs.Invalid("account_id is required")
	}
	name, err := s.dir.AccountName(ctx, id)
	if err != nil {
		if isNotFound(err) {
			return "", errs.NotFound("no such account")
		}
		return "", err
	}
	return name, nil
}

func isNotFound(err error) bool { return errors.Is(err, errs.ErrNotFound) }

// StartChat implements ChatServiceHandler.
func (s *Service) StartChat(ctx context.Context, req *connect.Request[chatv1.StartChatRequest]) (*connect.Response[chatv1.StartChatResponse], error) {
	if v, ok := auth.VisitorFrom(ctx); ok && !v.Closed {
		return nil, errs.Precondition("this visitor already has an open chat")
	}
	m := req.Msg
	if _, err := s.accountName(ctx, m.AccountId); err != nil {
		return nil, err
	}
	name, err := visitorName(m.VisitorName)
	if err != nil {
		return nil, err
	}
	email, err := visitorEmail(m.VisitorEmail, false)
	if err != nil {
		return nil, err
	}
	text, err := cleanText(m.FirstMessage)
	if err != nil {
		return nil, err
	}
	accepted, err := s.consent.Check(ctx, m.AccountId, consentv1.ConsentForm_CONSENT_FORM_PRECHAT, m.Locale, m.ConsentVersion)
	if err != nil {
		return nil, err
	}
	// The limits come before the lookups a chat costs: a refused start
	// costs nothing.
	addr := addrKey(ctx)
	release, err := s.open.acquire(addr)
	if err != nil {
		return nil, err
	}
	held := false
	defer func() {
		if !held {
			release()
		}
	}()
	if ok, retry := s.starts.Take(addr); !ok {
		return nil, throttled(retry, "chats started", s.limits.StartsPerAddr, "client address")
	}
	set, err := s.dir.Settings(ctx, m.AccountId)
	if err != nil {
		return nil, err
	}
	ip, host := s.clientAddr(ctx, set.HideVisitorIP)
	token := ids.Token()
	n := NewChat{ChatID: ids.New(), VisitorID: ids.New(), AccountID: m.AccountId, TokenHash: ids.Hash(token),
		Name: name, Email: email, FirstMessage: text, MessageID: ids.New(), IP: ip, Host: host,
		ConsentVersion: accepted.Version, ConsentLocale: accepted.Locale}
	c, _, err := s.store.Create(ctx, n, func(c *Chat, evs []*chatv1.ChatEvent) {
		// In the writer, after the commit: the slot is held before any
		// close of the chat can release it.
		s.open.hold(c.ID, release)
		held = true
		s.publish(c, evs)
	})
	if err != nil {
		return nil, err
	}
	if err := s.consent.Accepted(ctx, m.AccountId, accepted); err != nil {
		s.log.WarnContext(ctx, "count consent", slog.String("error", err.Error()))
	}
	s.log.InfoContext(ctx, "chat started", slog.String("chat", c.ID), slog.String("account", c.AccountID), slog.Int("consent_version", int(accepted.Version)))
	return connect.NewResponse(&chatv1.StartChatResponse{VisitorToken: token, ChatId: c.ID}), nil
}

// publish sends stored events and the chat's new summary to subscribers.
// The writer calls it after the commit, in its order.
func (s *Service) publish(c *Chat, evs []*chatv1.ChatEvent) {
	for _, ev := range evs {
		s.hub.Publish(chatTopic(c.ID), ev)
		s.hub.Publish(accountTopic(c.AccountID), ev)
	}
	s.hub.Publish(accountTopic(c.AccountID), c.summary())
}

// change runs a stored change and publishes its result.
func (s *Service) change(ctx context.Context, chatID string, fn func(c *Chat, tx *sql.Tx) ([]*chatv1.ChatEvent, error)) (*Chat, []*chatv1.ChatEvent, error) {
	c, evs, err := s.store.Change(ctx, chatID, fn, func(c *Chat, evs []*chatv1.ChatEvent) {
		s.publish(c, evs)
		if c.State == StateClosed {
			s.visitors.forgetChat(c.ID)
			s.open.release(c.ID)
			s.hub.Publish(accountTopic(c.AccountID), chatRemoved{chatID: c.ID})
		}
	})
	if errors.Is(err, ErrNotFound) {
		return nil, nil, errs.NotFound("no such chat")
	}
	if err != nil {
		return nil, nil, err
	}
	return c, evs, nil
}

// visitorChat checks that the calling visitor owns chatID.
func (s *Service) visitorChat(ctx context.Context, chatID string) (*auth.Visitor, error) {
	v, _ := auth.VisitorFrom(ctx)
	if chatID == "" {
		return nil, errs.Invalid("chat_id is required")
	}
	if chatID != v.ChatID {
		if _, err := s.store.Chat(ctx, chatID); errors.Is(err, ErrNotFound) {
			return nil, errs.NotFound("no such chat")
		}
		return nil, errs.Denied("this chat belongs to another visitor")
	}
	if v.Closed {
		return v, errs.Precondition("the chat is closed")
	}
	return v, nil
}

// usedChat is visitorChat for a call that uses the chat: the chat is
// counted against its address's open chats if it is not yet (openChats).
func (s *Service) usedChat(ctx context.Context, chatID string) (*auth.Visitor, error) {
	v, err := s.visitorChat(ctx, chatID)
	if err != nil || s.open.counted(v.ChatID) {
		return v, err
	}
	// Decide on the chat as stored, in the writer's order with closes
	// (which release after their commit there): a chat closed meanwhile is
	// never counted again.
	addr := addrKey(ctx)
	var adoptErr error
	err = s.store.read(ctx, v.ChatID, func(c *Chat) error {
		if c.State != StateClosed {
			adoptErr = s.open.adopt(c.ID, addr)
		}
		return nil
	})
	if err != nil {
		return v, nil // the call itself finds out
	}
	return v, adoptErr
}

func openCheck(c *Chat) error {
	if c.State == StateClosed {
		return errs.Precondition("the chat is closed")
	}
	return nil
}

// SendMessage implements ChatServiceHandler.
func (s *Service) SendMessage(ctx context.Context, req *connect.Request[chatv1.SendMessageRequest]) (*connect.Response[chatv1.SendMessageResponse], error) {
	v, err := s.usedChat(ctx, req.Msg.ChatId)
	if err != nil {
		return nil, err
	}
	text, err := cleanText(req.Msg.Text)
	if err != nil {
		return nil, err
	}
	if ok, retry := s.messages.Take(v.ID); !ok {
		return nil, throttled(retry, "messages", s.limits.MessagesPerVisitor, "visitor")
	}
	if ok, retry := s.addrMsgs.Take(addrKey(ctx)); !ok {
		return nil, throttled(retry, "messages", s.limits.MessagesPerAddr, "client address")
	}
	_, evs, err := s.change(ctx, v.ChatID, func(c *Chat, _ *sql.Tx) ([]*chatv1.ChatEvent, error) {
		if err := openCheck(c); err != nil {
			return nil, err
		}
		return []*chatv1.ChatEvent{{Kind: &chatv1.ChatEvent_Message{Message: &chatv1.Message{
			Id: ids.New(), AuthorKind: chatv1.AuthorKind_AUTHOR_KIND_VISITOR, AuthorName: c.VisitorName, Text: text}}}}, nil
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&chatv1.SendMessageResponse{Event: evs[0]}), nil
}

// typing publishes an ephemeral typing event.
func (s *Service) typing(c *Chat, kind chatv1.AuthorKind, name string, on bool) {
	ev := &chatv1.ChatEvent{ChatId: c.ID, Time: timestamppb.Now(),
		Kind: &chatv1.ChatEvent_Typing{Typing: &chatv1.Typing{AuthorKind: kind, AuthorName: name, Typing: on}}}
	s.hub.Publish(chatTopic(c.ID), ev)
	s.hub.Publish(accountTopic(c.AccountID), ev)
}

// SetTyping implements ChatServiceHandler.
func (s *Service) SetTyping(ctx context.Context, req *connect.Request[chatv1.SetTypingRequest]) (*connect.Response[chatv1.SetTypingResponse], error) {
	v, err := s.usedChat(ctx, req.Msg.ChatId)
	if err != nil {
		return nil, err
	}
	if ok, retry := s.typings.Take(v.ID); !ok {
		return nil, throttled(retry, "typing updates", typingRate, "visitor")
	}
	c, err := s.store.Chat(ctx, v.ChatID)
	if err != nil {
		return nil, errs.Precondition("the chat is closed")
	}
	if err := openCheck(c); err != nil {
		return nil, err
	}
	s.typing(c, chatv1.AuthorKind_AUTHOR_KIND_VISITOR, c.VisitorName, req.Msg.Typing)
	return connect.NewResponse(&chatv1.SetTypingResponse{}), nil
}

// EndChat implements ChatServiceHandler.
func (s *Service) EndChat(ctx context.Context, req *connect.Request[chatv1.EndChatRequest]) (*connect.Response[chatv1.EndChatResponse], error) {
	v, err := s.visitorChat(ctx, req.Msg.ChatId)
	if errs.CodeOf(err) == connect.CodeFailedPrecondition {
		return connect.NewResponse(&chatv1.EndChatResponse{}), nil // already closed
	}
	if err != nil {
		return nil, err
	}
	if err := s.close(ctx, v.ChatID, closeOpts{by: chatv1.AuthorKind_AUTHOR_KIND_VISITOR}); err != nil {
		return nil, err
	}
	return connect.NewResponse(&chatv1.EndChatResponse{}), nil
}

// WriterStats counts the transactions the chat writer committed and the
// changes they carried since start (a metric: changes/batches is the mean
// group-commit batch).
func (s *Service) WriterStats() (batches, changes int64) {
	return s.store.wr.batches.Load(), s.store.wr.changes.Load()
}

// Destroyed counts the chats destroyed since start (a metric; ids only in logs).
func (s *Service) Destroyed() int64 { return s.destroyed.Load() }
