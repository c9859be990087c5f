package lethe

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"
)

// fakeStream delivers msgs, then ends with err (nil: a clean end).
type fakeStream struct {
	msgs   []int
	err    error
	i      int
	closed bool
}

func (s *fakeStream) Receive() bool {
	if s.i >= len(s.msgs) {
		return false
	}
	s.i++
	return true
}
func (s *fakeStream) Msg() *int    { return &s.msgs[s.i-1] }
func (s *fakeStream) Err() error   { return s.err }
func (s *fakeStream) Close() error { s.closed = true; return nil }

// opener hands out the scripted connections in turn: a *fakeStream, or an
// error for a connection that fails to open.
type opener struct {
	script []any
	opened []*fakeStream
	calls  int
	waits  []int
}

func (o *opener) open(context.Context) (stream[int], error) {
	o.calls++
	next := o.script[0]
	o.script = o.script[1:]
	if err, ok := next.(error); ok {
		return nil, err
	}
	s := next.(*fakeStream)
	o.opened = append(o.opened, s)
	return s, nil
}

func (o *opener) wait(n int) time.Duration {
	o.waits = append(o.waits, n)
	return time.Millisecond
}

var unavailable = connect.NewError(connect.CodeUnavailable, errors.New("cut off"))

func TestResume_BackoffGrowsUntilAStreamDeliversThenRestarts(t *testing.T) {
	t.Parallel()
	o := &opener{script: []any{
		unavailable,                   // fails to open
		&fakeStream{err: unavailable}, // opens, delivers nothing
		&fakeStream{msgs: []int{1}, err: unavailable}, // delivers, then breaks
		unavailable,
		&fakeStream{}, // a clean end is reopened too
		&fakeStream{msgs: []int{2, 3}},
	}}
	var got []int
	err := resumeWith(context.Background(), o.wait, o.open, func(m *int) (bool, error) {
		got = append(got, *m)
		return *m == 3, nil
	})
	if err != nil {
		t.Fatalf("resume = %v, want nil once onMsg says done", err)
	}
	if !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("delivered %v, want [1 2 3]", got)
	}
	if want := []int{1, 2, 1, 2, 3}; !slices.Equal(o.waits, want) {
		t.Fatalf("backoff steps %v, want %v (growing while nothing arrives, from 1 after a message)", o.waits, want)
	}
	for i, s := range o.opened {
		if !s.closed {
			t.Errorf("stream %d was not closed", i)
		}
	}
}

func TestResume_StopsOnFinalCodeWithoutWaiting(t *testing.T) {
	t.Parallel()
	for _, code := range FinalCodes() {
		for name, first := range map[string]any{
			"open":   connect.NewError(code, errors.New("no")),
			"stream": &fakeStream{msgs: []int{1}, err: connect.NewError(code, errors.New("no"))},
		} {
			o := &opener{script: []any{first, &fakeStream{msgs: []int{9}}}}
			err := resumeWith(context.Background(), o.wait, o.open, func(*int) (bool, error) { return false, nil })
			if connect.CodeOf(err) != code || o.calls != 1 || len(o.waits) != 0 {
				t.Errorf("%v on %s: resume = %v after %d opens and %d waits, want the error at once", code, name, err, o.calls, len(o.waits))
			}
		}
	}
}

func TestResume_ReturnsOnMsgError(t *testing.T) {
	t.Parallel()
	stop := errors.New("stop")
	s := &fakeStream{msgs: []int{1, 2}}
	o := &opener{script: []any{s}}
	n := 0
	err := resumeWith(context.Background(), o.wait, o.open, func(*int) (bool, error) {
		n++
		return false, stop
	})
	if !errors.Is(err, stop) || n != 1 || !s.closed {
		t.Fatalf("resume = %v after %d messages (closed %v), want stop after 1 and the stream closed", err, n, s.closed)
	}
}

func TestResume_ContextEndsTheWait(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	o := &opener{script: []any{unavailable, unavailable}}
	start := time.Now()
	err := resumeWith(ctx, func(int) time.Duration { cancel(); return time.Hour }, o.open, func(*int) (bool, error) { return false, nil })
	if !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Fatalf("resume = %v after %v, want context.Canceled at once", err, time.Since(start))
	}
	if o.calls != 1 {
		t.Fatalf("opened %d times, want 1", o.calls)
	}
}
