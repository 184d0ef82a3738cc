package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/matrix"
	"github.com/switchboard-chat/switchboard/status"
)

// The relay benchmarks run the switchboard binary against real servers,
// send b.N messages at a steady rate (200 msg/s; 20 and 50 msg/s with
// Matrix) or in bursts from one person on one network, and time when a
// person on another network sees each one. They report the relay
// latency (send to delivery, through the durable commit, the outbox and
// the target's connection), the rates messages were sent and delivered,
// the CPU time the switchboard process spent per message, and its CPU
// use while idle; a lost message fails them, and so does one that
// overtook an earlier one in its room. Run with -benchtime=2000x or so.
// SWITCHBOARD_CPUPROFILE=file writes the process's CPU profile.
//
// Each sends from one sender, so the senders' networks have no inbound
// rate limit (rate: per_second 0): they measure the relay, not the limit.

func BenchmarkRelayMQTTToIRC(b *testing.B) {
	irc, broker := testenv.InspIRCd(b), testenv.Mosquitto(b)
	r := startRelay(b, fmt.Sprintf(`
  libera: { type: irc, server: "%s", nick: switchboard, flood: { burst: 1000, interval: 0 } }
  devices: { type: mqtt, broker: "%s" }`, irc.Addr, broker.URL), `[ "libera:#bench", "devices:bench" ]`)
	alice := irc.Client(b, "alice")
	alice.Conn.AddCallback("PRIVMSG", func(m ircmsg.Message) { r.saw(m.Params[1]) })
	alice.Join("#bench")
	dev := broker.Client(b, testenv.UniqueClientID("bench-dev"))
	r.run(200, func(text string) { testenv.MQTTPublish(b, dev, "bench/in/sensor", 1, false, text) })
}

func BenchmarkRelayIRCToXMPP(b *testing.B) {
	r, send := ircToXMPP(b)
	r.run(200, send)
}

// BenchmarkBurstIRCToXMPP has one IRC user send bursts of 2,000 lines
// (SWITCHBOARD_BENCH_BURST) as fast as the connection takes them (the
// test InspIRCd has no flood limits), which switchboard relays to an XMPP
// MUC, in order and all of them. Run with -benchtime=1x: an op is a burst.
func BenchmarkBurstIRCToXMPP(b *testing.B) {
	r, send := ircToXMPP(b)
	r.burst(send)
}

