package privacy

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	netmail "net/mail"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	privacyv1 "github.com/lethehq/lethe/gen/go/lethe/privacy/v1"
	"github.com/lethehq/lethe/gen/go/lethe/privacy/v1/privacyv1connect"
	"github.com/lethehq/lethe/server/audit"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/ids"
	"github.com/lethehq/lethe/server/limit"
	"github.com/lethehq/lethe/server/mail"
	"github.com/lethehq/lethe/server/netinfo"
)

// Limits on what a visitor's call may carry.
const (
	// MaxOfflineTokens is the most offline tokens one call may carry.
	MaxOfflineTokens = 20
	// MaxEmailChars is the longest address a request by e-mail may name.
	MaxEmailChars = 254
)

// Reasons shown to the operator when a chat is erased.
const (
	ReasonVisitor = "the visitor erased their data"
	ReasonAdmin   = "erased at the visitor's request"
)

// DefaultVisitorRate is how often one client address may call the visitor
// RPCs and the public inventory page.
var DefaultVisitorRate = limit.Rate{N: 30, Per: time.Minute}

// Options configure the service.
type Options struct {
	// MailRelay is the SMTP relay mail leaves through ("host:port"; "" when
	// mail is off).
	MailRelay string
	// MailMaxHold is the longest a mail waits for the relay.
	MailMaxHold time.Duration
	// VisitRetention is how long a visit is kept after the visitor left.
	VisitRetention time.Duration
	// VisitorRate limits the visitor RPCs and the public page per client
	// address (zero: DefaultVisitorRate).
	VisitorRate limit.Rate
	// DefaultAccount is the account /privacy shows without ?account=.
	DefaultAccount string
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Service implements privacyv1connect.PrivacyServiceHandler.
type Service struct {
	chats    Chats
	mail     Mail // nil when the server sends no mail
	visits   Visits
	ops      Operators
	audit    AuditLog
	accounts Accounts
	log      *slog.Logger
	opts     Options
	calls    *limit.Keyed
}

var _ privacyv1connect.PrivacyServiceHandler = (*Service)(nil)

// NewService returns the privacy service. m may be nil (no mail relay).
func NewService(chats Chats, m Mail, visits Visits, ops Operators, log AuditLog, accounts Accounts, lg *slog.Logger, o Options) *Service {
	if o.VisitorRate == (limit.Rate{}) {
		o.VisitorRate = DefaultVisitorRate
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{chats: chats, mail: m, visits: visits, ops: ops, audit: log, accounts: accounts, log: lg, opts: o,
		calls: limit.NewRate(o.VisitorRate)}
}

// Policy says who may call each RPC: visitors identify themselves by their
// secrets (a stale chat token does not stop the call), operators by their
// session, and admins for requests by e-mail and the audit trail.
func Policy() map[string]auth.Kind {
	return map[string]auth.Kind{
		privacyv1connect.PrivacyServiceGetMyDataProcedure:        auth.Public,
		privacyv1connect.PrivacyServiceCorrectMyDataProcedure:    auth.Public,
		privacyv1connect.PrivacyServiceForgetMeProcedure:         auth.Public,
		privacyv1connect.PrivacyServiceStopTrackingProcedure:     auth.Public,
		privacyv1connect.PrivacyServiceExportMyAccountProcedure:  auth.OperatorOnly,
		privacyv1connect.PrivacyServiceUpdateMyProfileProcedure:  auth.OperatorOnly,
		privacyv1connect.PrivacyServiceListMySessionsProcedure:   auth.OperatorOnly,
		privacyv1connect.PrivacyServiceRevokeSessionProcedure:    auth.OperatorOnly,
		privacyv1connect.PrivacyServiceDeleteMyAccountProcedure:  auth.OperatorOnly,
		privacyv1connect.PrivacyServiceFindDataSubjectProcedure:  auth.AdminOnly,
		privacyv1connect.PrivacyServiceEraseDataSubjectProcedure: auth.AdminOnly,
		privacyv1connect.PrivacyServiceGetDataInventoryProcedure: auth.OperatorOnly,
		privacyv1connect.PrivacyServiceListAuditEntriesProcedure: auth.AdminOnly,
	}
}

// gone reports whether err says the data does not exist (any more).
func gone(err error) bool {
	return errors.Is(err, errs.ErrNotFound) || errs.CodeOf(err) == connect.CodeNotFound
}

// throttle counts a visitor's call against the client address's allowance.
func (s *Service) throttle(ctx context.Context) error {
	if ok, retry := s.calls.Take(netinfo.AddrKey(netinfo.ClientAddr(ctx))); !ok {
		return errs.Throttled(retry, "too many privacy requests (at most %s per client address)", s.opts.VisitorRate.Describe())
	}
	return nil
}

// visitor is a visitor as their secrets identify them.
type visitor struct {
	accountID string
	// chatID is the chat of the bearer token ("" when none or stale).
	chatID string
	closed bool
	// The visit of visit_token (visitorID "" when none or gone).
	visitorID string
	visit     *privacyv1.VisitData
	// offline are the mail references of the offline tokens.
	offline []string
}

// identify resolves a visitor's secrets. Secrets that are unknown are
// ignored; a visit or mail of another account than the chat's is ignored
// too, so that one answer never mixes two accounts' data.
func (s *Service) identify(ctx context.Context, visitToken string, offlineTokens []string) (*visitor, error) {
	if err := s.throttle(ctx); err != nil {
		return nil, err
	}
	if len(offlineTokens) > MaxOfflineTokens {
		return nil, errs.Invalid("at most %d offline tokens per call", MaxOfflineTokens)
	}
	v := &visitor{}
	cv, hasChat := auth.VisitorFrom(ctx)
	if !hasChat && visitToken == "" && len(offlineTokens) == 0 {
		return nil, errs.Unauthenticated("a chat token, visit token or offline token is required")
	}
	if hasChat {
		v.accountID, v.chatID, v.closed = cv.AccountID, cv.ChatID, cv.Closed
	}
	if visitToken != "" {
		acc, id, d, err := s.visits.VisitByToken(ctx, visitToken)
		switch {
		case gone(err):
		case err != nil:
			return nil, err
		case v.accountID == "" || v.accountID == acc:
			v.accountID, v.visitorID, v.visit = acc, id, d
		}
	}
	for _, t := range offlineTokens {
		if t != "" {
			v.offline = append(v.offline, s.chats.OfflineRef(t))
		}
	}
	return v, nil
}

// refs are the mail references that may hold the visitor's mail.
func (s *Service) refs(v *visitor) []string {
	refs := append([]string(nil), v.offline...)
	if v.chatID != "" {
		refs = append(refs, s.chats.MailRef(v.chatID))
	}
	return refs
}

// heldMail returns the visitor's waiting mail, of their account only.
func (s *Service) heldMail(ctx context.Context, v *visitor) ([]*privacyv1.PendingMail, error) {
	held, err := s.held(ctx, v, s.refs(v))
	if err != nil {
		return nil, err
	}
	var out []*privacyv1.PendingMail
	for _, h := range held {
		out = append(out, s.pendingMail(h.Ref, h))
	}
	return out, nil
}

// held returns the mail waiting under refs that belongs to the visitor's
// account (or, with no chat or visit, to the account the first one belongs
// to, which then becomes the visitor's).
func (s *Service) held(ctx context.Context, v *visitor, refs []string) ([]mail.Held, error) {
	if s.mail == nil || len(refs) == 0 {
		return nil, nil
	}
	all, err := s.mail.Held(ctx, refs...)
	if err != nil {
		return nil, err
	}
	var out []mail.Held
	for _, h := range all {
		if v.accountID == "" {
			v.accountID = h.AccountID
		}
		if h.AccountID == v.accountID {
			out = append(out, h)
		}
	}
	return out, nil
}

// refusePageToken refuses the widget loader's page token (lethe.monitor.v1
// TrackResponse.page_token), as bearer or as visit_token: it is write only,
// and every visitor call here reads or erases. The panel holds the visit
// token for these calls.
func (s *Service) refusePageToken(h http.Header, visitToken string) error {
	tok, _ := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	if s.visits.IsPageToken(strings.TrimSpace(tok)) || s.visits.IsPageToken(visitToken) {
		return errs.Denied("a page token cannot see, correct or erase data: the chat panel's visit token is needed")
	}
	return nil
}

// GetMyData implements PrivacyServiceHandler.
func (s *Service) GetMyData(ctx context.Context, req *connect.Request[privacyv1.GetMyDataRequest]) (*connect.Response[privacyv1.GetMyDataResponse], error) {
	if err := s.refusePageToken(req.Header(), req.Msg.VisitToken); err != nil {
		return nil, err
	}
	v, err := s.identify(ctx, req.Msg.VisitToken, req.Msg.OfflineTokens)
	if err != nil {
		return nil, err
	}
	d := &privacyv1.VisitorData{ReadAt: timestamppb.New(s.opts.Now()), Visit: v.visit}
	if v.chatID != "" {
		c, err := s.chats.ChatData(ctx, v.chatID)
		if err != nil && !gone(err) {
			return nil, err
		}
		d.Chat = c
	}
	if d.Mail, err = s.heldMail(ctx, v); err != nil {
		return nil, err
	}
	if v.accountID != "" {
		info, err := s.accounts.Info(ctx, v.accountID)
		if err != nil && !gone(err) {
			return nil, err
		}
		d.AccountName = info.Name
	}
	return connect.NewResponse(&privacyv1.GetMyDataResponse{Data: d}), nil
}

// CorrectMyData implements PrivacyServiceHandler.
func (s *Service) CorrectMyData(ctx context.Context, req *connect.Request[privacyv1.CorrectMyDataRequest]) (*connect.Response[privacyv1.CorrectMyDataResponse], error) {
	if err := s.refusePageToken(req.Header(), ""); err != nil {
		return nil, err
	}
	if err := s.throttle(ctx); err != nil {
		return nil, err
	}
	cv, ok := auth.VisitorFrom(ctx)
	if !ok {
		return nil, errs.Unauthenticated("the chat's visitor token is required")
	}
	if cv.Closed {
		return nil, errs.Precondition("the chat has ended: there is nothing left to correct")
	}
	c, err := s.chats.CorrectVisitor(ctx, cv.ChatID, req.Msg.VisitorName, req.Msg.VisitorEmail)
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "visitor corrected their data", slog.String("chat", cv.ChatID), slog.String("account", cv.AccountID))
	return connect.NewResponse(&privacyv1.CorrectMyDataResponse{Chat: c}), nil
}

// receipt gathers what an erasure destroyed.
type receipt struct {
	r      *privacyv1.DeletionReceipt
	counts map[string]*privacyv1.DestroyedCount
}

func (s *Service) newReceipt() *receipt {
	return &receipt{
		r:      &privacyv1.DeletionReceipt{ReceiptId: "rcpt_" + ids.New(), DestroyedAt: timestamppb.New(s.opts.Now())},
		counts: map[string]*privacyv1.DestroyedCount{},
	}
}

// add counts what one store destroyed.
func (r *receipt) add(cs ...*privacyv1.DestroyedCount) {
	for _, c := range cs {
		if c == nil || c.Count == 0 {
			continue
		}
		if have, ok := r.counts[c.Category]; ok {
			have.Count += c.Count
			continue
		}
		n := &privacyv1.DestroyedCount{Category: c.Category, Count: c.Count}
		r.counts[c.Category] = n
		r.r.Destroyed = append(r.r.Destroyed, n)
	}
}

// total is the number of items destroyed.
func (r *receipt) total() int64 {
	var n int64
	for _, c := range r.r.Destroyed {
		n += c.Count
	}
	return n
}

// record keeps the receipt (counts only) in the account's audit trail and
// the log, and stamps the time of the last destruction.
func (s *Service) record(ctx context.Context, accountID, action string, r *receipt) {
	r.r.DestroyedAt = timestamppb.New(s.opts.Now())
	if accountID != "" {
		s.audit.Record(ctx, audit.By(ctx, audit.Entry{AccountID: accountID, Action: action, Count: r.total(), ReceiptID: r.r.ReceiptId}))
	}
	s.log.InfoContext(ctx, "data erased", slog.String("action", action), slog.String("account", accountID),
		slog.String("receipt", r.r.ReceiptId), slog.Int64("items", r.total()))
}

// dropMail drops waiting mail unsent and counts it.
func (s *Service) dropMail(ctx context.Context, r *receipt, category string, refs ...string) error {
	if s.mail == nil {
		return nil
	}
	for _, ref := range refs {
		n, err := s.mail.Drop(ctx, ref)
		if err != nil {
			return err
		}
		r.add(&privacyv1.DestroyedCount{Category: category, Count: int64(n)})
	}
	return nil
}

// ForgetMe implements PrivacyServiceHandler.
func (s *Service) ForgetMe(ctx context.Context, req *connect.Request[privacyv1.ForgetMeRequest]) (*connect.Response[privacyv1.ForgetMeResponse], error) {
	if err := s.refusePageToken(req.Header(), req.Msg.VisitToken); err != nil {
		return nil, err
	}
	v, err := s.identify(ctx, req.Msg.VisitToken, req.Msg.OfflineTokens)
	if err != nil {
		return nil, err
	}
	r := s.newReceipt()
	if v.chatID != "" {
		cs, err := s.chats.EraseChat(ctx, v.chatID, ReasonVisitor)
		if err != nil {
			return nil, err
		}
		r.add(cs...)
	}
	if v.visitorID != "" {
		cs, err := s.visits.DestroyVisit(ctx, v.accountID, v.visitorID)
		if err != nil {
			return nil, err
		}
		r.add(cs...)
	}
	offline, err := s.held(ctx, v, v.offline)
	if err != nil {
		return nil, err
	}
	for _, h := range offline {
		if err := s.dropMail(ctx, r, "offline messages", h.Ref); err != nil {
			return nil, err
		}
	}
	s.record(ctx, v.accountID, audit.VisitorErased, r)
	return connect.NewResponse(&privacyv1.ForgetMeResponse{Receipt: r.r}), nil
}

// StopTracking implements PrivacyServiceHandler.
func (s *Service) StopTracking(ctx context.Context, req *connect.Request[privacyv1.StopTrackingRequest]) (*connect.Response[privacyv1.StopTrackingResponse], error) {
	if err := s.refusePageToken(req.Header(), req.Msg.VisitToken); err != nil {
		return nil, err
	}
	if req.Msg.VisitToken == "" {
		return nil, errs.Unauthenticated("the visit token is required")
	}
	if err := s.throttle(ctx); err != nil {
		return nil, err
	}
	r := s.newReceipt()
	acc, id, _, err := s.visits.VisitByToken(ctx, req.Msg.VisitToken)
	switch {
	case gone(err):
		// Nothing left to stop: an empty receipt.
	case err != nil:
		return nil, err
	default:
		cs, err := s.visits.DestroyVisit(ctx, acc, id)
		if err != nil {
			return nil, err
		}
		r.add(cs...)
	}
	s.record(ctx, acc, audit.VisitorStopped, r)
	return connect.NewResponse(&privacyv1.StopTrackingResponse{Receipt: r.r}), nil
}

// operator returns the calling operator (the interceptor made sure).
func operator(ctx context.Context) (*auth.Operator, error) {
	op, ok := auth.OperatorFrom(ctx)
	if !ok {
		return nil, errs.Unauthenticated("sign in first")
	}
	return op, nil
}

// MaxAuditAboutMe is the most audit entries an operator's export carries.
const MaxAuditAboutMe = 10_000

// ExportMyAccount implements PrivacyServiceHandler.
func (s *Service) ExportMyAccount(ctx context.Context, _ *connect.Request[privacyv1.ExportMyAccountRequest]) (*connect.Response[privacyv1.ExportMyAccountResponse], error) {
	op, err := operator(ctx)
	if err != nil {
		return nil, err
	}
	me, accountName, err := s.ops.Me(ctx)
	if err != nil {
		return nil, err
	}
	sessions, err := s.ops.MySessions(ctx)
	if err != nil {
		return nil, err
	}
	entries, err := s.audit.About(ctx, op.AccountID, op.ID, MaxAuditAboutMe)
	if err != nil {
		return nil, err
	}
	x := &privacyv1.OperatorExport{ExportedAt: timestamppb.New(s.opts.Now()), Operator: me, AccountName: accountName, Sessions: sessions}
	for _, e := range entries {
		x.Audit = append(x.Audit, entryProto(e))
	}
	s.audit.Record(ctx, audit.By(ctx, audit.Entry{AccountID: op.AccountID, Action: audit.AccountExported, TargetID: op.ID,
		Count: int64(len(x.Sessions) + len(x.Audit) + 1)}))
	return connect.NewResponse(&privacyv1.ExportMyAccountResponse{Export: x}), nil
}

// UpdateMyProfile implements PrivacyServiceHandler.
func (s *Service) UpdateMyProfile(ctx context.Context, req *connect.Request[privacyv1.UpdateMyProfileRequest]) (*connect.Response[privacyv1.UpdateMyProfileResponse], error) {
	op, err := s.ops.UpdateMyProfile(ctx, req.Msg.Name, req.Msg.Email, req.Msg.CurrentPassword)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&privacyv1.UpdateMyProfileResponse{Operator: op}), nil
}

