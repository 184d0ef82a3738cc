package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// Issue 16, test 1: devices publish at QoS 1 to the embedded broker at
// about 300 messages/s while Switchboard is killed (kill -9 three times,
// SIGTERM once) and started again on the same data_dir. Every message a
// device got its PUBACK for reaches another member of the room (an MQTT
// network of Switchboard's on the same embedded broker, read by a client
// there), in order, each at most once more per crash; a device connecting
// 5 s after each start is let in; and Switchboard uses no more than twice
// the CPU of the same load without restarts, run alongside.
func TestEmbeddedBrokerLosesNothingAcrossCrashes(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts under load")
	}
	bin := buildSwitchboard(t, t.TempDir())
	stops := []brokerStop{brokerKill, brokerKill, brokerTerm, brokerKill}
	var crashed, calm *brokerLoadResult
	// Side by side, so that both see the same machine.
	t.Run("load", func(t *testing.T) {
		t.Run("restarts", func(t *testing.T) { t.Parallel(); crashed = runBrokerLoad(t, bin, stops) })
		t.Run("calm", func(t *testing.T) { t.Parallel(); calm = runBrokerLoad(t, bin, make([]brokerStop, len(stops))) })
	})
	if crashed == nil || calm == nil {
		return // failed already
	}
	t.Logf("with restarts: %d acknowledged, %d repeats, CPU %v; without: %d acknowledged, %d repeats, CPU %v",
		crashed.acked, crashed.repeats, crashed.cpu, calm.acked, calm.repeats, calm.cpu)
	if calm.repeats != 0 {
		t.Errorf("%d repeats without any restart", calm.repeats)
	}
	if crashed.cpu > 2*calm.cpu {
		t.Errorf("Switchboard's CPU with restarts %v, more than twice the %v without", crashed.cpu, calm.cpu)
	}
}

type brokerStop int

const (
	brokerNone brokerStop = iota // runs on
	brokerKill                   // kill -9
	brokerTerm                   // SIGTERM, a clean stop
)

type brokerLoadResult struct {
	acked, repeats int
	cpu            time.Duration // Switchboard's user+system CPU over all its runs
}

const (
	brokerDevices   = 3
	brokerRate      = 100 // messages/s per device
	brokerLife      = 5500 * time.Millisecond
	brokerLateJoin  = 5 * time.Second
	brokerDrainWait = 30 * time.Second
)

