package service

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	_ "github.com/switchboard-chat/switchboard/adapters/all" // every network type, as the binary has them
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/internal/testwait"
	"github.com/switchboard-chat/switchboard/mqtt"
)

// Every test here runs the whole of Switchboard, in process, against a
// real InspIRCd and a real Mosquitto, and asserts what an IRC user or an
// MQTT device sees.

const (
	room     = "#room"
	root     = "sb/room"
	patience = testwait.Patience
)

type world struct {
	irc  *testenv.IRCServer
	mqtt *testenv.MQTTBroker
	dir  string
}

func newWorld(t *testing.T) *world {
	return &world{irc: testenv.InspIRCd(t), mqtt: testenv.Mosquitto(t), dir: t.TempDir()}
}

// config links IRC #room with MQTT root sb/room.
func (w *world) config(t *testing.T, mode string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(w.yaml(mode, "127.0.0.1:0", "")))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// yaml is the config file of config, listening on listen, with extra
// lines added at the end of links.
func (w *world) yaml(mode, listen, links string) string {
	return fmt.Sprintf(`
data_dir: %s
http: { listen: %q, api_token: %s }
networks:
  libera:
    type: irc
    server: %s
    nick: switchboard
    mode: %s
    flood: { burst: 50, interval: 10ms }
    reconnect_max: 2s
  devices:
    type: mqtt
    broker: %s
    client_id: switchboard-e2e
admins: [ "libera:alice!*@*" ]
links:
  lobby: [ "libera:%s", "devices:%s" ]
%s`, w.dir, listen, apiToken, w.irc.Addr, mode, w.mqtt.URL, room, root, links)
}

// apiToken is the provisioning API's token in the tests' configs.
const apiToken = "test-token-0123456789"

// run starts Switchboard and stops it when the test ends; stop may be
// called earlier.
func runSwitchboard(t *testing.T, cfg *config.Config) (stop func()) {
	t.Helper()
	_, stop = runService(t, cfg)
	return stop
}

// runService is runSwitchboard that also returns the service.
func runService(t *testing.T, cfg *config.Config) (svc *Service, stop func()) {
	t.Helper()
	return runServiceLogging(t, cfg, testenv.NewLog(t))
}

// runServiceLogging is runService logging to l.
func runServiceLogging(t *testing.T, cfg *config.Config, l *testenv.Log) (svc *Service, stop func()) {
	t.Helper()
	log := l.Logger()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	svc, err := Start(ctx, cfg, log)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	waitReady(t, svc)
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		svc.Stop(ctx)
	}
	t.Cleanup(stop)
	return svc, stop
}

// waitReady waits until every network is connected: stricter than
// /readyz, which gives a network http.ready_grace to get there.
func waitReady(t *testing.T, svc *Service) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		var problems []string
		for name, a := range svc.nets.all() {
			if c, ok := a.(adapters.Connected); ok && !c.Connected() {
				problems = append(problems, name+": not connected")
			}
		}
		if len(problems) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v", problems)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// human joins #room on IRC.
func (w *world) human(t *testing.T, nick string) *testenv.IRCClient {
	c := w.irc.Client(t, nick)
	c.Join(room)
	return c
}

// device publishes as an MQTT device.
func (w *world) publish(t *testing.T, device, payload string) {
	t.Helper()
	c := w.mqtt.Client(t, testenv.UniqueClientID(device))
	testenv.MQTTPublish(t, c, root+"/in/"+device, 1, false, payload)
}

// messages are the texts of the PRIVMSGs a human saw in #room from nick.
func messages(c *testenv.IRCClient, nick string) []string {
	var out []string
	for _, l := range c.Messages(func(l testenv.IRCLine) bool {
		return strings.EqualFold(l.Target(), room) && (nick == "" || strings.EqualFold(l.Nick(), nick))
	}) {
		out = append(out, l.Text())
	}
	return out
}

