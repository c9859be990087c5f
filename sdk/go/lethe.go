// Package lethe is the Go client for Lethe servers. It wraps the generated
// Connect clients (gen/go) with what every caller needs: the visitor's bearer
// token, the operator's session cookie, the account API key, and streams that
// resume after a disconnect from the last sequence number seen, so that no
// chat event is lost or delivered twice.
//
// A Visitor acts like the widget: consent texts, the pre-chat and offline
// forms, the chat. An Operator acts like the console; an Integrator is a
// website's back end vouching for its signed-in customers with tickets. All
// speak the Connect protocol by default; pass connect.WithGRPC() as a client
// option to use gRPC instead.
//
// # Resuming streams
//
// Visitor.Watch and Operator.WatchInbox reopen a broken stream after a
// backoff (250 ms doubling up to 5 s, with jitter; see Backoff), asking for
// what came after the last sequence number delivered. They stop for good on
// the codes reconnecting cannot help (FinalCodes: Unauthenticated,
// PermissionDenied, NotFound, InvalidArgument, FailedPrecondition,
// Unimplemented) and return that error; everything else, Unavailable above
// all, is retried. The TypeScript SDK (sdk/ts) follows the same policy.
//
// # Files
//
// The participants of an open chat (its visitor and the operator it is
// assigned to) can send each other files: Visitor.SendFile and
// Operator.SendFile upload one (the function Upload does it for any
// FileService client), Visitor.Download and Operator.Download fetch one by
// the file id of its FileShared event. Uploads go up in chunks and resume
// after a network error from where the server says they stopped; downloads
// resume from the bytes already written; both check the file's SHA-256 and
// report progress. An upload whose context ends is cancelled on the server.
// The server keeps a chat's files only while the chat is open.
package lethe

import (
	"context"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"slices"

	"connectrpc.com/connect"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	"github.com/lethehq/lethe/gen/go/lethe/account/v1/accountv1connect"
	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/gen/go/lethe/chat/v1/chatv1connect"
	consentv1 "github.com/lethehq/lethe/gen/go/lethe/consent/v1"
	"github.com/lethehq/lethe/gen/go/lethe/consent/v1/consentv1connect"
	"github.com/lethehq/lethe/gen/go/lethe/files/v1/filesv1connect"
	"github.com/lethehq/lethe/gen/go/lethe/monitor/v1/monitorv1connect"
	privacyv1 "github.com/lethehq/lethe/gen/go/lethe/privacy/v1"
	"github.com/lethehq/lethe/gen/go/lethe/privacy/v1/privacyv1connect"
)

// Visitor is a website visitor: it reads the consent texts, starts a chat
// (or leaves an offline message), sends messages and watches the chat's
// events.
type Visitor struct {
	Chat chatv1connect.ChatServiceClient
	// Consent serves the consent texts and the withdrawal of consent.
	Consent consentv1connect.ConsentServiceClient
	// Files carries files in the chat (see SendFile and Download).
	Files filesv1connect.FileServiceClient
	// Token is the visitor's bearer token, set by Start.
	Token string
	// ChatID is the visitor's chat, set by Start.
	ChatID string
	// Privacy serves the visitor's rights over their data (see MyData and
	// ForgetMe).
	Privacy privacyv1connect.PrivacyServiceClient
	// OfflineTokens are the secrets of the offline messages this visitor
	// left (LeaveOfflineMessage), sent with MyData and ForgetMe.
	OfflineTokens []string
}

// NewVisitor returns a visitor client for the server at baseURL.
func NewVisitor(httpClient connect.HTTPClient, baseURL string, opts ...connect.ClientOption) *Visitor {
	v := &Visitor{}
	opts = append(opts, connect.WithInterceptors(bearer(func() string { return v.Token })))
	v.Chat = chatv1connect.NewChatServiceClient(httpClient, baseURL, opts...)
	v.Consent = consentv1connect.NewConsentServiceClient(httpClient, baseURL, opts...)
	v.Files = newFilesClient(httpClient, baseURL, opts)
	v.Privacy = privacyv1connect.NewPrivacyServiceClient(httpClient, baseURL, opts...)
	return v
}

// bearer adds the visitor token to every call.
func bearer(token func() string) connect.Interceptor {
	return &bearerInterceptor{token: token}
}

type bearerInterceptor struct{ token func() string }

func (b *bearerInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if t := b.token(); t != "" {
			req.Header().Set("Authorization", "Bearer "+t)
		}
		return next(ctx, req)
	}
}

func (b *bearerInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		if t := b.token(); t != "" {
			conn.RequestHeader().Set("Authorization", "Bearer "+t)
		}
		return conn
	}
}

