package mail

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"
)

// fakeConn feeds scripted server bytes and records what the client wrote.
type fakeConn struct {
	in  [][]byte
	out bytes.Buffer
}

func (f *fakeConn) Read(p []byte) (int, error) {
	if len(f.in) == 0 {
		return 0, nil
	}
	n := copy(p, f.in[0])
	f.in = f.in[1:]
	return n, nil
}
func (f *fakeConn) Write(p []byte) (int, error)      { return f.out.Write(p) }
func (f *fakeConn) Close() error                     { return nil }
func (f *fakeConn) LocalAddr() net.Addr              { return nil }
func (f *fakeConn) RemoteAddr() net.Addr             { return nil }
func (f *fakeConn) SetDeadline(time.Time) error      { return nil }
func (f *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (f *fakeConn) SetWriteDeadline(time.Time) error { return nil }

func TestGuard_RequireTLS_RefusesDataInClear(t *testing.T) {
	t.Parallel()
	fc := &fakeConn{}
	g := newGuardConn(fc, true)
	for _, ok := range []string{"EHLO me\r\n", "STARTTLS\r\n", "NOOP\r\n", "RSET\r\n"} {
		if _, err := g.Write([]byte(ok)); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"MAIL FROM:<a@example.org>\r\n", "RCPT TO:<b@example.org>\r\n", "DATA\r\n", "AUTH PLAIN xxx\r\n", "NOOP\r\nMAIL FROM:<a@b>\r\n"} {
		if _, err := g.Write([]byte(bad)); !errors.Is(err, errClearText) {
			t.Errorf("%q: err %v, want errClearText", bad, err)
		}
	}
	if bytes.Contains(fc.out.Bytes(), []byte("MAIL")) {
		t.Error("refused bytes reached the connection")
	}
	// After the ClientHello everything passes (it is TLS records).
	if _, err := g.Write([]byte{0x16, 0x03, 0x01, 0x00, 0x05}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Write([]byte("MAIL FROM:<a@example.org>\r\n")); err != nil || !g.encrypted() {
		t.Errorf("after TLS: %v encrypted=%v", err, g.encrypted())
	}
}

func TestGuard_Opportunistic_FollowsServerOffer(t *testing.T) {
	t.Parallel()
	// STARTTLS offered, reply split across reads in the middle of the line.
	fc := &fakeConn{in: [][]byte{[]byte("220 hi\r\n250-localhost\r\n250-STAR"), []byte("TTLS\r\n250 SIZE\r\n")}}
	g := newGuardConn(fc, false)
	buf := make([]byte, 256)
	g.Read(buf)
	if _, err := g.Write([]byte("MAIL FROM:<a@example.org>\r\n")); err != nil {
		t.Fatalf("refused before the offer was complete: %v", err)
	}
	g.Read(buf)
	if _, err := g.Write([]byte("MAIL FROM:<a@example.org>\r\n")); !errors.Is(err, errClearText) {
		t.Errorf("MAIL in clear after STARTTLS was offered: err %v", err)
	}

	// Not offered (and mentioned elsewhere): clear text allowed.
	fc = &fakeConn{in: [][]byte{[]byte("220 ESMTP STARTTLS ready\r\n250-localhost\r\n250-8BITMIME\r\n250 SIZE\r\n")}}
	g = newGuardConn(fc, false)
	g.Read(buf)
	if _, err := g.Write([]byte("MAIL FROM:<a@example.org>\r\n")); err != nil {
		t.Errorf("clear text refused without an offer: %v", err)
	}
}
