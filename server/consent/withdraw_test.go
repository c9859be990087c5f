package consent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"

	consentv1 "github.com/lethehq/lethe/gen/go/lethe/consent/v1"
	"github.com/lethehq/lethe/gen/go/lethe/consent/v1/consentv1connect"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/errs"
)

func withdraw(chatID string) *connect.Request[consentv1.WithdrawConsentRequest] {
	return connect.NewRequest(&consentv1.WithdrawConsentRequest{ChatId: chatID})
}

func TestWithdrawConsent_EndsTheVisitorsOwnChat(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v := e.visitor(&auth.Visitor{ID: "v-1", AccountID: "acct-a", ChatID: "chat-1"})
	if _, err := v.WithdrawConsent(context.Background(), withdraw("chat-1")); err != nil {
		t.Fatalf("WithdrawConsent: %v", err)
	}
	if got := e.withdrawals.called(); !slices.Equal(got, []string{"chat-1"}) {
		t.Fatalf("the chat service was asked to end %v, want [chat-1]", got)
	}
}

func TestWithdrawConsent_RefusesBadCalls(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v := e.visitor(&auth.Visitor{ID: "v-1", AccountID: "acct-a", ChatID: "chat-1"})
	e.visitor(&auth.Visitor{ID: "v-2", AccountID: "acct-a", ChatID: "chat-2"})
	for _, c := range []struct {
		name   string
		client consentv1connect.ConsentServiceClient
		chatID string
		code   connect.Code
	}{
		{"another visitor's chat", v, "chat-2", connect.CodePermissionDenied},
		{"no chat id", v, "", connect.CodeInvalidArgument},
		{"no token", e.anonymous(), "chat-1", connect.CodeUnauthenticated},
		{"an admin's session", e.as(opA), "chat-1", connect.CodeUnauthenticated},
	} {
		_, err := c.client.WithdrawConsent(context.Background(), withdraw(c.chatID))
		wantCode(t, c.name, err, c.code)
	}
	if got := e.withdrawals.called(); len(got) != 0 {
		t.Fatalf("refused calls asked the chat service to end %v", got)
	}
}

func TestWithdrawConsent_AnswersWhatTheChatServiceSays(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v := e.visitor(&auth.Visitor{ID: "v-1", AccountID: "acct-a", ChatID: "chat-1"})
	for _, c := range []struct {
		name   string
		answer error
		code   connect.Code // 0: OK
	}{
		// A chat that already ended has nothing left to withdraw from.
		{"already closed", errs.Precondition("the chat is already closed"), 0},
		{"already closed, wrapped", fmt.Errorf("withdraw chat-1: %w", errs.Precondition("the chat is already closed")), 0},
		{"not found", errs.NotFound("no such chat"), connect.CodeNotFound},
		{"storage failure", errors.New("disk I/O error in DELETE FROM messages"), connect.CodeInternal},
	} {
		e.withdrawals.answer(c.answer)
		_, err := v.WithdrawConsent(context.Background(), withdraw("chat-1"))
		if c.code == 0 {
			if err != nil {
				t.Errorf("%s: WithdrawConsent = %v, want OK", c.name, err)
			}
			continue
		}
		wantCode(t, c.name, err, c.code)
		if strings.Contains(err.Error(), "DELETE") {
			t.Errorf("%s: the storage detail reached the visitor: %v", c.name, err)
		}
	}
	if n := len(e.withdrawals.called()); n != 4 {
		t.Fatalf("the chat service was asked %d times, want 4", n)
	}
}