// ListMySessions implements PrivacyServiceHandler.
func (s *Service) ListMySessions(ctx context.Context, _ *connect.Request[privacyv1.ListMySessionsRequest]) (*connect.Response[privacyv1.ListMySessionsResponse], error) {
	ss, err := s.ops.MySessions(ctx)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&privacyv1.ListMySessionsResponse{Sessions: ss}), nil
}

// RevokeSession implements PrivacyServiceHandler.
func (s *Service) RevokeSession(ctx context.Context, req *connect.Request[privacyv1.RevokeSessionRequest]) (*connect.Response[privacyv1.RevokeSessionResponse], error) {
	if req.Msg.SessionId == "" {
		return nil, errs.Invalid("session_id is required")
	}
	if err := s.ops.RevokeMySession(ctx, req.Msg.SessionId); err != nil {
		return nil, err
	}
	return connect.NewResponse(&privacyv1.RevokeSessionResponse{}), nil
}

// DeleteMyAccount implements PrivacyServiceHandler.
func (s *Service) DeleteMyAccount(ctx context.Context, req *connect.Request[privacyv1.DeleteMyAccountRequest]) (*connect.Response[privacyv1.DeleteMyAccountResponse], error) {
	if err := s.ops.DeleteMe(ctx, req.Msg.CurrentPassword); err != nil {
		return nil, err
	}
	return connect.NewResponse(&privacyv1.DeleteMyAccountResponse{}), nil
}

