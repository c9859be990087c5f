// Package errs gives domain errors a Connect code and a message that is safe
// to show to a client, and turns every other error into a generic Internal
// error whose detail is logged (with ids only) but never sent.
//
// connect-go sends an uncoded error to the client as CodeUnknown with
// err.Error() as its message, SQL text and all; the interceptor here makes
// sure that cannot happen.
package errs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Error is an application error: a code and a message safe for clients.
type Error struct {
	Code connect.Code
	Msg  string
	// Retry, when set, is how long the client should wait before trying
	// again: sent as a google.rpc.RetryInfo detail and a Retry-After header.
	Retry time.Duration
}

func (e *Error) Error() string { return e.Code.String() + ": " + e.Msg }

// E returns an application error with a formatted, client-safe message. Never
// put message text, e-mail addresses or IPs into it.
func E(code connect.Code, format string, args ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Shorthands for the codes Lethe uses.
func Invalid(format string, args ...any) error {
	return E(connect.CodeInvalidArgument, format, args...)
}
func NotFound(format string, args ...any) error { return E(connect.CodeNotFound, format, args...) }
func Denied(format string, args ...any) error {
	return E(connect.CodePermissionDenied, format, args...)
}
func Precondition(format string, args ...any) error {
	return E(connect.CodeFailedPrecondition, format, args...)
}
func Unauthenticated(format string, args ...any) error {
	return E(connect.CodeUnauthenticated, format, args...)
}
func Exhausted(format string, args ...any) error {
	return E(connect.CodeResourceExhausted, format, args...)
}

// Throttled is ResourceExhausted with a retry hint: the message names the
// limit (format) and ends with "retry in Ns", and the wait travels as
// RetryInfo and Retry-After too.
func Throttled(retry time.Duration, format string, args ...any) error {
	retry = max(retry, time.Second).Round(time.Second)
	return &Error{Code: connect.CodeResourceExhausted, Retry: retry,
		Msg: fmt.Sprintf(format, args...) + fmt.Sprintf("; retry in %s", retry)}
}

// CodeOf returns the Connect code of err (CodeUnknown for plain errors).
func CodeOf(err error) connect.Code {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return connect.CodeOf(err)
}

// ToConnect converts err for the wire. Application errors keep their code and
// message; connect errors pass through; context errors become Canceled or
// DeadlineExceeded; anything else becomes Internal with a generic message.
func ToConnect(err error) (out error, internal bool) {
	if err == nil {
		return nil, false
	}
	var ae *Error
	if errors.As(err, &ae) {
		ce := connect.NewError(ae.Code, errors.New(ae.Msg))
		if ae.Retry > 0 {
			if d, err := connect.NewErrorDetail(&errdetails.RetryInfo{RetryDelay: durationpb.New(ae.Retry)}); err == nil {
				ce.AddDetail(d)
			}
			ce.Meta().Set("Retry-After", strconv.Itoa(int(ae.Retry.Seconds())))
		}
		return ce, false
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce, false
	}
	switch {
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, errors.New("canceled")), false
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New("deadline exceeded")), false
	}
	return connect.NewError(connect.CodeInternal, errors.New("internal error")), true
}

// Interceptor converts errors with ToConnect and logs each call's procedure,
// code and duration. It never logs request or response messages, which hold
// chat text (P9).
type Interceptor struct {
	Log *slog.Logger
}

func (i Interceptor) finish(ctx context.Context, procedure string, start time.Time, err error) error {
	out, internal := ToConnect(err)
	code := "ok"
	if out != nil {
		code = connect.CodeOf(out).String()
	}
	level := slog.LevelDebug
	if internal {
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.String("procedure", procedure),
		slog.String("code", code),
		slog.Duration("duration", time.Since(start)),
	}
	if internal {
		// The detail of an unexpected error is ours (SQL, I/O); domain code
		// never wraps user content into errors.
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	i.Log.LogAttrs(ctx, level, "rpc", attrs...)
	return out
}

// WrapUnary implements connect.Interceptor.
func (i Interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		start := time.Now()
		res, err := next(ctx, req)
		if err != nil {
			return nil, i.finish(ctx, req.Spec().Procedure, start, err)
		}
		i.finish(ctx, req.Spec().Procedure, start, nil)
		return res, nil
	}
}

// WrapStreamingClient implements connect.Interceptor.
func (i Interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor.
func (i Interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		start := time.Now()
		return i.finish(ctx, conn.Spec().Procedure, start, next(ctx, conn))
	}
}

// ErrNotFound is the sentinel every store returns when a row does not exist,
// so packages can check it across the interfaces they define.
var ErrNotFound = errors.New("not found")
