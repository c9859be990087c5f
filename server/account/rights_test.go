package account

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	"github.com/lethehq/lethe/gen/go/lethe/account/v1/accountv1connect"
	privacyv1 "github.com/lethehq/lethe/gen/go/lethe/privacy/v1"
	"github.com/lethehq/lethe/gen/go/lethe/privacy/v1/privacyv1connect"
	"github.com/lethehq/lethe/server/audit"
)

// operatorRights serves the operator RPCs of lethe.privacy.v1 straight
// over the service's privacy.Operators methods, as the privacy service
// does, so that the tests reach them through the real session middleware
// and auth interceptor.
type operatorRights struct{ svc *Service }

var _ privacyv1connect.PrivacyServiceHandler = operatorRights{}

func (r operatorRights) ExportMyAccount(ctx context.Context, _ *connect.Request[privacyv1.ExportMyAccountRequest]) (*connect.Response[privacyv1.ExportMyAccountResponse], error) {
	op, account, err := r.svc.Me(ctx)
	if err != nil {
		return nil, err
	}
	sessions, err := r.svc.MySessions(ctx)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&privacyv1.ExportMyAccountResponse{Export: &privacyv1.OperatorExport{Operator: op, AccountName: account, Sessions: sessions}}), nil
}

func (r operatorRights) UpdateMyProfile(ctx context.Context, req *connect.Request[privacyv1.UpdateMyProfileRequest]) (*connect.Response[privacyv1.UpdateMyProfileResponse], error) {
	op, err := r.svc.UpdateMyProfile(ctx, req.Msg.Name, req.Msg.Email, req.Msg.CurrentPassword)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&privacyv1.UpdateMyProfileResponse{Operator: op}), nil
}

func (r operatorRights) ListMySessions(ctx context.Context, _ *connect.Request[privacyv1.ListMySessionsRequest]) (*connect.Response[privacyv1.ListMySessionsResponse], error) {
	s, err := r.svc.MySessions(ctx)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&privacyv1.ListMySessionsResponse{Sessions: s}), nil
}

func (r operatorRights) RevokeSession(ctx context.Context, req *connect.Request[privacyv1.RevokeSessionRequest]) (*connect.Response[privacyv1.RevokeSessionResponse], error) {
	if err := r.svc.RevokeMySession(ctx, req.Msg.SessionId); err != nil {
		return nil, err
	}
	return connect.NewResponse(&privacyv1.RevokeSessionResponse{}), nil
}

func (r operatorRights) DeleteMyAccount(ctx context.Context, req *connect.Request[privacyv1.DeleteMyAccountRequest]) (*connect.Response[privacyv1.DeleteMyAccountResponse], error) {
	if err := r.svc.DeleteMe(ctx, req.Msg.CurrentPassword); err != nil {
		return nil, err
	}
	return connect.NewResponse(&privacyv1.DeleteMyAccountResponse{}), nil
}

func (operatorRights) GetMyData(context.Context, *connect.Request[privacyv1.GetMyDataRequest]) (*connect.Response[privacyv1.GetMyDataResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, nil)
}

func (operatorRights) CorrectMyData(context.Context, *connect.Request[privacyv1.CorrectMyDataRequest]) (*connect.Response[privacyv1.CorrectMyDataResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, nil)
}

func (operatorRights) ForgetMe(context.Context, *connect.Request[privacyv1.ForgetMeRequest]) (*connect.Response[privacyv1.ForgetMeResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, nil)
}

func (operatorRights) StopTracking(context.Context, *connect.Request[privacyv1.StopTrackingRequest]) (*connect.Response[privacyv1.StopTrackingResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, nil)
}

func (operatorRights) FindDataSubject(context.Context, *connect.Request[privacyv1.FindDataSubjectRequest]) (*connect.Response[privacyv1.FindDataSubjectResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, nil)
}

func (operatorRights) EraseDataSubject(context.Context, *connect.Request[privacyv1.EraseDataSubjectRequest]) (*connect.Response[privacyv1.EraseDataSubjectResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, nil)
}

func (operatorRights) GetDataInventory(context.Context, *connect.Request[privacyv1.GetDataInventoryRequest]) (*connect.Response[privacyv1.GetDataInventoryResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, nil)
}

