package files

import (
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameChars bounds a file name, in characters.
const MaxNameChars = 200

// isHidden reports runes a name must not carry: control characters, bidi
// overrides, isolates and marks (which can make "evil‮gpj.exe" look like
// "evilexe.jpg"), zero-width characters and the byte-order mark.
func isHidden(r rune) bool {
	switch {
	case unicode.IsControl(r):
		return true
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069, r == 0x200E, r == 0x200F, r == 0x061C:
		return true
	case r >= 0x200B && r <= 0x200D, r == 0x2060, r == 0xFEFF:
		return true
	case r == utf8.RuneError:
		return true
	}
	return false
}

// SanitizeName returns the name shown for a file: its last path element
// (either separator), without hidden characters, trimmed of spaces and
// dots at both ends, at most MaxNameChars characters (the extension kept
// when it is short), and "file" when nothing is left.
func SanitizeName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) && r != 0xFEFF {
			return ' ' // tabs and line breaks included
		}
		if isHidden(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(name, ""))
	name = trim(name)
	if utf8.RuneCountInString(name) > MaxNameChars {
		ext := path.Ext(name)
		if n := utf8.RuneCountInString(ext); n > 16 || n >= MaxNameChars {
			ext = ""
		}
		stem := []rune(strings.TrimSuffix(name, ext))
		name = trim(string(stem[:MaxNameChars-utf8.RuneCountInString(ext)])) + ext
		name = trim(name)
	}
	if name == "" {
		return "file"
	}
	return name
}

func trim(s string) string { return strings.Trim(s, " .") }