// Test 1: a device's message reaches IRC from the device's puppet.
func TestDeviceMessageReachesIRCFromItsPuppet(t *testing.T) {
	w := newWorld(t)
	runSwitchboard(t, w.config(t, "puppet"))
	alice := w.human(t, "alice")
	w.publish(t, "sensor-1", "hello")
	alice.WaitText(patience, room, "sensor-1[devices]", "hello")
}

// Test 2: what an IRC user says reaches MQTT subscribers as a JSON event.
func TestIRCMessageReachesMQTTAsJSON(t *testing.T) {
	w := newWorld(t)
	runSwitchboard(t, w.config(t, "puppet"))
	sub := w.mqtt.Subscribe(t, root+"/out/#", 1)
	alice := w.human(t, "alice")
	alice.Say(room, "hi")
	var ev mqtt.OutEvent
	var m testenv.MQTTMessage
	for ev.Type != "message" { // alice's join comes first
		m = sub.Next(t, patience)
		if err := json.Unmarshal(m.Payload, &ev); err != nil {
			t.Fatalf("payload %q: %v", m.Payload, err)
		}
	}
	if m.Topic != root+"/out/libera/alice" {
		t.Errorf("topic %q, want %s/out/libera/alice", m.Topic, root)
	}
	if ev.Type != "message" || ev.Text != "hi" || ev.Sender.Name != "alice" || ev.Sender.ID != "alice" ||
		ev.Network != "libera" || ev.Room != room || ev.ID == "" || ev.TS == "" {
		t.Errorf("event %s: want a message \"hi\" from alice on libera %s with id and ts", m.Payload, room)
	}
}

// Test 3: relay mode, where the bot speaks for everyone.
func TestRelayModeBotPostsNameAndText(t *testing.T) {
	w := newWorld(t)
	runSwitchboard(t, w.config(t, "relay"))
	alice := w.human(t, "alice")
	w.publish(t, "sensor-1", "hello")
	alice.WaitText(patience, room, "switchboard", "<sensor-1> hello")
}

// Test 4: a 1,500-byte message arrives whole, as several lines within the
// server's limit, in order.
func TestLongMessageSplitWithinLineLimit(t *testing.T) {
	w := newWorld(t)
	runSwitchboard(t, w.config(t, "puppet"))
	alice := w.human(t, "alice")
	var words []string
	for i := 0; len(strings.Join(words, " ")) < 1500; i++ {
		words = append(words, fmt.Sprintf("word%03d", i))
	}
	text := strings.Join(words, " ")[:1500]
	text = strings.TrimSpace(text[:strings.LastIndexByte(text, ' ')]) + " end"
	w.publish(t, "sensor-1", text)
	last := alice.WaitMessage(patience, func(l testenv.IRCLine) bool { return strings.HasSuffix(l.Text(), " end") })
	var parts []string
	for _, l := range alice.Messages(func(l testenv.IRCLine) bool { return l.Nick() == last.Nick() }) {
		// IRCv3 tags have a budget of their own; 512 bytes is the rest.
		line := l.Raw
		if strings.HasPrefix(line, "@") {
			line = line[strings.IndexByte(line, ' ')+1:]
		}
		if len(line)+2 > 512 {
			t.Errorf("line of %d bytes (with CRLF) exceeds 512: %q", len(line)+2, line)
		}
		parts = append(parts, l.Text())
	}
	if len(parts) < 4 {
		t.Errorf("1,500 bytes arrived in %d lines, want at least 4", len(parts))
	}
	if got := strings.Join(parts, " "); got != text {
		t.Errorf("reassembled text differs:\n got %q\nwant %q", got, text)
	}
}

