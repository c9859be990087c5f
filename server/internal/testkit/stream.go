package testkit

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
)

// Stream reads a stream in the background and hands over what it
// receives, so that a test can wait for one message among others.
type Stream[T any] struct {
	t      testing.TB
	c      chan T
	done   chan struct{}
	err    error
	cancel context.CancelFunc
	// Seen keeps what Next skipped, for later assertions.
	Seen []T
}

// Follow runs a callback-style watch (an SDK's resuming Watch: it calls fn
// for every message until ctx ends) until the test ends.
func Follow[T any](t testing.TB, run func(ctx context.Context, fn func(T) error) error) *Stream[T] {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Stream[T]{t: t, c: make(chan T, 4096), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(s.done)
		s.err = run(ctx, func(v T) error {
			select {
			case s.c <- v:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	t.Cleanup(func() { cancel(); <-s.done })
	return s
}

// FollowServer reads a Connect server stream opened by open until the test
// ends.
func FollowServer[M any](t testing.TB, open func(context.Context) (*connect.ServerStreamForClient[M], error)) *Stream[*M] {
	return Follow(t, func(ctx context.Context, fn func(*M) error) error {
		st, err := open(ctx)
		if err != nil {
			return err
		}
		defer st.Close()
		for st.Receive() {
			if err := fn(st.Msg()); err != nil {
				return err
			}
		}
		return st.Err()
	})
}

// Next returns the next message that satisfies pred, skipping (and keeping
// in Seen) the others; it fails the test after Wait.
func (s *Stream[T]) Next(what string, pred func(T) bool) T {
	s.t.Helper()
	return s.NextWithin(what, Wait, pred)
}

// NextWithin is Next with its own deadline.
func (s *Stream[T]) NextWithin(what string, d time.Duration, pred func(T) bool) T {
	s.t.Helper()
	timeout := time.After(d)
	var zero T
	for {
		select {
		case v := <-s.c:
			if pred(v) {
				return v
			}
			s.Seen = append(s.Seen, v)
		case <-s.done:
			select { // what arrived before the end
			case v := <-s.c:
				if pred(v) {
					return v
				}
				s.Seen = append(s.Seen, v)
				continue
			default:
			}
			s.t.Fatalf("stream ended (err %v) before %s", s.err, what)
			return zero
		case <-timeout:
			s.t.Fatalf("timed out waiting for %s", what)
			return zero
		}
	}
}

// Wait waits for the stream to end and returns its error.
func (s *Stream[T]) Wait() error {
	s.t.Helper()
	select {
	case <-s.done:
		return s.err
	case <-time.After(Wait):
		s.t.Fatal("stream did not end")
		return nil
	}
}

// Stop ends the stream from the client's side (the browser tab closes)
// and waits until it has ended.
func (s *Stream[T]) Stop() {
	s.cancel()
	<-s.done
}

// Rest returns every message received so far without waiting.
func (s *Stream[T]) Rest() []T {
	var out []T
	for {
		select {
		case v := <-s.c:
			out = append(out, v)
		default:
			return out
		}
	}
}

// Held opens a server stream with open and waits for its first message or
// its refusal: a stream the server accepted is held open until end is
// called (tests of limits on open streams).
func Held[T any](open func(ctx context.Context) (*connect.ServerStreamForClient[T], error)) (end func(), err error) {
	ctx, cancel := context.WithCancel(context.Background())
	st, err := open(ctx)
	if err == nil && !st.Receive() {
		err = st.Err()
	}
	if err != nil {
		cancel()
		return nil, err
	}
	return func() { cancel(); st.Close() }, nil
}

// StreamCeiling checks a ceiling of n open streams: n streams opened with
// open are held, the next is refused ResourceExhausted with want in its
// message, and ending one of the n frees a slot for another.
func StreamCeiling(t testing.TB, n int, want string, open func() (end func(), err error)) {
	t.Helper()
	var ends []func()
	for i := range n {
		end, err := open()
		if err != nil {
			t.Fatalf("stream %d of %d: %v", i+1, n, err)
		}
		t.Cleanup(end)
		ends = append(ends, end)
	}
	_, err := open()
	WantCode(t, fmt.Sprintf("stream %d", n+1), err, connect.CodeResourceExhausted)
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("the refusal %q does not say %q", err, want)
	}
	ends[0]()
	Eventually(t, Wait, "a slot freed by a stream's end", func() bool {
		end, err := open()
		if err == nil {
			t.Cleanup(end)
		}
		return err == nil
	})
}
