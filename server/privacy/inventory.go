package privacy

import (
	"context"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/dustin/go-humanize"
	"google.golang.org/protobuf/types/known/timestamppb"

	privacyv1 "github.com/lethehq/lethe/gen/go/lethe/privacy/v1"
	"github.com/lethehq/lethe/server/audit"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/errs"
)

// Paths of the HTTP endpoints.
const (
	// InventoryPath is the public data inventory (plain HTML, no script).
	InventoryPath = "/privacy"
	// AuditPath downloads the account's audit trail as JSON Lines (admins).
	AuditPath = "/privacy/audit.jsonl"
)

// KeysWindow is how far back the inventory lists custom data keys.
const KeysWindow = 24 * time.Hour

// Where data lives, for the inventory.
const (
	whereScratch = "scratch.db on the Lethe server (deleted with secure_delete, write-ahead log truncated)"
	whereDurable = "lethe.db on the Lethe server"
)

// GetDataInventory implements PrivacyServiceHandler.
func (s *Service) GetDataInventory(ctx context.Context, _ *connect.Request[privacyv1.GetDataInventoryRequest]) (*connect.Response[privacyv1.GetDataInventoryResponse], error) {
	op, err := operator(ctx)
	if err != nil {
		return nil, err
	}
	inv, err := s.Inventory(ctx, op.AccountID)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&privacyv1.GetDataInventoryResponse{Inventory: inv}), nil
}

