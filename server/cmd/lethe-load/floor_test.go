package main

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/gen/go/lethe/chat/v1/chatv1connect"
	lethe "github.com/lethehq/lethe/sdk/go"
)

// The floor answers like Lethe where the scenarios depend on it: the
// visitor's stream replays from after_seq, the operator's inbox shows an
// accepted chat's events after the client's sequence numbers, and each
// side receives the other's messages live.
func TestFloor_ReplayAndLiveLikeLethe(t *testing.T) {
	srv := httptest.NewServer(floorHandler(1024))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli := chatv1connect.NewChatServiceClient(srv.Client(), srv.URL)
	v, err := startChat(ctx, cli, "demo", 1)
	if err != nil {
		t.Fatal(err)
	}
	op := lethe.NewOperator(srv.Client(), srv.URL)
	if err := op.Login(ctx, "any@example.com", "any"); err != nil {
		t.Fatal(err)
	}
	if err := op.Accept(ctx, v.id); err != nil {
		t.Fatal(err)
	}
	if _, err := op.Send(ctx, v.id, "from the operator"); err != nil {
		t.Fatal(err)
	}

	// The visitor, resuming after seq 2, gets exactly 3 (joined) and 4, then live 5.
	wctx, stop := context.WithCancel(ctx)
	stream, err := cli.WatchChat(wctx, withToken(&chatv1.WatchChatRequest{ChatId: v.id, AfterSeq: 2}, v.token))
	if err != nil {
		t.Fatal(err)
	}
	next := func() *chatv1.ChatEvent {
		t.Helper()
		if !stream.Receive() {
			t.Fatalf("stream ended: %v", stream.Err())
		}
		return stream.Msg().Event
	}
	if ev := next(); ev.Seq != 3 || ev.GetOperatorJoined() == nil {
		t.Fatalf("first replayed event = %v, want seq 3 operator joined", ev)
	}
	if ev := next(); ev.Seq != 4 || ev.GetMessage().GetText() != "from the operator" {
		t.Fatalf("second replayed event = %v", ev)
	}
	if err := v.send(ctx, "from the visitor"); err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.Seq != 5 || ev.GetMessage().GetAuthorKind() != chatv1.AuthorKind_AUTHOR_KIND_VISITOR {
		t.Fatalf("live event = %v", ev)
	}
	stop()

	// The inbox: the accepted chat's summary and its events after seq 4.
	ictx, istop := context.WithCancel(ctx)
	defer istop()
	in, err := op.Chat.WatchInbox(ictx, connect.NewRequest(&chatv1.WatchInboxRequest{AfterSeq: map[string]int64{v.id: 4}}))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for in.Receive() {
		switch k := in.Msg().Kind.(type) {
		case *chatv1.WatchInboxResponse_ChatUpdated:
			got = append(got, "summary "+k.ChatUpdated.State.String())
		case *chatv1.WatchInboxResponse_Event:
			got = append(got, "event "+k.Event.GetMessage().GetText())
		case *chatv1.WatchInboxResponse_SnapshotDone:
			got = append(got, "done")
		}
		if got[len(got)-1] == "done" {
			break
		}
	}
	want := []string{"summary CHAT_STATE_ACTIVE", "event from the visitor", "done"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("inbox snapshot = %q, want %q", got, want)
	}

	// Another visitor's token is refused on this chat.
	w, err := startChat(ctx, cli, "demo", 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := (&visitor{chat: cli, token: w.token, id: v.id}).send(ctx, "hi"); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("a foreign chat: %v, want PermissionDenied", err)
	}
}

// A subscriber whose 256 slots are full is cut off, as Lethe's hub did.
func TestFloorSub_CutOffWhenFull(t *testing.T) {
	s := newFloorSub()
	for range floorBuffer {
		s.send(1)
	}
	select {
	case <-s.done:
		t.Fatal("cut off with room left")
	default:
	}
	s.send(1)
	s.send(1) // a second overflow does not close twice
	select {
	case <-s.done:
	default:
		t.Fatal("not cut off when full")
	}
	if connect.CodeOf(errFellBehind) != connect.CodeUnavailable {
		t.Fatal("a cut-off stream must end Unavailable")
	}
}
