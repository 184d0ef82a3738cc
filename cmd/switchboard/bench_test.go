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
)

// The relay benchmarks run the switchboard binary against real servers,
// send b.N messages at a steady rate (200 msg/s; 50 msg/s with Matrix)
// from one person on one network, and time
// when a person on another network sees each one. They report the relay
// latency (send to delivery, through the durable commit, the outbox and
// the target's connection), the CPU time the switchboard process spent per
// message, and its CPU use while idle. Run with -benchtime=2000x or so.
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
	irc, xmpp := testenv.InspIRCd(b), testenv.ProsodyWith(b, testenv.XMPPServerConfig{Users: map[string]string{"alice": "pw"}})
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
	r.run(200, func(text string) { bob.Say("#bench", text) })
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
	irc, xmpp := testenv.InspIRCd(b), testenv.ProsodyWith(b, testenv.XMPPServerConfig{Users: map[string]string{"alice": "pw"}, Global: os.Getenv("SWITCHBOARD_BENCH_PROSODY")})
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
// Matrix user alice in a room, and switchboard linking that room with
// #bench.
func matrixBench(b *testing.B) (*relay, *testenv.IRCServer, *testenv.MatrixClient, id.RoomID) {
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
	roomID := alice.NewRoom(true, "")
	r := startRelayAt(b, httpAddr, fmt.Sprintf(`
  libera: { type: irc, server: "%s", nick: switchboard, flood: { burst: 1000, interval: 0 }, rate: { per_second: 0 } }
  mx: { type: matrix, homeserver: %q, domain: %q, as_token: %q, hs_token: %q, url: %q, rate: { per_second: 0 } }`,
		irc.Addr, asks.URL, mx.Domain, mx.ASToken, mx.HSToken, mx.URL), fmt.Sprintf(`[ "libera:#bench", "mx:%s" ]`, roomID))
	r.counted = map[string]*testenv.CountingProxy{"hs-req": asks, "as-push": push}
	r.homeserver = hs.Process
	return r, irc, alice, roomID
}

func BenchmarkRelayIRCToMatrix(b *testing.B) { relayIRCToMatrix(b, 0) }

// BenchmarkRelayIRCToMatrixGhosts is BenchmarkRelayIRCToMatrix with 10
// more IRC users in the channel, each a ghost in the Matrix room: every
// one of the homeserver's users in a room costs it some work per message.
func BenchmarkRelayIRCToMatrixGhosts(b *testing.B) { relayIRCToMatrix(b, 10) }

func relayIRCToMatrix(b *testing.B, idle int) {
	r, irc, alice, roomID := matrixBench(b)
	for i := range idle {
		c := irc.Client(b, fmt.Sprintf("idle%d", i))
		c.Join("#bench")
		ghost := fmt.Sprintf("@sb_libera_idle%d:localhost", i)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, _, err := alice.WaitFor(ctx, 0, func(ev *event.Event) bool {
			return ev.RoomID == roomID && ev.Type == event.StateMember && ev.GetStateKey() == ghost
		})
		cancel()
		if err != nil {
			b.Fatalf("%s never joined: %v", ghost, err)
		}
	}
	go func() {
		for i := 0; ; i++ {
			ev, _, err := alice.WaitFor(context.Background(), i, func(*event.Event) bool { return true })
			if err != nil {
				return
			}
			if c, ok := messageText(ev); ok {
				r.saw(c.Body)
			}
		}
	}()
	bob := irc.Client(b, "bob")
	bob.Join("#bench")
	r.run(50, func(text string) { bob.Say("#bench", text) })
}

func BenchmarkRelayMatrixToIRC(b *testing.B) {
	r, irc, alice, roomID := matrixBench(b)
	bob := irc.Client(b, "bob")
	bob.Conn.AddCallback("PRIVMSG", func(m ircmsg.Message) { r.saw(m.Params[1]) })
	bob.Join("#bench")
	r.run(50, func(text string) { alice.Text(roomID, text) })
}

type relay struct {
	b  *testing.B
	sb *testenv.Process

	mu       sync.Mutex
	received map[int]time.Time
	got      chan struct{}

	// counted are proxies whose requests are reported per message, by
	// metric name.
	counted map[string]*testenv.CountingProxy
	// homeserver, when set, has its CPU per message reported too.
	homeserver *testenv.Process

	// measureDisorder counts messages that overtook an earlier one,
	// where that is the relay's known behaviour rather than a failure.
	measureDisorder bool
}

