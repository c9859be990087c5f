package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"

	"github.com/lethehq/lethe/server/chat/chattest"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
)

// grpcConn is a plain grpc-go client of the test server over TLS.
func grpcConn(t *testing.T, ts *testServer) *grpc.ClientConn {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ts.srv.Certificate())
	conn, err := grpc.NewClient(strings.TrimPrefix(ts.URL, "https://"),
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestGRPCClient_GetWidgetConfig(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	conn := grpcConn(t, ts)
	res := &chatv1.GetWidgetConfigResponse{}
	err := conn.Invoke(context.Background(), "/lethe.chat.v1.ChatService/GetWidgetConfig",
		&chatv1.GetWidgetConfigRequest{AccountId: demoAccount}, res)
	if err != nil {
		t.Fatalf("gRPC GetWidgetConfig: %v", err)
	}
	if res.AccountName != "Demo Company" || res.MaxMessageChars != 4000 {
		t.Fatalf("GetWidgetConfig = %v", res)
	}
}

func TestGRPCClient_ErrorsCarryTheirCode(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	conn := grpcConn(t, ts)
	err := conn.Invoke(context.Background(), "/lethe.chat.v1.ChatService/GetWidgetConfig",
		&chatv1.GetWidgetConfigRequest{AccountId: "no-such-account"}, &chatv1.GetWidgetConfigResponse{})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("gRPC GetWidgetConfig of an unknown account = %v, want NotFound", err)
	}
	// Operator RPCs need a session.
	err = conn.Invoke(context.Background(), "/lethe.chat.v1.ChatService/AcceptChat",
		&chatv1.AcceptChatRequest{ChatId: "x"}, &chatv1.AcceptChatResponse{})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("gRPC AcceptChat without a session = %v, want Unauthenticated", err)
	}
}

func TestGRPCClient_ServerStreamOfAChat(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ts := newTestServer(t)
	v := ts.startChat("Gus", "", "hello over grpc")
	conn := grpcConn(t, ts)
	desc := &grpc.StreamDesc{StreamName: "WatchChat", ServerStreams: true}
	sctx := metadataBearer(ctx, v.Token)
	st, err := conn.NewStream(sctx, desc, "/lethe.chat.v1.ChatService/WatchChat")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SendMsg(&chatv1.WatchChatRequest{ChatId: v.ChatID}); err != nil {
		t.Fatal(err)
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for seq := int64(1); seq <= 2; seq++ {
		m := &chatv1.WatchChatResponse{}
		if err := st.RecvMsg(m); err != nil {
			t.Fatalf("RecvMsg: %v", err)
		}
		if m.Event.Seq != seq {
			t.Fatalf("event %d has seq %d", seq, m.Event.Seq)
		}
	}
}

// Each protocol connect-go speaks works through the SDK, streams included.
func TestSDK_AllProtocols(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, tc := range []struct {
		name string
		opts []connect.ClientOption
	}{
		{"connect", nil},
		{"grpc", []connect.ClientOption{connect.WithGRPC()}},
		{"grpcweb", []connect.ClientOption{connect.WithGRPCWeb()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			v := ts.visitor(tc.opts...)
			cfg, err := v.Chat.GetWidgetConfig(ctx, connect.NewRequest(&chatv1.GetWidgetConfigRequest{AccountId: demoAccount}))
			if err != nil {
				t.Fatalf("GetWidgetConfig: %v", err)
			}
			if cfg.Msg.AccountName != "Demo Company" {
				t.Fatalf("account name = %q", cfg.Msg.AccountName)
			}
			_, err = v.Chat.GetWidgetConfig(ctx, connect.NewRequest(&chatv1.GetWidgetConfigRequest{AccountId: "nope"}))
			wantCode(t, err, connect.CodeNotFound)

			if err := v.Start(ctx, startReq("Hal "+tc.name, "hi from "+tc.name)); err != nil {
				t.Fatalf("Start: %v", err)
			}
			ws := watchChat(t, v, 0)
			if m := ws.Next("first message", chattest.IsSeq(2)).Event.GetMessage(); m.GetText() != "hi from "+tc.name {
				t.Fatalf("seq 2 = %v", m)
			}
			if ev, err := v.Send(ctx, "second"); err != nil || ev.Seq != 3 {
				t.Fatalf("Send = %v, %v", ev, err)
			}
			ws.Next("live message", chattest.IsSeq(3))
			if err := v.End(ctx); err != nil {
				t.Fatalf("End: %v", err)
			}
			ws.Next("closed", chattest.IsClosed)
			if err := ws.Wait(); err != nil {
				t.Fatalf("Watch = %v, want nil", err)
			}
		})
	}
}

func metadataBearer(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}