// runBrokerLoad runs Switchboard on the embedded defaults (ports and
// data_dir moved, and a second MQTT network "mirror" on the same broker
// added to the lobby as the observer) under the device load for
// len(stops)+1 lives of brokerLife, stopping it as stops says at the end
// of each but the last, and starting it again.
// It checks what arrived and returns the figures to compare.
func runBrokerLoad(t *testing.T, bin string, stops []brokerStop) *brokerLoadResult {
	dir := t.TempDir()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	brokerAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	conf := testenv.WriteFile(t, dir, "switchboard.yaml", fmt.Sprintf(`
data_dir: %s/data
http: { listen: %q }
broker: { listen: %q }
networks:
  local: { type: mqtt, broker: "tcp://%s" }
  web: { type: webrtc, loopback_candidates: true }
  mirror: { type: mqtt, broker: "tcp://%s" }
links:
  lobby: [ "local:switchboard/lobby", "web:lobby", "mirror:mirror/lobby" ]
`, dir, httpAddr, brokerAddr, brokerAddr, brokerAddr))
	sb := &testenv.Process{Name: bin, Args: []string{"run", "--config", conf}, Dir: dir, Ready: httpAddr}
	url := "tcp://" + brokerAddr
	options := func(id string, clean bool) *paho.ClientOptions {
		return paho.NewClientOptions().AddBroker(url).SetClientID(id).SetProtocolVersion(4).
			SetCleanSession(clean).SetOrderMatters(true).SetStore(paho.NewOrderedMemoryStore()).
			SetConnectTimeout(5 * time.Second).SetWriteTimeout(5 * time.Second).
			SetAutoReconnect(true).SetConnectRetry(true).
			SetConnectRetryInterval(100 * time.Millisecond).SetMaxReconnectInterval(250 * time.Millisecond)
	}

	var cpu time.Duration
	started := time.Now()
	sb.Start(t)

	// The observer: a member of the room on another network, with a
	// persistent session, so that what Switchboard sends it while it is
	// away is kept for it.
	obs := &brokerObserver{}
	o := options(testenv.UniqueClientID("observer"), false).
		SetOnConnectHandler(func(c paho.Client) { c.Subscribe("mirror/lobby/out/#", 1, nil) }).
		SetDefaultPublishHandler(obs.receive)
	observer := paho.NewClient(o)
	if tok := observer.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Errorf("observer: connect: %v", tok.Error())
		sb.Stop()
		return nil
	}
	defer observer.Disconnect(250)
	// Its first SUBSCRIBE creates its session's subscription; wait for it.
	if tok := observer.Subscribe("mirror/lobby/out/#", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Errorf("observer: subscribe: %v", tok.Error())
		sb.Stop()
		return nil
	}

	devices := make([]*brokerDevice, brokerDevices)
	for i := range devices {
		d := &brokerDevice{id: fmt.Sprintf("dev%d", i+1), acked: map[int]bool{}}
		d.client = paho.NewClient(options(testenv.UniqueClientID(d.id), false).
			SetConnectionLostHandler(d.lost).SetOnConnectHandler(d.connected))
		if tok := d.client.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Errorf("%s: connect: %v", d.id, tok.Error())
			sb.Stop()
			return nil
		}
		defer d.client.Disconnect(250)
		devices[i] = d
	}
	// A retained message arrives once, as it was published: not again
	// when Switchboard subscribes anew after each start (the broker
	// replays it then, flagged retained, and Switchboard drops that).
	if tok := devices[0].client.Publish("switchboard/lobby/in/"+devices[0].id, 1, true, devices[0].id+" 0"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Errorf("retained publish: %v", tok.Error())
	} else {
		devices[0].acked[0] = true
	}
	stopPub := make(chan struct{})
	var pubs sync.WaitGroup
	for _, d := range devices {
		pubs.Add(1)
		go func() { defer pubs.Done(); d.publish(stopPub) }()
	}

	// Each life: a late device 5 s after the start, then the stop.
	life := 1
	// How soon after each restart a new device gets in.
	var letIn []time.Duration
	probe := func(started time.Time) {
		for time.Since(started) < brokerLateJoin {
			c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(testenv.UniqueClientID("probe")).
				SetProtocolVersion(4).SetConnectTimeout(time.Second))
			if tok := c.Connect(); tok.WaitTimeout(time.Second) && tok.Error() == nil {
				letIn = append(letIn, time.Since(started))
				c.Disconnect(0)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	lateJoin := func() {
		time.Sleep(time.Until(started.Add(brokerLateJoin)))
		c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(testenv.UniqueClientID("late")).
			SetProtocolVersion(4).SetConnectTimeout(5 * time.Second))
		tok := c.Connect()
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Errorf("a device connecting %v after start %d was not let in: %v", brokerLateJoin, life, tok.Error())
			return
		}
		c.Disconnect(0)
	}
	crashes := 0
	for i, stop := range stops {
		lateJoin()
		time.Sleep(time.Until(started.Add(brokerLife)))
		if stop == brokerNone {
			started = time.Now()
			life++
			continue
		}
		cpu += processCPU(t, sb)
		switch stop {
		case brokerKill:
			crashes++
			sb.Kill()
		case brokerTerm:
			began := time.Now()
			sb.Stop() // SIGTERM; SIGKILL only after 5 s
			if took := time.Since(began); took > 4*time.Second {
				t.Errorf("stop %d: SIGTERM took %v", i+1, took)
			}
		}
		started = time.Now()
		sb.Start(t)
		probe(started)
		life++
	}
	// The last life runs as long as the others, then the devices stop.
	lateJoin()
	time.Sleep(time.Until(started.Add(brokerLife)))
	close(stopPub)
	pubs.Wait()

	// Every acknowledged message arrives.
	res := &brokerLoadResult{}
	deadline := time.Now().Add(brokerDrainWait)
	for {
		missing := 0
		got := obs.bySender()
		for _, d := range devices {
			d.mu.Lock()
			for n := range d.acked {
				if len(got[d.id][n]) == 0 {
					missing++
				}
			}
			d.mu.Unlock()
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%d acknowledged messages did not arrive within %v (%d stops)", missing, brokerDrainWait, len(stops))
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	cpu += processCPU(t, sb)
	sb.Stop()
	// No reconnect storm: Switchboard's two clients on the broker connect
	// about once per life.
	out := sb.Output()
	if n := strings.Count(out, `msg="mqtt: connected"`); n > 3*2*life {
		t.Errorf("Switchboard's MQTT clients connected %d times in %d lives", n, life)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			t.Log(line)
		}
	}

	got := obs.bySender()
	for _, d := range devices {
		d.mu.Lock()
		res.acked += len(d.acked)
		d.mu.Unlock()
		// In order: each message's first arrival comes after the first
		// arrival of every earlier one.
		last := 0
		for _, n := range obs.order(d.id) {
			if n < last {
				t.Errorf("%s: message %d arrived after %d", d.id, n, last)
				obs.mu.Lock()
				for _, m := range obs.msgs {
					if m.sender == d.id && m.n >= n-3 && m.n <= last+3 {
						t.Logf("  %s %d %s %s", m.sender, m.n, m.event, m.at.Format("15:04:05.000"))
					}
				}
				obs.mu.Unlock()
				break
			}
			last = n
		}
		for n, events := range got[d.id] {
			if len(events) > 1 {
				res.repeats += len(events) - 1
			}
			if len(events) > 1+crashes {
				t.Errorf("%s: message %d arrived %d times, after %d crashes", d.id, n, len(events), crashes)
			}
		}
	}
	res.cpu = cpu
	if len(letIn) > 0 {
		t.Logf("after each restart, a new device was let in after %v", letIn)
	}
	if res.acked < brokerDevices*brokerRate*int(brokerLife/time.Second)*(len(stops)+1)/2 {
		t.Errorf("only %d messages acknowledged to the devices over %d lives", res.acked, len(stops)+1)
	}
	return res
}

