package netinfo

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestResolve_OnlyTrustedProxiesSetForwardedFor(t *testing.T) {
	t.Parallel()
	c := NewClients([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")})
	for _, tc := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"no header", "203.0.113.9:1", nil, "203.0.113.9"},
		{"untrusted peer cannot spoof", "203.0.113.9:1", []string{"198.51.100.1"}, "203.0.113.9"},
		{"trusted peer", "10.1.2.3:1", []string{"198.51.100.1"}, "198.51.100.1"},
		{"right-most untrusted wins", "10.1.2.3:1", []string{"1.1.1.1, 198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"several headers", "10.1.2.3:1", []string{"1.1.1.1", "198.51.100.1"}, "198.51.100.1"},
		{"client spoofs left of the real one", "10.1.2.3:1", []string{"6.6.6.6, 198.51.100.1"}, "198.51.100.1"},
		{"all trusted", "10.1.2.3:1", []string{"10.5.5.5"}, "10.5.5.5"},
		{"garbage stops the walk", "10.1.2.3:1", []string{"nonsense, 10.5.5.5"}, "10.5.5.5"},
		{"trusted peer, no header", "10.1.2.3:1", nil, "10.1.2.3"},
		{"ipv6 trusted", "[::1]:80", []string{"2001:db8::7"}, "2001:db8::7"},
		{"v4-mapped peer", "[::ffff:203.0.113.9]:1", nil, "203.0.113.9"},
	} {
		h := http.Header{}
		for _, v := range tc.xff {
			h.Add("X-Forwarded-For", v)
		}
		if got := c.Resolve(tc.peer, h).String(); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
	if got := c.Resolve("not an address", nil); got.IsValid() {
		t.Errorf("unparsable peer: got %v, want the zero Addr", got)
	}
}

func TestMiddleware_PutsTheResolvedAddressIntoTheContext(t *testing.T) {
	t.Parallel()
	var got netip.Addr
	h := NewClients([]netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}).Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = ClientAddr(r.Context())
	}))
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "192.0.2.10:5555"
	r.Header.Set("X-Forwarded-For", "203.0.113.77")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if got.String() != "203.0.113.77" {
		t.Fatalf("ClientAddr = %v, want the address the trusted proxy forwarded", got)
	}
}

func TestParseTrustedProxies(t *testing.T) {
	t.Parallel()
	got, err := ParseTrustedProxies(" 10.0.0.0/8, 192.0.2.7 ,::1,, 172.16.5.4/12")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "::1/128", "172.16.0.0/12"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("%d: got %v, want %v", i, got[i], want[i])
		}
	}
	if _, err := ParseTrustedProxies("10.0.0.0/8,proxy.example"); err == nil {
		t.Fatal("a host name was accepted as a trusted proxy")
	}
}

func TestAddrKey_HashesTheAddress(t *testing.T) {
	t.Parallel()
	a, b := netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("203.0.113.10")
	if AddrKey(a) == AddrKey(b) || AddrKey(a) != AddrKey(netip.MustParseAddr("203.0.113.9")) {
		t.Fatal("AddrKey does not tell addresses apart, or is not stable")
	}
	if k := AddrKey(a); len(k) != 16 || k == string(a.AsSlice()) {
		t.Fatalf("AddrKey leaks the address: %q", k)
	}
}

func TestSelfOrigin_ForwardedProtoOnlyFromTrustedProxies(t *testing.T) {
	t.Parallel()
	c := NewClients([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	for _, tc := range []struct {
		name, peer, host, proto string
		tls                     bool
		want                    string
	}{
		{"plain", "203.0.113.9:1", "chat.example:8080", "", false, "http://chat.example:8080"},
		{"tls", "203.0.113.9:1", "chat.example", "", true, "https://chat.example"},
		{"default port dropped", "203.0.113.9:1", "Chat.Example:443", "", true, "https://chat.example"},
		{"untrusted peer cannot claim https", "203.0.113.9:1", "chat.example", "https", false, "http://chat.example"},
		{"trusted proxy terminates tls", "10.0.0.2:1", "chat.example", "https", false, "https://chat.example"},
		{"trusted proxy, several hops", "10.0.0.2:1", "chat.example", "https, http", false, "https://chat.example"},
		{"trusted proxy says http", "10.0.0.2:1", "chat.example", "http", false, "http://chat.example"},
	} {
		r := httptest.NewRequest(http.MethodPost, "/x", nil)
		r.RemoteAddr, r.Host = tc.peer, tc.host
		if tc.proto != "" {
			r.Header.Set("X-Forwarded-Proto", tc.proto)
		}
		if !tc.tls {
			r.TLS = nil
		} else if r.TLS == nil {
			r.TLS = new(tls.ConnectionState)
		}
		if got := c.SelfOrigin(r); got != tc.want {
			t.Errorf("%s: SelfOrigin = %q, want %q", tc.name, got, tc.want)
		}
	}
	// The middleware hands it to handlers.
	var got string
	h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = SelfOriginFrom(r.Context()) }))
	r := httptest.NewRequest(http.MethodGet, "http://lethe.example/", nil)
	h.ServeHTTP(httptest.NewRecorder(), r)
	if got != "http://lethe.example" {
		t.Fatalf("SelfOriginFrom after the middleware: %q", got)
	}
}