func (operatorRights) ListAuditEntries(context.Context, *connect.Request[privacyv1.ListAuditEntriesRequest]) (*connect.Response[privacyv1.ListAuditEntriesResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, nil)
}

// chromeOnWindows is a browser's User-Agent.
const chromeOnWindows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

func (o *operator) sessions() []*privacyv1.Session {
	o.e.t.Helper()
	res, err := o.privacy.ListMySessions(context.Background(), connect.NewRequest(&privacyv1.ListMySessionsRequest{}))
	if err != nil {
		o.e.t.Fatalf("ListMySessions: %v", err)
	}
	return res.Msg.Sessions
}

func (o *operator) revoke(id string) error {
	_, err := o.privacy.RevokeSession(context.Background(), connect.NewRequest(&privacyv1.RevokeSessionRequest{SessionId: id}))
	return err
}

func (o *operator) updateProfile(name, email, password string) (*accountv1.Operator, error) {
	res, err := o.privacy.UpdateMyProfile(context.Background(), connect.NewRequest(&privacyv1.UpdateMyProfileRequest{
		Name: name, Email: email, CurrentPassword: password}))
	if err != nil {
		return nil, err
	}
	return res.Msg.Operator, nil
}

func (o *operator) deleteMe(password string) error {
	_, err := o.privacy.DeleteMyAccount(context.Background(), connect.NewRequest(&privacyv1.DeleteMyAccountRequest{CurrentPassword: password}))
	return err
}

// current is the session of the list marked current.
func current(t *testing.T, ss []*privacyv1.Session) *privacyv1.Session {
	t.Helper()
	var cur *privacyv1.Session
	for _, s := range ss {
		if s.Current {
			if cur != nil {
				t.Fatalf("two sessions marked current: %v", ss)
			}
			cur = s
		}
	}
	if cur == nil {
		t.Fatalf("no session marked current: %v", ss)
	}
	return cur
}

// auditOf is the account's audit trail, newest first.
func (e *env) auditOf(account string) []audit.Entry {
	e.t.Helper()
	entries, _, err := e.audit.List(context.Background(), account, "", audit.MaxPageSize)
	if err != nil {
		e.t.Fatal(err)
	}
	return entries
}

// entriesOf are the account's entries of an action, newest first.
func (e *env) entriesOf(account, action string) []audit.Entry {
	e.t.Helper()
	var out []audit.Entry
	for _, x := range e.auditOf(account) {
		if x.Action == action {
			out = append(out, x)
		}
	}
	return out
}

func TestMySessions_ListsTheCallersSessionsWithClientAndNetwork(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	e.createOperator(admin, "bob@example.com", "Bob")
	laptop := e.newConsole(http.Header{"X-Forwarded-For": {"198.51.100.7"}, "User-Agent": {chromeOnWindows}})
	if err := laptop.login("bob@example.com", operatorPassword); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	phone := e.newOperatorAt("2001:db8:aa:bb::1")
	if err := phone.login("bob@example.com", operatorPassword); err != nil {
		t.Fatal(err)
	}

	ss := laptop.sessions()
	if len(ss) != 3 { // createOperator's, the laptop's and the phone's; not the admin's
		t.Fatalf("Bob's sessions = %v, want 3", ss)
	}
	cur := current(t, ss)
	if cur.Client != "Chrome 131 on Windows" || cur.Network != "198.51.100.0/24" {
		t.Errorf("laptop's session: client %q network %q, want \"Chrome 131 on Windows\" and 198.51.100.0/24", cur.Client, cur.Network)
	}
	if got := cur.ExpiresAt.AsTime().Sub(cur.SignedInAt.AsTime()); got < 11*time.Hour || got > 13*time.Hour {
		t.Errorf("session lasts %v from sign-in, want the 12 h lifetime", got)
	}
	i := slices.IndexFunc(ss, func(s *privacyv1.Session) bool { return s.Network == "2001:db8:aa::/48" })
	if i < 0 || ss[i].Current || ss[i].SignedInAt.AsTime().Before(before.Truncate(time.Second)) {
		t.Fatalf("sessions = %v, want the phone's from 2001:db8:aa::/48, not current", ss)
	}
	for j := 1; j < len(ss); j++ {
		if ss[j].SignedInAt.AsTime().After(ss[j-1].SignedInAt.AsTime()) {
			t.Errorf("sessions not newest first: %v", ss)
		}
	}
	ids := map[string]bool{}
	for _, s := range ss {
		if s.Id == "" || ids[s.Id] {
			t.Fatalf("session ids not unique: %v", ss)
		}
		ids[s.Id] = true
		for _, c := range []*http.Cookie{laptop.cookie(), phone.cookie()} {
			if strings.Contains(s.Id, c.Value) {
				t.Fatalf("a session id holds the session token")
			}
		}
	}
	if id := current(t, phone.sessions()).Id; id != ss[i].Id {
		t.Errorf("the phone's current session is %s, want %s", id, ss[i].Id)
	}
	if n := len(admin.sessions()); n != 1 {
		t.Errorf("the admin sees %d sessions, want only their own", n)
	}
}

