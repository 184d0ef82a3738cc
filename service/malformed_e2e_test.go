package service

import (
	"slices"
	"testing"
)

// A device's JSON that does not parse is not bridged: the IRC channel's
// first line is the valid message after it, text that does not start
// with "{" is still bridged as text, and the drop is counted.
func TestMalformedJSONNotBridged(t *testing.T) {
	w := newWorld(t)
	svc := startService(t, w.config(t, "relay"))
	waitReady(t, svc)
	alice := w.human(t, "alice")
	w.publish(t, "sensor-1", `{"text": "J1 unterminated`)
	w.publish(t, "sensor-1", `{"text": "J1 valid"}`)
	w.publish(t, "sensor-1", `J1 plain {"text": "x"}`)
	alice.WaitText(patience, room, "switchboard", `<sensor-1> J1 plain {"text": "x"}`)
	if got, want := messages(alice, ""), []string{"<sensor-1> J1 valid", `<sensor-1> J1 plain {"text": "x"}`}; !slices.Equal(got, want) {
		t.Errorf("IRC saw %q, want %q", got, want)
	}
	series := `switchboard_inbound_dropped_total{network="devices",reason="malformed"}`
	body := waitMetrics(t, svc, map[string]float64{series: 1})
	if v, _ := metric(body, series); v != 1 {
		t.Errorf("%s = %v, want 1", series, v)
	}
}
