package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
	"google.golang.org/protobuf/proto"

	"github.com/lethehq/lethe/gen/go/lethe/account/v1/accountv1connect"
	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/gen/go/lethe/chat/v1/chatv1connect"
	"github.com/lethehq/lethe/gen/go/lethe/consent/v1/consentv1connect"
	"github.com/lethehq/lethe/gen/go/lethe/monitor/v1/monitorv1connect"
	"github.com/lethehq/lethe/gen/go/lethe/privacy/v1/privacyv1connect"
)

// Whatever bytes arrive at a unary procedure, the answer is a client error
// with a proper code, never an internal or unknown one (which would mean
// decoding or validation fell through to a crash or to raw error text).
func FuzzUnaryRequestDecoding(f *testing.F) {
	cfg := config{dataDir: f.TempDir(), adminPW: adminPassword,
		passwordParams: &argon2id.Params{Memory: 1024, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}}
	a, err := newApp(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		f.Fatal(err)
	}
	srv := httptest.NewServer(a.handler)
	f.Cleanup(func() { srv.Close(); a.Close() })

	procedures := []string{
		chatv1connect.ChatServiceGetWidgetConfigProcedure, chatv1connect.ChatServiceStartChatProcedure,
		chatv1connect.ChatServiceSendMessageProcedure, chatv1connect.ChatServiceLeaveOfflineMessageProcedure,
		chatv1connect.ChatServiceAcceptChatProcedure, accountv1connect.AccountServiceLoginProcedure,
		consentv1connect.ConsentServiceGetConsentProcedure, monitorv1connect.MonitorServiceTrackProcedure,
		monitorv1connect.MonitorServiceSetCustomDataProcedure, monitorv1connect.MonitorServiceMintTicketProcedure,
		privacyv1connect.PrivacyServiceGetMyDataProcedure, privacyv1connect.PrivacyServiceCorrectMyDataProcedure,
		privacyv1connect.PrivacyServiceForgetMeProcedure, privacyv1connect.PrivacyServiceStopTrackingProcedure,
	}
	valid, _ := proto.Marshal(&chatv1.StartChatRequest{AccountId: "demo", VisitorName: "Ada", FirstMessage: "hi"})
	for i := range procedures {
		f.Add(uint8(i), valid, "")
		f.Add(uint8(i), []byte{0xff, 0xff, 0xff, 0x0f, 0x01}, "Bearer x")
		f.Add(uint8(i), []byte("\x0a\x04demo\x12\x80\x80\x80\x80\x10"), "Bearer lk_nope")
		f.Add(uint8(i), []byte{}, "Bearer ")
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte, authz string) {
		proc := procedures[int(which)%len(procedures)]
		req, _ := http.NewRequest("POST", srv.URL+proc, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/proto")
		req.Header.Set("Connect-Protocol-Version", "1")
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, err := srv.Client().Do(req.WithContext(ctx))
		if ctx.Err() != nil {
			t.Fatalf("%s with %x: no answer within 5 s", proc, body)
		}
		if err != nil {
			return // a header value the client refuses to send
		}
		defer res.Body.Close()
		if res.StatusCode == http.StatusOK {
			return
		}
		var e struct{ Code, Message string }
		b, _ := io.ReadAll(res.Body)
		json.Unmarshal(b, &e)
		if res.StatusCode >= 500 || e.Code == "internal" || e.Code == "unknown" || e.Code == "" {
			t.Fatalf("%s with %x: HTTP %d %s", proc, body, res.StatusCode, b)
		}
	})
}
