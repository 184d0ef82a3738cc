package mqtt

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/adapters/adapterstest"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

func TestConformance(t *testing.T) {
	b := testenv.Mosquitto(t)
	clientID := testenv.UniqueClientID("sb-conformance")
	adapterstest.Run(t, adapterstest.Harness{
		Network: "mq",
		Room:    "conformance/room",
		New: func(t *testing.T) adapters.Adapter {
			a, _ := newAdapter(t, b.URL, setup{clientID: clientID})
			return a
		},
		Human:   func(t *testing.T) adapterstest.Human { return newDevice(t, b, "conformance/room", "human-1") },
		Restart: func(t *testing.T) { b.Restart() },
	})
}

// device is a person on MQTT: it publishes to R/in/<id> and reads what
// Switchboard publishes under R/out/.
type device struct {
	c    paho.Client
	room string
	id   string
	sub  *testenv.Subscriber
}

func newDevice(t *testing.T, b *testenv.MQTTBroker, room, id string) *device {
	return &device{
		c:    b.Client(t, testenv.UniqueClientID(id)),
		room: room,
		id:   id,
		sub:  b.Subscribe(t, room+"/out/#", 1),
	}
}

func (d *device) Say(text string) error {
	tok := d.c.Publish(d.room+"/in/"+d.id, 1, false, text)
	if !tok.WaitTimeout(10 * time.Second) {
		return context.DeadlineExceeded
	}
	return tok.Error()
}

func (d *device) WaitFor(ctx context.Context, match func(adapterstest.Line) bool) (adapterstest.Line, error) {
	for {
		select {
		case m := <-d.sub.C:
			var ev OutEvent
			if err := json.Unmarshal(m.Payload, &ev); err != nil {
				return adapterstest.Line{}, err
			}
			l := adapterstest.Line{From: ev.Sender.Name, Text: ev.Text}
			if match(l) {
				return l, nil
			}
		case <-ctx.Done():
			return adapterstest.Line{}, ctx.Err()
		}
	}
}
