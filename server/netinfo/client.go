package netinfo

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Clients resolves the address of the client behind each request: the
// connection's peer, or — only when the peer is a trusted proxy — the
// right-most address in X-Forwarded-For that is not itself a trusted proxy.
// It is configured once (--trusted-proxies) and its Middleware puts the
// result into every request's context, so every domain and every limiter
// sees the same address (ClientAddr).
type Clients struct {
	trusted []netip.Prefix
}

// NewClients returns a resolver believing X-Forwarded-For from trusted only.
func NewClients(trusted []netip.Prefix) *Clients { return &Clients{trusted: trusted} }

// ParseTrustedProxies parses a comma-separated list of CIDR prefixes or
// single addresses ("10.0.0.0/8, 192.0.2.7, ::1").
func ParseTrustedProxies(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: not an address or CIDR prefix", f)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// Resolve returns the client's address for a request from peer ("host:port")
// with headers h. An untrusted peer cannot make the server believe anything
// it puts in the header. The zero Addr means unknown.
func (c *Clients) Resolve(peer string, h http.Header) netip.Addr {
	ip, err := netip.ParseAddr(PeerIP(peer))
	if err != nil {
		return netip.Addr{}
	}
	if !c.isTrusted(ip) {
		return ip
	}
	var hops []string
	for _, v := range h.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			// Garbage from further left cannot be trusted: keep the last
			// address a trusted proxy vouched for.
			return ip
		}
		hop = hop.Unmap()
		ip = hop
		if !c.isTrusted(hop) {
			return hop
		}
	}
	return ip
}

func (c *Clients) isTrusted(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range c.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

type clientKey struct{}

// Middleware resolves each request's client address and the server's own
// origin once and puts them into the request's context for ClientAddr and
// SelfOrigin.
func (c *Clients) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := WithClientAddr(r.Context(), c.Resolve(r.RemoteAddr, r.Header))
		next.ServeHTTP(w, r.WithContext(WithSelfOrigin(ctx, c.SelfOrigin(r))))
	})
}

// SelfOrigin is the origin (scheme://host[:port], lower case) a browser sees
// for this server on request r: https when the connection is TLS or, only
// when the peer is a trusted proxy, when the proxy says so in
// X-Forwarded-Proto; the host is the request's Host. A browser always sends
// the Host it connected to, so a page of this server sees this origin.
func (c *Clients) SelfOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	} else if ip, err := netip.ParseAddr(PeerIP(r.RemoteAddr)); err == nil && c.isTrusted(ip) {
		// The proxy may list several (one per hop): the first is the client's.
		proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
		if p := strings.ToLower(strings.TrimSpace(proto)); p == "https" {
			scheme = "https"
		}
	}
	host := strings.ToLower(r.Host)
	// Browsers drop the scheme's default port from an origin.
	if h, ok := strings.CutSuffix(host, ":443"); ok && scheme == "https" {
		host = h
	} else if h, ok := strings.CutSuffix(host, ":80"); ok && scheme == "http" {
		host = h
	}
	return scheme + "://" + host
}

type selfKey struct{}

// WithSelfOrigin returns ctx carrying the server's own origin.
func WithSelfOrigin(ctx context.Context, origin string) context.Context {
	return context.WithValue(ctx, selfKey{}, origin)
}

// SelfOriginFrom is the server's own origin as Clients.Middleware resolved it
// for the request ctx belongs to ("" when unknown).
func SelfOriginFrom(ctx context.Context) string {
	o, _ := ctx.Value(selfKey{}).(string)
	return o
}

// WithClientAddr returns ctx carrying the client's address.
func WithClientAddr(ctx context.Context, a netip.Addr) context.Context {
	return context.WithValue(ctx, clientKey{}, a)
}

// ClientAddr is the address of the client of the request ctx belongs to,
// as resolved by Clients.Middleware (the zero Addr when unknown).
func ClientAddr(ctx context.Context) netip.Addr {
	a, _ := ctx.Value(clientKey{}).(netip.Addr)
	return a
}

// AddrKey is the key under which limiters count a client address: a hash,
// so that not even memory keeps the raw address. The zero Addr has a key of
// its own.
func AddrKey(a netip.Addr) string {
	h := sha256.Sum256(a.AsSlice())
	return string(h[:16])
}