func (b *bearerInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// ConsentTexts are the consent texts of an account for one locale, as the
// widget shows them: Prechat next to the pre-chat form, Offline next to the
// offline-message form. A form without a text has Version 0 and Required
// false.
type ConsentTexts struct {
	Prechat *consentv1.ConsentText
	Offline *consentv1.ConsentText
}

// ConsentTexts fetches the current consent texts of an account for locale
// (a BCP 47 tag such as "de-CH"; the server picks the best match: the exact
// locale, then its language, then "en", then any). Show the text to the
// visitor; when they accept it, pass its Version and the locale to Start or
// LeaveOfflineMessage. Where a text is Required, the server refuses a chat or
// offline message without the current version (FailedPrecondition).
func (v *Visitor) ConsentTexts(ctx context.Context, accountID, locale string) (ConsentTexts, error) {
	res, err := v.Consent.GetConsent(ctx, connect.NewRequest(&consentv1.GetConsentRequest{AccountId: accountID, Locale: locale}))
	if err != nil {
		return ConsentTexts{}, err
	}
	return ConsentTexts{Prechat: res.Msg.GetPrechat(), Offline: res.Msg.GetOffline()}, nil
}

// StartChat is the pre-chat form.
type StartChat struct {
	AccountID    string
	Name         string
	Email        string
	FirstMessage string
	// Locale is the visitor's locale, the one the consent text was fetched
	// for.
	Locale string
	// ConsentVersion is the version of the pre-chat consent text the visitor
	// accepted (ConsentTexts(...).Prechat.Version), 0 for none.
	ConsentVersion int32
}

// Start opens a chat and keeps the token and chat id. Where the account
// requires consent, s must carry the current version of the pre-chat text
// the visitor accepted; otherwise the server answers FailedPrecondition.
func (v *Visitor) Start(ctx context.Context, s StartChat) error {
	res, err := v.Chat.StartChat(ctx, connect.NewRequest(&chatv1.StartChatRequest{
		AccountId: s.AccountID, VisitorName: s.Name, VisitorEmail: s.Email, FirstMessage: s.FirstMessage,
		Locale: s.Locale, ConsentVersion: s.ConsentVersion}))
	if err != nil {
		return err
	}
	v.Token, v.ChatID = res.Msg.VisitorToken, res.Msg.ChatId
	return nil
}

// OfflineMessage is the offline form, for when no operator is online.
type OfflineMessage struct {
	AccountID string
	Name      string
	// Email is required: it is where the answer goes.
	Email   string
	Message string
	// Locale is the visitor's locale, the one the consent text was fetched
	// for.
	Locale string
	// ConsentVersion is the version of the offline consent text the visitor
	// accepted (ConsentTexts(...).Offline.Version), 0 for none.
	ConsentVersion int32
}

// LeaveOfflineMessage hands a message to the account's recipients by e-mail;
// the server holds it only until the mail is accepted. It needs no chat.
// FailedPrecondition when the account takes no offline messages or a
// required consent text was not accepted in its current version.
// The message's offline token is added to OfflineTokens.
func (v *Visitor) LeaveOfflineMessage(ctx context.Context, m OfflineMessage) error {
	res, err := v.Chat.LeaveOfflineMessage(ctx, connect.NewRequest(&chatv1.LeaveOfflineMessageRequest{
		AccountId: m.AccountID, VisitorName: m.Name, VisitorEmail: m.Email, Message: m.Message,
		Locale: m.Locale, ConsentVersion: m.ConsentVersion}))
	if err != nil {
		return err
	}
	if t := res.Msg.OfflineToken; t != "" {
		v.OfflineTokens = append(v.OfflineTokens, t)
	}
	return nil
}

// MyData returns everything the server holds about this visitor right now:
// their chat, the visit of visitToken ("" when none) and their offline
// messages waiting for the mail server.
func (v *Visitor) MyData(ctx context.Context, visitToken string) (*privacyv1.VisitorData, error) {
	res, err := v.Privacy.GetMyData(ctx, connect.NewRequest(&privacyv1.GetMyDataRequest{VisitToken: visitToken, OfflineTokens: v.OfflineTokens}))
	if err != nil {
		return nil, err
	}
	return res.Msg.Data, nil
}

// ForgetMe destroys everything the server holds about this visitor now (the
// chat ends) and returns the deletion receipt.
func (v *Visitor) ForgetMe(ctx context.Context, visitToken string) (*privacyv1.DeletionReceipt, error) {
	res, err := v.Privacy.ForgetMe(ctx, connect.NewRequest(&privacyv1.ForgetMeRequest{VisitToken: visitToken, OfflineTokens: v.OfflineTokens}))
	if err != nil {
		return nil, err
	}
	v.OfflineTokens = nil
	return res.Msg.Receipt, nil
}

// WithdrawConsent withdraws the consent given for the chat: the chat ends at
// once and all of its data is destroyed, with no transcript.
func (v *Visitor) WithdrawConsent(ctx context.Context) error {
	_, err := v.Consent.WithdrawConsent(ctx, connect.NewRequest(&consentv1.WithdrawConsentRequest{ChatId: v.ChatID}))
	return err
}

// Send sends a message and returns the stored event.
func (v *Visitor) Send(ctx context.Context, text string) (*chatv1.ChatEvent, error) {
	res, err := v.Chat.SendMessage(ctx, connect.NewRequest(&chatv1.SendMessageRequest{ChatId: v.ChatID, Text: text}))
	if err != nil {
		return nil, err
	}
	return res.Msg.Event, nil
}

// Typing says whether the visitor is typing.
func (v *Visitor) Typing(ctx context.Context, typing bool) error {
	_, err := v.Chat.SetTyping(ctx, connect.NewRequest(&chatv1.SetTypingRequest{ChatId: v.ChatID, Typing: typing}))
	return err
}

// End ends the chat.
func (v *Visitor) End(ctx context.Context) error {
	_, err := v.Chat.EndChat(ctx, connect.NewRequest(&chatv1.EndChatRequest{ChatId: v.ChatID}))
	return err
}

// Watch streams the chat's events after afterSeq to fn, reconnecting after
// any interruption from the last sequence number seen, until the chat closes
// (returns nil), ctx ends (returns ctx.Err()), fn returns an error (returned),
// or the server gives a final error (returned; see FinalCodes). Typing events
// (seq 0) are passed through; stored events are never passed twice.
func (v *Visitor) Watch(ctx context.Context, afterSeq int64, fn func(*chatv1.WatchChatResponse) error) error {
	last := afterSeq
	return resume(ctx,
		func(ctx context.Context) (stream[chatv1.WatchChatResponse], error) {
			return v.Chat.WatchChat(ctx, connect.NewRequest(&chatv1.WatchChatRequest{ChatId: v.ChatID, AfterSeq: last}))
		},
		func(m *chatv1.WatchChatResponse) (bool, error) {
			if seq := m.GetEvent().GetSeq(); seq > 0 {
				if seq <= last {
					return false, nil
				}
				last = seq
			}
			if err := fn(m); err != nil {
				return true, err
			}
			return m.State == chatv1.ChatState_CHAT_STATE_CLOSED, nil
		})
}

// Operator is a signed-in operator.
type Operator struct {
	Chat    chatv1connect.ChatServiceClient
	Account accountv1connect.AccountServiceClient
	// Monitor shows visitors on the site, sends invitations and (for admins)
	// manages API keys.
	Monitor monitorv1connect.MonitorServiceClient
	// Consent lists and (for admins) sets the account's consent texts.
	Consent consentv1connect.ConsentServiceClient
	// Files carries files in the operator's chats (see SendFile and
	// Download).
	Files filesv1connect.FileServiceClient
	// Privacy serves the operator's own data (export, profile, sessions,
	// deletion) and, for admins, requests by e-mail address, the data
	// inventory and the audit trail.
	Privacy privacyv1connect.PrivacyServiceClient
	// HTTPClient carries the operator's session cookie, for the plain HTTP
	// endpoints (the audit trail as JSON Lines, /privacy/audit.jsonl).
	HTTPClient *http.Client
	// Me is the operator, set by Login.
	Me *accountv1.Operator
}

// NewOperator returns an operator client. The session cookie is kept in a
// cookie jar added to a copy of httpClient.
func NewOperator(httpClient *http.Client, baseURL string, opts ...connect.ClientOption) *Operator {
	c := *httpClient
	if c.Jar == nil {
		c.Jar, _ = cookiejar.New(nil)
	}
	return &Operator{
		Chat:       chatv1connect.NewChatServiceClient(&c, baseURL, opts...),
		Account:    accountv1connect.NewAccountServiceClient(&c, baseURL, opts...),
		Monitor:    monitorv1connect.NewMonitorServiceClient(&c, baseURL, opts...),
		Consent:    consentv1connect.NewConsentServiceClient(&c, baseURL, opts...),
		Files:      newFilesClient(&c, baseURL, opts),
		Privacy:    privacyv1connect.NewPrivacyServiceClient(&c, baseURL, opts...),
		HTTPClient: &c,
	}
}

// Login signs in.
func (o *Operator) Login(ctx context.Context, email, password string) error {
	res, err := o.Account.Login(ctx, connect.NewRequest(&accountv1.LoginRequest{Email: email, Password: password}))
	if err != nil {
		return err
	}
	o.Me = res.Msg.Operator
	return nil
}

// Accept takes a waiting chat.
func (o *Operator) Accept(ctx context.Context, chatID string) error {
	_, err := o.Chat.AcceptChat(ctx, connect.NewRequest(&chatv1.AcceptChatRequest{ChatId: chatID}))
	return err
}

// Send sends a message to one of the operator's chats.
func (o *Operator) Send(ctx context.Context, chatID, text string) (*chatv1.ChatEvent, error) {
	res, err := o.Chat.SendOperatorMessage(ctx, connect.NewRequest(&chatv1.SendOperatorMessageRequest{ChatId: chatID, Text: text}))
	if err != nil {
		return nil, err
	}
	return res.Msg.Event, nil
}

// Typing says whether the operator is typing in a chat.
func (o *Operator) Typing(ctx context.Context, chatID string, typing bool) error {
	_, err := o.Chat.SetOperatorTyping(ctx, connect.NewRequest(&chatv1.SetOperatorTypingRequest{ChatId: chatID, Typing: typing}))
	return err
}

// Transfer hands a chat to another operator.
func (o *Operator) Transfer(ctx context.Context, chatID, toOperatorID string) error {
	_, err := o.Chat.TransferChat(ctx, connect.NewRequest(&chatv1.TransferChatRequest{ChatId: chatID, ToOperatorId: toOperatorID}))
	return err
}

// Close closes a chat.
func (o *Operator) Close(ctx context.Context, chatID string) error {
	_, err := o.Chat.CloseChat(ctx, connect.NewRequest(&chatv1.CloseChatRequest{ChatId: chatID}))
	return err
}

// SetStatus sets the operator ONLINE or AWAY.
func (o *Operator) SetStatus(ctx context.Context, st chatv1.OperatorStatus) error {
	_, err := o.Chat.SetStatus(ctx, connect.NewRequest(&chatv1.SetStatusRequest{Status: st}))
	return err
}

// WatchInbox streams the operator's inbox to fn, resuming after any
// interruption with the last sequence number seen of every chat, so chat
// events are neither lost nor repeated. Every (re)connection starts with a
// snapshot (presence, the queue, the operator's chats) ending in
// SnapshotDone. A chat fn was shown before a reconnect that the new snapshot
// does not mention went away while the stream was down (closed, or taken by
// someone else); fn gets a ChatRemoved for it just before SnapshotDone, as
// if the stream had never broken. WatchInbox returns when ctx ends, fn
// fails, or the server gives a final error (see FinalCodes).
func (o *Operator) WatchInbox(ctx context.Context, fn func(*chatv1.WatchInboxResponse) error) error {
	seen := map[string]int64{}   // the last seq passed to fn, per chat
	shown := map[string]bool{}   // the chats fn was shown and not told are gone
	var snapshot map[string]bool // the chats this connection's snapshot mentioned; nil after it
	show := func(chatID string) {
		shown[chatID] = true
		if snapshot != nil {
			snapshot[chatID] = true
		}
	}
	return resume(ctx,
		func(ctx context.Context) (stream[chatv1.WatchInboxResponse], error) {
			snapshot = map[string]bool{}
			return o.Chat.WatchInbox(ctx, connect.NewRequest(&chatv1.WatchInboxRequest{AfterSeq: maps.Clone(seen)}))
		},
		func(m *chatv1.WatchInboxResponse) (bool, error) {
			switch k := m.Kind.(type) {
			case *chatv1.WatchInboxResponse_Event:
				if k.Event.Seq > 0 {
					if k.Event.Seq <= seen[k.Event.ChatId] {
						return false, nil
					}
					seen[k.Event.ChatId] = k.Event.Seq
				}
				show(k.Event.ChatId)
			case *chatv1.WatchInboxResponse_ChatUpdated:
				show(k.ChatUpdated.ChatId)
			case *chatv1.WatchInboxResponse_ChatRemoved:
				delete(seen, k.ChatRemoved.ChatId)
				delete(shown, k.ChatRemoved.ChatId)
			case *chatv1.WatchInboxResponse_SnapshotDone:
				for _, id := range slices.Sorted(maps.Keys(shown)) {
					if snapshot[id] {
						continue
					}
					delete(seen, id)
					delete(shown, id)
					gone := &chatv1.WatchInboxResponse{Kind: &chatv1.WatchInboxResponse_ChatRemoved{ChatRemoved: &chatv1.ChatRemoved{ChatId: id}}}
					if err := fn(gone); err != nil {
						return true, err
					}
				}
				snapshot = nil
			}
			return false, fn(m)
		})
}

// WatchChatResponse is one item of a visitor's chat stream.
type WatchChatResponse = chatv1.WatchChatResponse