// BenchmarkBurstXMPPDirect is the ceiling BenchmarkBurstIRCToXMPP is
// measured against: the same burst sent straight into the MUC by an XMPP
// client, as fast as it writes, seen by alice. A relayed burst can reach
// the room no faster than Prosody takes one from a client. Its
// cpu-µs/msg is Prosody's.
func BenchmarkBurstXMPPDirect(b *testing.B) {
	xmpp := benchXMPP(b, testenv.XMPPServerConfig{Users: map[string]string{"alice": "pw", "bob": "pw"}, Global: os.Getenv("SWITCHBOARD_BENCH_PROSODY")})
	muc := xmpp.Room("bench")
	alice, bob := xmpp.Client(b, "alice", "pw"), xmpp.Client(b, "bob", "pw")
	for nick, c := range map[string]*testenv.XMPPClient{"alice": alice, "bob": bob} {
		if err := c.Join(muc, nick); err != nil {
			b.Fatal(err)
		}
	}
	r := newRelay(b, xmpp.Process)
	r.watchRoom(alice, nil)
	r.burst(func(text string) {
		if _, err := bob.Say(muc, text); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkBurstIRCDirect is BenchmarkBurstXMPPDirect's twin for the
// other end: the burst from bob to a second IRC user in #bench, through
// InspIRCd alone. Its cpu-µs/msg is InspIRCd's.
func BenchmarkBurstIRCDirect(b *testing.B) {
	irc := testenv.InspIRCd(b)
	r := newRelay(b, irc.Process)
	carol := irc.Client(b, "carol")
	carol.Conn.AddCallback("PRIVMSG", func(m ircmsg.Message) { r.saw(m.Params[1]) })
	carol.Join("#bench")
	bob := irc.Client(b, "bob")
	bob.Join("#bench")
	r.burst(func(text string) { bob.Say("#bench", text) })
}

// ircToXMPP starts switchboard between InspIRCd's #bench and a Prosody
// MUC (as a component), with alice in the MUC watching, and returns how
// bob sends to #bench.
func ircToXMPP(b *testing.B) (*relay, func(text string)) {
	irc, xmpp := testenv.InspIRCd(b), benchXMPP(b, testenv.XMPPServerConfig{Users: map[string]string{"alice": "pw"}, Global: os.Getenv("SWITCHBOARD_BENCH_PROSODY")})
	muc := xmpp.Room("bench")
	r := startRelay(b, fmt.Sprintf(`
  libera: { type: irc, server: "%s", nick: switchboard, rate: { per_second: 0 } }
  jabber: { type: xmpp, server: "%s", component: { domain: "%s", secret: "%s" } }`,
		irc.Addr, xmpp.ComponentAddr, xmpp.Component, xmpp.ComponentSecret), fmt.Sprintf(`[ "libera:#bench", "jabber:%s" ]`, muc))
	alice := xmpp.Client(b, "alice", "pw")
	if err := alice.Join(muc, "alice"); err != nil {
		b.Fatal(err)
	}
	r.watchRoom(alice, nil)
	bob := irc.Client(b, "bob")
	bob.Join("#bench")
	return r, func(text string) { bob.Say("#bench", text) }
}

// BenchmarkRelayXMPPToIRCPuppet and BenchmarkRelayXMPPToIRCBot relay the
// same XMPP groupchat traffic to IRC at 200 msg/s, once from the sender's
// own IRC puppet and once from the bot (relay mode): a puppet should be
// as fast as the bot. SWITCHBOARD_BENCH_PROSODY adds lines to Prosody's
// global config, e.g. "network_settings = { nagle = false }": Prosody
// sends with Nagle's algorithm by default, and a stanza then waits for
// the ACK of the one before, which Linux may delay by 40 ms since
// switchboard sends nothing back on its component stream.
func BenchmarkRelayXMPPToIRCPuppet(b *testing.B) { benchXMPPToIRC(b, "puppet") }
func BenchmarkRelayXMPPToIRCBot(b *testing.B)    { benchXMPPToIRC(b, "relay") }

func benchXMPPToIRC(b *testing.B, mode string) {
	irc, xmpp := testenv.InspIRCd(b), benchXMPP(b, testenv.XMPPServerConfig{Users: map[string]string{"alice": "pw"}, Global: os.Getenv("SWITCHBOARD_BENCH_PROSODY")})
	muc := xmpp.Room("bench")
	// The same flood control for the bot and the puppet: enough for the
	// offered rate, so that it measures the relay.
	r := startRelay(b, fmt.Sprintf(`
  libera: { type: irc, server: "%s", nick: switchboard, mode: %s, flood: { burst: 1000, interval: 0 }, rate: { per_second: 0 } }
  jabber: { type: xmpp, server: "%s", component: { domain: "%s", secret: "%s" }, rate: { per_second: 0 } }`,
		irc.Addr, mode, xmpp.ComponentAddr, xmpp.Component, xmpp.ComponentSecret), fmt.Sprintf(`[ "libera:#bench", "jabber:%s" ]`, muc))
	bob := irc.Client(b, "bob")
	bob.Conn.AddCallback("PRIVMSG", func(m ircmsg.Message) {
		// "<alice> m1 reading" from the bot.
		text := m.Params[1]
		if _, rest, ok := strings.Cut(text, "> "); ok && strings.HasPrefix(text, "<") {
			text = rest
		}
		r.saw(text)
	})
	bob.Join("#bench")
	alice := xmpp.Client(b, "alice", "pw")
	if err := alice.Join(muc, "alice"); err != nil {
		b.Fatal(err)
	}
	r.run(200, func(text string) {
		if _, err := alice.Say(muc, text); err != nil {
			b.Fatal(err)
		}
	})
}

// watchRoom hands r.saw, and also unless nil, the body of every groupchat
// message alice receives.
func (r *relay) watchRoom(alice *testenv.XMPPClient, also func(body string)) {
	go func() {
		for i := 0; ; i++ {
			// Every stanza alice receives is kept; look at each once.
			_, s, err := alice.WaitIndex(i, time.Hour, func(testenv.XMPPStanza) bool { return true })
			if err != nil {
				return
			}
			if s.Kind() == "message" && s.Type() == "groupchat" {
				if also != nil {
					also(s.Body())
				}
				r.saw(s.Body())
			}
		}
	}()
}

// matrixBench starts IRC, Dendrite with the appservice registered, a
// Matrix user alice in that many public rooms, and switchboard linking the
// first with #bench, the others with #bench1, #bench2...
func matrixBench(b *testing.B, rooms int) (*relay, *testenv.IRCServer, *testenv.MatrixClient, []id.RoomID) {
	irc := testenv.InspIRCd(b)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b))
	mx := matrix.Config{Homeserver: "http://placeholder", Domain: "localhost", ASToken: "as-token-bench-0123456789abcdef",
		HSToken: "hs-token-bench-0123456789abcdef", Bot: "switchboard", GhostLocalpart: "sb_{network}_{id}", ID: "switchboard",
		URL: "http://" + httpAddr}
	// Both ways through counting proxies: what Switchboard asks of
	// Dendrite, and the transactions Dendrite pushes to it, per message.
	push := testenv.NewCountingProxy(b, mx.URL)
	mx.URL = push.URL
	reg, err := yaml.Marshal(matrix.Registration(&mx, ""))
	if err != nil {
		b.Fatal(err)
	}
	hs := testenv.Dendrite(b, reg)
	asks := testenv.NewCountingProxy(b, hs.URL)
	alice := hs.Client(b, "alice")
	roomIDs := make([]id.RoomID, rooms)
	links := make([]string, rooms)
	for i := range rooms {
		roomIDs[i] = alice.NewRoom(true, "")
		links[i] = fmt.Sprintf(`[ "libera:%s", "mx:%s" ]`, benchName("#bench", i), roomIDs[i])
	}
	r := startRelayAt(b, httpAddr, fmt.Sprintf(`
  libera: { type: irc, server: "%s", nick: switchboard, flood: { burst: 1000, interval: 0 }, rate: { per_second: 0 } }
  mx: { type: matrix, homeserver: %q, domain: %q, as_token: %q, hs_token: %q, url: %q, rate: { per_second: 0 } }`,
		irc.Addr, asks.URL, mx.Domain, mx.ASToken, mx.HSToken, mx.URL), links...)
	r.counted = map[string]*testenv.CountingProxy{"hs-req": asks, "as-push": push}
	r.homeserver = hs.Process
	return r, irc, alice, roomIDs
}

// matrixRates are the rates (msg/s) the IRC ↔ Matrix benchmarks offer,
// as sub-benchmarks rate=20 and rate=50: issue 18 found Switchboard fine
// at the first and falling behind at the second.
var matrixRates = []int{20, 50}

// atMatrixRates runs f as a sub-benchmark for each of matrixRates.
func atMatrixRates(b *testing.B, f func(b *testing.B, rate int)) {
	for _, rate := range matrixRates {
		b.Run(fmt.Sprintf("rate=%d", rate), func(b *testing.B) { f(b, rate) })
	}
}

func BenchmarkRelayIRCToMatrix(b *testing.B) {
	atMatrixRates(b, func(b *testing.B, rate int) { relayIRCToMatrix(b, 0, rate) })
}

// BenchmarkRelayIRCToMatrixGhosts is BenchmarkRelayIRCToMatrix at 50
// msg/s with 10 more IRC users in the channel, each a ghost in the Matrix
// room: every one of the homeserver's users in a room costs it some work
// per message.
func BenchmarkRelayIRCToMatrixGhosts(b *testing.B) { relayIRCToMatrix(b, 10, 50) }

func relayIRCToMatrix(b *testing.B, idle, rate int) {
	r, irc, alice, roomIDs := matrixBench(b, 1)
	for i := range idle {
		c := irc.Client(b, fmt.Sprintf("idle%d", i))
		c.Join("#bench")
		ghost := fmt.Sprintf("@sb_libera_idle%d:localhost", i)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, _, err := alice.WaitFor(ctx, 0, func(ev *event.Event) bool {
			return ev.RoomID == roomIDs[0] && ev.Type == event.StateMember && ev.GetStateKey() == ghost
		})
		cancel()
		if err != nil {
			b.Fatalf("%s never joined: %v", ghost, err)
		}
	}
	r.watchMatrix(alice, roomIDs, nil)
	bob := irc.Client(b, "bob")
	bob.Join("#bench")
	r.run(rate, func(text string) { bob.Say("#bench", text) })
}

// BenchmarkRelayIRCToMatrixRooms links 10 IRC channels with 10 Matrix
// rooms, and one IRC user sends 10 msg/s into each channel at once
// (100 msg/s in all, in turn): the rooms' deliveries go out in parallel.
// Order is asserted per room.
func BenchmarkRelayIRCToMatrixRooms(b *testing.B) {
	const rooms, perRoom = 10, 10
	r, irc, alice, roomIDs := matrixBench(b, rooms)
	r.roomOf = func(seq int) int { return (seq%rooms + rooms) % rooms }
	r.watchMatrix(alice, roomIDs, nil)
	bob := irc.Client(b, "bob")
	for i := range rooms {
		bob.Join(benchName("#bench", i))
	}
	// Bob's ghost joins each room with its first message there: not
	// measured.
	for i := 1; i < rooms; i++ {
		bob.Say(benchName("#bench", i), fmt.Sprintf("m%d warm-up", i-rooms))
		r.waitAll(i-rooms, i-rooms)
	}
	r.run(rooms*perRoom, func(text string) {
		var seq int
		fmt.Sscanf(text, "m%d", &seq)
		bob.Say(benchName("#bench", r.roomOf(seq)), text)
	})
}

// watchMatrix hands r.sawIn the body of every message alice sees in
// rooms (by index), and also, unless nil, to also.
func (r *relay) watchMatrix(alice *testenv.MatrixClient, rooms []id.RoomID, also func(body string)) {
	go func() {
		for i := 0; ; i++ {
			ev, _, err := alice.WaitFor(context.Background(), i, func(*event.Event) bool { return true })
			if err != nil {
				return
			}
			// testenv has parsed the event's content.
			c, ok := ev.Content.Parsed.(*event.MessageEventContent)
			if ev.Type != event.EventMessage || !ok {
				continue
			}
			if also != nil {
				also(c.Body)
			}
			r.sawIn(slices.Index(rooms, ev.RoomID), c.Body)
		}
	}()
}

func BenchmarkRelayMatrixToIRC(b *testing.B) {
	atMatrixRates(b, func(b *testing.B, rate int) {
		r, irc, alice, roomIDs := matrixBench(b, 1)
		bob := irc.Client(b, "bob")
		bob.Conn.AddCallback("PRIVMSG", func(m ircmsg.Message) { r.saw(m.Params[1]) })
		bob.Join("#bench")
		r.run(rate, func(text string) { alice.Text(roomIDs[0], text) })
	})
}

type relay struct {
	b  *testing.B
	sb *testenv.Process
	// more are further switchboard processes (a cluster's other
	// instances): CPU and context switches are summed over sb and them.
	more []*testenv.Process

	mu       sync.Mutex
	received map[int]time.Time
	got      chan struct{}
	// misplaced counts messages seen in another room than roomOf's.
	misplaced int

	// counted are proxies whose requests are reported per message, by
	// metric name.
	counted map[string]*testenv.CountingProxy
	// homeserver, when set, has its CPU per message reported too.
	homeserver *testenv.Process

	// measureDisorder counts messages that overtook an earlier one,
	// where that is the relay's known behaviour rather than a failure.
	measureDisorder bool
	// roomOf, when set, is the room (link) message seq goes to: order is
	// per room, and asserted (or counted) per room.
	roomOf func(seq int) int
}

// startRelay builds and starts switchboard with the given networks and
// one link, and waits until it is ready.
func startRelay(b *testing.B, networks, link string) *relay {
	return startRelayAt(b, fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b)), networks, link)
}

