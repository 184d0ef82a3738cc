package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"
	"maunium.net/go/mautrix/event"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/mqtt"
)

// These tests run Switchboard with the setup guides' configs
// (docs/snippets/switchboard-*.yaml) against servers set up as the guides
// say, and check what the guides promise a newcomer will see.

// guideConfig is a guide's Switchboard config with the test's servers
// (vars, as for testenv.Snippet), its data in a temp dir and HTTP on
// listen (when the snippet has no http section of its own).
func guideConfig(t *testing.T, name string, vars map[string]string) *config.Config {
	t.Helper()
	text := guideText(t, name, vars)
	cfg, err := config.Parse([]byte(text))
	if err != nil {
		t.Fatalf("the guide's config: %v\n%s", err, text)
	}
	return cfg
}

func guideText(t *testing.T, name string, vars map[string]string) string {
	t.Helper()
	data := "data_dir: " + strconv.Quote(t.TempDir())
	if _, ok := vars["listen: 127.0.0.1:8080"]; !ok {
		data += "\nhttp: { listen: \"127.0.0.1:0\" }"
	}
	all := map[string]string{"data_dir: /var/lib/switchboard": data}
	for k, v := range vars {
		all[k] = v
	}
	return testenv.Snippet(t, name, all)
}

// The IRC guide: the channel and the web chat page, every person on the
// page a puppet of their own on a server whose connect class is the
// guide's (with connection throttles on, which the class exempts
// Switchboard from).
func TestIRCGuideLinksAChannelWithTheWebPage(t *testing.T) {
	srv := testenv.InspIRCd(t)
	t.Setenv("IRC_SASL_PASSWORD", "unused: the test server offers no SASL")
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	runSwitchboard(t, guideConfig(t, "switchboard-irc.yaml", map[string]string{
		"data_dir: /var/lib/switchboard": "data_dir: " + strconv.Quote(t.TempDir()) + "\nhttp: { listen: " + strconv.Quote(listen) + " }",
		"irc.example.org:6697":           srv.Addr,
		"tls: true":                      "tls: false",
		"type: webrtc\n":                 "type: webrtc\n    loopback_candidates: true\n    interfaces: [lo]\n",
	}))
	bob := srv.Client(t, "bob")
	bob.Join("#lobby")
	// More puppets than the test server's connectban lets one address
	// open without the class's exemption.
	for _, name := range []string{"alice", "carol", "dave", "erin"} {
		p := testenv.MustDialWebRTC(t, "http://"+listen, "lobby", "", name, name)
		if err := p.Say("hello from " + name); err != nil {
			t.Fatal(err)
		}
		bob.WaitText(patience, "#lobby", name+"[web]", "hello from "+name)
		if name == "alice" {
			bob.Say("#lobby", "hi alice")
			f := p.Wait(t, patience, "bob's message", func(f testenv.WebRTCFrame) bool { return f.Type == "message" && f.Text == "hi alice" })
			if f.Network != "libera" || f.Sender.Name != "bob" {
				t.Errorf("the page shows bob's message as %s", f.Raw)
			}
		}
	}
}

