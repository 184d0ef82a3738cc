package testenv

import (
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// TestMosquittoGuideACL: the MQTT guide's users and ACL
// (docs/snippets/mosquitto.conf, mosquitto.acl) let Switchboard's user
// read what devices send and the broker's drop count, let a device
// publish under its own name only, and turn away anonymous clients and
// wrong passwords.
func TestMosquittoGuideACL(t *testing.T) {
	t.Parallel()
	b := MosquittoGuide(t, map[string]string{"switchboard": "sb-pass", "sensor-1": "s1-pass"})
	as := func(user, pass string) *paho.ClientOptions {
		return b.Options(UniqueClientID(user)).SetUsername(user).SetPassword(pass).SetAutoReconnect(false)
	}
	got := make(chan string, 10)
	sb := b.Connect(t, as("switchboard", "sb-pass"))
	for _, filter := range []string{"chat/lobby/in/+", "$SYS/broker/publish/messages/dropped"} {
		tok := sb.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) { got <- m.Topic() + " " + string(m.Payload()) })
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil || tok.(*paho.SubscribeToken).Result()[filter] == 0x80 {
			t.Fatalf("switchboard cannot subscribe %s: %v", filter, tok.Error())
		}
	}
	want := func(msg string) {
		t.Helper()
		for {
			select {
			case m := <-got:
				if m == msg {
					return
				}
				if m != "$SYS/broker/publish/messages/dropped 0" {
					t.Fatalf("switchboard got %q, want %q", m, msg)
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("switchboard did not get %q", msg)
			}
		}
	}
	// Mosquitto publishes its $SYS tree every 10 s; a retained copy is
	// sent on subscribing.
	want("$SYS/broker/publish/messages/dropped 0")

	dev := b.Connect(t, as("sensor-1", "s1-pass"))
	MQTTPublish(t, dev, "chat/lobby/in/sensor-2", 1, false, "posing as another")
	MQTTPublish(t, dev, "chat/lobby/in/sensor-1", 1, false, "21.5")
	want("chat/lobby/in/sensor-1 21.5")

	for _, o := range []*paho.ClientOptions{b.Options(UniqueClientID("anon")).SetAutoReconnect(false), as("sensor-1", "wrong")} {
		c := paho.NewClient(o)
		if tok := c.Connect(); tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
			c.Disconnect(0)
			t.Errorf("user %q with password %q was let in", o.Username, o.Password)
		}
	}
}
