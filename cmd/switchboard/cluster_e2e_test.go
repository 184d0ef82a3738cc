package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/cluster"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/status"
)

// The cluster tests (issue 26) run three Switchboard processes on one
// PostgreSQL and one nats-server (each its own process, so that it can
// be killed), with InspIRCd, Prosody and Mosquitto, linking an IRC
// channel, a MUC and an MQTT room.

const (
	clusterChannel = "#hall"
	clusterRoot    = "sb/hall"
	// clusterTTL is the lease TTL of the tests: a network of a dead
	// instance moves within it (plus the time to reconnect).
	clusterTTL = 3 * time.Second
)

type clusterWorld struct {
	t      *testing.T
	irc    *testenv.IRCServer
	xmpp   *testenv.XMPPServer
	broker *testenv.MQTTBroker
	nats   *testenv.NATSServer
	muc    string
	sb     []*testenv.Process
	http   []string
	down   []bool // killed or stopped, not started again
}

// newClusterWorld starts the servers and n instances, and waits until
// each network is held by one of them.
func newClusterWorld(t *testing.T, n int, networks string) *clusterWorld {
	t.Helper()
	if testing.Short() {
		t.Skip("runs three Switchboard processes")
	}
	pg := testenv.Postgres(t)
	w := &clusterWorld{
		t:      t,
		nats:   testenv.NATS(t),
		irc:    testenv.InspIRCd(t),
		broker: testenv.Mosquitto(t),
		// A production setup: a new component connection replaces one
		// left open by a frozen or partitioned instance.
		xmpp: testenv.ProsodyWith(t, testenv.XMPPServerConfig{Users: clusterUsers, Global: `component_conflict_resolve = "kick_old"`}),
	}
	w.muc = w.xmpp.Room("hall").String()
	// The channel keeps its history, which a new holder of the IRC
	// network catches up from.
	op := w.irc.Client(t, "opper")
	op.Join(clusterChannel)
	op.Send("MODE", clusterChannel, "+H", "100:1d")
	if _, err := op.Wait(10*time.Second, func(l testenv.IRCLine) bool {
		return l.Command == "MODE" && strings.Contains(strings.Join(l.Params, " "), "+H")
	}); err != nil {
		t.Fatalf("MODE +H: %v", err)
	}
	bin := buildSwitchboard(t, t.TempDir())
	dir := t.TempDir()
	if networks == "" {
		networks = fmt.Sprintf(`
  libera: { type: irc, server: %s, nick: switchboard, reconnect_max: 1s, rate: { per_second: 0 }, flood: { burst: 100, interval: 10ms } }
  devices: { type: mqtt, broker: %q, client_id: switchboard-cluster, rate: { per_second: 0 } }
  jabber: { type: xmpp, mode: puppet, server: %q, component: { domain: %q, secret: %q }, rate: { per_second: 0 } }
links:
  hall: [ "libera:%s", "devices:%s", "jabber:%s" ]
`, w.irc.Addr, w.broker.URL, w.xmpp.ComponentAddr, w.xmpp.Component, w.xmpp.ComponentSecret, clusterChannel, clusterRoot, w.muc)
	}
	conf := testenv.WriteFile(t, dir, "switchboard.yaml", fmt.Sprintf(`
data_dir: %s/${SWITCHBOARD_INSTANCE}
store: %s
http: { listen: "${SWITCHBOARD_HTTP}" }
cluster: { nats: [ %q ], instance: "${SWITCHBOARD_INSTANCE}", lease_ttl: %s }
networks:%s`, dir, pg, w.nats.URL, clusterTTL, networks))
	for i := range n {
		addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		w.http = append(w.http, addr)
		w.down = append(w.down, false)
		w.sb = append(w.sb, &testenv.Process{Name: bin, Args: []string{"run", "--config", conf}, Dir: dir, Ready: addr,
			Env: []string{"SWITCHBOARD_INSTANCE=" + w.name(i), "SWITCHBOARD_HTTP=" + addr}})
	}
	var wg sync.WaitGroup
	for _, p := range w.sb {
		wg.Go(func() { p.Start(t) })
	}
	wg.Wait()
	w.waitSpread(30 * time.Second)
	return w
}

// clusterNetworks are the networks of the default world.
var clusterNetworks = []string{"libera", "devices", "jabber"}