// subjectEmail checks the address of a request by e-mail.
func subjectEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > MaxEmailChars {
		return "", errs.Invalid("an e-mail address of 1 to %d characters is required", MaxEmailChars)
	}
	a, err := netmail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return "", errs.Invalid("that is not an e-mail address")
	}
	return s, nil
}

// subject is what the server holds for an address in an account.
type subject struct {
	data    *privacyv1.SubjectData
	chatIDs []string
	// mailRefs are the waiting mail not carried by one of the chats.
	mailRefs   []string
	visitorIDs []string
}

// find gathers everything held for an address in the account.
func (s *Service) find(ctx context.Context, accountID, email string) (*subject, error) {
	sub := &subject{data: &privacyv1.SubjectData{ReadAt: timestamppb.New(s.opts.Now())}}
	chatIDs, err := s.chats.ChatsByEmail(ctx, accountID, email)
	if err != nil {
		return nil, err
	}
	chatRefs := map[string]bool{}
	for _, id := range chatIDs {
		c, err := s.chats.ChatData(ctx, id)
		if gone(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sub.data.Chats = append(sub.data.Chats, c)
		sub.chatIDs = append(sub.chatIDs, id)
		chatRefs[s.chats.MailRef(id)] = true
	}
	if s.mail != nil {
		refs := make([]string, 0, len(chatRefs))
		for r := range chatRefs {
			refs = append(refs, r)
		}
		held, err := s.mail.HeldFor(ctx, accountID, email)
		if err != nil {
			return nil, err
		}
		if len(refs) > 0 {
			more, err := s.mail.Held(ctx, refs...)
			if err != nil {
				return nil, err
			}
			held = append(held, more...)
		}
		seenMail, seenRef := map[string]bool{}, map[string]bool{}
		for _, h := range held {
			if seenMail[h.ID] || h.AccountID != accountID {
				continue
			}
			seenMail[h.ID] = true
			sub.data.Mail = append(sub.data.Mail, s.pendingMail(h.Ref, h))
			if !chatRefs[h.Ref] && !seenRef[h.Ref] {
				seenRef[h.Ref] = true
				sub.mailRefs = append(sub.mailRefs, h.Ref)
			}
		}
	}
	visits, err := s.visits.VisitsWithValue(ctx, accountID, email)
	if err != nil {
		return nil, err
	}
	for _, v := range visits {
		sub.data.Visits = append(sub.data.Visits, v)
		sub.visitorIDs = append(sub.visitorIDs, v.VisitorId)
	}
	return sub, nil
}

// items counts what a subject's data holds.
func (sub *subject) items() int64 {
	return int64(len(sub.data.Chats) + len(sub.data.Mail) + len(sub.data.Visits))
}

// request is an admin's request by e-mail address: the admin, and what
// their account holds for the address.
func (s *Service) request(ctx context.Context, address string) (*auth.Operator, *subject, error) {
	op, err := operator(ctx)
	if err != nil {
		return nil, nil, err
	}
	email, err := subjectEmail(address)
	if err != nil {
		return nil, nil, err
	}
	sub, err := s.find(ctx, op.AccountID, email)
	return op, sub, err
}

// FindDataSubject implements PrivacyServiceHandler.
func (s *Service) FindDataSubject(ctx context.Context, req *connect.Request[privacyv1.FindDataSubjectRequest]) (*connect.Response[privacyv1.FindDataSubjectResponse], error) {
	op, sub, err := s.request(ctx, req.Msg.Email)
	if err != nil {
		return nil, err
	}
	s.audit.Record(ctx, audit.By(ctx, audit.Entry{AccountID: op.AccountID, Action: audit.SubjectFound, Count: sub.items()}))
	return connect.NewResponse(&privacyv1.FindDataSubjectResponse{Data: sub.data}), nil
}

// EraseDataSubject implements PrivacyServiceHandler.
func (s *Service) EraseDataSubject(ctx context.Context, req *connect.Request[privacyv1.EraseDataSubjectRequest]) (*connect.Response[privacyv1.EraseDataSubjectResponse], error) {
	op, sub, err := s.request(ctx, req.Msg.Email)
	if err != nil {
		return nil, err
	}
	r := s.newReceipt()
	for _, id := range sub.chatIDs {
		cs, err := s.chats.EraseChat(ctx, id, ReasonAdmin)
		if err != nil {
			return nil, err
		}
		r.add(cs...)
	}
	for _, ref := range sub.mailRefs {
		category := "offline messages"
		if !strings.HasPrefix(ref, "offline:") {
			category = "transcript e-mails"
		}
		if err := s.dropMail(ctx, r, category, ref); err != nil {
			return nil, err
		}
	}
	for _, id := range sub.visitorIDs {
		cs, err := s.visits.DestroyVisit(ctx, op.AccountID, id)
		if err != nil {
			return nil, err
		}
		r.add(cs...)
	}
	s.record(ctx, op.AccountID, audit.SubjectErased, r)
	return connect.NewResponse(&privacyv1.EraseDataSubjectResponse{Receipt: r.r}), nil
}

// ListAuditEntries implements PrivacyServiceHandler.
func (s *Service) ListAuditEntries(ctx context.Context, req *connect.Request[privacyv1.ListAuditEntriesRequest]) (*connect.Response[privacyv1.ListAuditEntriesResponse], error) {
	op, err := operator(ctx)
	if err != nil {
		return nil, err
	}
	size := int(req.Msg.PageSize)
	switch {
	case size == 0:
		size = 100
	case size < 1 || size > 500:
		return nil, errs.Invalid("page_size must be 1 to 500")
	}
	entries, next, err := s.audit.List(ctx, op.AccountID, req.Msg.PageToken, size)
	if err != nil {
		return nil, err
	}
	res := &privacyv1.ListAuditEntriesResponse{NextPageToken: next}
	for _, e := range entries {
		res.Entries = append(res.Entries, entryProto(e))
	}
	return connect.NewResponse(res), nil
}

// pendingMail is a waiting mail as the person it is about sees it.
func (s *Service) pendingMail(ref string, h mail.Held) *privacyv1.PendingMail {
	kind := privacyv1.MailKind_MAIL_KIND_TRANSCRIPT
	if strings.HasPrefix(ref, "offline:") {
		kind = privacyv1.MailKind_MAIL_KIND_OFFLINE_MESSAGE
	}
	p := &privacyv1.PendingMail{Kind: kind, QueuedAt: timestamppb.New(h.CreatedAt), Attempts: int32(h.Attempts),
		RecipientCount: int32(h.Recipients), Subject: h.Subject, Text: h.Text,
		Destruction: &privacyv1.Destruction{Rule: "when the mail server accepts it"}}
	if !h.NotAfter.IsZero() {
		p.Destruction.NotAfter = timestamppb.New(h.NotAfter)
	}
	return p
}

// entryProto is an audit entry as the API shows it.
func entryProto(e audit.Entry) *privacyv1.AuditEntry { return audit.ToProto(e) }
