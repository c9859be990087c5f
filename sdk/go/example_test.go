package lethe_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
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

// A visitor sends a PDF into their chat, with progress, and downloads a
// file the operator sent. SendFile resumes after a network error and
// cancels the upload on the server when ctx ends.
func Example_files() {
	ctx := context.Background()
	v := lethe.NewVisitor(http.DefaultClient, "http://localhost:8080")
	if err := v.Start(ctx, lethe.StartChat{AccountID: "demo", Name: "Ada", FirstMessage: "Here is the invoice."}); err != nil {
		fmt.Println("start:", err)
		return
	}
	f, err := os.Open("invoice.pdf")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		fmt.Println(err)
		return
	}
	ev, err := v.SendFile(ctx, "invoice.pdf", f, st.Size(), lethe.UploadOptions{
		DeclaredType: "application/pdf",
		Progress:     func(sent, total int64) { fmt.Printf("\r%d%%", sent*100/total) },
	})
	if err != nil {
		fmt.Println("send:", err)
		return
	}
	fmt.Println("\nsent", ev.GetFile().Name, ev.GetFile().Sha256)

	// Files the operator sends arrive as FileShared events.
	_ = v.Watch(ctx, 0, func(r *lethe.WatchChatResponse) error {
		fs := r.Event.GetFile()
		if fs == nil || fs.AuthorKind != chatv1.AuthorKind_AUTHOR_KIND_OPERATOR {
			return nil
		}
		out, err := os.CreateTemp("", "lethe-*-"+filepath.Base(fs.Name))
		if err != nil {
			return err
		}
		defer out.Close()
		// Download checks the SHA-256 at the end (lethe.ErrChecksum).
		_, err = v.Download(ctx, fs.FileId, out, nil)
		return err
	})
}