// startRelayAt is startRelay with switchboard's HTTP listener on httpAddr
// and one or more links: the first is named bench, the others bench1,
// bench2...
func startRelayAt(b *testing.B, httpAddr, networks string, links ...string) *relay {
	dir := b.TempDir()
	bin := buildSwitchboard(b, dir, "pprof")
	var linkYAML strings.Builder
	for i, l := range links {
		fmt.Fprintf(&linkYAML, "\n  %s: %s", benchName("bench", i), l)
	}
	conf := testenv.WriteFile(b, dir, "switchboard.yaml", fmt.Sprintf(`
data_dir: %s/data
sqlite_synchronous: %s
http: { listen: "%s" }
log: { level: info }
networks:%s
links:%s
`, dir, cmp.Or(os.Getenv("SWITCHBOARD_BENCH_SYNC"), "full"), httpAddr, networks, linkYAML.String()))
	sb := &testenv.Process{Name: bin, Args: []string{"run", "--config", conf}, Dir: dir, Ready: httpAddr}
	if wrap := strings.Fields(os.Getenv("SWITCHBOARD_BENCH_WRAP")); len(wrap) > 0 {
		sb.Name, sb.Args = wrap[0], append(append(wrap[1:], bin), sb.Args...)
	}
	// SWITCHBOARD_BENCH_ENV adds variables to switchboard's environment
	// only, e.g. "GOMAXPROCS=1 GOGC=200".
	sb.Env = strings.Fields(os.Getenv("SWITCHBOARD_BENCH_ENV"))
	profile := os.Getenv("SWITCHBOARD_CPUPROFILE")
	if profile != "" {
		sb.Env = append(sb.Env, "SWITCHBOARD_CPUPROFILE="+profile, "SWITCHBOARD_CPUPROFILE_HZ="+os.Getenv("SWITCHBOARD_CPUPROFILE_HZ"))
	}
	sb.Start(b)
	if profile != "" {
		// Registered after Start, so that it runs before the process is
		// stopped; Pid is 0 after that, and kill(0) would signal this
		// process group instead.
		b.Cleanup(func() {
			if pid := sb.Pid(); pid > 0 {
				syscall.Kill(pid, syscall.SIGUSR1)
				time.Sleep(200 * time.Millisecond)
			}
		})
	}
	// Ready, and every network up: /readyz tolerates a network that is
	// still connecting, and an IRC line sent before the bot has joined
	// its channel never reaches it.
	for deadline := time.Now().Add(30 * time.Second); !allUp(httpAddr); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("switchboard not ready")
		}
	}
	return newRelay(b, sb)
}

