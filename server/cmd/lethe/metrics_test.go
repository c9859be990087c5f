package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/lethehq/lethe/server/mail/mailtest"
)

// /metrics counts destroyed chats and delivered mail, and carries no content.
func TestMetrics_CountDestroyedChatsAndSentMailWithoutContent(t *testing.T) {
	t.Parallel()
	ca := mailtest.NewCA(t)
	relay := startRelay(t, ca, true, 0)
	ts := newTestServer(t, withSMTP(relay.Port, ca))
	admin := ts.admin()
	updateSettings(t, admin, transcriptsTo)
	tag := newTag()
	v, vs := canaryChat(t, ts.visitor(), admin, tag)
	closeChat(t, admin, v, vs)
	ts.waitDestroyed(v.ChatID)

	ms := httptest.NewServer(metricsHandler(ts.app.metrics, false))
	defer ms.Close()
	res, err := ms.Client().Get(ms.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	metrics := string(body)
	for name, want := range map[string]string{"lethe_chats_destroyed_total": "1", "lethe_mail_sent_total": "1", "lethe_mail_dropped_total": "0"} {
		m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(metrics)
		if m == nil || m[1] != want {
			t.Errorf("%s = %v, want %s", name, m, want)
		}
	}
	if strings.Contains(metrics, tag) || strings.Contains(metrics, "@example") {
		t.Error("metrics carry content")
	}
}

// /metrics is not served on the public port: only on --metrics-addr.
func TestMetrics_NotOnThePublicPort(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	res, err := ts.client().Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /metrics on the public port: HTTP %d, want 404", res.StatusCode)
	}
}

// The binary serves /metrics on --metrics-addr, says where at start, and
// counts the connections refused by --max-conns-per-address there.
func TestMetrics_OwnListenerPrintedAtStart(t *testing.T) {
	t.Parallel()
	p := startBinary(t, binOpts{dataDir: t.TempDir(), args: []string{"--metrics-addr", "127.0.0.1:0"}})
	m := regexp.MustCompile(`Metrics:\s+(http://\S+/metrics)`).FindStringSubmatch(p.stdout.String())
	if m == nil {
		t.Fatalf("start output names no metrics address:\n%s", p.stdout.String())
	}
	if m[1] == p.URL+"/metrics" {
		t.Fatal("metrics share the public port")
	}
	res, err := p.client.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "lethe_connections_refused_total 0") {
		t.Fatalf("GET %s: HTTP %d\n%s", m[1], res.StatusCode, body)
	}
	res, err = p.client.Get(p.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /metrics on the public port: HTTP %d, want 404", res.StatusCode)
	}
}

// The profiler is served only with --pprof, and only on the metrics address.
func TestMetrics_ProfilerOnlyWhenAskedFor(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, profiles := range []bool{false, true} {
		ms := httptest.NewServer(metricsHandler(ts.app.metrics, profiles))
		res, err := ms.Client().Get(ms.URL + "/debug/pprof/heap")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		ms.Close()
		if want := map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[profiles]; res.StatusCode != want {
			t.Errorf("--pprof=%v: /debug/pprof/heap HTTP %d, want %d", profiles, res.StatusCode, want)
		}
	}
	res, err := ts.client().Get(ts.URL + "/debug/pprof/heap")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("/debug/pprof on the public port: HTTP %d, want 404", res.StatusCode)
	}
}
