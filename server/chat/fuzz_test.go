package chat

import (
	"strings"
	"testing"
	"unicode/utf8"
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