// The MQTT guide: devices on a Mosquitto with the guide's users, ACL and
// queue, linked with an IRC channel.
func TestMQTTGuideLinksDevicesWithAChannel(t *testing.T) {
	srv := testenv.InspIRCd(t)
	broker := testenv.MosquittoGuide(t, map[string]string{"switchboard": "sb-secret", "sensor-1": "s1-secret"})
	t.Setenv("MQTT_PASSWORD", "sb-secret")
	svc, _ := runService(t, guideConfig(t, "switchboard-mqtt.yaml", map[string]string{
		"tcp://127.0.0.1:1883": broker.URL,
		"irc.example.org:6697": srv.Addr,
		"tls: true":            "tls: false",
	}))
	bob := srv.Client(t, "bob")
	bob.Join("#lobby")

	out := make(chan paho.Message, 10)
	dev := broker.Connect(t, broker.Options(testenv.UniqueClientID("sensor-1")).SetUsername("sensor-1").SetPassword("s1-secret"))
	if tok := dev.Subscribe("chat/lobby/out/#", 1, func(_ paho.Client, m paho.Message) { out <- m }); !tok.WaitTimeout(patience) || tok.Error() != nil {
		t.Fatalf("the device cannot subscribe: %v", tok.Error())
	}
	testenv.MQTTPublish(t, dev, "chat/lobby/in/sensor-1", 1, false, `{"text": "21.5 °C", "name": "Kitchen"}`)
	bob.WaitText(patience, "#lobby", "Kitchen[devices]", "21.5 °C")
	testenv.MQTTPublish(t, dev, "chat/lobby/in/sensor-1", 1, false, "door open")
	bob.WaitText(patience, "#lobby", "Kitchen[devices]", "door open")

	bob.Say("#lobby", "thanks, kitchen")
	for {
		m := nextMessage(t, out)
		var ev mqtt.OutEvent
		if err := json.Unmarshal(m.Payload(), &ev); err != nil {
			t.Fatalf("payload %q: %v", m.Payload(), err)
		}
		if ev.Type != "message" {
			continue
		}
		if m.Topic() != "chat/lobby/out/libera/bob" || ev.Text != "thanks, kitchen" || ev.Sender.Name != "bob" || ev.Network != "libera" {
			t.Errorf("the device got %s on %s", m.Payload(), m.Topic())
		}
		break
	}
	// The ACL lets Switchboard read the broker's drop count.
	waitMetrics(t, svc, map[string]float64{`switchboard_broker_dropped_total{network="devices"}`: 0})
}

func nextMessage(t *testing.T, ch <-chan paho.Message) paho.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	select {
	case m := <-ch:
		return m
	case <-ctx.Done():
		t.Fatal("the device got nothing")
		return nil
	}
}

// The Matrix guide: the registration switchboard matrix-registration
// prints for the guide's config is the one the guide shows, and Dendrite
// set up with it (the guide's app_service_api lines) bridges a room with
// IRC both ways.
func TestMatrixGuideRegistersAndBridges(t *testing.T) {
	t.Setenv("MATRIX_AS_TOKEN", "CHANGE-ME-as-token")
	t.Setenv("MATRIX_HS_TOKEN", "CHANGE-ME-hs-token")
	want, err := os.ReadFile(filepath.Join("..", "docs", "snippets", "switchboard-registration.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := registration(t, testenv.Snippet(t, "switchboard-matrix.yaml", nil)); !bytes.Equal(got, want) {
		t.Errorf("matrix-registration prints, for the guide's config:\n%s\nthe guide shows:\n%s", got, want)
	}

	srv := testenv.InspIRCd(t)
	t.Setenv("MATRIX_AS_TOKEN", "as-token-guide-0123456789abcdef")
	t.Setenv("MATRIX_HS_TOKEN", "hs-token-guide-0123456789abcdef")
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	vars := map[string]string{
		"listen: 127.0.0.1:8080": "listen: " + listen,
		"domain: example.org":    "domain: localhost",
		"#lobby:example.org":     "#lobby:localhost",
		"irc.example.org:6697":   srv.Addr,
		"tls: true":              "tls: false",
	}
	hs := testenv.Dendrite(t, registration(t, guideText(t, "switchboard-matrix.yaml", vars)))
	vars["http://127.0.0.1:8008"] = hs.URL
	alice := hs.Client(t, "alice")
	roomID := alice.NewRoom(true, "lobby")
	runSwitchboard(t, guideConfig(t, "switchboard-matrix.yaml", vars))
	bob := srv.Client(t, "bob")
	bob.Join("#lobby")

	alice.Text(roomID, "hello from matrix")
	bob.WaitText(patience, "#lobby", "alice[matrix]", "hello from matrix")
	bob.Say("#lobby", "hello from irc")
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	ev, _, err := alice.WaitFor(ctx, 0, func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && c.Body == "hello from irc"
	})
	if err != nil {
		t.Fatalf("alice never saw bob's message: %v", err)
	}
	if ev.Sender != hs.UserID("sb_libera_bob") {
		t.Errorf("bob's message comes from %s", ev.Sender)
	}
}

// registration is what switchboard matrix-registration prints for a
// config text.
func registration(t *testing.T, text string) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "switchboard.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c, ok := adapters.LookupCommand("matrix-registration")
	if !ok {
		t.Fatal("no matrix-registration command")
	}
	var out, errOut bytes.Buffer
	if code := c.Run([]string{"--config", path}, &out, &errOut); code != 0 {
		t.Fatalf("matrix-registration: exit %d: %s", code, errOut.String())
	}
	return out.Bytes()
}
