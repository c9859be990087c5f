package files

import (
	"context"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestSanitizeName(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 300)
	for _, tc := range []struct{ in, want string }{
		{"report.pdf", "report.pdf"},
		{"../../etc/passwd", "passwd"},
		{`C:\Users\ann\Desktop\cv.docx`, "cv.docx"},
		{"evil\u202Egpj.exe", "evilgpj.exe"},
		{"a\x00b\nc\td.txt", "ab c d.txt"},
		{"  . spaced .txt . ", "spaced .txt"},
		{"..", "file"},
		{"", "file"},
		{"\u200B\u2066\uFEFF", "file"},
		{"bad\xffutf8.txt", "badutf8.txt"},
		{long + ".pdf", strings.Repeat("é", MaxNameChars-4) + ".pdf"},
		{"Résumé 2024 (final).pdf", "Résumé 2024 (final).pdf"},
	} {
		if got := SanitizeName(tc.in); got != tc.want {
			t.Errorf("SanitizeName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzSanitizeName checks the promises of a shown name for any input: valid
// UTF-8, not empty, at most MaxNameChars characters, no path separator, no
// control or bidi character, no padding, and sanitizing it again changes
// nothing.
func FuzzSanitizeName(f *testing.F) {
	for _, s := range []string{"a.txt", "../x", `a\b`, "\u202Etxt.exe", strings.Repeat("x", 250) + ".png", " . ", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := SanitizeName(in)
		if !utf8.ValidString(got) || got == "" || utf8.RuneCountInString(got) > MaxNameChars {
			t.Fatalf("SanitizeName(%q) = %q", in, got)
		}
		if strings.ContainsAny(got, `/\`) || got == "." || got == ".." {
			t.Fatalf("SanitizeName(%q) = %q keeps a path", in, got)
		}
		if strings.TrimFunc(got, func(r rune) bool { return r == ' ' || r == '.' }) != got {
			t.Fatalf("SanitizeName(%q) = %q is padded", in, got)
		}
		for _, r := range got {
			if isHidden(r) || unicode.IsControl(r) {
				t.Fatalf("SanitizeName(%q) = %q keeps %U", in, got, r)
			}
		}
		if again := SanitizeName(got); again != got {
			t.Fatalf("not idempotent: %q → %q → %q", in, got, again)
		}
	})
}

func TestAttachmentHeader(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"a.txt", `attachment; filename="a.txt"; filename*=UTF-8''a.txt`},
		{`x"y\z;*'.pdf`, `attachment; filename="x_y_z;*'.pdf"; filename*=UTF-8''x%22y%5Cz%3B%2A%27.pdf`},
		{"日本.png", `attachment; filename="__.png"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.png`},
	} {
		if got := attachment(tc.in); got != tc.want {
			t.Errorf("attachment(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestBytes(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{12: "12 bytes", 10 << 20: "10 MiB", 900 << 10: "900 KiB", 3 << 29: "1.5 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// No allowed type is one that is never allowed.
func TestCategories_NeverOverlapsAllowed(t *testing.T) {
	t.Parallel()
	for c, cat := range categories {
		for _, ty := range cat.types {
			if never[ty] {
				t.Errorf("%v allows %s", c, ty)
			}
		}
	}
}

// Every query by chat or by id uses an index.
func TestStore_QueriesUseIndexes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	for _, q := range []string{
		`SELECT key FROM file_keys WHERE chat_id = 'x'`,
		`SELECT coalesce(sum(size), 0) FROM files WHERE chat_id = 'x'`,
		`SELECT coalesce(sum(size), 0) FROM file_uploads WHERE chat_id = 'x'`,
		`SELECT ` + uploadCols + ` FROM file_uploads WHERE id = 'x'`,
		`SELECT ` + uploadCols + `, sha256 FROM files WHERE id = 'x'`,
		`SELECT idx FROM file_chunks WHERE upload_id = 'x' ORDER BY idx`,
		`DELETE FROM file_uploads WHERE chat_id = 'x'`,
		`DELETE FROM files WHERE chat_id = 'x'`,
		`SELECT id FROM file_uploads WHERE touched_at < 5`,
	} {
		rows, err := e.db.R.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			rows.Scan(&id, &parent, &notused, &detail)
			plan = append(plan, detail)
		}
		rows.Close()
		for _, p := range plan {
			if strings.HasPrefix(p, "SCAN") && !strings.Contains(p, "USING") {
				t.Errorf("%s: full scan: %v", q, plan)
			}
		}
	}
}