func TestRevokeSession_TheRevokedSessionIsSignedOutAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	bob := e.createOperator(admin, "bob@example.com", "Bob")
	other := e.login("bob@example.com", operatorPassword)
	target := current(t, other.sessions()).Id

	if err := bob.revoke(target); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	_, err := other.getMe()
	wantCode(t, "GetMe with the revoked session", err, connect.CodeUnauthenticated)
	if _, err := bob.getMe(); err != nil {
		t.Fatalf("the revoking session was signed out too: %v", err)
	}
	if ss := bob.sessions(); len(ss) != 1 || !ss[0].Current {
		t.Errorf("sessions after the revocation = %v, want the current one only", ss)
	}
	wantCode(t, "revoking it again", bob.revoke(target), connect.CodeNotFound)
	if slices.Contains(e.signOuts.list(), bob.me.Id) {
		t.Error("revoking another session signed the operator out everywhere (OnSignOut)")
	}
	revoked := e.entriesOf("demo", audit.SessionRevoked)
	if len(revoked) != 1 || revoked[0].ActorID != bob.me.Id || revoked[0].TargetID != bob.me.Id {
		t.Errorf("session_revoked entries = %+v", revoked)
	}
}

func TestRevokeSession_SomeoneElsesSessionIsNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	bob := e.createOperator(admin, "bob@example.com", "Bob")
	adminSession := current(t, admin.sessions()).Id
	wantCode(t, "Bob revoking the admin's session", bob.revoke(adminSession), connect.CodeNotFound)
	wantCode(t, "an unknown session", bob.revoke("no-such-session"), connect.CodeNotFound)
	if _, err := admin.getMe(); err != nil {
		t.Fatalf("the admin's session ended: %v", err)
	}
}

func TestRevokeSession_TheCurrentOneSignsOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	bob := e.createOperator(admin, "bob@example.com", "Bob")
	old := bob.cookie()
	if err := bob.revoke(current(t, bob.sessions()).Id); err != nil {
		t.Fatal(err)
	}
	_, err := bob.getMe()
	wantCode(t, "GetMe after revoking the current session", err, connect.CodeUnauthenticated)
	res := e.post(accountv1connect.AccountServiceGetMeProcedure, "{}", withCookie(old))
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("the old cookie: HTTP %d, want 401", res.StatusCode)
	}
	if !slices.Contains(e.signOuts.list(), bob.me.Id) {
		t.Error("revoking the current session did not sign out (OnSignOut)")
	}
}

func TestUpdateMyProfile_CorrectsNameAndAddress(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	bob := e.createOperator(admin, "bob@example.com", "Bob")

	got, err := bob.updateProfile(" Robert ", " Robert@Example.com ", operatorPassword)
	if err != nil {
		t.Fatalf("UpdateMyProfile: %v", err)
	}
	if got.Name != "Robert" || got.Email != "robert@example.com" || got.Id != bob.me.Id {
		t.Fatalf("profile = %v", got)
	}
	if me, err := bob.getMe(); err != nil || me.Operator.Email != "robert@example.com" {
		t.Fatalf("GetMe = %v, %v", me, err)
	}
	wantCode(t, "login with the old address", e.newOperator().login("bob@example.com", operatorPassword), connect.CodeUnauthenticated)
	e.login("robert@example.com", operatorPassword)

	if _, err := bob.updateProfile("Rob", "robert@example.com", operatorPassword); err != nil {
		t.Fatal(err)
	}
	var fields [][]string
	for _, x := range e.entriesOf("demo", audit.ProfileCorrected) {
		if x.ActorID != bob.me.Id || x.TargetID != bob.me.Id {
			t.Errorf("entry by %s about %s, want Bob both", x.ActorID, x.TargetID)
		}
		fields = append(fields, x.Fields)
	}
	if want := [][]string{{"name"}, {"name", "email"}}; !slices.EqualFunc(fields, want, slices.Equal) {
		t.Errorf("profile_corrected fields, newest first = %v, want %v", fields, want)
	}
}

