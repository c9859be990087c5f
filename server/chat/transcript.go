package chat

import (
	"bytes"
	htmltemplate "html/template"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
)

func nowProto() *timestamppb.Timestamp { return timestamppb.Now() }

// rendered is a mail's subject and bodies.
type rendered struct{ Subject, Text, HTML string }

type transcriptLine struct {
	Time   string
	Author string
	Kind   string // "visitor", "operator", "system"
	Text   string
}

type transcriptData struct {
	Account     string
	VisitorName string
	Email       string
	IP, Host    string
	Started     string
	// Consent is the consent receipt ("" when the chat had none).
	Consent string
	Lines   []transcriptLine
}

const timeLayout = "2006-01-02 15:04:05 MST"

func lineOf(ev *chatv1.ChatEvent) (transcriptLine, bool) {
	t := ev.GetTime().AsTime().UTC().Format("15:04:05")
	switch k := ev.Kind.(type) {
	case *chatv1.ChatEvent_Message:
		kind := "visitor"
		if k.Message.AuthorKind == chatv1.AuthorKind_AUTHOR_KIND_OPERATOR {
			kind = "operator"
		}
		return transcriptLine{Time: t, Author: k.Message.AuthorName, Kind: kind, Text: k.Message.Text}, true
	case *chatv1.ChatEvent_File:
		// Name and size only: the bytes are destroyed with the chat and
		// never travel by mail.
		f := k.File
		return transcriptLine{Time: t, Kind: "system", Text: oneLine(f.AuthorName) + " sent a file: " + oneLine(f.Name) + " (" + formatSize(f.Size) + ")"}, true
	case *chatv1.ChatEvent_OperatorJoined:
		return transcriptLine{Time: t, Kind: "system", Text: k.OperatorJoined.OperatorName + " joined the chat"}, true
	case *chatv1.ChatEvent_OperatorLeft:
		return transcriptLine{Time: t, Kind: "system", Text: k.OperatorLeft.OperatorName + " left the chat"}, true
	case *chatv1.ChatEvent_VisitorUpdated:
		// The header carries the corrected name and address.
		return transcriptLine{Time: t, Kind: "system", Text: "The visitor corrected their name and e-mail address"}, true
	case *chatv1.ChatEvent_Closed:
		text := "Chat closed"
		switch {
		case k.Closed.Reason != "":
			text += " (" + k.Closed.Reason + ")"
		case k.Closed.ClosedBy == chatv1.AuthorKind_AUTHOR_KIND_VISITOR:
			text += " by the visitor"
		case k.Closed.ClosedBy == chatv1.AuthorKind_AUTHOR_KIND_OPERATOR:
			text += " by the operator"
		}
		return transcriptLine{Time: t, Kind: "system", Text: text}, true
	}
	return transcriptLine{}, false
}

// renderTranscript renders a chat's transcript. IP and host are in c only
// when the account does not hide them (they were never stored otherwise).
func renderTranscript(account string, c *Chat, evs []*chatv1.ChatEvent) (rendered, error) {
	d := transcriptData{Account: account, VisitorName: c.VisitorName, Email: c.VisitorEmail, IP: c.VisitorIP, Host: c.VisitorHost,
		Started: c.StartedAt.UTC().Format(timeLayout), Consent: consentReceipt(c)}
	for _, ev := range evs {
		if l, ok := lineOf(ev); ok {
			d.Lines = append(d.Lines, l)
		}
	}
	return render(transcriptText, transcriptHTML, "Chat transcript: "+oneLine(c.VisitorName)+", "+c.StartedAt.UTC().Format("2006-01-02"), d)
}

// consentReceipt says which consent the visitor accepted, in which locale
// and when ("" when the chat had none).
func consentReceipt(c *Chat) string {
	if c.ConsentVersion <= 0 {
		return ""
	}
	r := "pre-chat text version " + strconv.Itoa(int(c.ConsentVersion))
	if c.ConsentLocale != "" {
		r += " (" + c.ConsentLocale + ")"
	}
	if !c.ConsentAt.IsZero() {
		r += ", accepted " + c.ConsentAt.UTC().Format(timeLayout)
	}
	return r
}

type offlineData struct {
	Account, Name, Email, IP, Host, Received, Message string
}

