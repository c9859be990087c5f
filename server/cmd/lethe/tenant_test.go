package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/lethehq/lethe/server/chat/chattest"

	"connectrpc.com/connect"
	"github.com/alexedwards/argon2id"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	lethe "github.com/lethehq/lethe/sdk/go"
	"github.com/lethehq/lethe/server/account"
	"github.com/lethehq/lethe/server/store"
)

// addTenant creates a second account with one admin directly in the
// durable store (there is no RPC to create accounts yet) and returns the
// admin signed in.
func addTenant(t *testing.T, ts *testServer) *lethe.Operator {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(filepath.Join(ts.dir, "lethe.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := account.NewStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAccount(ctx, account.Account{ID: "other", Name: "Other Inc", AllowedOrigins: []string{"https://other.example"}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	hash, err := argon2id.CreateHash("other-password-1", argon2id.DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateOperator(ctx, account.Operator{ID: "otheradmin000000", AccountID: "other", Email: "admin@other.example",
		Name: "Other Admin", PasswordHash: hash, Role: account.RoleAdmin, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return ts.login("admin@other.example", "other-password-1")
}

// P11: nothing of account A is visible to or changeable by account B.
func TestTenants_AreIsolated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestServer(t)
	demoAdmin := ts.admin()
	other := addTenant(t, ts)
	otherInbox := watchInbox(t, other)
	demoInbox := watchInbox(t, demoAdmin)

	v := ts.startChat("Tess", "tess@example.com", "for demo only")
	demoInbox.Next("demo sees its chat", chattest.ChatUpdated(v.ChatID, chatv1.ChatState_CHAT_STATE_WAITING))

	wantCode(t, other.Accept(ctx, v.ChatID), connect.CodeNotFound)
	wantCode(t, other.Close(ctx, v.ChatID), connect.CodeNotFound)
	if err := demoAdmin.Accept(ctx, v.ChatID); err != nil {
		t.Fatal(err)
	}
	_, err := other.Send(ctx, v.ChatID, "x")
	wantCode(t, err, connect.CodeNotFound)
	wantCode(t, other.Typing(ctx, v.ChatID, true), connect.CodeNotFound)
	// The demo admin cannot hand the chat to another account's operator.
	wantCode(t, demoAdmin.Transfer(ctx, v.ChatID, other.Me.Id), connect.CodeNotFound)
	_, err = other.Account.SetOperatorDisabled(ctx, connect.NewRequest(&accountv1.SetOperatorDisabledRequest{OperatorId: demoAdmin.Me.Id, Disabled: true}))
	wantCode(t, err, connect.CodeNotFound)
	list, err := other.Account.ListOperators(ctx, connect.NewRequest(&accountv1.ListOperatorsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Msg.Operators) != 1 || list.Msg.Operators[0].Id != other.Me.Id {
		t.Fatalf("other account lists %v", list.Msg.Operators)
	}

	if _, err := v.Send(ctx, "still private"); err != nil {
		t.Fatal(err)
	}
	demoInbox.Next("demo sees seq 4", chattest.InboxEvent(v.ChatID, 4))
	if err := demoAdmin.Close(ctx, v.ChatID); err != nil {
		t.Fatal(err)
	}
	demoInbox.Next("demo sees removal", chattest.ChatRemoved(v.ChatID))
	for _, r := range append(otherInbox.Seen, otherInbox.Rest()...) {
		if r.GetChatUpdated() != nil || r.GetEvent() != nil || r.GetChatRemoved() != nil {
			t.Fatalf("the other account's inbox saw %v", r)
		}
		if p := r.GetPresence(); p != nil && p.OperatorId != other.Me.Id {
			t.Fatalf("the other account's inbox saw the presence of %v", p)
		}
	}
	// Presence is per account: the other account's online admin does not
	// make the demo account look staffed once its admin leaves.
	cfg, err := ts.visitor().Chat.GetWidgetConfig(ctx, connect.NewRequest(&chatv1.GetWidgetConfigRequest{AccountId: "other"}))
	if err != nil || cfg.Msg.AccountName != "Other Inc" || !cfg.Msg.OperatorsOnline {
		t.Fatalf("other's widget config = %v, %v", cfg, err)
	}
	demoInbox.Stop()
	demoInbox.Wait()
	waitOperatorsOnline(t, ts, false)
}
