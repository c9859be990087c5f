package netinfo

import (
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/lethehq/lethe/server/limit"
)

// ConnLimiter is a listener that lets each peer address hold at most a
// ceiling of open connections: a connection over it is closed as soon as it
// is accepted, before a byte is read. The count is kept in a limit.Gauge
// under AddrKey, so memory holds a hash per address with something open,
// never the address itself.
//
// The peer is the only address known at accept time: behind a reverse proxy
// every connection comes from the proxy, and the ceiling applies to the
// proxy as a whole. Raise it or turn it off (ceiling 0) there, and let the
// per-request limits, which see X-Forwarded-For, do the work.
type ConnLimiter struct {
	net.Listener
	gauge   *limit.Gauge
	refused atomic.Int64
}

// LimitConns wraps ln so that each peer address holds at most max open
// connections (max < 1: no limit).
func LimitConns(ln net.Listener, max int) *ConnLimiter {
	return &ConnLimiter{Listener: ln, gauge: limit.NewGauge(max)}
}

// Accept returns the next connection whose address is under the ceiling,
// closing those over it.
func (l *ConnLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		release, ok := l.gauge.Acquire(peerKey(c.RemoteAddr()))
		if !ok {
			l.refused.Add(1)
			c.Close()
			continue
		}
		return &heldConn{Conn: c, release: release}, nil
	}
}

// Refused counts the connections closed at accept since start.
func (l *ConnLimiter) Refused() int64 { return l.refused.Load() }

// Open is the number of connections the peer address a holds open.
func (l *ConnLimiter) Open(a netip.Addr) int { return l.gauge.Count(AddrKey(a.Unmap())) }

// Addresses is the number of peer addresses holding connections open (the
// size of the table).
func (l *ConnLimiter) Addresses() int { return l.gauge.Len() }

func peerKey(a net.Addr) string {
	ip, _ := netip.ParseAddr(PeerIP(a.String()))
	return AddrKey(ip)
}

// heldConn gives its place back when it is closed (once, however often
// Close is called).
type heldConn struct {
	net.Conn
	release func()
}

func (c *heldConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