// renderOffline renders an offline message for the account's recipients.
func renderOffline(account, name, email, ip, host, message string, at time.Time) (rendered, error) {
	d := offlineData{Account: account, Name: name, Email: email, IP: ip, Host: host, Received: at.UTC().Format(timeLayout), Message: message}
	return render(offlineText, offlineHTML, "Offline message from "+oneLine(name), d)
}

// formatSize writes a byte count for people: "512 bytes", "1.2 MB"
// (decimal units).
func formatSize(n int64) string {
	switch {
	case n == 1:
		return "1 byte"
	case n < 1000:
		return strconv.FormatInt(n, 10) + " bytes"
	}
	v, unit := float64(n)/1000, "kB"
	for _, u := range []string{"MB", "GB", "TB"} {
		if v < 999.95 {
			break
		}
		v, unit = v/1000, u
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + unit
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func render(t *texttemplate.Template, h *htmltemplate.Template, subject string, d any) (rendered, error) {
	var tb, hb bytes.Buffer
	if err := t.Execute(&tb, d); err != nil {
		return rendered{}, err
	}
	if err := h.Execute(&hb, d); err != nil {
		return rendered{}, err
	}
	return rendered{Subject: subject, Text: tb.String(), HTML: hb.String()}, nil
}

var transcriptText = texttemplate.Must(texttemplate.New("t").Parse(`Chat transcript — {{.Account}}

Visitor: {{.VisitorName}}{{if .Email}} <{{.Email}}>{{end}}
{{- if .IP}}
IP: {{.IP}}{{if .Host}} ({{.Host}}){{end}}{{end}}
Started: {{.Started}}
{{- if .Consent}}
Consent: {{.Consent}}{{end}}

{{range .Lines}}[{{.Time}}] {{if .Author}}{{.Author}}: {{end}}{{.Text}}
{{end}}
This chat has been deleted from the chat server. This e-mail is the only copy.
`))

var transcriptHTML = htmltemplate.Must(htmltemplate.New("h").Parse(`<!doctype html>
<html><body style="font-family:system-ui,sans-serif;color:#1f2430">
<h2 style="margin:0 0 8px">Chat transcript — {{.Account}}</h2>
<p style="margin:0 0 16px;color:#5b6270">Visitor: <strong>{{.VisitorName}}</strong>{{if .Email}} &lt;{{.Email}}&gt;{{end}}
{{- if .IP}}<br>IP: {{.IP}}{{if .Host}} ({{.Host}}){{end}}{{end}}<br>Started: {{.Started}}
{{- if .Consent}}<br>Consent: {{.Consent}}{{end}}</p>
<table cellpadding="4" style="border-collapse:collapse">
{{range .Lines}}<tr><td style="color:#8a90a0;vertical-align:top">{{.Time}}</td>
{{if eq .Kind "system"}}<td colspan="2" style="color:#8a90a0;font-style:italic">{{.Text}}</td>
{{else}}<td style="vertical-align:top;font-weight:600">{{.Author}}</td><td style="white-space:pre-wrap">{{.Text}}</td>{{end}}</tr>
{{end}}</table>
<p style="color:#8a90a0;font-size:12px">This chat has been deleted from the chat server. This e-mail is the only copy.</p>
</body></html>
`))

var offlineText = texttemplate.Must(texttemplate.New("t").Parse(`Offline message — {{.Account}}

From: {{.Name}} <{{.Email}}>
{{- if .IP}}
IP: {{.IP}}{{if .Host}} ({{.Host}}){{end}}{{end}}
Received: {{.Received}}

{{.Message}}

Reply to the visitor at {{.Email}}. This message has been deleted from the chat server.
`))

var offlineHTML = htmltemplate.Must(htmltemplate.New("h").Parse(`<!doctype html>
<html><body style="font-family:system-ui,sans-serif;color:#1f2430">
<h2 style="margin:0 0 8px">Offline message — {{.Account}}</h2>
<p style="margin:0 0 16px;color:#5b6270">From: <strong>{{.Name}}</strong> &lt;{{.Email}}&gt;
{{- if .IP}}<br>IP: {{.IP}}{{if .Host}} ({{.Host}}){{end}}{{end}}<br>Received: {{.Received}}</p>
<p style="white-space:pre-wrap">{{.Message}}</p>
<p style="color:#8a90a0;font-size:12px">Reply to the visitor at {{.Email}}. This message has been deleted from the chat server.</p>
</body></html>
`))