// Test 5: CR, LF and NUL never reach the wire: no injected command, the
// puppet stays, the text stays minus the control characters.
func TestHostileTextCannotInjectCommands(t *testing.T) {
	w := newWorld(t)
	runSwitchboard(t, w.config(t, "puppet"))
	alice := w.human(t, "alice")
	w.publish(t, "mallory", "a\r\nQUIT :x\x00b")
	alice.WaitText(patience, room, "mallory[devices]", "QUIT :xb")
	w.publish(t, "mallory", "still here")
	alice.WaitText(patience, room, "mallory[devices]", "still here")
	if got := messages(alice, "mallory[devices]"); !slices.Equal(got, []string{"a", "QUIT :xb", "still here"}) {
		t.Errorf("alice saw %q", got)
	}
	for _, l := range alice.Lines() {
		if strings.EqualFold(l.Nick(), "mallory[devices]") && (l.Command == "QUIT" || l.Command == "PART") {
			t.Errorf("the puppet left: %s", l.Raw)
		}
		if strings.ContainsAny(l.Raw, "\x00\r\n") {
			t.Errorf("control character on the wire: %q", l.Raw)
		}
	}
}

// Test 6: messages published while Switchboard is down are delivered once,
// in order, after it starts.
func TestMessagesPublishedWhileStoppedArriveAfterStart(t *testing.T) {
	w := newWorld(t)
	cfg := w.config(t, "puppet")
	stop := runSwitchboard(t, cfg)
	stop()
	dev := w.mqtt.Client(t, testenv.UniqueClientID("dev"))
	var want []string
	for i := 1; i <= 10; i++ {
		want = append(want, fmt.Sprintf("while down %02d", i))
		testenv.MQTTPublish(t, dev, root+"/in/dev", 1, false, want[i-1])
	}
	alice := w.human(t, "alice")
	runSwitchboard(t, cfg)
	alice.WaitText(patience, room, "dev[devices]", "while down 10")
	time.Sleep(500 * time.Millisecond) // a duplicate would show up by now
	if got := messages(alice, "dev[devices]"); !slices.Equal(got, want) {
		t.Errorf("alice saw\n%q\nwant\n%q", got, want)
	}
}

// Test 7: InspIRCd restarts during a stream; every message arrives once.
func TestIRCServerRestartLosesAndRepeatsNothing(t *testing.T) {
	w := newWorld(t)
	runSwitchboard(t, w.config(t, "puppet"))
	before := w.human(t, "before")
	dev := w.mqtt.Client(t, testenv.UniqueClientID("dev"))
	const n = 30
	say := func(i int) { testenv.MQTTPublish(t, dev, root+"/in/dev", 1, false, fmt.Sprintf("stream %02d", i)) }
	for i := 1; i <= 10; i++ {
		say(i)
		time.Sleep(20 * time.Millisecond)
	}
	before.WaitText(patience, room, "dev[devices]", "stream 05")
	w.irc.Process.Stop()
	for i := 11; i <= 20; i++ {
		say(i) // accepted into the outbox while IRC is down
	}
	w.irc.Process.Start(t)
	after := w.human(t, "after")
	for i := 21; i <= n; i++ {
		say(i)
		time.Sleep(20 * time.Millisecond)
	}
	after.WaitText(2*patience, room, "dev[devices]", fmt.Sprintf("stream %02d", n))
	time.Sleep(500 * time.Millisecond)
	seen := map[string]int{}
	for _, text := range append(messages(before, "dev[devices]"), messages(after, "dev[devices]")...) {
		seen[text]++
	}
	for i := 1; i <= n; i++ {
		text := fmt.Sprintf("stream %02d", i)
		if seen[text] != 1 {
			t.Errorf("%q seen %d times", text, seen[text])
		}
	}
	got := messages(after, "dev[devices]")
	if !slices.IsSorted(got) {
		t.Errorf("out of order after the restart: %q", got)
	}
	if !slices.Contains(got, "stream 11") || !slices.Contains(got, "stream 20") {
		t.Errorf("messages sent during the outage did not arrive after it: %q", got)
	}
}
