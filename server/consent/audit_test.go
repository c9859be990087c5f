package consent

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/lethehq/lethe/server/audit"
)

func TestSetConsentText_RecordedInTheAuditTrailWithoutTheText(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const canary = "canary consent text 7f3a"
	a := e.as(opA)
	e.set(a, text{form: Prechat, locale: "de-ch", text: canary + " v1"})
	e.set(a, text{form: Prechat, locale: "de-CH", text: canary + " v2", required: true})
	e.set(a, text{form: Offline, text: canary + " offline"})
	_, err := a.SetConsentText(context.Background(), text{form: Prechat, locale: "en", text: ""}.req())
	wantCode(t, "an empty text", err, connect.CodeInvalidArgument)

	entries, _, err := e.audit.List(context.Background(), opA.AccountID, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		fields []string
		count  int64
	}
	var got []rec
	for _, x := range entries {
		if x.Action != audit.ConsentTextSet || x.ActorKind != audit.ActorOperator || x.ActorID != opA.ID {
			t.Errorf("entry %+v, want consent_text_set by %s", x, opA.ID)
		}
		got = append(got, rec{x.Fields, x.Count})
	}
	want := []rec{{[]string{"form:offline", "locale:en"}, 1}, {[]string{"form:prechat", "locale:de-CH"}, 2}, {[]string{"form:prechat", "locale:de-CH"}, 1}}
	if !slices.EqualFunc(got, want, func(a, b rec) bool { return slices.Equal(a.fields, b.fields) && a.count == b.count }) {
		t.Errorf("entries, newest first = %v, want %v (form, locale and version)", got, want)
	}
	var buf bytes.Buffer
	if err := e.audit.WriteJSONLines(context.Background(), &buf, opA.AccountID); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "canary") {
		t.Errorf("the audit trail holds the consent text:\n%s", buf.String())
	}
	if b, _, _ := e.audit.List(context.Background(), opB.AccountID, "", 10); len(b) != 0 {
		t.Errorf("another account's trail holds %d entries", len(b))
	}
}
