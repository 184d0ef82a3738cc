package service

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/mqtt"
)

// webrtcConfig links IRC #room, MQTT sb/room and the WebRTC room "room",
// with ICE on the loopback interface only. It returns the HTTP base URL.
func (w *world) webrtcConfig(t *testing.T) (*config.Config, string) {
	t.Helper()
	return w.webrtcConfigWith(t, "")
}

// webrtcConfigWith is webrtcConfig with more top-level lines (extra).
func (w *world) webrtcConfigWith(t *testing.T, extra string) (*config.Config, string) {
	t.Helper()
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
data_dir: %s
http: { listen: %q }
networks:
  libera:
    type: irc
    server: %s
    nick: switchboard
    flood: { burst: 50, interval: 10ms }
    reconnect_max: 2s
  devices:
    type: mqtt
    broker: %s
    client_id: switchboard-e2e
  web:
    type: webrtc
    loopback_candidates: true
    interfaces: [lo]
links:
  lobby: [ "libera:%s", "devices:%s", "web:room" ]
%s
`, w.dir, listen, w.irc.Addr, w.mqtt.URL, room, root, extra)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg, "http://" + listen
}

// A Go WebRTC peer in the room talks with IRC and MQTT through the whole
// service.
func TestWebRTCPeerTalksWithIRCAndMQTT(t *testing.T) {
	w := newWorld(t)
	cfg, base := w.webrtcConfig(t)
	runSwitchboard(t, cfg)
	sub := w.mqtt.Subscribe(t, root+"/out/#", 1)
	bob := w.human(t, "bob")
	alice := testenv.MustDialWebRTC(t, base, "room", "", "alice", "alice")

	// The peer's message reaches IRC from its puppet and MQTT as JSON.
	alice.Send(map[string]any{"type": "message", "text": "hello from the web"})
	echo := alice.Wait(t, patience, "the echo", func(f testenv.WebRTCFrame) bool { return f.Type == "message" && f.Text == "hello from the web" })
	bob.WaitText(patience, room, "alice[web]", "hello from the web")
	for {
		m := sub.Next(t, patience)
		var ev mqtt.OutEvent
		if err := json.Unmarshal(m.Payload, &ev); err != nil {
			t.Fatalf("payload %q: %v", m.Payload, err)
		}
		if ev.Type == "message" && ev.Text == "hello from the web" {
			if ev.ID != echo.ID || ev.Network != "web" || ev.Sender.Name != "alice" || m.Topic != root+"/out/web/alice" {
				t.Errorf("MQTT got %s on %s; echo id %s", m.Payload, m.Topic, echo.ID)
			}
			break
		}
	}

	// IRC and MQTT messages reach the peer as JSON events.
	bob.Say(room, "hi alice, from irc")
	f := alice.Wait(t, patience, "bob's IRC message", func(f testenv.WebRTCFrame) bool { return f.Type == "message" && f.Text == "hi alice, from irc" })
	if f.Network != "libera" || f.Sender.Name != "bob" || f.ID == "" {
		t.Errorf("IRC message as %s", f.Raw)
	}
	w.publish(t, "sensor-1", "from a device")
	f = alice.Wait(t, patience, "the device's message", func(f testenv.WebRTCFrame) bool { return f.Type == "message" && f.Text == "from a device" })
	if f.Network != "devices" || f.Sender.ID != "sensor-1" {
		t.Errorf("MQTT message as %s", f.Raw)
	}

	// A reply and an edit of the peer's own message travel too.
	alice.Send(map[string]any{"type": "message", "text": "answering", "reply_to": f.ID})
	alice.Send(map[string]any{"type": "edit", "target": echo.ID, "text": "hello from the web, edited"})
	bob.WaitMessage(patience, func(l testenv.IRCLine) bool {
		return l.Nick() == "alice[web]" && strings.Contains(l.Text(), "answering")
	})
	bob.WaitMessage(patience, func(l testenv.IRCLine) bool { return l.Nick() == "alice[web]" && strings.Contains(l.Text(), "edited") })
}
