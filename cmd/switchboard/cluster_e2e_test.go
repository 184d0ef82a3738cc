package main

import (
	"cmp"
	"context"
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
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
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
	prefix string // of the instances' names
	// networks are the networks of the world's config, leaseNames their
	// leases (and their shards').
	networks, leaseNames []string
	// Matrix, when the world has it.
	hs      *testenv.MatrixServer
	hsToken string
	mxUser  *testenv.MatrixClient
	mxRoom  id.RoomID
	// The instances.
	*switchboards
}

// newClusterWorld starts the servers and n instances, and waits until
// each network is held by the instance the spread gives it to. With
// withMatrix, Dendrite too, and a Matrix room in the link, created by
// w.mxUser; Dendrite sends its transactions to the first instance.
func newClusterWorld(t *testing.T, n int, withMatrix ...bool) *clusterWorld {
	t.Helper()
	return newClusterWorldWith(t, clusterOptions{n: n, matrix: len(withMatrix) > 0 && withMatrix[0]})
}

// clusterOptions shape a cluster world.
type clusterOptions struct {
	n      int
	matrix bool
	// ircShards splits the IRC network's puppets (shards: N), each
	// instance connecting from 127.0.0.(2+i).
	ircShards int
	// prefix names the instances prefix-1, prefix-2, ... ("sb").
	prefix string
}

func newClusterWorldWith(t *testing.T, o clusterOptions) *clusterWorld {
	t.Helper()
	n := o.n
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
		xmpp:     testenv.ProsodyWith(t, testenv.XMPPServerConfig{Users: clusterUsers, Global: `component_conflict_resolve = "kick_old"`}),
		networks: []string{"libera", "devices", "jabber", "web"},
		prefix:   cmp.Or(o.prefix, "sb"),
	}
	for _, network := range w.networks {
		w.leaseNames = append(w.leaseNames, cluster.LeaseName(network))
	}
	ircExtra := ""
	if o.ircShards > 1 {
		ircExtra = fmt.Sprintf(`, shards: %d, source_address: "${SWITCHBOARD_SOURCE_ADDRESS}"`, o.ircShards)
		for k := 1; k < o.ircShards; k++ {
			w.leaseNames = append(w.leaseNames, fmt.Sprintf("%s/shard/%d", cluster.LeaseName("libera"), k))
		}
	}
	w.muc = w.xmpp.Room("hall").String()
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("%s-%d", w.prefix, i+1))
	}
	w.switchboards = newSwitchboards(t, names)
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
	networks := fmt.Sprintf(`
  libera: { type: irc, server: %s, nick: switchboard, reconnect_max: 1s, rate: { per_second: 0 }, flood: { burst: 100, interval: 10ms }%s }
  devices: { type: mqtt, broker: %q, client_id: switchboard-cluster, rate: { per_second: 0 } }
  jabber: { type: xmpp, mode: puppet, server: %q, component: { domain: %q, secret: %q }, rate: { per_second: 0 } }
  web: { type: webrtc, loopback_candidates: true, interfaces: [lo] }`, w.irc.Addr, ircExtra, w.broker.URL, w.xmpp.ComponentAddr, w.xmpp.Component, w.xmpp.ComponentSecret)
	rooms := fmt.Sprintf(`"libera:%s", "devices:%s", "jabber:%s", "web:hall"`, clusterChannel, clusterRoot, w.muc)
	if o.matrix {
		const asToken, hsToken = "as-token-cluster-0123456789abcdef", "hs-token-cluster-0123456789abcdef"
		w.hsToken = hsToken
		w.hs = testenv.Dendrite(t, []byte(fmt.Sprintf(`id: switchboard
url: http://%s
as_token: %s
hs_token: %s
sender_localpart: switchboard
rate_limited: false
namespaces:
  users: [ { exclusive: true, regex: "@sb_.*:localhost" } ]
`, w.http[0], asToken, hsToken)))
		w.mxUser = w.hs.Client(t, "alice")
		w.mxRoom = w.mxUser.NewRoom(true, "")
		networks += fmt.Sprintf(`
  mx: { type: matrix, homeserver: %q, domain: localhost, as_token: %s, hs_token: %s, bot: switchboard, ghost_localpart: "sb_{network}_{id}", url: "http://%s" }`,
			w.hs.URL, asToken, hsToken, w.http[0])
		rooms += fmt.Sprintf(`, "mx:%s"`, w.mxRoom)
		w.networks = append(w.networks, "mx")
		w.leaseNames = append(w.leaseNames, cluster.LeaseName("mx"))
	}
	conf := testenv.WriteFile(t, dir, "switchboard.yaml", fmt.Sprintf(`
data_dir: %s/${SWITCHBOARD_INSTANCE}
store: %s
http: { listen: "${SWITCHBOARD_HTTP}" }
cluster: { nats: [ %q ], instance: "${SWITCHBOARD_INSTANCE}", lease_ttl: %s }
networks:%s
links:
  hall: [ %s ]
`, dir, pg, w.nats.URL, clusterTTL, networks, rooms))
	w.start(bin, dir, conf, func(i int) []string { return []string{fmt.Sprintf("SWITCHBOARD_SOURCE_ADDRESS=127.0.0.%d", 2+i)} })
	w.waitSpread(30 * time.Second)
	return w
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

