package lethe

import (
	"context"
	"net/http"
	"time"

	"connectrpc.com/connect"

	monitorv1 "github.com/lethehq/lethe/gen/go/lethe/monitor/v1"
	"github.com/lethehq/lethe/gen/go/lethe/monitor/v1/monitorv1connect"
)

// Integrator is your back end talking to Lethe with an account API key
// (created by an admin in the console; it starts with "lk_"). Keep the key on
// the server: never put it in a page.
type Integrator struct {
	Monitor monitorv1connect.MonitorServiceClient
}

// NewIntegrator returns a client that sends apiKey as a bearer token.
func NewIntegrator(httpClient connect.HTTPClient, baseURL, apiKey string, opts ...connect.ClientOption) *Integrator {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	opts = append(opts, connect.WithInterceptors(bearer(func() string { return apiKey })))
	return &Integrator{Monitor: monitorv1connect.NewMonitorServiceClient(httpClient, baseURL, opts...)}
}

// Ticket is a single-use, short-lived ticket carrying verified visitor data.
type Ticket struct {
	// Value goes into the page: <script ... data-ticket="VALUE"> or
	// Lethe.identify(VALUE).
	Value     string
	ExpiresAt time.Time
}

// MintTicket creates a ticket carrying data about the visitor the page is
// rendered for (at most 20 keys of [A-Za-z0-9_.-], values up to 512
// characters). ttl 0 means the server's default (5 minutes); at most 10
// minutes. Operators see the data as "verified by your server".
func (i *Integrator) MintTicket(ctx context.Context, data map[string]string, ttl time.Duration) (Ticket, error) {
	res, err := i.Monitor.MintTicket(ctx, connect.NewRequest(&monitorv1.MintTicketRequest{Data: data, TtlSeconds: int32(ttl / time.Second)}))
	if err != nil {
		return Ticket{}, err
	}
	return Ticket{Value: res.Msg.Ticket, ExpiresAt: res.Msg.ExpiresAt.AsTime()}, nil
}
