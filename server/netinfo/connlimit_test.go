package netinfo_test

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"

	"github.com/lethehq/lethe/server/netinfo"
)

// acceptAndGreet serves l: every accepted connection gets one byte, so a
// client can tell an accepted connection (it reads the byte) from a refused
// one (it reads EOF). It returns the accepted connections as they come.
func acceptAndGreet(t *testing.T, l net.Listener) <-chan net.Conn {
	t.Helper()
	accepted := make(chan net.Conn, 64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			c.Write([]byte{'k'})
			accepted <- c
		}
	}()
	return accepted
}

// dial connects from the local address src and reports whether the server
// kept the connection.
func dial(t *testing.T, addr, src string) (net.Conn, bool) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	var b [1]byte
	_, err = io.ReadFull(c, b[:])
	switch {
	case err == nil:
		return c, true
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), isReset(err):
		return c, false
	default:
		t.Fatalf("read from %s: %v", src, err)
		return c, false
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

func TestLimitConns_ClosesConnectionsOverTheCeilingPerAddress(t *testing.T) {
	t.Parallel()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := netinfo.LimitConns(raw, 2)
	defer l.Close()
	accepted := acceptAndGreet(t, l)
	addr := raw.Addr().String()

	first, ok1 := dial(t, addr, "127.0.0.1")
	_, ok2 := dial(t, addr, "127.0.0.1")
	if !ok1 || !ok2 {
		t.Fatalf("connections under the ceiling refused: %v %v", ok1, ok2)
	}
	if _, ok := dial(t, addr, "127.0.0.1"); ok {
		t.Fatal("a third connection from one address was kept with a ceiling of 2")
	}
	if l.Refused() != 1 {
		t.Errorf("Refused() = %d, want 1", l.Refused())
	}
	// Another address has its own allowance.
	if _, ok := dial(t, addr, "127.0.0.2"); !ok {
		t.Fatal("a connection from another address was refused")
	}
	if got := l.Open(netip.MustParseAddr("127.0.0.1")); got != 2 {
		t.Errorf("Open(127.0.0.1) = %d, want 2", got)
	}

	// Closing a connection on the server side gives its place back.
	srvFirst := <-accepted
	srvFirst.Close()
	srvFirst.Close() // twice is harmless: the place is given back once
	first.Close()
	if _, ok := dial(t, addr, "127.0.0.1"); !ok {
		t.Fatal("a connection after one was closed was refused")
	}
	if got := l.Open(netip.MustParseAddr("127.0.0.1")); got != 2 {
		t.Errorf("Open(127.0.0.1) after close and redial = %d, want 2", got)
	}
}

// The table holds only addresses with something open.
func TestLimitConns_TableEmptiesWhenConnectionsClose(t *testing.T) {
	t.Parallel()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := netinfo.LimitConns(raw, 5)
	defer l.Close()
	accepted := acceptAndGreet(t, l)
	var held []net.Conn
	for _, src := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		if _, ok := dial(t, raw.Addr().String(), src); !ok {
			t.Fatalf("connection from %s refused", src)
		}
		held = append(held, <-accepted)
	}
	if l.Addresses() != 3 {
		t.Fatalf("Addresses() = %d, want 3", l.Addresses())
	}
	for _, c := range held {
		c.Close()
	}
	if l.Addresses() != 0 {
		t.Fatalf("Addresses() = %d after every connection closed, want 0", l.Addresses())
	}
}

func TestLimitConns_ZeroIsOff(t *testing.T) {
	t.Parallel()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := netinfo.LimitConns(raw, 0)
	defer l.Close()
	acceptAndGreet(t, l)
	for i := range 20 {
		if _, ok := dial(t, raw.Addr().String(), "127.0.0.1"); !ok {
			t.Fatalf("connection %d refused with the limit off", i+1)
		}
	}
}