func TestUpdateMyProfile_RefusesAndKeepsTheProfile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	bob := e.createOperator(admin, "bob@example.com", "Bob")
	for _, tc := range []struct {
		name, email, password string
		code                  connect.Code
	}{
		{"Robert", "robert@example.com", "wrong-password-1", connect.CodePermissionDenied},
		{"Robert", "robert@example.com", "", connect.CodeInvalidArgument},
		{"Robert", "not an address", operatorPassword, connect.CodeInvalidArgument},
		{"", "robert@example.com", operatorPassword, connect.CodeInvalidArgument},
		{strings.Repeat("n", MaxNameChars+1), "robert@example.com", operatorPassword, connect.CodeInvalidArgument},
		{"Robert", DefaultAdminEmail, operatorPassword, connect.CodeAlreadyExists},
		{"Robert", strings.ToUpper(DefaultAdminEmail), operatorPassword, connect.CodeAlreadyExists},
	} {
		_, err := bob.updateProfile(tc.name, tc.email, tc.password)
		wantCode(t, tc.name+" <"+tc.email+"> with "+tc.password, err, tc.code)
		if tc.code == connect.CodePermissionDenied && messageOf(err) != "the password is wrong" {
			t.Errorf("message %q, want \"the password is wrong\"", messageOf(err))
		}
	}
	if me, _ := bob.getMe(); me.Operator.Name != "Bob" || me.Operator.Email != "bob@example.com" {
		t.Fatalf("profile after refusals = %v", me.Operator)
	}
	if n := len(e.entriesOf("demo", audit.ProfileCorrected)); n != 0 {
		t.Errorf("%d profile_corrected entries, want none", n)
	}
}

// A stolen session gains no password guesses: the check is under the
// sign-in throttle of the operator's address.
func TestUpdateMyProfile_PasswordGuessesAreThrottled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	bob := e.createOperator(admin, "bob@example.com", "Bob")
	free := DefaultLoginLimits().FreeFailures
	for i := range free {
		_, err := bob.updateProfile("Robert", "robert@example.com", "wrong-password-"+string(rune('a'+i)))
		wantCode(t, "a wrong guess", err, connect.CodePermissionDenied)
	}
	_, err := bob.updateProfile("Robert", "robert@example.com", operatorPassword)
	wantCode(t, "the right password after the free failures", err, connect.CodeResourceExhausted)
	wantCode(t, "signing in from the same address", e.newOperator().login("bob@example.com", operatorPassword), connect.CodeResourceExhausted)
	e.clock.add(time.Hour)
	if _, err := bob.updateProfile("Robert", "robert@example.com", operatorPassword); err != nil {
		t.Fatalf("after the wait: %v", err)
	}
}

func TestDeleteMe_TheLastAdminCannot(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	err := admin.deleteMe(e.adminPassword)
	wantCode(t, "the only admin deleting themself", err, connect.CodeFailedPrecondition)
	if !strings.Contains(messageOf(err), "last admin") {
		t.Errorf("message %q does not say why", messageOf(err))
	}
	// A disabled admin is no admin to leave the account to.
	_, err = admin.account.CreateOperator(context.Background(), connect.NewRequest(&accountv1.CreateOperatorRequest{
		Email: "ann@example.com", Name: "Ann", Password: operatorPassword, Role: accountv1.Role_ROLE_ADMIN}))
	if err != nil {
		t.Fatal(err)
	}
	ann := e.login("ann@example.com", operatorPassword)
	if _, err := admin.setDisabled(ann.me.Id, true); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "with the other admin disabled", admin.deleteMe(e.adminPassword), connect.CodeFailedPrecondition)
	if _, err := admin.getMe(); err != nil {
		t.Fatalf("the admin is gone: %v", err)
	}

	if _, err := admin.setDisabled(ann.me.Id, false); err != nil {
		t.Fatal(err)
	}
	if err := admin.deleteMe(e.adminPassword); err != nil {
		t.Fatalf("with another admin enabled: %v", err)
	}
	ann = e.login("ann@example.com", operatorPassword)
	wantCode(t, "then the other admin", ann.deleteMe(operatorPassword), connect.CodeFailedPrecondition)
}

