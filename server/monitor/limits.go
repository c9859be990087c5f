package monitor

import (
	"crypto/sha256"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// New visits per client address: a burst of 60, then one every 2 seconds.
// Generous for offices behind one NAT address; it stops a script from
// filling the scratch store with visits.
const (
	newVisitBurst = 60
	newVisitEvery = 2 * time.Second
)

// allowNewVisit limits visit creation per client address. The key is a
// hash: not even memory keeps the raw address.
func (s *Service) allowNewVisit(ip netip.Addr) bool {
	if !ip.IsValid() {
		return true
	}
	h := sha256.Sum256(ip.AsSlice())
	key := string(h[:16])
	s.lmu.Lock()
	defer s.lmu.Unlock()
	if len(s.limiters) > 50000 {
		clear(s.limiters)
	}
	l := s.limiters[key]
	if l == nil {
		l = rate.NewLimiter(rate.Every(newVisitEvery), newVisitBurst)
		s.limiters[key] = l
	}
	return l.Allow()
}

// ParseTrustedProxies parses a comma-separated list of CIDR prefixes or
// single addresses ("10.0.0.0/8, 192.0.2.7, ::1") for Options.TrustedProxies.
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
