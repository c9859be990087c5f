package chat

import (
	"strings"
	"testing"
	"unicode/utf8"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
)

// cleanText never accepts an empty or oversized message and returns it trimmed.
func FuzzCleanText(f *testing.F) {
	for _, s := range []string{"", " ", "hello", " \t hi \n", strings.Repeat("é", MaxMessageChars), strings.Repeat("x", MaxMessageChars+1), "\x00", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := cleanText(s)
		if err != nil {
			return
		}
		if out == "" || utf8.RuneCountInString(out) > MaxMessageChars || out != strings.TrimSpace(out) {
			t.Fatalf("cleanText(%q) accepted %q", s, out)
		}
	})
}

// visitorEmail accepts only a bare, parseable address within the limit.
func FuzzVisitorEmail(f *testing.F) {
	for _, s := range []string{"", "a@b.c", "Ada <a@b.c>", "a@b.c\r\nBcc: x@y.z", "@", strings.Repeat("a", 250) + "@b.cc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := visitorEmail(s, true)
		if err != nil {
			return
		}
		if out == "" || len(out) > MaxEmailChars || strings.ContainsAny(out, "\r\n<> ") {
			t.Fatalf("visitorEmail(%q) accepted %q", s, out)
		}
	})
}

// A shared file's transcript line is one line, whatever its name, and the
// name cannot inject markup into the HTML transcript.
func FuzzTranscriptFileLine(f *testing.F) {
	f.Add("report.pdf", int64(1234567))
	f.Add("<script>alert(1)</script>.pdf", int64(0))
	f.Add("a\r\nBcc: x@y.z\n\n.txt", int64(-1))
	f.Add("\xff\xfe<SCRIPT>", int64(1<<62))
	f.Fuzz(func(t *testing.T, name string, size int64) {
		c := &Chat{VisitorName: "Ana"}
		ev := &chatv1.ChatEvent{Seq: 1, Time: nowProto(), Kind: &chatv1.ChatEvent_File{File: &chatv1.FileShared{
			AuthorName: "Ana", Name: name, Size: size}}}
		r, err := renderTranscript("Acme", c, []*chatv1.ChatEvent{ev})
		if err != nil {
			t.Fatalf("render: %v", err)
		}
		var lines int
		for _, l := range strings.Split(r.Text, "\n") {
			if strings.Contains(l, "sent a file:") {
				lines++
				if !strings.HasSuffix(l, "("+formatSize(size)+")") {
					t.Fatalf("the file line %q does not end with the size", l)
				}
			}
		}
		if lines != 1 {
			t.Fatalf("%d file lines in:\n%s", lines, r.Text)
		}
		if strings.Contains(strings.ToLower(r.HTML), "<script") {
			t.Fatalf("markup from the name in the HTML:\n%s", r.HTML)
		}
	})
}
