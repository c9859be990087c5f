// Package origin checks and normalises website origins (scheme://host[:port]),
// the unit in which an account lists where its widget may be embedded. An
// origin ends up in a CSP header, so only host characters may pass. It is a
// leaf: the account settings and the web pages both use it.
package origin

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Self stands for the Lethe server's own origin in an account's list.
const Self = "self"

// Normalize returns scheme://host[:port] in lower case, or an error. A
// scheme's default port (https:443, http:80) is dropped, as browsers drop it
// from an origin.
func Normalize(s string) (string, error) {
	if s == Self {
		return s, nil
	}
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q is not an origin (scheme://host[:port])", s)
	}
	host, port := u.Hostname(), u.Port()
	if !validHost(host) || (port != "" && !allDigits(port)) || (port == "" && strings.HasSuffix(u.Host, ":")) {
		return "", fmt.Errorf("%q is not an origin (scheme://host[:port])", s)
	}
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		u.Host = strings.TrimSuffix(u.Host, ":"+port)
	}
	// The origin goes into a CSP header: only host characters may pass.
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// validHost accepts a DNS name (letters, digits, hyphens, dots) or an IP.
func validHost(h string) bool {
	if h == "" {
		return false
	}
	if ip := net.ParseIP(h); ip != nil {
		return true
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return len(h) <= 253
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
