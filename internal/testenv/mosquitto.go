package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// MQTTBroker is a Mosquitto started for a test. The embedded Process
// restarts (Restart: SIGTERM, so sessions and queued messages are saved
// and come back) or crashes (Kill: whatever was not saved yet is lost) it.
type MQTTBroker struct {
	*Process
	URL  string // tcp://127.0.0.1:PORT
	Addr string // 127.0.0.1:PORT
	Dir  string // config and persistence
}

// Mosquitto starts a broker on a free loopback port with persistence, so
// persistent sessions survive Restart, and the queue the MQTT setup guide
// gives Switchboard (docs/snippets/mosquitto-limits.conf), so that tests
// which publish many messages to an offline client lose none.
func Mosquitto(t testing.TB) *MQTTBroker {
	t.Helper()
	return MosquittoWith(t, Snippet(t, "mosquitto-limits.conf", nil))
}

// MosquittoWith starts a broker with these lines of mosquitto.conf for its
// limits. With none it is configured as Debian's is: persistence on and
// every limit at Mosquitto's default (max_inflight_messages 20,
// max_queued_messages 1000 per client, a $SYS tree every 10 s).
func MosquittoWith(t testing.TB, limits string) *MQTTBroker {
	t.Helper()
	return startMosquitto(t, func(port int, _ string) string {
		return fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\n", port)
	}, limits)
}

// MosquittoGuide starts a broker configured as the MQTT setup guide says:
// docs/snippets/mosquitto.conf (no anonymous clients, a password file, an
// ACL file), with docs/snippets/mosquitto.acl and the limits of
// docs/snippets/mosquitto-limits.conf, and these users (name: password).
func MosquittoGuide(t testing.TB, users map[string]string) *MQTTBroker {
	t.Helper()
	passwd := Need(t, "mosquitto_passwd")
	return startMosquitto(t, func(port int, dir string) string {
		pw := filepath.Join(dir, "passwd")
		WriteFile(t, dir, "passwd", "")
		for user, pass := range users {
			if out, err := exec.Command(passwd, "-b", pw, user, pass).CombinedOutput(); err != nil {
				t.Fatalf("mosquitto_passwd %s: %v\n%s", user, err, out)
			}
		}
		acl := WriteFile(t, dir, "acl", Snippet(t, "mosquitto.acl", nil))
		return Snippet(t, "mosquitto.conf", map[string]string{
			"listener 1883\n":                       fmt.Sprintf("listener %d 127.0.0.1\n", port),
			"password_file /etc/mosquitto/passwd\n": "password_file " + pw + "\n",
			"acl_file /etc/mosquitto/acl\n":         "acl_file " + acl + "\n",
		})
	}, Snippet(t, "mosquitto-limits.conf", nil))
}

// startMosquitto starts a broker whose listener and access lines are
// access's (given the port and the broker's dir), then limits.
func startMosquitto(t testing.TB, access func(port int, dir string) string, limits string) *MQTTBroker {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		// Debian installs it in /usr/sbin, which is not always on PATH.
		bin = Need(t, "/usr/sbin/mosquitto")
	}
	dir := t.TempDir()
	port := FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	conf := fmt.Sprintf(`%s
persistence true
persistence_location %s/
%s
set_tcp_nodelay true
log_dest stdout
log_type error
log_type warning
log_type notice
log_type information
connection_messages true
`, access(port, dir), dir, limits)
	if os.Geteuid() == 0 {
		// Started as root, mosquitto would switch to the "mosquitto" user,
		// which cannot write to the test's temp dir.
		conf += "user root\n"
	}
	path := WriteFile(t, dir, "mosquitto.conf", conf)
	p := &Process{Name: bin, Args: []string{"-c", path}, Dir: dir, Ready: addr}
	p.Start(t)
	return &MQTTBroker{Process: p, URL: "tcp://" + addr, Addr: addr, Dir: dir}
}

var clientSeq atomic.Uint64

// UniqueClientID returns a client id no other client of this test binary
// uses.
func UniqueClientID(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), clientSeq.Add(1))
}

// Options returns paho client options for the broker: MQTT 3.1.1, clean
// session, automatic reconnects with short backoff, and timeouts suited
// to tests. Adjust them before paho.NewClient.
func (b *MQTTBroker) Options(id string) *paho.ClientOptions {
	return paho.NewClientOptions().
		AddBroker(b.URL).
		SetClientID(id).
		SetProtocolVersion(4).
		SetConnectTimeout(5 * time.Second).
		SetWriteTimeout(5 * time.Second).
		SetMaxReconnectInterval(time.Second).
		SetAutoReconnect(true)
}

