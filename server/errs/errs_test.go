package errs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	lethe "github.com/lethehq/lethe/sdk/go"
)

func TestToConnect_KeepsDomainCodesAndHidesEverythingElse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		in       error
		code     connect.Code
		msg      string
		internal bool
	}{
		{"domain error", Invalid("name is required (at most %d characters)", 100), connect.CodeInvalidArgument, "name is required (at most 100 characters)", false},
		{"wrapped domain error", fmt.Errorf("start chat: %w", Exhausted("too many messages")), connect.CodeResourceExhausted, "too many messages", false},
		{"connect error passes", connect.NewError(connect.CodeUnavailable, errors.New("cut off")), connect.CodeUnavailable, "cut off", false},
		{"canceled", fmt.Errorf("query: %w", context.Canceled), connect.CodeCanceled, "canceled", false},
		{"deadline", context.DeadlineExceeded, connect.CodeDeadlineExceeded, "deadline exceeded", false},
		{"anything else", errors.New("SQL logic error near SELECT secret"), connect.CodeInternal, "internal error", true},
	} {
		out, internal := ToConnect(tc.in)
		var ce *connect.Error
		if !errors.As(out, &ce) || ce.Code() != tc.code || ce.Message() != tc.msg || internal != tc.internal {
			t.Errorf("%s: ToConnect = %v (internal %v), want %v %q (internal %v)", tc.name, out, internal, tc.code, tc.msg, tc.internal)
		}
	}
	if out, _ := ToConnect(nil); out != nil {
		t.Errorf("ToConnect(nil) = %v", out)
	}
}

func TestCodeOf_SeesThroughWrapping(t *testing.T) {
	t.Parallel()
	if c := CodeOf(fmt.Errorf("x: %w", Precondition("closed"))); c != connect.CodeFailedPrecondition {
		t.Errorf("CodeOf(wrapped Precondition) = %v", c)
	}
	if c := CodeOf(errors.New("plain")); c != connect.CodeUnknown {
		t.Errorf("CodeOf(plain) = %v, want Unknown", c)
	}
}

// The interceptor logs procedure, code and duration — the detail of an
// unexpected error at error level, never the request.
func TestInterceptor_LogsProcedureAndCodeNeverTheRequest(t *testing.T) {
	t.Parallel()
	var buf strings.Builder
	i := Interceptor{Log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	call := func(err error) error {
		h := i.WrapUnary(func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) { return nil, err })
		_, out := h(context.Background(), connect.NewRequest(&struct{ Secret string }{"request-canary"}))
		return out
	}
	if err := call(Denied("not yours")); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("domain error became %v", err)
	}
	if err := call(errors.New("disk I/O error")); connect.CodeOf(err) != connect.CodeInternal || strings.Contains(err.Error(), "disk") {
		t.Fatalf("unexpected error reached the client as %v", err)
	}
	logs := buf.String()
	if !strings.Contains(logs, "code=permission_denied") || !strings.Contains(logs, `level=ERROR msg=rpc`) || !strings.Contains(logs, "disk I/O error") {
		t.Fatalf("log lacks the codes or the internal detail:\n%s", logs)
	}
	if strings.Contains(logs, "request-canary") || strings.Contains(logs, "not yours") {
		t.Fatalf("the log holds the request or the client's message:\n%s", logs)
	}
}

func TestThrottled_CarriesTheWaitInMessageDetailAndHeader(t *testing.T) {
	t.Parallel()
	err := Throttled(11400*time.Millisecond, "at most %d chats per address per %s", 5, "10m")
	out, internal := ToConnect(err)
	var ce *connect.Error
	if internal || !errors.As(out, &ce) || ce.Code() != connect.CodeResourceExhausted {
		t.Fatalf("ToConnect = %v (internal %v), want ResourceExhausted", out, internal)
	}
	if want := "at most 5 chats per address per 10m; retry in 11s"; ce.Message() != want {
		t.Fatalf("message %q, want %q", ce.Message(), want)
	}
	if got := lethe.RetryHint(out); got != 11*time.Second {
		t.Fatalf("RetryInfo = %v, want 11s", got)
	}
	if got := ce.Meta().Get("Retry-After"); got != "11" {
		t.Fatalf("Retry-After = %q, want 11", got)
	}
	if lethe.RetryHint(Exhausted("no hint")) != 0 {
		t.Fatal("a plain error has a retry hint")
	}
}