// newRelay measures what process p (switchboard, or matterbridge for a
// comparison) relays.
func newRelay(b *testing.B, p *testenv.Process) *relay {
	return &relay{b: b, sb: p, received: map[int]time.Time{}, got: make(chan struct{}, 1)}
}

// benchName is base for the first of several (links, channels), base1,
// base2... for the others.
func benchName(base string, i int) string {
	if i == 0 {
		return base
	}
	return base + strconv.Itoa(i)
}

// allUp tells whether switchboard at httpAddr is ready with every network
// up.
func allUp(httpAddr string) bool {
	r, err := http.Get("http://" + httpAddr + "/api/status")
	if err != nil {
		return false
	}
	defer r.Body.Close()
	var st status.Status
	if err := json.NewDecoder(r.Body).Decode(&st); err != nil || !st.Ready {
		return false
	}
	for _, n := range st.Networks {
		if n.State != "up" {
			return false
		}
	}
	return len(st.Networks) > 0
}

// saw records the arrival of a message "m<seq> …".
func (r *relay) saw(text string) { r.sawIn(-1, text) }

// sawIn is saw for a message seen in room (-1: not known), which must be
// the room roomOf says it was sent to.
func (r *relay) sawIn(room int, text string) {
	var seq int
	if _, err := fmt.Sscanf(text, "m%d", &seq); err != nil {
		return
	}
	r.mu.Lock()
	if _, dup := r.received[seq]; !dup {
		r.received[seq] = time.Now()
		if room >= 0 && r.roomOf != nil && r.roomOf(seq) != room {
			r.misplaced++
		}
	}
	r.mu.Unlock()
	select {
	case r.got <- struct{}{}:
	default:
	}
}

