package broker

import (
	"bytes"
	"context"
	"fmt"
	"github.com/switchboard-chat/switchboard/mqtt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// Until the bridge has subscribed, the embedded broker turns devices away
// (disconnected; they retry, as after a broker restart)
// instead of accepting messages nobody would receive; the bridge's own
// client, known by its credentials, gets in.
func TestBrokerKeepsDevicesOutUntilOpened(t *testing.T) {
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	m, bridge, err := Credentials(&mqtt.Config{Broker: "tcp://" + listen, ClientID: "switchboard-local"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Username == "" || m.Password == "" || bridge.pass != m.Password {
		t.Fatalf("no credentials for the bridge's client: %+v", m)
	}
	b, err := Start(listen, t.TempDir(), []Credential{bridge}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer Close(context.Background(), b, slog.New(slog.DiscardHandler))
	connect := func(id, user, pass string) error {
		o := paho.NewClientOptions().AddBroker("tcp://" + listen).SetClientID(id).SetConnectTimeout(5 * time.Second)
		o.SetUsername(user).SetPassword(pass)
		c := paho.NewClient(o)
		tok := c.Connect()
		if !tok.WaitTimeout(10 * time.Second) {
			return fmt.Errorf("connect of %s timed out", id)
		}
		if tok.Error() == nil {
			c.Disconnect(0)
		}
		return tok.Error()
	}
	// nats-server queues CONNACK "not authorized" and closes the
	// connection; the client sees either.
	err = connect("device-1", "", "")
	if err == nil || strings.Contains(err.Error(), "timed out") {
		t.Fatalf("device before the bridge subscribed: %v, want refused", err)
	}
	// The client id alone does not get a device in early.
	if err := connect("switchboard-local", "switchboard", "guess"); err == nil {
		t.Fatal("a device with the bridge's client id and a wrong password got in")
	}
	if err := connect("switchboard-local", m.Username, m.Password); err != nil {
		t.Fatalf("the bridge's own client was refused: %v", err)
	}
	b.open()
	if err := connect("device-1", "", ""); err != nil {
		t.Fatalf("device after opening: %v", err)
	}
	// Open, the broker checks no credentials (as before).
	if err := connect("device-2", "any", "thing"); err != nil {
		t.Fatalf("device with credentials after opening: %v", err)
	}
}

// Credentials in the broker URL are what paho sends, so they are what
// the gate knows the bridge by; configured ones are kept.
func TestBrokerCredentials(t *testing.T) {
	m, c, err := Credentials(&mqtt.Config{Broker: "tcp://u:p@127.0.0.1:1883"})
	if err != nil || c != (Credential{"u", "p"}) || m.Username != "" {
		t.Errorf("URL credentials: %+v %+v %v", m, c, err)
	}
	m, c, err = Credentials(&mqtt.Config{Broker: "tcp://127.0.0.1:1883", Username: "me", Password: "pw"})
	if err != nil || c != (Credential{"me", "pw"}) || m.Username != "me" {
		t.Errorf("configured credentials: %+v %+v %v", m, c, err)
	}
	orig := &mqtt.Config{Broker: "tcp://127.0.0.1:1883"}
	m1, c1, _ := Credentials(orig)
	_, c2, _ := Credentials(orig)
	if orig.Username != "" || orig.Password != "" {
		t.Errorf("the config was changed: %+v", orig)
	}
	if len(c1.pass) < 32 || c1 == c2 || m1.Password != c1.pass {
		t.Errorf("generated credentials %+v, %+v", c1, c2)
	}
}

// A second Switchboard on the same data_dir fails at once, saying why.
func TestBrokerDataDirInUse(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	b, err := Start(fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), dir, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	defer Close(context.Background(), b, log)
	began := time.Now()
	_, err = Start(fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), dir, nil, log)
	if err == nil || !strings.Contains(err.Error(), "in use by another Switchboard") {
		t.Fatalf("second broker on the same data_dir: %v", err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("refusing took %v", took)
	}
}

// Upgrading from mochi's store: its broker.db is named in a warning at
// the first start and left alone; later starts say nothing of it.
func TestBrokerLeavesMochiStore(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "broker.db")
	if err := os.WriteFile(old, []byte("bolt"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{1, 0} {
		var logs bytes.Buffer
		b, err := Start(fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), dir, nil, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		Close(context.Background(), b, slog.New(slog.DiscardHandler))
		if n := strings.Count(logs.String(), "(mochi)"); n != want {
			t.Errorf("start %d: broker.db named %d times, want %d:\n%s", i+1, n, want, logs.String())
		}
		if i == 0 && !strings.Contains(logs.String(), "level=WARN") {
			t.Errorf("no warning:\n%s", logs.String())
		}
		if strings.Contains(logs.String(), "level=ERROR") {
			t.Errorf("start %d logged an error:\n%s", i+1, logs.String())
		}
	}
	if b, err := os.ReadFile(old); err != nil || string(b) != "bolt" {
		t.Errorf("broker.db changed: %q, %v", b, err)
	}
}

// Stopping never waits for a broker that does not stop.
func TestBrokerCloseNeverHangs(t *testing.T) {
	stuck := make(chan struct{})
	defer close(stuck)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	began := time.Now()
	closeWithin(ctx, func() { <-stuck }, slog.New(slog.DiscardHandler))
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("closing a stuck broker took %v", took)
	}
}

func TestOnBroker(t *testing.T) {
	for _, c := range []struct {
		url, listen string
		want        bool
	}{
		{"tcp://127.0.0.1:1883", "127.0.0.1:1883", true},
		{"tcp://localhost:1883", "localhost:1883", true},
		{"tcp://127.0.0.1:1883", ":1883", true},
		{"tcp://localhost:1883", "0.0.0.0:1883", true},
		{"tcp://[::1]:1883", "[::]:1883", true},
		{"tcp://127.0.0.1:1884", "127.0.0.1:1883", false},
		{"tcp://10.0.0.5:1883", "127.0.0.1:1883", false},
		{"tcp://10.0.0.5:1883", ":1883", false},
		{"ssl://127.0.0.1:8883", "127.0.0.1:1883", false},
	} {
		if got := onBroker(c.url, c.listen); got != c.want {
			t.Errorf("onBroker(%q, %q) = %v, want %v", c.url, c.listen, got, c.want)
		}
	}
}

// BenchmarkBrokerSync measures what syncing every stored message costs:
// one device publishes at QoS 1 through the embedded broker to a
// persistent QoS 1 subscriber, one message at a time (a device waiting
// for each PUBACK) and 256 in flight, with JetStream syncing each write
// (as shipped) and syncing every 2 minutes (nats-server's default).
//
//	go test -run XXX -bench BrokerSync -benchtime 2000x ./cmd/switchboard/
func BenchmarkBrokerSync(b *testing.B) {
	for _, always := range []bool{true, false} {
		for _, inflight := range []int{1, 256} {
			b.Run(fmt.Sprintf("sync_always=%v/inflight=%d", always, inflight), func(b *testing.B) {
				defer func(v bool) { brokerSyncAlways = v }(brokerSyncAlways)
				brokerSyncAlways = always
				benchmarkBroker(b, inflight)
			})
		}
	}
}

// openBroker starts an embedded broker on a free port, open to
// everyone, closes it when the test ends, and returns its address.
func openBroker(tb testing.TB) string {
	tb.Helper()
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(tb))
	log := slog.New(slog.DiscardHandler)
	b, err := Start(listen, tb.TempDir(), nil, log)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { Close(context.Background(), b, log) })
	b.open()
	return listen
}

func benchmarkBroker(b *testing.B, inflight int) {
	listen := openBroker(b)
	got := make(chan struct{}, b.N)
	o := paho.NewClientOptions().AddBroker("tcp://" + listen).SetClientID("sub").SetCleanSession(false).
		SetDefaultPublishHandler(func(paho.Client, paho.Message) { got <- struct{}{} })
	sub := paho.NewClient(o)
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	defer sub.Disconnect(0)
	if tok := sub.Subscribe("bench/#", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	pub := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + listen).SetClientID("pub"))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	defer pub.Disconnect(0)
	window := make(chan paho.Token, inflight)
	cpu0 := testenv.CPUTime()
	b.ResetTimer()
	go func() {
		for i := 0; i < b.N; i++ {
			window <- pub.Publish("bench/in", 1, false, fmt.Sprintf("message %d", i))
		}
		close(window)
	}()
	for tok := range window {
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			b.Fatalf("publish: %v", tok.Error())
		}
	}
	for i := 0; i < b.N; i++ {
		select {
		case <-got:
		case <-time.After(30 * time.Second):
			b.Fatalf("%d of %d delivered", i, b.N)
		}
	}
	b.StopTimer()
	testenv.ReportCPU(b, cpu0, b.N, "cpu-µs/msg")
}

