package lethe

import (
	"context"
	"math/rand/v2"
	"slices"
	"time"

	"connectrpc.com/connect"
)

// finalCodes are the codes after which reopening a stream cannot help: the
// same request would get the same answer. The TypeScript SDK
// (sdk/ts/src/retry.ts) holds the same list; a test keeps the two equal.
//
//   - Unauthenticated: the token, visit or session is unknown or has ended
//     (a destroyed chat, a forgotten visit, a signed-out operator). New
//     credentials are needed: a new chat, a new visit, a new login.
//   - PermissionDenied: the caller may not see this (another visitor's chat).
//   - NotFound: the chat or account does not exist.
//   - InvalidArgument: the request itself is malformed (no chat id, a
//     negative sequence number).
//   - FailedPrecondition: the state must change first. (A visitor's stream of
//     a closed chat is not this: WatchChat answers it with a closed event.)
//   - Unimplemented: no such procedure at this address (a wrong base URL or
//     an older server; Connect reports an HTTP 404 this way).
//
// Everything else is retried: Unavailable (the server cut a slow stream off,
// is restarting, or a proxy answered 502/503/504/429), Internal, Unknown
// (including plain network errors), DeadlineExceeded, ResourceExhausted,
// Aborted, Canceled by the server, and the rest.
var finalCodes = [...]connect.Code{
	connect.CodeUnauthenticated,
	connect.CodePermissionDenied,
	connect.CodeNotFound,
	connect.CodeInvalidArgument,
	connect.CodeFailedPrecondition,
	connect.CodeUnimplemented,
}

// FinalCodes returns the codes that end a resuming stream: Unauthenticated,
// PermissionDenied, NotFound, InvalidArgument, FailedPrecondition and
// Unimplemented. Every other error is retried after Backoff.
func FinalCodes() []connect.Code { return slices.Clone(finalCodes[:]) }

// Final reports whether err ends a resuming stream for good, that is whether
// its code is one of FinalCodes. A plain network error is not final.
func Final(err error) bool {
	if err == nil {
		return false
	}
	code := connect.CodeOf(err)
	for _, c := range finalCodes {
		if c == code {
			return true
		}
	}
	return false
}

// Backoff policy, the same in the TypeScript SDK (sdk/ts/src/retry.ts).
const (
	backoffFirst = 250 * time.Millisecond
	backoffMax   = 5 * time.Second
)

// Backoff is the wait before the n-th reconnect in a row (n from 1): a base
// of 250 ms doubling up to 5 s, and a wait drawn uniformly from the upper
// half of it ([base/2, base]) so that many clients cut off at once do not
// come back in step. The count restarts once a stream delivers a message.
func Backoff(n int) time.Duration {
	base := backoffFirst << min(max(n-1, 0), 5)
	base = min(base, backoffMax)
	return base/2 + rand.N(base/2+1)
}

// stream is what resume needs of a server stream;
// *connect.ServerStreamForClient is one.
type stream[T any] interface {
	Receive() bool
	Msg() *T
	Err() error
	Close() error
}

// resume keeps a server stream open until the watch is over: the one
// reconnect loop of this SDK. open starts a stream; it is called again for
// every reconnect, so it sends the caller's resume point as it is then.
// onMsg gets every message in order and says whether the watch is done or
// must fail. A stream that breaks, or ends without onMsg saying done, is
// reopened after Backoff; the count restarts once a stream delivers a
// message.
//
// resume returns nil when onMsg says done, onMsg's error, ctx.Err() when
// ctx ends, or the stream's error when its code is final.
func resume[T any](ctx context.Context, open func(context.Context) (stream[T], error), onMsg func(*T) (done bool, err error)) error {
	return resumeWith(ctx, Backoff, open, onMsg)
}

// resumeWith is resume with the wait before the n-th reconnect given.
func resumeWith[T any](ctx context.Context, wait func(n int) time.Duration, open func(context.Context) (stream[T], error), onMsg func(*T) (done bool, err error)) error {
	for n := 0; ; {
		if n > 0 {
			t := time.NewTimer(wait(n))
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		live, done, err := resumeOnce(ctx, open, onMsg)
		switch {
		case done:
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		case Final(err):
			return err
		}
		if live {
			n = 1
		} else {
			n++
		}
	}
}

// resumeOnce runs one stream. live says whether it delivered a message;
// done whether the watch is over (with err from onMsg, or nil).
func resumeOnce[T any](ctx context.Context, open func(context.Context) (stream[T], error), onMsg func(*T) (bool, error)) (live, done bool, err error) {
	// Cancelling the stream's own context tears the connection down at
	// once when the watch ends before the server ends the stream.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := open(sctx)
	if err != nil {
		return false, false, err
	}
	defer s.Close()
	for s.Receive() {
		live = true
		if done, err := onMsg(s.Msg()); done || err != nil {
			return true, true, err
		}
	}
	return live, false, s.Err()
}
