// Package netinfo finds a client's IP address and host name. Callers decide
// whether they may keep them (P5: with "hide IP and host" on they never reach
// storage, the console, mail or logs).
package netinfo

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// PeerIP returns the IP of a "host:port" peer address ("" if unparsable).
func PeerIP(addr string) string {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		if a, err := netip.ParseAddr(addr); err == nil {
			return a.Unmap().String()
		}
		return ""
	}
	return ap.Addr().Unmap().String()
}

// Resolver looks up host names by reverse DNS with a short timeout and a
// cache, so a slow DNS server never stalls a request.
type Resolver struct {
	Timeout time.Duration
	TTL     time.Duration
	Lookup  func(ctx context.Context, addr string) ([]string, error)

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	host string
	at   time.Time
}

// NewResolver returns a resolver with a 300 ms timeout and a 10 minute cache.
func NewResolver() *Resolver {
	return &Resolver{Timeout: 300 * time.Millisecond, TTL: 10 * time.Minute, Lookup: net.DefaultResolver.LookupAddr, cache: map[string]cached{}}
}

// Host returns the host name of ip, or "" when there is none or the lookup
// did not answer in time.
func (r *Resolver) Host(ctx context.Context, ip string) string {
	if ip == "" {
		return ""
	}
	now := time.Now()
	r.mu.Lock()
	if c, ok := r.cache[ip]; ok && now.Sub(c.at) < r.TTL {
		r.mu.Unlock()
		return c.host
	}
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	type result struct{ names []string }
	ch := make(chan result, 1)
	go func() {
		names, _ := r.Lookup(ctx, ip)
		ch <- result{names}
	}()
	var host string
	select {
	case res := <-ch:
		if len(res.names) > 0 {
			host = strings.TrimSuffix(res.names[0], ".")
		}
	case <-ctx.Done():
	}
	r.mu.Lock()
	if len(r.cache) > 50000 {
		clear(r.cache)
	}
	r.cache[ip] = cached{host: host, at: now}
	r.mu.Unlock()
	return host
}
