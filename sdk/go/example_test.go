package lethe_test

import (
	"context"
	"fmt"
	"net/http"

	lethe "github.com/lethehq/lethe/sdk/go"
)

// A visitor starts a chat and prints what happens in it until it closes.
func Example_visitor() {
	ctx := context.Background()
	v := lethe.NewVisitor(http.DefaultClient, "http://localhost:8080")
	if err := v.Start(ctx, lethe.StartChat{AccountID: "demo", Name: "Ada", FirstMessage: "Hello!"}); err != nil {
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