// Client connects a client with the given id ("" for a unique one) and
// default Options, and disconnects it when the test ends.
func (b *MQTTBroker) Client(t testing.TB, id string) paho.Client {
	t.Helper()
	if id == "" {
		id = UniqueClientID("testenv")
	}
	return b.Connect(t, b.Options(id))
}

// Connect connects a client with the given options and disconnects it when
// the test ends.
func (b *MQTTBroker) Connect(t testing.TB, o *paho.ClientOptions) paho.Client {
	t.Helper()
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatalf("mqtt connect to %s: timeout", b.URL)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("mqtt connect to %s: %v", b.URL, err)
	}
	t.Cleanup(func() { c.Disconnect(250) })
	return c
}

// WaitClientGone waits until the broker has ended every connection it
// took from client id. A client that stops and connects again with the
// same id at once may reach the broker before the end of its old
// connection does; the broker then closes the old one, and drops what it
// had not read of it yet (its last PUBACKs, its DISCONNECT).
func (b *MQTTBroker) WaitClientGone(t testing.TB, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		log := b.Output()
		connected := strings.Count(log, " as "+id+" (")
		gone := 0
		for _, end := range []string{" disconnected.", " closed its connection.", " has exceeded timeout", " already connected, closing old connection."} {
			gone += strings.Count(log, "Client "+id+end)
		}
		gone += strings.Count(log, "Socket error on client "+id+",")
		if gone >= connected {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto still has %d connection(s) of client %s", connected-gone, id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// MQTTPublish publishes and, for QoS 1 and 2, waits until the broker has
// taken the message.
func MQTTPublish(t testing.TB, c paho.Client, topic string, qos byte, retained bool, payload any) {
	t.Helper()
	tok := c.Publish(topic, qos, retained, payload)
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatalf("mqtt publish to %s: timeout", topic)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("mqtt publish to %s: %v", topic, err)
	}
}

// MQTTMessage is a message a Subscriber received.
type MQTTMessage struct {
	Topic     string
	Payload   []byte
	QoS       byte
	Retained  bool
	Duplicate bool
}

// Subscriber collects the messages of one topic filter. It subscribes again
// after every reconnect, so it keeps working across a broker Restart.
type Subscriber struct {
	Client paho.Client
	// C receives the messages in arrival order.
	C <-chan MQTTMessage

	mu       sync.Mutex
	overflow int
}

// Subscribe connects a fresh client, subscribes it to filter at qos and
// returns once the broker has confirmed the subscription.
func (b *MQTTBroker) Subscribe(t testing.TB, filter string, qos byte) *Subscriber {
	t.Helper()
	ch := make(chan MQTTMessage, 10000)
	s := &Subscriber{C: ch}
	ready := make(chan error, 1)
	var once sync.Once
	handler := func(_ paho.Client, m paho.Message) {
		msg := MQTTMessage{Topic: m.Topic(), Payload: append([]byte(nil), m.Payload()...),
			QoS: m.Qos(), Retained: m.Retained(), Duplicate: m.Duplicate()}
		select {
		case ch <- msg:
		default: // never block paho's reader; Next reports the loss
			s.mu.Lock()
			s.overflow++
			s.mu.Unlock()
		}
	}
	o := b.Options(UniqueClientID("testenv-sub")).
		SetOnConnectHandler(func(c paho.Client) {
			tok := c.Subscribe(filter, qos, handler)
			var err error
			switch {
			case !tok.WaitTimeout(10 * time.Second):
				err = fmt.Errorf("subscribe %s: timeout", filter)
			case tok.Error() != nil:
				err = tok.Error()
			case tok.(*paho.SubscribeToken).Result()[filter] == 0x80:
				err = fmt.Errorf("subscribe %s: refused by the broker", filter)
			}
			once.Do(func() { ready <- err })
		})
	s.Client = b.Connect(t, o)
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("mqtt subscribe %s: %v", filter, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("mqtt subscribe %s: timeout", filter)
	}
	return s
}

// Next returns the next message, failing the test if none arrives within
// timeout.
func (s *Subscriber) Next(t testing.TB, timeout time.Duration) MQTTMessage {
	t.Helper()
	select {
	case m := <-s.C:
		return m
	case <-time.After(timeout):
		s.mu.Lock()
		lost := s.overflow
		s.mu.Unlock()
		t.Fatalf("no MQTT message within %v (%d lost to a full buffer)", timeout, lost)
		return MQTTMessage{}
	}
}

// Quiet fails the test if a message arrives within d.
func (s *Subscriber) Quiet(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case m := <-s.C:
		t.Fatalf("unexpected MQTT message on %s: %q", m.Topic, m.Payload)
	case <-time.After(d):
	}
}
