package store

import "sync"

// offStackWorkers is how many goroutines stand by to run SQLite calls for
// long-lived goroutines (OffStack); more calls at once each get a goroutine
// of their own.
const offStackWorkers = 8

var (
	offStackOnce sync.Once
	offStackWork = make(chan func())
)

// OffStack runs fn on another goroutine and returns its results. The SQLite
// driver is C translated to Go, with deep frames: a call grows the calling
// goroutine's stack to 16–32 KiB, and the runtime shrinks a stack only at a
// GC and only when a quarter of it is in use. A goroutine that then waits for
// hours (a visitor's stream: 100,000 of them on a busy server) would keep
// that stack. Its one-off reads go through OffStack, so that its own stack
// stays as small as its waiting needs. A panic in fn is raised again in the
// caller. fn must not call OffStack itself while the standby workers are all
// busy with calls waiting on it (none of ours do: they are leaf reads).
func OffStack[T any](fn func() (T, error)) (T, error) {
	offStackOnce.Do(func() {
		for range offStackWorkers {
			go func() {
				for job := range offStackWork {
					job()
				}
			}()
		}
	})
	var (
		v        T
		err      error
		panicked any
	)
	done := make(chan struct{})
	job := func() {
		defer close(done)
		defer func() { panicked = recover() }()
		v, err = fn()
	}
	select {
	case offStackWork <- job:
	default:
		go job()
	}
	<-done
	if panicked != nil {
		panic(panicked)
	}
	return v, err
}
