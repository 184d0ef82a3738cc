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

// burstSize is the burst of issue 16: one device, as fast as it can.
const burstSize = 5000

// burst runs Switchboard between a device broker configured with limits
// and a second Mosquitto where the bridged messages are watched, has one
// device publish burstSize QoS 1 messages as fast as paho sends them, and
// returns the numbers of the messages that came out the other side, in
// the order they came, once nothing more has come for a few seconds.
func burst(t *testing.T, limits string) (got []int, svc *Service, log *testenv.Log) {
	t.Helper()
	devices := testenv.MosquittoWith(t, limits)
	sink := testenv.Mosquitto(t)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
data_dir: %s
http: { listen: "127.0.0.1:0" }
networks:
  devices: { type: mqtt, broker: %s, client_id: sb-devices }
  sink: { type: mqtt, broker: %s, client_id: sb-sink }
links:
  burst: [ "devices:chat/burst", "sink:chat/burst" ]
`, t.TempDir(), devices.URL, sink.URL)))
	if err != nil {
		t.Fatal(err)
	}
	log = testenv.NewLog(t)
	svc, _ = runServiceLogging(t, cfg, log)
	out := sink.Subscribe(t, "chat/burst/out/devices/#", 1)
	dev := devices.Client(t, "")
	var toks []interface{ Wait() bool }
	for i := range burstSize {
		toks = append(toks, dev.Publish("chat/burst/in/flood", 1, false, strconv.Itoa(i)))
	}
	for i, tok := range toks {
		if !tok.Wait() || tok.(interface{ Error() error }).Error() != nil {
			t.Fatalf("message %d was not acknowledged by the broker", i)
		}
	}
	for {
		select {
		case m := <-out.C:
			var ev mqtt.OutEvent
			if err := json.Unmarshal(m.Payload, &ev); err != nil {
				t.Fatalf("payload %q: %v", m.Payload, err)
			}
			n, err := strconv.Atoi(ev.Text)
			if ev.Type != "message" || err != nil {
				t.Fatalf("unexpected event %s", m.Payload)
			}
			got = append(got, n)
			continue
		case <-time.After(3 * time.Second):
		}
		return got, svc, log
	}
}

// inOrder fails unless got is strictly increasing: a burst may lose what
// the broker drops, but never reorders or repeats.
func inOrder(t *testing.T, got []int) {
	t.Helper()
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("message %d came after %d", got[i], got[i-1])
		}
	}
}

// A burst through a broker with room for it (the MQTT guide's setting,
// docs/snippets/mosquitto-limits.conf) loses nothing.
func TestBurstThroughMosquittoWithRoomLosesNothing(t *testing.T) {
	got, _, _ := burst(t, testenv.Snippet(t, "mosquitto-limits.conf", nil))
	inOrder(t, got)
	if len(got) != burstSize {
		t.Fatalf("%d of %d messages arrived", len(got), burstSize)
	}
}

// Mosquitto with its default limits acknowledges a burst to the device and
// then drops what does not fit its queue for Switchboard's session
// (max_queued_messages 1000): nothing Switchboard does as a client can
// take the messages faster, since it acknowledges each only once it is on
// disk. What the broker drops is counted from its own report, and the log
// says which setting to change.
func TestBurstThroughStockMosquittoIsCounted(t *testing.T) {
	got, svc, log := burst(t, "")
	inOrder(t, got)
	if len(got) == burstSize {
		t.Skip("the whole burst fit in the broker's queue this time; nothing to count")
	}
	lost := float64(burstSize - len(got))
	// Mosquitto publishes its $SYS tree every 10 s.
	body := waitMetrics(t, svc, map[string]float64{
		`switchboard_broker_dropped_total{network="devices"}`: lost,
		`switchboard_broker_dropped_total{network="sink"}`:    0,
	})
	if v, _ := metric(body, `switchboard_broker_dropped_total{network="devices"}`); v != lost {
		t.Errorf("the broker reports %v dropped, %v did not arrive", v, lost)
	}
	if v, _ := metric(body, `switchboard_broker_dropped_total{network="sink"}`); v != 0 {
		t.Errorf("sink: broker_dropped_total %v, want 0", v)
	}
	deadline := time.Now().Add(patience)
	for !strings.Contains(log.String(), "raise max_queued_messages") {
		if time.Now().After(deadline) {
			t.Fatal("no warning names max_queued_messages")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, line := range strings.Split(log.String(), "\n") {
		if strings.Contains(line, "raise max_queued_messages") {
			t.Log(line)
		}
	}
}