// startRelay builds and starts switchboard with the given networks and
// one link, and waits until it is ready.
func startRelay(b *testing.B, networks, link string) *relay {
	return startRelayAt(b, fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b)), networks, link)
}

// startRelayAt is startRelay with switchboard's HTTP listener on httpAddr.
func startRelayAt(b *testing.B, httpAddr, networks, link string) *relay {
	dir := b.TempDir()
	bin := buildSwitchboard(b, dir, "pprof")
	conf := testenv.WriteFile(b, dir, "switchboard.yaml", fmt.Sprintf(`
data_dir: %s/data
sqlite_synchronous: %s
http: { listen: "%s" }
log: { level: info }
networks:%s
links:
  bench: %s
`, dir, cmp.Or(os.Getenv("SWITCHBOARD_BENCH_SYNC"), "full"), httpAddr, networks, link))
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
	return &relay{b: b, sb: sb, received: map[int]time.Time{}, got: make(chan struct{}, 1)}
}

// allUp tells whether switchboard at httpAddr is ready with every network
// up.
func allUp(httpAddr string) bool {
	r, err := http.Get("http://" + httpAddr + "/api/status")
	if err != nil {
		return false
	}
	defer r.Body.Close()
	var st status
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
func (r *relay) saw(text string) {
	var seq int
	if _, err := fmt.Sscanf(text, "m%d", &seq); err != nil {
		return
	}
	r.mu.Lock()
	if _, dup := r.received[seq]; !dup {
		r.received[seq] = time.Now()
	}
	r.mu.Unlock()
	select {
	case r.got <- struct{}{}:
	default:
	}
}

func (r *relay) waitFor(seq int) {
	deadline := time.After(60 * time.Second)
	for {
		r.mu.Lock()
		_, ok := r.received[seq]
		n := len(r.received)
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.got:
		case <-deadline:
			r.b.Fatalf("message %d never arrived (%d did)", seq, n)
		}
	}
}

func (r *relay) run(rate int, send func(text string)) {
	b := r.b
	send("m0 warm-up") // puppets connect on their first message
	r.waitFor(0)
	idle0 := processCPU(b, r.sb)
	time.Sleep(2 * time.Second)
	idle := processCPU(b, r.sb) - idle0

	sent := make(map[int]time.Time, b.N)
	counts0 := map[string]map[string]int{}
	for name, p := range r.counted {
		counts0[name] = p.Counts()
	}
	cpu0, switches0 := processCPU(b, r.sb), contextSwitches(r.sb)
	var hsCPU0 time.Duration
	if r.homeserver != nil {
		hsCPU0 = processCPU(b, r.homeserver)
	}
	b.ResetTimer()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := 1; i <= b.N; i++ {
		<-tick.C
		sent[i] = time.Now()
		send(fmt.Sprintf("m%d reading", i))
	}
	r.waitFor(b.N)
	b.StopTimer()
	cpu, switches := processCPU(b, r.sb)-cpu0, contextSwitches(r.sb)-switches0
	if r.homeserver != nil {
		b.ReportMetric(float64((processCPU(b, r.homeserver)-hsCPU0).Microseconds())/float64(b.N), "hs-cpu-µs/msg")
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	lat := make([]time.Duration, 0, b.N)
	order := make([]int, 0, b.N)
	for i := 1; i <= b.N; i++ {
		at, ok := r.received[i]
		if !ok {
			b.Fatalf("message %d lost", i)
		}
		lat = append(lat, at.Sub(sent[i]))
		order = append(order, i)
	}
	slices.SortStableFunc(order, func(x, y int) int { return r.received[x].Compare(r.received[y]) })
	if r.measureDisorder {
		late := 0
		for i := 1; i < len(order); i++ {
			if order[i] < order[i-1] {
				late++
			}
		}
		b.ReportMetric(float64(late), "reordered")
	} else if !slices.IsSorted(order) {
		b.Errorf("messages arrived out of order")
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "p90-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
	b.ReportMetric(float64(switches)/float64(b.N), "ctxsw/msg")
	b.ReportMetric(float64(idle.Milliseconds())/2, "idle-cpu-ms/s")
	for _, name := range slices.Sorted(maps.Keys(r.counted)) {
		list, per := r.counted[name].Since(counts0[name], b.N)
		b.ReportMetric(per, name+"/msg")
		b.Logf("%s per message:\n%s", name, list)
	}
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
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the parenthesized command name; utime and stime
	// are the 14th and 15th fields of the whole line.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}
