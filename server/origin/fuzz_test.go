package origin

import (
	"strings"
	"testing"
)

// An accepted origin is scheme://host[:port] with nothing else, and stable.
func FuzzNormalizeOrigin(f *testing.F) {
	for _, s := range []string{"self", "https://shop.example", "HTTP://Shop.Example:8080/", "https://a.b/path", "javascript:alert(1)",
		"https://user@a.b", "https://a.b?x", "https://a.b#f", " https://a.b ", "https://'none'", "https://a.b; script-src *"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := Normalize(s)
		if err != nil {
			return
		}
		if out == "self" {
			return
		}
		if !strings.HasPrefix(out, "http://") && !strings.HasPrefix(out, "https://") {
			t.Fatalf("Normalize(%q) = %q: not http(s)", s, out)
		}
		// It goes into a CSP header: no separators, quotes or white space.
		if strings.ContainsAny(out, " ;,'\"\t\r\n") || strings.Count(out, "/") != 2 {
			t.Fatalf("Normalize(%q) = %q: unsafe for CSP", s, out)
		}
		if again, err := Normalize(out); err != nil || again != out {
			t.Fatalf("NormalizeOrigin not stable: %q -> %q -> %q (%v)", s, out, again, err)
		}
	})
}
