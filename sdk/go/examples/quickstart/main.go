// Command quickstart runs the Go SDK's three clients against a Lethe server:
// an operator signs in and answers chats from the inbox, a visitor accepts
// the consent text, starts a chat, reads the answer and ends the chat, and
// (with an API key) an integrator mints a ticket. The snippets in
// sdk/go/README.md are taken from this file, and its test runs it against
// the real server.
//
//	LETHE_API_KEY=lk_... go run ./sdk/go/examples/quickstart \
//	    -lethe http://127.0.0.1:8080 -email admin@lethe.local -password '...'
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	lethe "github.com/lethehq/lethe/sdk/go"
)

func main() {
	base := flag.String("lethe", "http://127.0.0.1:8080", "the Lethe server")
	account := flag.String("account", "demo", "the account id")
	email := flag.String("email", "admin@lethe.local", "an operator's e-mail address")
	password := flag.String("password", "", "the operator's password")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, *base, *account, *email, *password, os.Getenv("LETHE_API_KEY"), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run answers chats as the operator while a visitor has one chat, then
// mints a ticket if apiKey is set.
func run(ctx context.Context, base, account, email, password, apiKey string, out io.Writer) error {
	opCtx, stopOperator := context.WithCancel(ctx)
	defer stopOperator()
	ready := make(chan error, 1)
	go func() {
		if err := answerChats(opCtx, base, email, password, ready); err != nil && opCtx.Err() == nil {
			log.Printf("operator: %v", err)
		}
	}()
	if err := <-ready; err != nil {
		return fmt.Errorf("operator: %w", err)
	}
	if err := chatAsVisitor(ctx, base, account, out); err != nil {
		return fmt.Errorf("visitor: %w", err)
	}
	if apiKey == "" {
		return nil
	}
	ticket, err := mintTicket(ctx, base, apiKey)
	if err != nil {
		return fmt.Errorf("integrator: %w", err)
	}
	fmt.Fprintf(out, "ticket valid until %s\n", ticket.ExpiresAt.Format(time.RFC3339))
	return nil
}

// chatAsVisitor does what the widget does.
func chatAsVisitor(ctx context.Context, base, account string, out io.Writer) error {
	v := lethe.NewVisitor(http.DefaultClient, base)

	// Where the account requires consent, show its text and pass the
	// version the visitor accepted; the server refuses the chat otherwise.
	texts, err := v.ConsentTexts(ctx, account, "en")
	if err != nil {
		return err
	}
	form := lethe.StartChat{AccountID: account, Name: "Ada", FirstMessage: "Hello!", Locale: "en"}
	if texts.Prechat.GetVersion() > 0 {
		fmt.Fprintln(out, "consent:", texts.Prechat.Text) // shown to, and accepted by, the visitor
		form.ConsentVersion = texts.Prechat.Version
	}
	if err := v.Start(ctx, form); err != nil {
		return err
	}

	// Watch resumes after any disconnect and returns nil once the chat closes.
	return v.Watch(ctx, 0, func(r *lethe.WatchChatResponse) error {
		m := r.Event.GetMessage()
		if m == nil {
			return nil
		}
		fmt.Fprintf(out, "%s: %s\n", m.AuthorName, m.Text)
		if m.AuthorKind == chatv1.AuthorKind_AUTHOR_KIND_OPERATOR {
			return v.End(ctx) // the closed event that follows ends Watch
		}
		return nil
	})
}

// answerChats does what an operator does in the console: it accepts every
// waiting chat and answers every visitor message. It reports on ready when
// it is online.
func answerChats(ctx context.Context, base, email, password string, ready chan<- error) error {
	op := lethe.NewOperator(http.DefaultClient, base)
	err := op.Login(ctx, email, password)
	if err == nil {
		err = op.SetStatus(ctx, chatv1.OperatorStatus_OPERATOR_STATUS_ONLINE)
	}
	ready <- err
	if err != nil {
		return err
	}

	// WatchInbox resumes after any disconnect; every chat's events arrive once.
	return op.WatchInbox(ctx, func(r *chatv1.WatchInboxResponse) error {
		switch k := r.Kind.(type) {
		case *chatv1.WatchInboxResponse_ChatUpdated:
			if k.ChatUpdated.State == chatv1.ChatState_CHAT_STATE_WAITING {
				err := op.Accept(ctx, k.ChatUpdated.ChatId)
				if connect.CodeOf(err) == connect.CodeFailedPrecondition {
					return nil // taken by someone else or closed meanwhile
				}
				return err
			}
		case *chatv1.WatchInboxResponse_Event:
			m := k.Event.GetMessage()
			if m != nil && m.AuthorKind == chatv1.AuthorKind_AUTHOR_KIND_VISITOR {
				_, err := op.Send(ctx, k.Event.ChatId, "Hi "+m.AuthorName+", how can I help?")
				return err
			}
		}
		return nil
	})
}

// mintTicket is a website's back end vouching for its signed-in customer.
func mintTicket(ctx context.Context, base, apiKey string) (lethe.Ticket, error) {
	in := lethe.NewIntegrator(http.DefaultClient, base, apiKey) // the key never leaves your server
	return in.MintTicket(ctx, map[string]string{"customer_id": "C-1042", "plan": "pro"}, 5*time.Minute)
}
