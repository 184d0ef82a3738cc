package service

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/mqtt"
)

// Issue 17, test 7: one device floods a room linked with an IRC channel
// at the default flood rate (a line a second after 5), while another
// sends one message. The other's message reaches IRC within 3 s, past the
// flooder's backlog; the flood is cut at the flooder's limit, counted,
// and the flooder is told once; what of the flood was accepted arrives,
// in order.
func TestFloodingDeviceDelaysNoOneElse(t *testing.T) {
	w := newWorld(t)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
data_dir: %s
http: { listen: "127.0.0.1:0" }
networks:
  libera: { type: irc, server: %s, nick: switchboard }
  devices: { type: mqtt, broker: %s, client_id: switchboard-e2e, rate: { per_second: 20, burst: 20 } }
links:
  lobby: [ "libera:%s", "devices:%s" ]
`, w.dir, w.irc.Addr, w.mqtt.URL, room, root)))
	if err != nil {
		t.Fatal(err)
	}
	svc, _ := runService(t, cfg)
	alice := w.human(t, "alice")
	notices := w.mqtt.Subscribe(t, root+"/out/switchboard/#", 1)
	flooder := w.mqtt.Client(t, testenv.UniqueClientID("flooder"))
	other := w.mqtt.Client(t, testenv.UniqueClientID("other"))

	const n = 200
	began := time.Now()
	for i := range n {
		testenv.MQTTPublish(t, flooder, root+"/in/flooder", 1, false, fmt.Sprintf("flood %03d", i))
		time.Sleep(time.Until(began.Add(time.Duration(i+1) * time.Second / n)))
	}
	flooded := time.Since(began)
	sent := time.Now()
	testenv.MQTTPublish(t, other, root+"/in/other", 1, false, "not held up")
	alice.WaitText(10*time.Second, room, "other[devices]", "not held up")
	latency := time.Since(sent)
	t.Logf("200 messages published in %v; the other device's message reached IRC %v after it was sent", flooded, latency)
	if latency > 3*time.Second {
		t.Errorf("the other device's message took %v to reach IRC, want at most 3 s", latency)
	}

	// Accepted and dropped add up to what was sent: accepted are the
	// messages received from the network (the flooder's and the other's).
	body := waitMetrics(t, svc, map[string]float64{
		`switchboard_inbound_dropped_total{network="devices",reason="rate_limited"}`: 1,
		`switchboard_events_received_total{network="devices",type="message"}`:        2,
	})
	dropped, _ := metric(body, `switchboard_inbound_dropped_total{network="devices",reason="rate_limited"}`)
	received, _ := metric(body, `switchboard_events_received_total{network="devices",type="message"}`)
	accepted := int(received) - 1
	// At most the burst and what a second refills while the flood lasted
	// (and one for the timing of the first token).
	limit := 20 + int(20*flooded.Seconds()) + 1
	t.Logf("flood: %d accepted, %v dropped (limit allows %d)", accepted, dropped, limit)
	if accepted+int(dropped) != n || accepted > limit || accepted < 20 {
		t.Errorf("%d of the flood accepted and %v dropped, want %d in all and 20 to %d accepted", accepted, dropped, n, limit)
	}

	// /api/status says it too.
	for _, ns := range getStatus(t, svc).Networks {
		if ns.Name == "devices" && ns.Dropped["rate_limited"] != uint64(dropped) {
			t.Errorf("/api/status: devices dropped %v, want rate_limited: %v", ns.Dropped, dropped)
		}
	}

	// The flooder was told once, in the room's notices.
	m := notices.Next(t, patience)
	var ev mqtt.OutEvent
	if err := json.Unmarshal(m.Payload, &ev); err != nil {
		t.Fatalf("notice %s: %v", m.Payload, err)
	}
	if m.Topic != root+"/out/switchboard/switchboard" || ev.Type != mqtt.NoticeType || !strings.HasPrefix(ev.Text, "flooder: You are sending faster") {
		t.Errorf("notice on %s: %s, want the bot telling flooder to slow down", m.Topic, m.Payload)
	}

	// What was accepted arrives, at the flood rate (a line a second after
	// the first 5), in the flooder's order.
	deadline := time.Now().Add(time.Duration(accepted+30) * time.Second)
	got := messages(alice, "flooder[devices]")
	for ; len(got) < accepted && time.Now().Before(deadline); got = messages(alice, "flooder[devices]") {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // one too many would show by now
	if got = messages(alice, "flooder[devices]"); len(got) != accepted {
		t.Errorf("IRC got %d of the flooder's %d accepted messages", len(got), accepted)
	}
	prev := -1
	for _, text := range got {
		i, err := strconv.Atoi(strings.TrimPrefix(text, "flood "))
		if err != nil || i <= prev {
			t.Fatalf("the flooder's messages out of order on IRC: %q", got)
		}
		prev = i
	}
	notices.Quiet(t, time.Second) // told once, though the flood went on
}
