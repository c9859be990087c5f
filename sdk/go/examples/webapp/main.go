// Command webapp is a tiny website that embeds the Lethe widget and tells
// Lethe, verifiably, who the signed-in customer is: for every page it mints a
// single-use ticket with the Go SDK (using an account API key that stays on
// the server) and hands it to the widget with data-ticket. The page also
// shares unverified data with Lethe.setCustomData.
//
//	LETHE_API_KEY=lk_... go run ./sdk/go/examples/webapp -lethe http://127.0.0.1:8080 -addr 127.0.0.1:8081
//
// List the site's origin (http://127.0.0.1:8081) among the account's website
// origins in the console (or start Lethe with --demo-origins) so the widget
// may load there.
package main

import (
	"context"
	"flag"
	"fmt"
	"html/template"
	"log"
	"net/http"
	"os"
	"time"

	lethe "github.com/lethehq/lethe/sdk/go"
)

// site serves the pages.
type site struct {
	letheURL string
	account  string
	lethe    *lethe.Integrator
}

func newSite(letheURL, account, apiKey string) http.Handler {
	s := &site{letheURL: letheURL, account: account, lethe: lethe.NewIntegrator(http.DefaultClient, letheURL, apiKey)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.page("Home", "Welcome to the Example Shop."))
	mux.HandleFunc("GET /pricing", s.page("Pricing", "Pro plan: 29 € a month."))
	return mux
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} — Example Shop</title></head>
<body>
<nav><a href="/">Home</a> · <a href="/pricing">Pricing</a></nav>
<h1>{{.Title}}</h1><p>{{.Body}}</p>
<script async src="{{.LetheURL}}/widget.js" data-account="{{.Account}}" data-ticket="{{.Ticket}}"></script>
<script>
window.addEventListener("load", function () {
  if (window.Lethe) window.Lethe.setCustomData({ cart_items: "3", page_section: {{.Title}} });
});
</script>
</body></html>
`))

// page renders a page for the signed-in customer (a fixed demo customer
// here; your app knows who is signed in).
func (s *site) page(title, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		ticket, err := s.lethe.MintTicket(ctx, map[string]string{"customer_id": "C-1042", "plan": "pro", "email_verified": "yes"}, 0)
		if err != nil {
			// The page works without the chat's verified data.
			log.Printf("webapp: mint ticket: %v", err)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		pageTmpl.Execute(w, map[string]string{"Title": title, "Body": body, "LetheURL": s.letheURL, "Account": s.account, "Ticket": ticket.Value})
	}
}

func main() {
	letheURL := flag.String("lethe", "http://127.0.0.1:8080", "Lethe server URL")
	account := flag.String("account", "demo", "Lethe account id")
	addr := flag.String("addr", "127.0.0.1:8081", "listen address")
	flag.Parse()
	key := os.Getenv("LETHE_API_KEY")
	if key == "" {
		fmt.Fprintln(os.Stderr, "webapp: set LETHE_API_KEY (create one in the console: Settings → API keys)")
		os.Exit(2)
	}
	fmt.Printf("Example Shop on http://%s\n", *addr)
	log.Fatal(http.ListenAndServe(*addr, newSite(*letheURL, *account, key)))
}