// waitAll waits until messages from..to have all arrived; it fails when
// none arrives for a minute while some are missing.
func (r *relay) waitAll(from, to int) {
	next := from
	for {
		r.mu.Lock()
		for next <= to {
			if _, ok := r.received[next]; !ok {
				break
			}
			next++
		}
		n := len(r.received)
		r.mu.Unlock()
		if next > to {
			return
		}
		select {
		case <-r.got:
		case <-time.After(60 * time.Second):
			missing := 0
			r.mu.Lock()
			for i := next; i <= to; i++ {
				if _, ok := r.received[i]; !ok {
					missing++
				}
			}
			r.mu.Unlock()
			r.b.Fatalf("%d of messages %d-%d lost, the first m%d (none arrived for a minute; %d did in all)", missing, from, to, next, n)
		}
	}
}

// run sends b.N messages at a steady rate (per second) and reports.
func (r *relay) run(rate int, send func(text string)) {
	m := r.start(send)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	m.batch(1, r.b.N, func() { <-tick.C }, send)
	m.report(r.b.N)
}

// burst sends b.N bursts of relayBurst messages, each as fast as send
// returns and once the one before has all arrived, and reports per
// message (ns/op is per burst).
func (r *relay) burst(send func(text string)) {
	size := relayBurst(r.b)
	m := r.start(send)
	for i := range r.b.N {
		m.batch(i*size+1, (i+1)*size, nil, send)
	}
	m.report(r.b.N * size)
}

