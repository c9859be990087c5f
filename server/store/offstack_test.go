package store

import (
	"errors"
	"sync"
	"testing"
)

// OffStack returns fn's results, raises its panic in the caller, and never
// waits for a standby worker: more calls at once than workers, each waiting
// for all the others to start, all finish.
func TestOffStack_ResultsPanicsAndMoreCallsThanWorkers(t *testing.T) {
	boom := errors.New("boom")
	if v, err := OffStack(func() (int, error) { return 7, boom }); v != 7 || err != boom {
		t.Fatalf("OffStack = %d, %v; want 7, boom", v, err)
	}
	func() {
		defer func() {
			if r := recover(); r != "in fn" {
				t.Fatalf("recovered %v, want the panic of fn", r)
			}
		}()
		OffStack(func() (int, error) { panic("in fn") })
		t.Fatal("the panic was lost")
	}()
	const n = 4 * offStackWorkers
	var started, all sync.WaitGroup
	started.Add(n)
	all.Add(n)
	for i := range n {
		go func() {
			defer all.Done()
			v, _ := OffStack(func() (int, error) {
				started.Done()
				started.Wait() // every call runs at once, or this never returns
				return i, nil
			})
			if v != i {
				t.Errorf("call %d got %d", i, v)
			}
		}()
	}
	all.Wait()
}