// brokerDevice publishes numbered messages at QoS 1 at brokerRate,
// through restarts (paho keeps what is unacknowledged and sends it again
// on reconnect), and keeps the numbers the broker acknowledged.
//
// paho sends what is published after a reconnect alongside what it
// resends, so a new message can reach the broker before an older one;
// this device, like a careful one, publishes nothing new from a lost
// connection until what it resent is acknowledged. (Messages published
// before paho notices the loss are kept and resent in order.)
type brokerDevice struct {
	id          string
	client      paho.Client
	down        atomic.Bool
	outstanding atomic.Int64
	mu          sync.Mutex
	acked       map[int]bool
}

func (d *brokerDevice) lost(paho.Client, error) { d.down.Store(true) }

func (d *brokerDevice) connected(paho.Client) {
	for deadline := time.Now().Add(brokerDrainWait); d.outstanding.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	d.down.Store(false)
}

func (d *brokerDevice) publish(stop <-chan struct{}) {
	tick := time.NewTicker(time.Second / brokerRate)
	defer tick.Stop()
	var waits sync.WaitGroup
	defer waits.Wait()
	for n := 1; ; {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if d.down.Load() {
			continue
		}
		tok := d.client.Publish("switchboard/lobby/in/"+d.id, 1, false, fmt.Sprintf("%s %d", d.id, n))
		d.outstanding.Add(1)
		waits.Add(1)
		go func(n int) {
			defer waits.Done()
			defer d.outstanding.Add(-1)
			if tok.WaitTimeout(brokerDrainWait) && tok.Error() == nil {
				d.mu.Lock()
				d.acked[n] = true
				d.mu.Unlock()
			}
		}(n)
		n++
	}
}

// brokerObserver keeps what Switchboard published to the mirror room, in
// the order it came.
type brokerObserver struct {
	mu   sync.Mutex
	msgs []brokerObserved
}

type brokerObserved struct {
	event, sender string
	n             int
	at            time.Time
}

func (o *brokerObserver) receive(_ paho.Client, m paho.Message) {
	var p struct {
		ID     string `json:"id"`
		Type   string `json:"type"`
		Text   string `json:"text"`
		Sender struct {
			ID string `json:"id"`
		} `json:"sender"`
	}
	if json.Unmarshal(m.Payload(), &p) != nil || p.Type != "message" {
		return
	}
	_, num, _ := strings.Cut(p.Text, " ")
	n, err := strconv.Atoi(num)
	if err != nil {
		return
	}
	o.mu.Lock()
	o.msgs = append(o.msgs, brokerObserved{event: p.ID, sender: p.Sender.ID, n: n, at: time.Now()})
	o.mu.Unlock()
}

// bySender maps each sender's message numbers to the distinct events that
// carried them (the same event delivered twice is one).
func (o *brokerObserver) bySender() map[string]map[int]map[string]bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	got := map[string]map[int]map[string]bool{}
	for _, m := range o.msgs {
		if got[m.sender] == nil {
			got[m.sender] = map[int]map[string]bool{}
		}
		if got[m.sender][m.n] == nil {
			got[m.sender][m.n] = map[string]bool{}
		}
		got[m.sender][m.n][m.event] = true
	}
	return got
}

// order is the sender's message numbers in the order of their first
// arrival.
func (o *brokerObserver) order(sender string) []int {
	o.mu.Lock()
	defer o.mu.Unlock()
	seen := map[int]bool{}
	var ns []int
	for _, m := range o.msgs {
		if m.sender == sender && !seen[m.n] {
			seen[m.n] = true
			ns = append(ns, m.n)
		}
	}
	return ns
}

// buildSwitchboard builds the switchboard binary into dir.
func buildSwitchboard(t testing.TB, dir string, tags ...string) string {
	t.Helper()
	bin := filepath.Join(dir, "switchboard")
	args := []string{"build", "-o", bin}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}