// relayBurst is SWITCHBOARD_BENCH_BURST, or 2,000 (issue 18's burst).
func relayBurst(b *testing.B) int {
	v := os.Getenv("SWITCHBOARD_BENCH_BURST")
	if v == "" {
		return 2000
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("SWITCHBOARD_BENCH_BURST=%q: want a positive number of messages", v)
	}
	return n
}

// measure is one benchmark's measurement: the counters at its start and
// when each message went out.
type measure struct {
	r                 *relay
	sent              map[int]time.Time
	idle              time.Duration // CPU in 2 idle seconds
	cpu0, hsCPU0      time.Duration
	switches0         int
	counts0           map[string]map[string]int
	sending, relaying time.Duration // summed over the batches
}

// start warms up (puppets connect on their first message), measures the
// idle CPU, takes the counters and resets the benchmark's timer.
func (r *relay) start(send func(text string)) *measure {
	b := r.b
	send("m0 warm-up")
	r.waitAll(0, 0)
	idle0 := r.cpu()
	time.Sleep(2 * time.Second)
	m := &measure{r: r, sent: map[int]time.Time{}, idle: r.cpu() - idle0, counts0: map[string]map[string]int{}}
	for name, p := range r.counted {
		m.counts0[name] = p.Counts()
	}
	m.cpu0, m.switches0 = r.cpu(), r.switches()
	if r.homeserver != nil {
		m.hsCPU0 = processCPU(b, r.homeserver)
	}
	b.ResetTimer()
	return m
}

// batch sends messages from..to, each after pace returns (nil: at once),
// and waits until all have arrived.
func (m *measure) batch(from, to int, pace func(), send func(text string)) {
	for i := from; i <= to; i++ {
		if pace != nil {
			pace()
		}
		m.sent[i] = time.Now()
		send(fmt.Sprintf("m%d reading", i))
	}
	m.sending += m.sent[to].Sub(m.sent[from])
	m.r.waitAll(from, to)
	m.r.mu.Lock()
	last := m.sent[from]
	for i := from; i <= to; i++ {
		if at := m.r.received[i]; at.After(last) {
			last = at
		}
	}
	m.r.mu.Unlock()
	m.relaying += last.Sub(m.sent[from])
}