// A session subscribed to several topics gets a backlog longer than the
// broker's in-flight window across them (as Switchboard's client, one
// subscription a room, after a restart) at once and in order: nats-server
// would hold back what goes past the session's window for its 30 s ack
// wait (see balanceWindows).
func TestBrokerBacklogOverSeveralSubscriptions(t *testing.T) {
	listen := openBroker(t)
	rooms := []string{"a", "b", "c"}
	const each = 700 // 2,100 in all, far past the window
	var mu sync.Mutex
	got := map[string][]int{}
	o := paho.NewClientOptions().AddBroker("tcp://" + listen).SetClientID("bridge").SetCleanSession(false).SetOrderMatters(true).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			n, _ := strconv.Atoi(string(m.Payload()))
			mu.Lock()
			got[m.Topic()] = append(got[m.Topic()], n)
			mu.Unlock()
		})
	connect := func(o *paho.ClientOptions) paho.Client {
		c := paho.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("connect: %v", tok.Error())
		}
		return c
	}
	sub := connect(o)
	for _, r := range rooms {
		if tok := sub.Subscribe(r+"/in", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe: %v", tok.Error())
		}
	}
	sub.Disconnect(100)
	pub := connect(paho.NewClientOptions().AddBroker("tcp://" + listen).SetClientID("device"))
	defer pub.Disconnect(0)
	var last paho.Token
	for i := 1; i <= each; i++ {
		for _, r := range rooms {
			last = pub.Publish(r+"/in", 1, false, strconv.Itoa(i))
		}
	}
	if !last.WaitTimeout(30*time.Second) || last.Error() != nil {
		t.Fatalf("publish: %v", last.Error())
	}
	began := time.Now()
	sub = connect(o)
	defer sub.Disconnect(0)
	for {
		mu.Lock()
		n := 0
		for _, r := range rooms {
			n += len(got[r+"/in"])
		}
		mu.Unlock()
		if n >= each*len(rooms) {
			break
		}
		if time.Since(began) > 10*time.Second {
			t.Fatalf("%d of %d delivered after %v", n, each*len(rooms), time.Since(began))
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, r := range rooms {
		for i, n := range got[r+"/in"] {
			if n != i+1 {
				t.Fatalf("%s: message %d came as number %d", r, n, i+1)
			}
		}
	}
	t.Logf("%d messages over %d subscriptions in %v", each*len(rooms), len(rooms), time.Since(began))
}

// One client (Switchboard's, one subscription R/in/+ a room) can
// subscribe to 250 topics at QoS 1 on the embedded broker.
func TestBrokerManySubscriptions(t *testing.T) {
	listen := openBroker(t)
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + listen).SetClientID("bridge").SetCleanSession(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(0)
	for i := range 250 {
		tok := c.Subscribe(fmt.Sprintf("room%d/in/+", i), 1, nil)
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscription %d: %v", i+1, tok.Error())
		}
		if q := tok.(*paho.SubscribeToken).Result()[fmt.Sprintf("room%d/in/+", i)]; q != 1 {
			t.Fatalf("subscription %d granted %#x", i+1, q)
		}
	}
}

// broker.listen with port 0 listens on a free port, and says which.
func TestBrokerListensOnPortZero(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	b, err := Start("127.0.0.1:0", t.TempDir(), nil, log)
	if err != nil {
		t.Fatal(err)
	}
	defer Close(context.Background(), b, log)
	b.open()
	if strings.HasSuffix(b.Addr(), ":0") {
		t.Fatalf("Addr %s", b.Addr())
	}
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + b.Addr()).SetClientID("device"))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect to %s: %v", b.Addr(), tok.Error())
	}
	c.Disconnect(0)
}
