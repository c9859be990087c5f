package lethe_test

import (
	"context"
	"fmt"
	"net/http"

	lethe "github.com/lethehq/lethe/sdk/go"
)

// A visitor accepts the consent text, starts a chat and prints what happens
// in it until it closes. (examples/quickstart runs the same against a server.)
func Example_visitor() {
	ctx := context.Background()
	v := lethe.NewVisitor(http.DefaultClient, "http://localhost:8080")
	texts, err := v.ConsentTexts(ctx, "demo", "en")
	if err != nil {
		fmt.Println("consent:", err)
		return
	}
	// Show texts.Prechat.Text; once the visitor accepts it, send its version.
	form := lethe.StartChat{AccountID: "demo", Name: "Ada", FirstMessage: "Hello!",
		Locale: "en", ConsentVersion: texts.Prechat.GetVersion()}
	if err := v.Start(ctx, form); err != nil {
		fmt.Println("start:", err)
		return
	}
	_ = v.Watch(ctx, 0, func(r *lethe.WatchChatResponse) error {
		if m := r.Event.GetMessage(); m != nil {
			fmt.Printf("%s: %s\n", m.AuthorName, m.Text)
		}
		return nil
	})
}