// duration says a duration for people: "10 minutes", "2 hours".
func duration(d time.Duration) string {
	switch {
	case d <= 0:
		return "no time"
	case d%(24*time.Hour) == 0:
		return plural(int(d/(24*time.Hour)), "day")
	case d%time.Hour == 0:
		return plural(int(d/time.Hour), "hour")
	case d%time.Minute == 0:
		return plural(int(d/time.Minute), "minute")
	default:
		return plural(int(d.Round(time.Second)/time.Second), "second")
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// Inventory is the account's data inventory, generated from its live
// configuration and the server's.
func (s *Service) Inventory(ctx context.Context, accountID string) (*privacyv1.DataInventory, error) {
	info, err := s.accounts.Info(ctx, accountID)
	if gone(err) {
		return nil, errs.NotFound("no such account")
	}
	if err != nil {
		return nil, err
	}
	keys, err := s.visits.CustomDataKeys(ctx, accountID, s.opts.Now().Add(-KeysWindow))
	if err != nil {
		return nil, err
	}
	mailOn := s.mail != nil && s.opts.MailRelay != ""
	inv := &privacyv1.DataInventory{
		GeneratedAt:           timestamppb.New(s.opts.Now()),
		AccountName:           info.Name,
		IpHidden:              info.HideIP,
		TranscriptsEnabled:    info.TranscriptsEnabled && mailOn,
		GpcHonoured:           !info.GPCIgnored,
		GpcIgnoredReason:      info.GPCIgnoredReason,
		CustomDataKeys:        keys,
		VisitRetentionMinutes: int32(s.opts.VisitRetention / time.Minute),
		AuditRetentionDays:    int32(info.AuditRetention / (24 * time.Hour)),
	}
	if mailOn {
		inv.MailRelay = s.opts.MailRelay
		inv.MailRecipients = slices.Clone(info.Recipients)
	}
	ip := "the IP address and host name"
	if info.HideIP {
		ip = "not the IP address or host name (the account hides them: they are dropped on arrival)"
	}
	operators := "the account's operators"
	mailRcpt := func() []string {
		out := []string{operators}
		if mailOn && len(info.Recipients) > 0 {
			out = append(out, "by e-mail: "+strings.Join(info.Recipients, ", "), "the mail relay "+s.opts.MailRelay)
		}
		return out
	}
	hold := duration(s.opts.MailMaxHold)

	chatRetention := "While the chat is open; destroyed when it closes. A chat whose visitor has been gone " +
		duration(info.IdleTimeout) + " is closed."
	if inv.TranscriptsEnabled {
		chatRetention += " A transcript is e-mailed at the close and the chat destroyed once the mail server accepts it (at most " + hold + " later)."
	}
	chats := &privacyv1.DataCategory{Name: "Chats",
		What:       "The name and e-mail address the visitor gives, the messages of the visitor and the operators, the consent accepted (version, language, time), and " + ip + ".",
		Where:      whereScratch,
		Retention:  chatRetention,
		Recipients: []string{operators},
	}
	if inv.TranscriptsEnabled {
		chats.Recipients = mailRcpt()
	}
	inv.Categories = append(inv.Categories, chats)
	if !info.FilesDisabled {
		inv.Categories = append(inv.Categories, &privacyv1.DataCategory{Name: "Files in chats",
			What:       fmt.Sprintf("Files the visitor and the operator send in a chat (at most %s each, %s a chat), encrypted with AES-256-GCM under a key of the chat.", humanize.IBytes(uint64(info.MaxFileBytes)), humanize.IBytes(uint64(info.MaxChatFileBytes))),
			Where:      "Ciphertext beside scratch.db on the Lethe server; the key in scratch.db",
			Retention:  "Destroyed when the chat closes: the key first, then the ciphertext.",
			Recipients: []string{"the chat's visitor and its operator"},
		})
	}
	monitoring := &privacyv1.DataCategory{Name: "Visitor monitoring",
		What:       "Pages viewed, time on site, browser and operating system, location (city, region, country, postal code), internet provider, custom data the site passes in, and " + ip + ".",
		Where:      whereScratch,
		Retention:  "While the visitor is on the site and " + duration(s.opts.VisitRetention) + " after they leave.",
		Recipients: []string{operators},
	}
	if info.MonitoringDisabled {
		monitoring.What += " Visitors who do not open the chat: nothing is recorded; a visit is recorded from the moment the visitor opens the chat."
	}
	if inv.GpcHonoured {
		monitoring.What += " Nothing for a browser that sends Global Privacy Control."
	} else {
		monitoring.What += " Global Privacy Control is not honoured: " + info.GPCIgnoredReason
	}
	inv.Categories = append(inv.Categories, monitoring)
	if mailOn && len(info.Recipients) > 0 {
		inv.Categories = append(inv.Categories, &privacyv1.DataCategory{Name: "Offline messages",
			What:       "The name, e-mail address and message a visitor leaves when no operator is online, and " + ip + ".",
			Where:      "The mail queue in scratch.db, then the mail relay",
			Retention:  "Until the mail server accepts it, at most " + hold + "; then destroyed.",
			Recipients: mailRcpt()[1:],
		})
	}
	inv.Categories = append(inv.Categories,
		&privacyv1.DataCategory{Name: "Operators",
			What:       "Each operator's name, sign-in address, role and password hash (argon2id); their sessions (sign-in time, browser, network).",
			Where:      whereDurable,
			Retention:  "Until the operator is deleted; a session for at most 12 hours (2 hours idle).",
			Recipients: []string{"the account's admins"},
		},
		&privacyv1.DataCategory{Name: "Audit trail",
			What:       "Who did what and when: ids, action names, setting names, counts and receipt ids. Never what was said, names, visitor e-mail addresses or visitor IP addresses.",
			Where:      whereDurable,
			Retention:  duration(info.AuditRetention) + ".",
			Recipients: []string{"the account's admins"},
		},
	)
	return inv, nil
}

// publicPage is the inventory as the public sees it: plain HTML, no script.
var publicPage = template.Must(template.New("privacy").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Live chat: what {{.AccountName}} holds about you</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1f2937}
h1{font-size:1.5rem}h2{font-size:1.1rem;margin:1.5rem 0 .25rem}
dl{display:grid;grid-template-columns:9rem 1fr;gap:.25rem 1rem;margin:0}dt{font-weight:600;color:#4b5563}dd{margin:0}
.meta{color:#6b7280;font-size:.9rem}code{background:#f3f4f6;padding:0 .25rem;border-radius:3px}
</style></head><body>
<h1>Live chat on {{.AccountName}}: what is held about you</h1>
<p>The chat on this site runs on Lethe. Everything below is generated from its live configuration.
From the chat window you can see, download, correct and erase what is held about you at any moment ("Your data").</p>
<ul>
<li>IP address and host name: {{if .IpHidden}}not stored (hidden){{else}}stored with the chat and the visit{{end}}.</li>
<li>Global Privacy Control: {{if .GpcHonoured}}honoured — no monitoring record for a browser that sends it{{else}}not honoured: {{.GpcIgnoredReason}}{{end}}.</li>
<li>Transcripts by e-mail: {{if .TranscriptsEnabled}}on{{else}}off{{end}}.</li>
{{if .MailRelay}}<li>Mail leaves through the relay <code>{{.MailRelay}}</code>{{if .RecipientDomains}} to addresses at {{.RecipientDomains}}{{end}}.</li>{{end}}
<li>Custom data keys received in the last 24 hours: {{if .CustomDataKeys}}{{range $i, $k := .CustomDataKeys}}{{if $i}}, {{end}}<code>{{$k}}</code>{{end}}{{else}}none{{end}}.</li>
</ul>
{{range .Categories}}<h2>{{.Name}}</h2>
<dl><dt>What</dt><dd>{{.What}}</dd><dt>Where</dt><dd>{{.Where}}</dd><dt>For how long</dt><dd>{{.Retention}}</dd>
<dt>Who receives it</dt><dd>{{range $i, $r := .Recipients}}{{if $i}}; {{end}}{{$r}}{{end}}</dd></dl>
{{end}}
<p class="meta">Generated {{.Generated}}.</p>
</body></html>
`))

// recipientDomains names the domains mail goes to, for the public page
// (the addresses themselves are shown to the account's operators only).
func recipientDomains(rcpts []string) string {
	var ds []string
	for _, r := range rcpts {
		if _, d, ok := strings.Cut(r, "@"); ok && !slices.Contains(ds, d) {
			ds = append(ds, d)
		}
	}
	return strings.Join(ds, ", ")
}

// publicRecipients strips the mail addresses from the category recipients.
func publicRecipients(inv *privacyv1.DataInventory) {
	for _, c := range inv.Categories {
		for i, r := range c.Recipients {
			if strings.HasPrefix(r, "by e-mail: ") {
				c.Recipients[i] = "by e-mail, to addresses at " + recipientDomains(inv.MailRecipients)
			}
		}
	}
}

// InventoryHandler serves the public inventory: GET /privacy?account=<id>.
func (s *Service) InventoryHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if err := s.throttle(r.Context()); err != nil {
			h.Set("Retry-After", "60")
			http.Error(w, err.Error(), http.StatusTooManyRequests)
			return
		}
		account := r.URL.Query().Get("account")
		if account == "" {
			account = s.opts.DefaultAccount
		}
		inv, err := s.Inventory(r.Context(), account)
		if gone(err) {
			http.Error(w, "no such account", http.StatusNotFound)
			return
		}
		if err != nil {
			s.log.ErrorContext(r.Context(), "privacy inventory", slog.String("error", err.Error()))
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		publicRecipients(inv)
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		publicPage.Execute(w, struct {
			*privacyv1.DataInventory
			RecipientDomains string
			Generated        string
		}{inv, recipientDomains(inv.MailRecipients), inv.GeneratedAt.AsTime().UTC().Format("2 January 2006, 15:04 UTC")})
	})
}

// AdminFunc resolves the admin signed in on an HTTP request (the session
// middleware has loaded the session): Unauthenticated or PermissionDenied
// otherwise.
type AdminFunc func(ctx context.Context) (*auth.Operator, error)

// AuditHandler serves GET /privacy/audit.jsonl: the admin's account's audit
// trail, oldest first, one JSON object (an AuditEntry) per line.
func (s *Service) AuditHandler(admin AdminFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op, err := admin(r.Context())
		if err != nil {
			code := http.StatusUnauthorized
			if errs.CodeOf(err) == connect.CodePermissionDenied {
				code = http.StatusForbidden
			}
			http.Error(w, err.Error(), code)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/jsonl; charset=utf-8")
		h.Set("Content-Disposition", `attachment; filename="lethe-audit.jsonl"`)
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		if err := s.audit.WriteJSONLines(r.Context(), w, op.AccountID); err != nil {
			s.log.ErrorContext(r.Context(), "audit export", slog.String("error", err.Error()))
			return
		}
		s.audit.Record(r.Context(), audit.Entry{AccountID: op.AccountID, ActorKind: audit.ActorOperator, ActorID: op.ID,
			Action: audit.AuditExported, At: s.opts.Now()})
	})
}
