package main

import (
	"io"
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

	res, err := ts.client().Get(ts.srv.URL + "/metrics")
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
