package guard

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/gen/go/lethe/chat/v1/chatv1connect"
	"github.com/lethehq/lethe/gen/go/lethe/files/v1/filesv1connect"
	"github.com/lethehq/lethe/server/auth"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/internal/testkit"
	"github.com/lethehq/lethe/server/netinfo"
)

// The interceptor is tested on real HTTP/2 streams through connect, with
// the real client-address middleware and error interceptor; the handler
// behind it stands in for a watch: it says hello and holds the stream open
// until the client goes.

const (
	anonStream = chatv1connect.ChatServiceWatchChatProcedure
	opStream   = chatv1connect.ChatServiceWatchInboxProcedure
	// A stream visitors and operators both open (a file download).
	eitherStream = filesv1connect.FileServiceDownloadFileProcedure
)

type env struct {
	t     *testing.T
	srv   *httptest.Server
	guard *Streams
}

func newEnv(t *testing.T, l Limits) *env {
	t.Helper()
	e := &env{t: t, guard: NewStreams(map[string]auth.Kind{anonStream: auth.VisitorOnly, opStream: auth.OperatorOnly, eitherStream: auth.Participant}, l)}
	hold := func(ctx context.Context, _ *connect.Request[chatv1.WatchChatRequest], s *connect.ServerStream[chatv1.WatchChatResponse]) error {
		if err := s.Send(&chatv1.WatchChatResponse{}); err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	}
	log, _ := testkit.Logger(t)
	opts := connect.WithInterceptors(errs.Interceptor{Log: log}, e.guard)
	mux := http.NewServeMux()
	mux.Handle(anonStream, connect.NewServerStreamHandler(anonStream, hold, opts))
	mux.Handle(opStream, connect.NewServerStreamHandler(opStream, hold, opts))
	mux.Handle(eitherStream, connect.NewServerStreamHandler(eitherStream, hold, opts))
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	e.srv = httptest.NewUnstartedServer(netinfo.NewClients(trusted).Middleware(mux))
	e.srv.EnableHTTP2 = true
	e.srv.StartTLS()
	t.Cleanup(func() {
		e.srv.CloseClientConnections()
		e.srv.Close()
	})
	return e
}

// open opens a stream of procedure with token from addr and waits for its
// first message; cancel ends it.
func (e *env) open(procedure, token, addr string) (end func(), err error) {
	c := connect.NewClient[chatv1.WatchChatRequest, chatv1.WatchChatResponse](e.srv.Client(), e.srv.URL+procedure)
	req := connect.NewRequest(&chatv1.WatchChatRequest{})
	if token != "" {
		req.Header().Set("Authorization", "Bearer "+token)
	}
	req.Header().Set("X-Forwarded-For", addr)
	return testkit.Held(func(ctx context.Context) (*connect.ServerStreamForClient[chatv1.WatchChatResponse], error) {
		return c.CallServerStream(ctx, req)
	})
}

func (e *env) mustOpen(procedure, token, addr string) func() {
	e.t.Helper()
	cancel, err := e.open(procedure, token, addr)
	if err != nil {
		e.t.Fatalf("open %s stream for %s from %s: %v", procedure, token, addr, err)
	}
	e.t.Cleanup(cancel)
	return cancel
}

// refused fails unless err is ResourceExhausted naming want.
func refused(t *testing.T, what string, err error, want string) {
	t.Helper()
	testkit.WantCode(t, what, err, connect.CodeResourceExhausted)
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("%s: %q does not name the limit %q", what, err, want)
	}
}

func TestStreams_PerTokenCeilingFreesASlotWhenAStreamEnds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Limits{PerToken: 4, PerAddr: 100})
	var cancels []func()
	for range 4 {
		cancels = append(cancels, e.mustOpen(anonStream, "token-a", "203.0.113.1"))
	}
	_, err := e.open(anonStream, "token-a", "203.0.113.1")
	refused(t, "fifth stream on one token", err, "at most 4 open WatchChat streams per token")
	// The same token from another address is the same token.
	_, err = e.open(anonStream, "token-a", "198.51.100.1")
	refused(t, "fifth stream on one token from another address", err, "per token")
	// Another token is not affected.
	e.mustOpen(anonStream, "token-b", "203.0.113.1")

	cancels[0]()
	testkit.Eventually(t, testkit.Wait, "a slot freed by a stream's end", func() bool {
		cancel, err := e.open(anonStream, "token-a", "203.0.113.1")
		if err == nil {
			e.t.Cleanup(cancel)
		}
		return err == nil
	})
	_, err = e.open(anonStream, "token-a", "203.0.113.1")
	refused(t, "stream past the ceiling again", err, "per token")
}

// A stream open to visitors and operators alike counts a visitor's (a
// bearer token), not an operator's (a session cookie).
func TestStreams_ParticipantStreamsCountVisitorsOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Limits{PerToken: 2, PerAddr: 100})
	e.mustOpen(eitherStream, "token-a", "203.0.113.1")
	e.mustOpen(eitherStream, "token-a", "203.0.113.1")
	_, err := e.open(eitherStream, "token-a", "203.0.113.1")
	refused(t, "third download on one visitor token", err, "at most 2 open DownloadFile streams per token")
	for range 3 {
		e.mustOpen(eitherStream, "", "203.0.113.1")
	}
}

func TestStreams_PerAddressCeilingCountsEveryToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Limits{PerToken: 4, PerAddr: 6})
	var cancels []func()
	for i := range 6 {
		cancels = append(cancels, e.mustOpen(anonStream, fmt.Sprint("token-", i), "203.0.113.1"))
	}
	_, err := e.open(anonStream, "token-new", "203.0.113.1")
	refused(t, "seventh stream from one address", err, "at most 6 open streams per client address")
	// Another address is not affected, nor are operators' streams.
	e.mustOpen(anonStream, "token-new", "203.0.113.2")
	for range 10 {
		e.mustOpen(opStream, "", "203.0.113.1")
	}
	cancels[3]()
	testkit.Eventually(t, testkit.Wait, "an address slot freed by a stream's end", func() bool {
		cancel, err := e.open(anonStream, "token-new", "203.0.113.1")
		if err == nil {
			e.t.Cleanup(cancel)
		}
		return err == nil
	})
}

func TestStreams_TablesHoldOnlyWhatIsOpen(t *testing.T) {
	t.Parallel()
	e := newEnv(t, DefaultLimits())
	var cancels []func()
	for i := range 20 {
		cancels = append(cancels, e.mustOpen(anonStream, fmt.Sprint("token-", i), fmt.Sprint("203.0.113.", i)))
	}
	if addrs, tokens := e.guard.Open(); addrs != 20 || tokens != 20 {
		t.Fatalf("with 20 streams open: %d addresses and %d tokens held, want 20 and 20", addrs, tokens)
	}
	for _, c := range cancels {
		c()
	}
	testkit.Eventually(t, testkit.Wait, "every key released", func() bool {
		addrs, tokens := e.guard.Open()
		return addrs == 0 && tokens == 0
	})
}

func TestStreams_OffAllowsEverything(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Limits{})
	for range 20 {
		e.mustOpen(anonStream, "token-a", "203.0.113.1")
	}
}