// waitSpread waits until each network is held, and up, by the live
// instance the spread gives it to (cluster.Owner), and returns the
// holders by network.
func (w *clusterWorld) waitSpread(timeout time.Duration) map[string]int {
	w.t.Helper()
	var live []string
	for i := range w.sb {
		if !w.down[i] {
			live = append(live, w.name(i))
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		got, ok := map[string]int{}, true
		for _, network := range clusterNetworks {
			h := w.holders(network)
			if len(h) != 1 || w.name(h[0]) != cluster.Owner(cluster.LeaseName(network), live) {
				ok = false
				continue
			}
			got[network] = h[0]
		}
		if ok {
			return got
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("networks not spread over %v after %v: %v", live, timeout, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (w *clusterWorld) name(i int) string { return fmt.Sprintf("sb-%d", i+1) }

// status is instance i's /api/status, or false if it does not answer.
func (w *clusterWorld) status(i int) (status.Status, bool) {
	var st status.Status
	if w.down[i] {
		return st, false
	}
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + w.http[i] + "/api/status")
	if err != nil {
		return st, false
	}
	defer resp.Body.Close()
	if json.NewDecoder(resp.Body).Decode(&st) != nil || st.Cluster == nil {
		return st, false
	}
	return st, true
}

// holders lists the instances that say they hold network and have it up.
func (w *clusterWorld) holders(network string) []int {
	var out []int
	for i := range w.sb {
		st, ok := w.status(i)
		if !ok || !slices.Contains(st.Cluster.Holds, network) {
			continue
		}
		for _, n := range st.Networks {
			if n.Name == network && n.State == "up" {
				out = append(out, i)
			}
		}
	}
	return out
}

// waitHolder waits until exactly one live instance, other than not,
// holds network with it up, and returns it.
func (w *clusterWorld) waitHolder(network string, not int, timeout time.Duration) int {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		h := w.holders(network)
		if len(h) == 1 && h[0] != not {
			return h[0]
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s: held by instances %v after %v, want one other than %d", network, h, timeout, not)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (w *clusterWorld) kill(i int) {
	w.sb[i].Kill()
	w.down[i] = true
}

func (w *clusterWorld) stop(i int) {
	w.sb[i].Stop()
	w.down[i] = true
}

func (w *clusterWorld) restart(i int) {
	w.t.Helper()
	w.sb[i].Restart()
	w.down[i] = false
}

// bots are the nicks in the channel that are Switchboard's bot (its
// nick, or an alternative of it).
func bots(names []string) []string {
	var out []string
	for _, n := range names {
		n = strings.TrimLeft(n, "~&@%+")
		if strings.HasPrefix(n, "switchboard") {
			out = append(out, n)
		}
	}
	return out
}

// TestClusterOwnsEachNetworkOnce: with three instances, the IRC, XMPP
// and MQTT networks are each held by exactly one instance, IRC sees one
// bot, and messages flow between all three networks whoever holds them.
func TestClusterOwnsEachNetworkOnce(t *testing.T) {
	w := newClusterWorld(t, 3, "")
	seen := map[string][]int{}
	for _, network := range []string{"libera", "devices", "jabber"} {
		seen[network] = w.holders(network)
		if len(seen[network]) != 1 {
			t.Errorf("%s held by %v, want exactly one instance", network, seen[network])
		}
	}
	t.Logf("holders: %v", seen)
	carol := w.irc.Client(t, "carol")
	carol.Join(clusterChannel)
	if b := bots(carol.Names(10*time.Second, clusterChannel)); len(b) != 1 {
		t.Errorf("bots in %s: %v, want one", clusterChannel, b)
	}
	alice := w.xmppClient("alice")
	sub := w.broker.Subscribe(t, clusterRoot+"/out/#", 1)
	carol.Say(clusterChannel, "hello from irc")
	if _, err := alice.WaitFor(20*time.Second, func(s testenv.XMPPStanza) bool {
		return s.Type() == "groupchat" && s.Body() == "hello from irc"
	}); err != nil {
		t.Fatalf("XMPP did not see the IRC line: %v", err)
	}
	waitMQTT(t, sub, "hello from irc")
	dev := w.broker.Client(t, "sensor-1")
	testenv.MQTTPublish(t, dev, clusterRoot+"/in/sensor-1", 1, false, "hello from mqtt")
	carol.WaitMessage(20*time.Second, func(l testenv.IRCLine) bool { return strings.HasSuffix(l.Text(), "hello from mqtt") })
	if _, err := alice.WaitFor(20*time.Second, func(s testenv.XMPPStanza) bool {
		return s.Type() == "groupchat" && strings.HasSuffix(s.Body(), "hello from mqtt")
	}); err != nil {
		t.Fatalf("XMPP did not see the MQTT line: %v", err)
	}
	// Still one bot, and the holders did not move.
	if b := bots(carol.Names(10*time.Second, clusterChannel)); len(b) != 1 {
		t.Errorf("bots in %s: %v, want one", clusterChannel, b)
	}
	for network, before := range seen {
		if now := w.holders(network); !slices.Equal(now, before) {
			t.Errorf("%s moved from %v to %v without a failure", network, before, now)
		}
	}
}

// clusterUsers are the XMPP users of the cluster tests.
var clusterUsers = map[string]string{"alice": "alice-pw"}

// xmppClient is user in the MUC.
func (w *clusterWorld) xmppClient(user string) *testenv.XMPPClient {
	w.t.Helper()
	c := w.xmpp.Client(w.t, user, clusterUsers[user])
	if err := c.Join(w.xmpp.Room("hall"), user); err != nil {
		w.t.Fatal(err)
	}
	return c
}

// waitMQTT waits for a chat message with text on sub.
func waitMQTT(t *testing.T, sub *testenv.Subscriber, text string) {
	t.Helper()
	for {
		m := sub.Next(t, 20*time.Second)
		var ev struct{ Type, Text string }
		if json.Unmarshal(m.Payload, &ev) == nil && ev.Type == "message" && ev.Text == text {
			return
		}
	}
}