// botsIn waits until the holder's bot is in the channel (the network
// is up before its bot has joined) and returns the bots there then.
func botsIn(t *testing.T, c *testenv.IRCClient) []string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		b := bots(c.Names(10*time.Second, clusterChannel))
		if len(b) > 0 || time.Now().After(deadline) {
			return b
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestClusterOwnsEachNetworkOnce: with three instances, the IRC, XMPP
// and MQTT networks are each held by exactly one instance, IRC sees one
// bot, and messages flow between all three networks whoever holds them.
func TestClusterOwnsEachNetworkOnce(t *testing.T) {
	w := newClusterWorld(t, 3)
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
	if b := botsIn(t, carol); len(b) != 1 {
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
	if b := botsIn(t, carol); len(b) != 1 {
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

// streamCheck counts the numbered lines one observer saw.
type streamCheck struct {
	mu    sync.Mutex
	seen  map[int]int
	order []int
	first map[int]time.Time
}

func newStreamCheck() *streamCheck {
	return &streamCheck{seen: map[int]int{}, first: map[int]time.Time{}}
}

// add notes text if it is "<prefix> NNN".
func (s *streamCheck) add(prefix, text string) {
	var n int
	i := strings.Index(text, prefix+" ")
	if i < 0 {
		return
	}
	if _, err := fmt.Sscanf(text[i+len(prefix)+1:], "%d", &n); err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen[n]++
	s.order = append(s.order, n)
	if _, ok := s.first[n]; !ok {
		s.first[n] = time.Now()
	}
}

func (s *streamCheck) count(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[n]
}

// firstAfter is when the first line seen after t was seen.
func (s *streamCheck) firstAfter(t time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first time.Time
	for _, at := range s.first {
		if at.After(t) && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first
}

// report returns lost, repeated and out-of-order counts of lines 1..n.
func (s *streamCheck) report(n int) (lost, repeats, outOfOrder int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 1; i <= n; i++ {
		if s.seen[i] == 0 {
			lost++
		}
		repeats += max(s.seen[i]-1, 0)
	}
	high := 0
	for _, k := range s.order {
		if k < high && s.seen[k] == 1 {
			outOfOrder++
		}
		high = max(high, k)
	}
	return lost, repeats, outOfOrder
}

// traffic is numbered lines MQTT→IRC ("mqtt NNN" from a device) and
// IRC→XMPP ("irc NNN" from carol), and what IRC and XMPP saw of them.
type traffic struct {
	t             *testing.T
	lines         int
	carol         *testenv.IRCClient
	onIRC, onXMPP *streamCheck
	senders       sync.WaitGroup
	watchers      sync.WaitGroup
	stop          chan struct{}
}

// startTraffic sends lines lines each way at rate per second.
func (w *clusterWorld) startTraffic(lines, rate int) *traffic {
	t := w.t
	tr := &traffic{t: t, lines: lines, onIRC: newStreamCheck(), onXMPP: newStreamCheck(), stop: make(chan struct{})}
	tr.carol = w.irc.Client(t, "carol")
	tr.carol.Join(clusterChannel)
	alice := w.xmppClient("alice")
	dev := w.broker.Client(t, "sensor-1")
	tr.watchers.Go(func() {
		seen := 0
		for {
			msgs := tr.carol.Messages(func(l testenv.IRCLine) bool { return l.Command == "PRIVMSG" })
			for _, l := range msgs[seen:] {
				tr.onIRC.add("mqtt", l.Text())
			}
			seen = len(msgs)
			select {
			case <-tr.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	tr.watchers.Go(func() {
		seen := 0
		for {
			st := alice.Stanzas()
			for _, s := range st[seen:] {
				if s.Kind() == "message" && s.Type() == "groupchat" {
					tr.onXMPP.add("irc", s.Body())
				}
			}
			seen = len(st)
			select {
			case <-tr.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	tr.senders.Go(func() {
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for i := 1; i <= lines; i++ {
			<-tick.C
			tr.carol.Conn.Send("PRIVMSG", clusterChannel, fmt.Sprintf("irc %03d", i))
		}
	})
	tr.senders.Go(func() {
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for i := 1; i <= lines; i++ {
			<-tick.C
			if tok := dev.Publish(clusterRoot+"/in/sensor-1", 1, false, fmt.Sprintf("mqtt %03d", i)); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				t.Errorf("publish %d: %v", i, tok.Error())
			}
		}
	})
	return tr
}

// check waits for the last lines and fails the test if any line was
// lost or out of order, or more than maxRepeats were repeated, each way.
func (tr *traffic) check(what string, maxRepeats int) {
	t := tr.t
	t.Helper()
	tr.senders.Wait()
	deadline := time.Now().Add(60 * time.Second)
	for (tr.onIRC.count(tr.lines) == 0 || tr.onXMPP.count(tr.lines) == 0) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // repeats that are still on their way
	close(tr.stop)
	tr.watchers.Wait()
	for _, c := range []struct {
		name  string
		check *streamCheck
	}{{"MQTT→IRC", tr.onIRC}, {"IRC→XMPP", tr.onXMPP}} {
		lost, repeats, outOfOrder := c.check.report(tr.lines)
		t.Logf("%s: %d lines, %s: %d lost, %d repeated, %d out of order", c.name, tr.lines, what, lost, repeats, outOfOrder)
		if lost > 0 || outOfOrder > 0 || repeats > maxRepeats {
			t.Errorf("%s: %d lost, %d out of order, %d repeated; want none lost or out of order and at most %d repeated", c.name, lost, outOfOrder, repeats, maxRepeats)
		}
	}
}

// TestClusterFailoverUnderTraffic: 300 lines MQTT→IRC and 300 IRC→XMPP
// while the holder of IRC is killed (kill -9) twice: every line arrives,
// in order, with at most one repeat per kill, and the IRC network is
// delivered to again within the lease TTL + 5 s of each kill.
func TestClusterFailoverUnderTraffic(t *testing.T) {
	w := newClusterWorld(t, 3)
	tr := w.startTraffic(300, 25)
	var failovers []time.Duration
	for kill := range 2 {
		time.Sleep(3 * time.Second)
		victim := w.waitHolder("libera", -1, 10*time.Second)
		killed := time.Now()
		w.kill(victim)
		next := w.waitHolder("libera", victim, clusterTTL+10*time.Second)
		first := time.Time{}
		for first.IsZero() && time.Since(killed) < clusterTTL+10*time.Second {
			first = tr.onIRC.firstAfter(killed.Add(500 * time.Millisecond))
			time.Sleep(20 * time.Millisecond)
		}
		took := first.Sub(killed)
		if first.IsZero() {
			t.Errorf("kill %d: no line reached IRC after killing %s", kill+1, w.nameOf(victim))
		} else {
			failovers = append(failovers, took)
		}
		t.Logf("kill %d: %s killed, %s holds IRC; first line on IRC %v after the kill", kill+1, w.nameOf(victim), w.nameOf(next), took.Round(time.Millisecond))
		if took > clusterTTL+5*time.Second {
			t.Errorf("kill %d: failover took %v, want under %v", kill+1, took, clusterTTL+5*time.Second)
		}
		w.restart(victim)
	}
	tr.check("two kill -9 of IRC's holder", 2)
	t.Logf("failover (kill → first line delivered on IRC by the new holder): %v", failovers)
}

// TestClusterRollingRestart: the three instances are restarted one after
// another (SIGTERM, then started again) under traffic: each hands its
// networks over at once, and nothing is lost or repeated.
func TestClusterRollingRestart(t *testing.T) {
	w := newClusterWorld(t, 3)
	tr := w.startTraffic(250, 25)
	for i := range w.procs {
		time.Sleep(2 * time.Second)
		held := w.heldBy(i)
		stopped := time.Now()
		w.stop(i)
		for _, network := range held {
			w.waitHolder(network, i, 10*time.Second)
		}
		t.Logf("%s stopped (held %v): handed over in %v", w.nameOf(i), held, time.Since(stopped).Round(time.Millisecond))
		w.restart(i)
	}
	tr.check("a rolling restart (SIGTERM) of all three instances", 0)
}

// TestClusterNATSRestart: NATS is restarted under traffic: the instances
// keep their networks or hand them over cleanly, and nothing is lost.
func TestClusterNATSRestart(t *testing.T) {
	w := newClusterWorld(t, 3)
	tr := w.startTraffic(200, 25)
	time.Sleep(2 * time.Second)
	w.nats.Restart()
	time.Sleep(2 * time.Second)
	// Down for longer than a lease: every lease runs out.
	w.nats.Kill()
	time.Sleep(clusterTTL + time.Second)
	w.nats.Restart()
	tr.check("NATS restarted, then down for longer than a lease", 1)
	w.waitSpread(30 * time.Second)
}

// TestClusterWebPeersOnTwoInstances: a web page peer on one instance and
// one on another, in the same room, see each other's messages and the
// IRC channel's, once each, and IRC sees theirs.
func TestClusterWebPeersOnTwoInstances(t *testing.T) {
	w := newClusterWorld(t, 3)
	carol := w.irc.Client(t, "carol")
	carol.Join(clusterChannel)
	alice := testenv.MustDialWebRTC(t, "http://"+w.http[0], "hall", "", "alice", "alice")
	bob := testenv.MustDialWebRTC(t, "http://"+w.http[1], "hall", "", "bob", "bob")
	const patience = 20 * time.Second
	once := func(p *testenv.WebRTCPeer, who, text string) {
		t.Helper()
		p.Wait(t, patience, text, func(f testenv.WebRTCFrame) bool { return f.Type == "message" && f.Text == text })
		time.Sleep(500 * time.Millisecond) // a second copy would be close behind
		n := 0
		for _, f := range p.Frames() {
			if f.Type == "message" && f.Text == text {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s saw %q %d times, want once", who, text, n)
		}
	}
	alice.Send(map[string]any{"type": "message", "text": "hi bob, from instance one"})
	once(bob, "bob", "hi bob, from instance one")
	once(alice, "alice", "hi bob, from instance one") // her echo
	bob.Send(map[string]any{"type": "message", "text": "hi alice, from instance two"})
	once(alice, "alice", "hi alice, from instance two")
	carol.WaitText(patience, clusterChannel, "alice[web]", "hi bob, from instance one")
	carol.WaitText(patience, clusterChannel, "bob[web]", "hi alice, from instance two")
	carol.Say(clusterChannel, "hello web people")
	once(alice, "alice", "hello web people")
	once(bob, "bob", "hello web people")
}

// TestClusterSplitBrain: the holder of IRC is frozen (SIGSTOP) past its
// lease; another instance takes IRC over (its bot and puppets under
// other nicks while the frozen connections keep theirs); once resumed
// (SIGCONT), the frozen instance sends nothing more on IRC, its
// connections go, and it stays in the cluster as a follower.
func TestClusterSplitBrain(t *testing.T) {
	w := newClusterWorld(t, 3)
	tr := w.startTraffic(250, 20)
	time.Sleep(3 * time.Second)
	v := w.waitHolder("libera", -1, 10*time.Second)
	// Everything Switchboard has in the channel is the frozen one's.
	var theirs []string
	for _, n := range tr.carol.Names(10*time.Second, clusterChannel) {
		n = strings.TrimLeft(n, "~&@%+")
		if n != "carol" && n != "opper" {
			theirs = append(theirs, n)
		}
	}
	t.Logf("%s holds IRC with %v; freezing it", w.nameOf(v), theirs)
	w.procs[v].Freeze()
	w.down[v] = true // answers nothing
	next := w.waitHolder("libera", v, clusterTTL+10*time.Second)
	time.Sleep(2 * time.Second)
	thawAt, thawed := tr.carol.Len(), time.Now()
	w.procs[v].Thaw()
	w.down[v] = false
	t.Logf("%s took IRC over; %s resumed", w.nameOf(next), w.nameOf(v))
	// Until its connections quit, nothing may come from them.
	quit := map[string]bool{}
	deadline := time.Now().Add(15 * time.Second)
	for len(quit) < len(theirs) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		for _, l := range tr.carol.Lines()[thawAt:] {
			if !slices.Contains(theirs, l.Nick()) || quit[l.Nick()] {
				continue
			}
			switch l.Command {
			case "QUIT":
				quit[l.Nick()] = true
			case "PRIVMSG", "NOTICE", "TAGMSG", "TOPIC", "PART", "KICK", "MODE", "NICK":
				t.Errorf("resumed %s sent on IRC as %s: %s", w.nameOf(v), l.Nick(), l.Raw)
			}
		}
	}
	if len(quit) < len(theirs) {
		t.Errorf("of the resumed %s's connections %v, only %v quit", w.nameOf(v), theirs, quit)
	}
	// It follows: it may get IRC back only by a clean handover, once it
	// has been a member again for a TTL.
	st, ok := w.status(v)
	if !ok {
		t.Errorf("resumed %s does not answer", w.nameOf(v))
	} else if slices.Contains(st.Cluster.Holds, "libera") && time.Since(thawed) < clusterTTL {
		t.Errorf("resumed %s holds IRC again %v after the resume", w.nameOf(v), time.Since(thawed))
	}
	if h := w.holders("libera"); len(h) > 1 {
		t.Errorf("IRC held by %v", h)
	}
	tr.check("IRC's holder frozen past its lease and resumed", 1)
}

// TestClusterMatrixTransactionOnAnyInstance: the homeserver may send an
// appservice transaction to any instance (behind a load balancer): one
// posted to an instance that does not hold the Matrix network (and holds
// the fewest of the others) is delivered by the targets' holders; and what a Matrix user says
// (Dendrite sends it to the first instance) reaches the other networks,
// and theirs reaches Matrix, whoever holds Matrix.
func TestClusterMatrixTransactionOnAnyInstance(t *testing.T) {
	w := newClusterWorld(t, 3, true)
	carol := w.irc.Client(t, "carol")
	carol.Join(clusterChannel)
	alice := w.xmppClient("alice")
	sub := w.broker.Subscribe(t, clusterRoot+"/out/#", 1)
	// The instance holding the fewest of the networks, never Matrix.
	pick, least := -1, 99
	for i := range w.procs {
		held := w.heldBy(i)
		if !slices.Contains(held, "mx") && len(held) < least {
			pick, least = i, len(held)
		}
	}
	t.Logf("posting to %s, which holds %v", w.nameOf(pick), w.heldBy(pick))
	body := fmt.Sprintf(`{"events":[{"type":"m.room.message","room_id":%q,"sender":"@alice:localhost","event_id":"$cluster-1","origin_server_ts":%d,"content":{"msgtype":"m.text","body":"posted to any instance"}}]}`,
		w.mxRoom, time.Now().UnixMilli())
	req, _ := http.NewRequest(http.MethodPut, "http://"+w.http[pick]+"/_matrix/app/v1/transactions/cluster-1", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+w.hsToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("transaction on %s: %d", w.nameOf(pick), resp.StatusCode)
	}
	const patience = 20 * time.Second
	carol.WaitMessage(patience, func(l testenv.IRCLine) bool { return strings.HasSuffix(l.Text(), "posted to any instance") })
	if _, err := alice.WaitFor(patience, func(s testenv.XMPPStanza) bool {
		return s.Type() == "groupchat" && strings.HasSuffix(s.Body(), "posted to any instance")
	}); err != nil {
		t.Fatalf("XMPP: %v", err)
	}
	waitMQTT(t, sub, "posted to any instance")

	// The real path, both ways.
	w.mxUser.Text(w.mxRoom, "said on matrix")
	carol.WaitMessage(patience, func(l testenv.IRCLine) bool { return strings.HasSuffix(l.Text(), "said on matrix") })
	waitMQTT(t, sub, "said on matrix")
	carol.Say(clusterChannel, "said on irc, for matrix")
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if _, _, err := w.mxUser.WaitFor(ctx, 0, func(e *event.Event) bool {
		return e.Type == event.EventMessage && strings.HasSuffix(e.Content.AsMessage().Body, "said on irc, for matrix")
	}); err != nil {
		t.Fatalf("Matrix did not see the IRC line: %v", err)
	}
}

// waitSpread waits until the world's leases are held as the spread
// says and its networks are up on their holders.
func (w *clusterWorld) waitSpread(timeout time.Duration) {
	w.t.Helper()
	w.switchboards.waitSpread(w.leaseNames, w.networks, timeout)
}

// TestClusterIRCShards: an IRC network with shards: 2 over two
// instances: puppets of both shards speak in the channel, each from its
// own instance's source address; killing one instance moves its shard
// to the other, whose puppets then speak for its senders.
func TestClusterIRCShards(t *testing.T) {
	// Names for the two instances that the spread gives one shard each.
	prefix := ""
	for c := 'a'; c <= 'z' && prefix == ""; c++ {
		p := "s" + string(c)
		live := []string{p + "-1", p + "-2"}
		if cluster.Owner(cluster.LeaseName("libera"), live) != cluster.Owner(cluster.LeaseName("libera")+"/shard/1", live) {
			prefix = p
		}
	}
	w := newClusterWorldWith(t, clusterOptions{n: 2, ircShards: 2, prefix: prefix})
	carol := w.irc.Client(t, "carol")
	carol.Join(clusterChannel)
	leases := w.leases()
	shard0, shard1 := leases[cluster.LeaseName("libera")], leases[cluster.LeaseName("libera")+"/shard/1"]
	if shard0 == "" || shard1 == "" || shard0 == shard1 {
		t.Fatalf("shards held by %q and %q, want two instances", shard0, shard1)
	}
	addr := func(instance string) string {
		return fmt.Sprintf("127.0.0.%d", 2+slices.Index(w.names, instance))
	}
	// Devices enough that both shards have senders.
	const devices = 8
	say := func(round string) map[string]string {
		t.Helper()
		from := carol.Len()
		for d := 1; d <= devices; d++ {
			dev := w.broker.Client(t, fmt.Sprintf("dev%d-%s", d, round))
			testenv.MQTTPublish(t, dev, fmt.Sprintf("%s/in/dev%d", clusterRoot, d), 1, false, fmt.Sprintf("%s from dev%d", round, d))
		}
		// Each device's line, and the host its puppet speaks from.
		hosts := map[string]string{}
		deadline := time.Now().Add(30 * time.Second)
		for len(hosts) < devices && time.Now().Before(deadline) {
			for _, l := range carol.Lines()[from:] {
				var d int
				if l.Command != "PRIVMSG" {
					continue
				}
				if _, err := fmt.Sscanf(l.Text(), round+" from dev%d", &d); err == nil {
					_, host, _ := strings.Cut(l.Source, "@")
					hosts[fmt.Sprintf("dev%d", d)] = host
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		if len(hosts) < devices {
			t.Fatalf("%s: only %d of %d devices' lines reached IRC: %v", round, len(hosts), devices, hosts)
		}
		return hosts
	}
	hosts := say("first")
	byHost := map[string]int{}
	for _, h := range hosts {
		byHost[h]++
	}
	t.Logf("shard 0 on %s (%s), shard 1 on %s (%s); puppets' hosts: %v", shard0, addr(shard0), shard1, addr(shard1), hosts)
	if byHost[addr(shard0)] == 0 || byHost[addr(shard1)] == 0 || len(byHost) != 2 {
		t.Errorf("puppets speak from %v, want from both %s and %s", byHost, addr(shard0), addr(shard1))
	}
	if b := botsIn(t, carol); len(b) != 1 {
		t.Errorf("bots in %s: %v, want one (shard 0's)", clusterChannel, b)
	}
	// Kill the holder of shard 1: its shard moves to the other.
	victim := slices.Index(w.names, shard1)
	w.kill(victim)
	deadline := time.Now().Add(clusterTTL + 10*time.Second)
	for w.leases()[cluster.LeaseName("libera")+"/shard/1"] != shard0 {
		if time.Now().After(deadline) {
			t.Fatalf("shard 1 not moved to %s: %v", shard0, w.leases())
		}
		time.Sleep(100 * time.Millisecond)
	}
	hosts = say("second")
	for dev, h := range hosts {
		if h != addr(shard0) {
			t.Errorf("after the kill %s's puppet speaks from %s, want %s", dev, h, addr(shard0))
		}
	}
}