// report stops the timer and reports on the n messages sent: latency
// percentiles, delivered msg/s, CPU, context switches and requests per
// message, messages that overtook an earlier one in their room.
func (m *measure) report(n int) {
	r, b := m.r, m.r.b
	b.StopTimer()
	cpu, switches := r.cpu()-m.cpu0, r.switches()-m.switches0
	if r.homeserver != nil {
		b.ReportMetric(float64((processCPU(b, r.homeserver)-m.hsCPU0).Microseconds())/float64(n), "hs-cpu-µs/msg")
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	lat := make([]time.Duration, 0, n)
	rooms := map[int][]int{}
	for i := 1; i <= n; i++ {
		lat = append(lat, r.received[i].Sub(m.sent[i]))
		room := 0
		if r.roomOf != nil {
			room = r.roomOf(i)
		}
		rooms[room] = append(rooms[room], i)
	}
	if r.misplaced > 0 {
		b.Errorf("%d messages arrived in another room than the one they were sent to", r.misplaced)
	}
	late := 0
	for _, order := range rooms {
		slices.SortStableFunc(order, func(x, y int) int { return r.received[x].Compare(r.received[y]) })
		for i := 1; i < len(order); i++ {
			if order[i] < order[i-1] {
				late++
			}
		}
	}
	b.ReportMetric(float64(late), "reordered")
	if late > 0 && !r.measureDisorder {
		b.Errorf("%d messages arrived out of order", late)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "p90-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	// Sent: the offered rate (in a burst, the sender's pace, which
	// bounds the relay's). Delivered: from the first send of a batch to
	// its last delivery, under the offered rate when the relay falls
	// behind.
	if m.sending > 0 {
		b.ReportMetric(float64(n)/m.sending.Seconds(), "sent-msg/s")
	}
	b.ReportMetric(float64(n)/m.relaying.Seconds(), "delivered-msg/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/msg")
	b.ReportMetric(float64(switches)/float64(n), "ctxsw/msg")
	b.ReportMetric(float64(m.idle.Milliseconds())/2, "idle-cpu-ms/s")
	for _, name := range slices.Sorted(maps.Keys(r.counted)) {
		list, per := r.counted[name].Since(m.counts0[name], n)
		b.ReportMetric(per, name+"/msg")
		b.Logf("%s per message:\n%s", name, list)
	}
}

// cpu is the CPU time the measured processes (sb and more) used so far.
func (r *relay) cpu() time.Duration {
	var sum time.Duration
	for _, p := range append([]*testenv.Process{r.sb}, r.more...) {
		sum += processCPU(r.b, p)
	}
	return sum
}

// switches is contextSwitches summed over sb and more.
func (r *relay) switches() int {
	n := 0
	for _, p := range append([]*testenv.Process{r.sb}, r.more...) {
		n += contextSwitches(p)
	}
	return n
}

// contextSwitches counts the times the process's threads gave up or lost
// the CPU so far (threads that ended are not counted): each is a thread
// going to sleep and being woken, which is most of the cost of handing
// work between goroutines.
func contextSwitches(p *testenv.Process) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", p.Pid()))
	n := 0
	for _, t := range tasks {
		status, err := os.ReadFile(t)
		if err != nil {
			continue // the thread ended meanwhile
		}
		for _, line := range strings.Split(string(status), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(k, "voluntary_ctxt_switches") {
				c, _ := strconv.Atoi(strings.TrimSpace(v))
				n += c
			}
		}
	}
	return n
}

// processCPU is the user+system CPU time a process has used so far.
func processCPU(b testing.TB, p *testenv.Process) time.Duration {
	fields := procStat(p.Pid())
	if fields == nil {
		b.Fatalf("no /proc stat for %s", p.Name)
	}
	// utime and stime are the 14th and 15th fields of the whole line.
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}

// benchXMPP starts the XMPP server SWITCHBOARD_BENCH_XMPP names:
// "prosody" (the default) or "ejabberd".
func benchXMPP(b *testing.B, c testenv.XMPPServerConfig) *testenv.XMPPServer {
	switch v := os.Getenv("SWITCHBOARD_BENCH_XMPP"); v {
	case "", "prosody":
		return testenv.ProsodyWith(b, c)
	case "ejabberd":
		return testenv.EjabberdWith(b, c)
	default:
		b.Fatalf("SWITCHBOARD_BENCH_XMPP=%q: want prosody or ejabberd", v)
		return nil
	}
}
