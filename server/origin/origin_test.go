package origin

import "testing"

func TestNormalize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"self":                     "self",
		"https://Shop.Example":     "https://shop.example",
		"https://shop.example/":    "https://shop.example",
		" https://shop.example ":   "https://shop.example",
		"https://shop.example:443": "https://shop.example", // browsers drop default ports
		"http://shop.example:80":   "http://shop.example",
		"https://shop.example:80":  "https://shop.example:80",
		"http://127.0.0.1:8080":    "http://127.0.0.1:8080",
		"https://[::1]:8443":       "https://[::1]:8443",
	} {
		got, err := Normalize(in)
		if err != nil || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "shop.example", "ftp://shop.example", "https://shop.example/path", "https://user@shop.example",
		"https://shop.example?x", "https://shop.example#f", "https://shop.example:", "https://shop.example:x", "https://'none'",
		"https://a.b; script-src *", "javascript:alert(1)"} {
		if got, err := Normalize(bad); err == nil {
			t.Errorf("Normalize(%q) = %q, want an error", bad, got)
		}
	}
}
