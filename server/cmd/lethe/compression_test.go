package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	"github.com/lethehq/lethe/gen/go/lethe/account/v1/accountv1connect"
	monitorv1 "github.com/lethehq/lethe/gen/go/lethe/monitor/v1"
	"github.com/lethehq/lethe/gen/go/lethe/monitor/v1/monitorv1connect"
)

// rpcPost posts body to an RPC with the admin's session cookie and the
// given headers, over the test server's client, which then neither asks
// for gzip on its own nor decompresses: what arrives is what was sent.
func rpcPost(t *testing.T, ts *testServer, procedure, contentType, body string, h http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.URL+procedure, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Connect-Protocol-Version", "1")
	for k, v := range h {
		req.Header[k] = v
	}
	res, err := ts.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("%s: HTTP %d: %s", procedure, res.StatusCode, b)
	}
	return res
}

// adminCookie signs the admin in by hand and returns the Cookie header.
func adminCookie(t *testing.T, ts *testServer) http.Header {
	t.Helper()
	res := rpcPost(t, ts, accountv1connect.AccountServiceLoginProcedure, "application/json",
		fmt.Sprintf(`{"email":%q,"password":%q}`, adminEmail, adminPassword), nil)
	for _, c := range res.Cookies() {
		if c.Name == "lethe_session" {
			return http.Header{"Cookie": {c.Name + "=" + c.Value}}
		}
	}
	t.Fatal("Login set no session cookie")
	return nil
}

// unaryBody reads a unary answer, gunzipping it when it says it is
// gzipped, and reports whether it was.
func unaryBody(t *testing.T, res *http.Response) ([]byte, bool) {
	t.Helper()
	var r io.Reader = res.Body
	gz := res.Header.Get("Content-Encoding") == "gzip"
	if gz {
		zr, err := gzip.NewReader(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b, gz
}

// A small unary answer goes out as it is though the client accepts gzip;
// a large one is gzipped.
func TestCompression_SmallUnaryAnswersAreNotGzippedLargeOnesAre(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	cookie := adminCookie(t, ts)
	cookie.Set("Accept-Encoding", "gzip")

	res := rpcPost(t, ts, accountv1connect.AccountServiceGetMeProcedure, "application/json", "{}", cookie)
	small, gz := unaryBody(t, res)
	if len(small) >= compressMinBytes {
		t.Fatalf("GetMe answered %d bytes: not a small answer", len(small))
	}
	if gz {
		t.Errorf("a %d-byte GetMe answer was gzipped", len(small))
	}

	admin := ts.admin()
	for i := range 20 {
		if _, err := admin.Account.CreateOperator(context.Background(), connect.NewRequest(&accountv1.CreateOperatorRequest{
			Email: fmt.Sprintf("operator-%02d@example.com", i), Name: fmt.Sprintf("Operator number %02d", i),
			Password: "operator-password-1", Role: accountv1.Role_ROLE_OPERATOR})); err != nil {
			t.Fatal(err)
		}
	}
	res = rpcPost(t, ts, accountv1connect.AccountServiceListOperatorsProcedure, "application/json", "{}", cookie)
	large, gz := unaryBody(t, res)
	if len(large) < compressMinBytes {
		t.Fatalf("ListOperators answered %d bytes: not a large answer", len(large))
	}
	if !gz {
		t.Errorf("a %d-byte ListOperators answer was not gzipped", len(large))
	}
	var msg struct{ Operators []json.RawMessage }
	if err := json.Unmarshal(large, &msg); err != nil || len(msg.Operators) != 21 {
		t.Errorf("ListOperators answer: %d operators, %v", len(msg.Operators), err)
	}
}

// Stream messages are judged one by one: the visitors snapshot, large, is
// gzipped; small messages are not.
func TestCompression_LargeStreamMessagesAreGzippedSmallOnesAreNot(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	mon := monitorv1connect.NewMonitorServiceClient(ts.client(), ts.URL)
	for i := range 20 {
		if _, err := mon.Track(ctx, connect.NewRequest(&monitorv1.TrackRequest{AccountId: demoAccount,
			Page: &monitorv1.Page{Url: fmt.Sprintf("https://shop.example/catalogue/item-%02d", i),
				Title: fmt.Sprintf("Item %02d of the catalogue, with its long product title", i)}})); err != nil {
			t.Fatal(err)
		}
	}
	h := adminCookie(t, ts)
	h.Set("Connect-Accept-Encoding", "gzip")
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+monitorv1connect.MonitorServiceWatchVisitorsProcedure,
		bytes.NewReader(envelope([]byte("{}"))))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	req.Header.Set("Content-Type", "application/connect+json")
	res, err := ts.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("WatchVisitors: HTTP %d", res.StatusCode)
	}
	body := bufio.NewReader(res.Body)
	var compressed, plain int
	for done := false; !done; {
		var head [5]byte
		if _, err := io.ReadFull(body, head[:]); err != nil {
			t.Fatalf("reading the stream: %v (compressed %d, plain %d)", err, compressed, plain)
		}
		data := make([]byte, binary.BigEndian.Uint32(head[1:]))
		if _, err := io.ReadFull(body, data); err != nil {
			t.Fatal(err)
		}
		if head[0]&2 != 0 {
			t.Fatalf("the stream ended before the snapshot was done: %s", data)
		}
		if head[0]&1 != 0 {
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if data, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
			compressed++
			if len(data) < compressMinBytes {
				t.Errorf("a %d-byte stream message was gzipped", len(data))
			}
		} else {
			plain++
			if len(data) >= compressMinBytes {
				t.Errorf("a %d-byte stream message was not gzipped", len(data))
			}
		}
		var msg struct {
			SnapshotDone bool
			Visitors     []json.RawMessage
		}
		if err := json.Unmarshal(data, &msg); err != nil {
			t.Fatal(err)
		}
		done = msg.SnapshotDone
	}
	if compressed == 0 {
		t.Error("no stream message was gzipped: the 20-visitor snapshot should have been")
	}
}

// envelope frames a Connect streaming request message (uncompressed).
func envelope(b []byte) []byte {
	out := make([]byte, 5, 5+len(b))
	binary.BigEndian.PutUint32(out[1:], uint32(len(b)))
	return append(out, b...)
}
