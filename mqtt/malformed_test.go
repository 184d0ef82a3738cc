package mqtt

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// A payload that starts with "{" is JSON: one that does not parse is
// dropped, acknowledged, counted and warned about without quoting it,
// and is never bridged as text; text that does not start with "{" still
// is.
func TestMalformedJSONDropped(t *testing.T) {
	b := testenv.Mosquitto(t)
	dev := b.Client(t, "")
	in := newFakeInbound()
	a, logs := startAdapter(t, b, in, setup{})

	for _, p := range []string{
		`{"text": "J1 unterminated SECRET-PAYLOAD`,
		" \n\t{\"text\": \"J1 trailing\"} SECRET-PAYLOAD",
		`{"text": "J1 valid"}`,
		`J1 plain {"text": "not an object"}`,
	} {
		testenv.MQTTPublish(t, dev, room+"/in/dev1", 1, false, p)
	}
	if m := in.next(t); m.Text != "J1 valid" {
		t.Fatalf("first event bridged: %q, want J1 valid", m.Text)
	}
	if m := in.next(t); m.Text != `J1 plain {"text": "not an object"}` {
		t.Fatalf("plain text bridged as %q", m.Text)
	}
	in.quiet(t, 200*time.Millisecond)
	if got := a.Dropped(); got[DropMalformed] != 2 || len(got) != 1 {
		t.Errorf("Dropped() = %v, want 2 malformed", got)
	}
	// A payload that will never parse is acknowledged, or the broker
	// would resend it for ever.
	eventually(t, "acks", func() bool { return a.acked.Load() == 4 })
	log := logs.String()
	if strings.Contains(log, "SECRET-PAYLOAD") || strings.Contains(log, "J1 unterminated") {
		t.Errorf("log quotes a payload:\n%s", log)
	}
	n := 0
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "level=WARN") && strings.Contains(l, "topic=chat/lobby/in/dev1 reason=malformed") {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d malformed warnings, want 2:\n%s", n, log)
	}
}
