// Package chattest reads and checks chat histories for tests, once, for the
// chat package's own tests and the system tests alike.
package chattest

import (
	"context"
	"testing"

	"connectrpc.com/connect"

	chatv1 "github.com/lethehq/lethe/gen/go/lethe/chat/v1"
	"github.com/lethehq/lethe/server/internal/testkit"
)

// History reads a chat with a fresh WatchChat stream (opened by watch, from
// the start) until the stored event seq until (or the chat's close), and
// returns the stored events.
func History(t testing.TB, watch func(context.Context) (*connect.ServerStreamForClient[chatv1.WatchChatResponse], error), until int64) []*chatv1.ChatEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Wait)
	defer cancel()
	stream, err := watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	var out []*chatv1.ChatEvent
	for stream.Receive() {
		ev := stream.Msg().Event
		if ev.GetSeq() == 0 {
			continue
		}
		out = append(out, ev)
		if ev.Seq == until || ev.GetClosed() != nil {
			return out
		}
	}
	t.Fatalf("history stream ended early after %d events: %v", len(out), stream.Err())
	return nil
}

// Texts returns the texts of the message events.
func Texts(evs []*chatv1.ChatEvent) []string {
	var out []string
	for _, ev := range evs {
		if m := ev.GetMessage(); m != nil {
			out = append(out, m.Text)
		}
	}
	return out
}

// CheckSeqs fails unless evs carry exactly the sequence numbers from..to,
// in order, without gaps or repeats.
func CheckSeqs(t testing.TB, evs []*chatv1.ChatEvent, from, to int64) {
	t.Helper()
	var got []int64
	for _, ev := range evs {
		got = append(got, ev.Seq)
	}
	if int64(len(got)) != to-from+1 {
		t.Fatalf("got %d events %v, want seqs %d..%d", len(got), got, from, to)
	}
	for i, s := range got {
		if s != from+int64(i) {
			t.Fatalf("seqs %v, want %d..%d without gaps or repeats", got, from, to)
		}
	}
}
