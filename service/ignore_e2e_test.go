package service

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/httpapi"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/mqtt"
)

// ignoreConfig is the e2e config with libera ignoring nicks with "bot"
// in them (and, by default, the services), plus linkOptions.
func (w *world) ignoreConfig(t *testing.T, linkOptions string) *config.Config {
	t.Helper()
	y := strings.Replace(w.yaml("puppet", "127.0.0.1:0", linkOptions),
		"    reconnect_max: 2s\n", "    reconnect_max: 2s\n    ignore: [\"*bot*\"]\n", 1)
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Test 6: what an IRC nick matching *bot* and NickServ say is not
// bridged, in the channel or to a puppet; what others say is. A link's
// list keeps a device out of that link until a reload drops it.
func TestIgnoredSendersNotBridged(t *testing.T) {
	w := newWorld(t)
	log := testenv.NewLog(t)
	svc, _ := runServiceLogging(t, w.ignoreConfig(t, "link_options:\n  lobby: { ignore: [\"sensor-9\"] }\n"), log)
	sub := w.mqtt.Subscribe(t, root+"/out/#", 1)

	alice := w.human(t, "alice")
	newsbot := w.human(t, "NewsBot")
	// The test server has no services: a client takes the nick.
	nickserv := w.human(t, "NickServ")
	if nickserv.Nick() != "NickServ" {
		t.Fatalf("the server gave the services client the nick %q", nickserv.Nick())
	}
	// A device speaks first, so that its puppet is there to be written to.
	w.publish(t, "sensor-1", "hello from the device")
	alice.WaitText(patience, room, "sensor-1[devices]", "hello from the device")
	puppet := "sensor-1[devices]"

	newsbot.Say(room, "BREAKING ignored headline")
	newsbot.Notice(room, "ignored bot notice")
	nickserv.Notice(room, "ignored services notice")
	nickserv.Say(puppet, "ignored: this nickname is registered")
	w.publish(t, "sensor-9", "ignored reading")
	// What comes after each: in the same room, and to the same puppet.
	alice.Say(room, "a normal line")
	alice.Say(puppet, "are you there?")
	w.publish(t, "sensor-1", "a later reading")

	// MQTT: nothing from the ignored, not even their joins, before
	// alice's line; hers (join included) arrive.
	var seen []mqtt.OutEvent
	for len(seen) == 0 || seen[len(seen)-1].Text != "a normal line" {
		m := sub.Next(t, patience)
		var ev mqtt.OutEvent
		if err := json.Unmarshal(m.Payload, &ev); err != nil {
			t.Fatalf("payload %q: %v", m.Payload, err)
		}
		seen = append(seen, ev)
	}
	aliceJoined := false
	for _, ev := range seen {
		if ev.Sender.Name == "NewsBot" || ev.Sender.Name == "NickServ" {
			t.Errorf("an ignored sender's %s reached MQTT: %+v", ev.Type, ev)
		}
		aliceJoined = aliceJoined || ev.Type == "join" && ev.Sender.Name == "alice"
	}
	if !aliceJoined {
		t.Errorf("alice's join did not reach MQTT before her line: %+v", seen)
	}

	// The device has no direct messages: alice is told hers failed.
	// NickServ's, ignored, was never tried, so it is neither on the
	// failed list nor answered (two bots would talk for ever).
	told := alice.WaitMessage(patience, func(l testenv.IRCLine) bool {
		return l.Command == "NOTICE" && strings.HasPrefix(l.Text(), "Your message to sensor-1")
	})
	if told.Nick() != "switchboard" {
		t.Errorf("alice was told by %q", told.Nick())
	}
	var list struct {
		Failed []httpapi.Failed `json:"failed"`
	}
	base := "http://" + svc.HTTPAddr
	code, body := apiCall(t, "GET", base+"/api/failed", apiToken, nil)
	if err := json.Unmarshal(body, &list); code != http.StatusOK || err != nil {
		t.Fatalf("GET /api/failed: %d %s %v", code, body, err)
	}
	if len(list.Failed) != 1 || list.Failed[0].Text != "are you there?" {
		t.Errorf("failed list %s, want alice's message alone", body)
	}

	// IRC: the device's later reading arrives, sensor-9's never did.
	alice.WaitText(patience, room, puppet, "a later reading")
	if got := messages(alice, "sensor-9[devices]"); len(got) != 0 {
		t.Errorf("the link's ignored device reached IRC: %q", got)
	}
	if got := nickserv.Messages(func(l testenv.IRCLine) bool { return strings.EqualFold(l.Nick(), "switchboard") }); len(got) != 0 {
		t.Errorf("NickServ got lines from the bot: %v", got[0].Raw)
	}

	// Counted under the sender's network: NewsBot's join, line and
	// notice, NickServ's join, notice and private message; sensor-9's
	// reading.
	libera := `switchboard_inbound_dropped_total{network="libera",reason="ignored"}`
	devices := `switchboard_inbound_dropped_total{network="devices",reason="ignored"}`
	metrics := waitMetrics(t, svc, map[string]float64{libera: 6, devices: 1})
	if v, _ := metric(metrics, libera); v != 6 {
		t.Errorf("%s = %v, want 6", libera, v)
	}
	if v, _ := metric(metrics, devices); v != 1 {
		t.Errorf("%s = %v, want 1", devices, v)
	}
	for _, n := range getStatus(t, svc).Networks {
		if want := map[string]uint64{"libera": 6, "devices": 1}[n.Name]; n.Dropped["ignored"] != want {
			t.Errorf("/api/status: %s dropped %v, want %d ignored", n.Name, n.Dropped, want)
		}
	}
	// The operator's log names the room and the sender, never the text.
	logged := log.String()
	if !strings.Contains(logged, `msg="event from an ignored sender dropped" component=router room=libera:#room sender=NewsBot mask=NewsBot!`) ||
		!strings.Contains(logged, "sender=NickServ") || !strings.Contains(logged, "sender=sensor-9") {
		t.Errorf("the drops are not logged with room and sender:\n%s", logged)
	}
	for _, text := range []string{"BREAKING", "ignored bot notice", "ignored services notice", "this nickname is registered", "ignored reading"} {
		if strings.Contains(logged, text) {
			t.Errorf("the log holds the text of an ignored message, %q", text)
		}
	}

	// A reload without the link's list lets the device in at once.
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := svc.reload(ctx, w.ignoreConfig(t, "")); err != nil {
		t.Fatal(err)
	}
	w.publish(t, "sensor-9", "let in")
	alice.WaitText(patience, room, "sensor-9[devices]", "let in")
	// NewsBot stays ignored, leaving included: that list is the network's.
	newsbot.Say(room, "still ignored")
	newsbot.Part(room, "bye")
	alice.Say(room, "second marker")
	for {
		m := sub.Next(t, patience)
		var ev mqtt.OutEvent
		if err := json.Unmarshal(m.Payload, &ev); err != nil {
			t.Fatalf("payload %q: %v", m.Payload, err)
		}
		if ev.Sender.Name == "NewsBot" {
			t.Errorf("after the reload NewsBot's %s reached MQTT", ev.Type)
		}
		if ev.Text == "second marker" {
			break
		}
	}
}