func TestDeleteMe_WrongPasswordIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	bob := e.createOperator(admin, "bob@example.com", "Bob")
	err := bob.deleteMe("wrong-password-1")
	wantCode(t, "DeleteMyAccount", err, connect.CodePermissionDenied)
	if _, err := bob.getMe(); err != nil {
		t.Fatalf("Bob is gone: %v", err)
	}
	if n := len(e.entriesOf("demo", audit.OperatorDeleted)); n != 0 {
		t.Errorf("%d operator_deleted entries", n)
	}
}

func TestDeleteMe_DeletesTheOperatorAndEndsEverySession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	bob := e.createOperator(admin, "bob@example.com", "Bob")
	phone := e.login("bob@example.com", operatorPassword)
	old := bob.cookie()
	before := e.countOperators()

	if err := bob.deleteMe(operatorPassword); err != nil {
		t.Fatalf("DeleteMyAccount: %v", err)
	}
	if n := e.countOperators(); n != before-1 {
		t.Errorf("%d operators, want %d", n, before-1)
	}
	for name, o := range map[string]*operator{"the deleting console": bob, "his phone": phone} {
		_, err := o.getMe()
		wantCode(t, name, err, connect.CodeUnauthenticated)
	}
	res := e.post(accountv1connect.AccountServiceGetMeProcedure, "{}", withCookie(old))
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("the old cookie: HTTP %d, want 401", res.StatusCode)
	}
	wantCode(t, "signing in again", e.newOperator().login("bob@example.com", operatorPassword), connect.CodeUnauthenticated)
	if !slices.Contains(e.signOuts.list(), bob.me.Id) {
		t.Error("OnSignOut was not told (his chats stay his)")
	}
	if ops := admin.operators(); slices.ContainsFunc(ops, func(o *accountv1.Operator) bool { return o.Id == bob.me.Id }) {
		t.Error("Bob is still listed")
	}
	del := e.entriesOf("demo", audit.OperatorDeleted)
	if len(del) != 1 || del[0].ActorID != bob.me.Id || del[0].TargetID != bob.me.Id {
		t.Errorf("operator_deleted entries = %+v", del)
	}
	about, err := e.audit.About(context.Background(), "demo", bob.me.Id, 100)
	if err != nil {
		t.Fatal(err)
	}
	var acts []string
	for _, x := range about {
		acts = append(acts, x.Action)
	}
	if !slices.Contains(acts, audit.OperatorCreated) || !slices.Contains(acts, audit.Login) {
		t.Errorf("entries about Bob after his deletion = %v, want his past ones kept", acts)
	}
}

// A session whose operator row is gone is refused, whatever removed it.
func TestSession_OfADeletedOperatorIsUnauthenticated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	bob := e.createOperator(admin, "bob@example.com", "Bob")
	if err := e.store.DeleteOperator(context.Background(), bob.me.Id); err != nil {
		t.Fatal(err)
	}
	_, err := bob.getMe()
	wantCode(t, "GetMe", err, connect.CodeUnauthenticated)
	_, err = bob.privacy.ListMySessions(context.Background(), connect.NewRequest(&privacyv1.ListMySessionsRequest{}))
	wantCode(t, "ListMySessions", err, connect.CodeUnauthenticated)
}

func TestMe_ReturnsTheOperatorAndAccountName(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	bob := e.createOperator(admin, "bob@example.com", "Bob")
	res, err := bob.privacy.ExportMyAccount(context.Background(), connect.NewRequest(&privacyv1.ExportMyAccountRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	x := res.Msg.Export
	if x.Operator.Id != bob.me.Id || x.Operator.Email != "bob@example.com" || x.AccountName == "" || len(x.Sessions) != 1 {
		t.Fatalf("export = %v", x)
	}
}
