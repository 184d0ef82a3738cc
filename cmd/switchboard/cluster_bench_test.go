package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/ergochat/irc-go/ircmsg"

	"github.com/switchboard-chat/switchboard/cluster"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// The cluster benchmarks (issue 26) measure what cluster mode costs and
// how it fails over, with real PostgreSQL, nats-server, InspIRCd and
// Mosquitto and up to three switchboard processes. Their world links 30
// IRC channels (#cb0, #cb1...; SWITCHBOARD_BENCH_LINKS) each with an MQTT
// room (bench/r0, bench/r1...), over three networks: the IRC network
// libera and two MQTT networks on the one broker, the even links' rooms on
// the first, the odd ones' on the second. Three networks, so that with
// three instances each holds one: the MQTT networks' names are picked so
// that the spread (cluster.Owner) gives each to another instance than
// IRC's and each other's, and every message then crosses instances (the
// MQTT network's holder commits it, wakes IRC's holder over NATS, which
// reads it from the store and sends it; and back).
//
// Traffic goes both ways at once: a device publishes into the MQTT rooms
// (alice, in every channel, sees it on IRC) and bob says in the channels
// (a client subscribed to every room's out topics sees it), in turn over
// the links and directions; order is asserted per link and direction.
//
// Run with -benchtime=1x: an op is SWITCHBOARD_BENCH_BURST messages (2,000
// by default) or, for the failover, SWITCHBOARD_BENCH_KILLS kills (5); the
// metrics are per message or per kill. -short skips them.

// clusterBenchMode is how a benchmark runs switchboard.
type clusterBenchMode struct {
	name      string
	instances int
	cluster   bool // a cluster section (NATS); without it, one instance on PostgreSQL
}

// clusterBenchModes compare one instance on PostgreSQL (no cluster: what
// cluster mode's extra CPU is measured against), one instance in cluster
// mode (the same work plus NATS wakes and lease upkeep) and three.
var clusterBenchModes = []clusterBenchMode{
	{"postgres", 1, false},
	{"cluster=1", 1, true},
	{"cluster=3", 3, true},
}

// BenchmarkClusterRelay offers SWITCHBOARD_BENCH_RATE messages a second
// (300 by default, 5 per link and direction) and reports the latency,
// delivered rate and CPU per message (cpu-µs/msg is summed over the
// switchboard processes; pg- and nats-cpu-µs/msg are the servers').
func BenchmarkClusterRelay(b *testing.B) {
	rate := benchEnvInt(b, "SWITCHBOARD_BENCH_RATE", 300)
	for _, mode := range clusterBenchModes {
		b.Run(mode.name, func(b *testing.B) {
			w := newBenchCluster(b, mode, 3*time.Second)
			w.measure(rate)
		})
	}
}

// BenchmarkClusterBurst sends as fast as the senders go (the device waits
// for each PUBACK, bob's lines go out at once) and reports the rate
// switchboard delivered at: its ceiling with this traffic.
func BenchmarkClusterBurst(b *testing.B) {
	for _, mode := range clusterBenchModes {
		b.Run(mode.name, func(b *testing.B) {
			w := newBenchCluster(b, mode, 3*time.Second)
			w.measure(0)
		})
	}
}

// benchCluster is the benchmarks' world.
type benchCluster struct {
	b      *testing.B
	mode   clusterBenchMode
	pg     *testenv.PostgresDB
	nats   *testenv.NATSServer // nil without cluster
	irc    *testenv.IRCServer
	broker *testenv.MQTTBroker
	links  int
	mqtt   [2]string // the MQTT networks: link i's room is on mqtt[i%2]
	*switchboards
}

// benchInstances are the instance names the MQTT networks are spread
// for; a world of fewer instances uses the first ones.
var benchInstances = []string{"sb-1", "sb-2", "sb-3"}

// spreadMQTT picks the two MQTT networks' names: the first devicesN,
// devicesM whose leases the spread over benchInstances gives to the two
// instances that do not get IRC's.
func spreadMQTT() [2]string {
	owners := map[string]bool{cluster.Owner(cluster.LeaseName("libera"), benchInstances): true}
	var out []string
	for i := 1; len(out) < 2; i++ {
		name := fmt.Sprintf("devices%d", i)
		if o := cluster.Owner(cluster.LeaseName(name), benchInstances); !owners[o] {
			owners[o] = true
			out = append(out, name)
		}
	}
	return [2]string{out[0], out[1]}
}

// newBenchCluster starts the servers and mode's switchboard instances
// with lease TTL ttl, and waits until every network is held and up where
// the spread puts it.
func newBenchCluster(b *testing.B, mode clusterBenchMode, ttl time.Duration) *benchCluster {
	b.Helper()
	if testing.Short() {
		b.Skip("runs real servers and up to three switchboard processes")
	}
	w := &benchCluster{b: b, mode: mode, pg: testenv.PostgresServer(b), irc: testenv.InspIRCd(b), broker: testenv.Mosquitto(b),
		links: benchEnvInt(b, "SWITCHBOARD_BENCH_LINKS", 30), mqtt: spreadMQTT()}
	var clusterSection string
	if mode.cluster {
		w.nats = testenv.NATS(b)
		clusterSection = fmt.Sprintf(`cluster: { nats: [ %q ], instance: "${SWITCHBOARD_INSTANCE}", lease_ttl: %s }`, w.nats.URL, ttl)
	}
	var links strings.Builder
	for i := range w.links {
		fmt.Fprintf(&links, "\n  cb%d: [ \"libera:#cb%d\", \"%s:bench/r%d\" ]", i, i, w.mqtt[i%2], i)
	}
	dir := b.TempDir()
	conf := testenv.WriteFile(b, dir, "switchboard.yaml", fmt.Sprintf(`
data_dir: %s/${SWITCHBOARD_INSTANCE}
store: %s
http: { listen: "${SWITCHBOARD_HTTP}" }
log: { level: info }
%s
networks:
  libera: { type: irc, server: %s, nick: switchboard, reconnect_max: 1s, flood: { burst: 1000, interval: 0 }, rate: { per_second: 0 } }
  %[5]s: { type: mqtt, broker: %[7]q, client_id: switchboard-%[5]s, rate: { per_second: 0 } }
  %[6]s: { type: mqtt, broker: %[7]q, client_id: switchboard-%[6]s, rate: { per_second: 0 } }
links:%[8]s
`, dir, w.pg.DSN, clusterSection, w.irc.Addr, w.mqtt[0], w.mqtt[1], w.broker.URL, links.String()))
	bin := buildSwitchboard(b, b.TempDir())
	w.switchboards = newSwitchboards(b, benchInstances[:mode.instances])
	w.start(bin, dir, conf, nil)
	w.waitSpread(60 * time.Second)
	held := map[string]string{}
	for _, network := range w.networks() {
		if h := w.holders(network); len(h) > 0 {
			held[network] = w.nameOf(h[0])
		}
	}
	b.Logf("%s: networks held %v", mode.name, held)
	return w
}

func (w *benchCluster) networks() []string { return []string{"libera", w.mqtt[0], w.mqtt[1]} }

// waitSpread waits until every network is held, and up, by the live
// instance the spread gives it to (without a cluster: up on the one
// instance).
func (w *benchCluster) waitSpread(timeout time.Duration) {
	w.b.Helper()
	if !w.mode.cluster {
		for _, n := range w.networks() {
			w.waitHolder(n, -1, timeout)
		}
		return
	}
	var leases []string
	for _, n := range w.networks() {
		leases = append(leases, cluster.LeaseName(n))
	}
	w.switchboards.waitSpread(leases, w.networks(), timeout)
}

// benchChannel and benchRoot are link i's IRC channel and MQTT room.
func benchChannel(i int) string { return fmt.Sprintf("#cb%d", i) }
func benchRoot(i int) string    { return fmt.Sprintf("bench/r%d", i) }

// benchIndex is the link number in "#cb12" or "bench/r12/out/...", or -1.
func benchIndex(s, prefix string) int {
	s, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return -1
	}
	end := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(s)
	}
	i, err := strconv.Atoi(s[:end])
	if err != nil {
		return -1
	}
	return i
}

// relayText is the text of a relayed IRC line: a puppet says it as is,
// the bot as "<sensor> text".
func relayText(text string) string {
	if _, rest, ok := strings.Cut(text, "> "); ok && strings.HasPrefix(text, "<") {
		return rest
	}
	return text
}

// traffic connects the people of both directions and returns a relay
// whose room for message seq is its link and direction (0..links-1:
// MQTT→IRC, links..2·links-1: IRC→MQTT), and how seq is sent, by the text
// "m<seq> ...". The link and direction of every room have seen a message
// (puppets connect and join on the first one) before it returns.
func (w *benchCluster) traffic() (*relay, func(text string)) {
	b, n := w.b, w.links
	r := newRelay(b, w.procs[0])
	r.more = w.procs[1:]
	r.roomOf = func(seq int) int { return (seq%(2*n) + 2*n) % (2 * n) }
	alice := w.irc.Client(b, "alice")
	alice.Conn.AddCallback("PRIVMSG", func(m ircmsg.Message) {
		// bob is in the channels too: alice sees him straight from IRC.
		if m.Nick() != "bob" && len(m.Params) == 2 {
			r.sawIn(benchIndex(m.Params[0], "#cb"), relayText(m.Params[1]))
		}
	})
	listen := w.broker.Client(b, testenv.UniqueClientID("bench-listen"))
	tok := listen.Subscribe("bench/+/out/libera/#", 1, func(_ paho.Client, m paho.Message) {
		var ev struct{ Type, Text string }
		if json.Unmarshal(m.Payload(), &ev) == nil && ev.Type == "message" {
			r.sawIn(n+benchIndex(m.Topic(), "bench/r"), ev.Text)
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("subscribe: %v", tok.Error())
	}
	bob := w.irc.Client(b, "bob")
	for i := range n {
		alice.Join(benchChannel(i))
		bob.Join(benchChannel(i))
	}
	dev := w.broker.Client(b, testenv.UniqueClientID("bench-dev"))
	send := func(text string) {
		var seq int
		fmt.Sscanf(text, "m%d", &seq)
		if room := r.roomOf(seq); room < n {
			testenv.MQTTPublish(b, dev, benchRoot(room)+"/in/sensor", 1, false, text)
		} else {
			bob.Say(benchChannel(room-n), text)
		}
	}
	for seq := -2 * n; seq < 0; seq++ {
		send(fmt.Sprintf("m%d warm-up", seq))
	}
	r.waitAll(-2*n, -1)
	return r, send
}

// measure sends b.N batches of relayBurst messages, at rate a second (0:
// as fast as they go), and reports; also the CPU PostgreSQL and NATS
// spent per message, and the machine's load.
func (w *benchCluster) measure(rate int) {
	b := w.b
	r, send := w.traffic()
	size := relayBurst(b)
	m := r.start(send)
	load := startLoad()
	pg0 := processTreeCPU(b, w.pg.Process.Pid())
	var nats0 time.Duration
	if w.nats != nil {
		nats0 = processCPU(b, w.nats.Process)
	}
	var pace func()
	if rate > 0 {
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		pace = func() { <-tick.C }
	}
	for i := range b.N {
		m.batch(i*size+1, (i+1)*size, pace, send)
	}
	n := b.N * size
	pg := processTreeCPU(b, w.pg.Process.Pid()) - pg0
	var nats time.Duration
	if w.nats != nil {
		nats = processCPU(b, w.nats.Process) - nats0
	}
	busy, loadavg := load.stop()
	m.report(n)
	b.ReportMetric(float64(pg.Microseconds())/float64(n), "pg-cpu-µs/msg")
	if w.nats != nil {
		b.ReportMetric(float64(nats.Microseconds())/float64(n), "nats-cpu-µs/msg")
	}
	b.ReportMetric(busy, "machine-busy-%")
	b.Logf("%s: %d links, %d messages at %s; load average %s", w.mode.name, w.links, n, rateName(rate), loadavg)
}

func rateName(rate int) string {
	if rate == 0 {
		return "full speed"
	}
	return fmt.Sprintf("%d msg/s", rate)
}

// BenchmarkClusterFailover kills (kill -9) the instance holding IRC, of
// three, SWITCHBOARD_BENCH_KILLS times (5) while a device sends 50 msg/s
// over the MQTT rooms, and reports the time from each kill to the first
// line the new holder delivers on IRC (failover-*-s: min, median, max),
// to the new holder's status showing IRC up (takeover-*-s) and to its
// first JOIN in a channel (joined-*-s), at lease
// TTLs of 3 s and the default 10 s. After each kill the killed instance
// is started again and the networks spread back before the next. Every
// line must arrive, with at most one repeat per kill (repeats-kill);
// repeats while IRC is handed back to the restarted instance are counted
// apart (repeats-handback: a clean handover should have none; counted,
// not failed, as the benchmark measures the failover).
func BenchmarkClusterFailover(b *testing.B) {
	for _, ttl := range []time.Duration{3 * time.Second, 10 * time.Second} {
		b.Run("ttl="+ttl.String(), func(b *testing.B) {
			w := newBenchCluster(b, clusterBenchModes[2], ttl)
			w.failover(benchEnvInt(b, "SWITCHBOARD_BENCH_KILLS", 5))
		})
	}
}

// ircWatch is what alice saw on IRC: when each nick joined each channel,
// and each numbered line's arrivals.
type ircWatch struct {
	mu     sync.Mutex
	joined map[string]time.Time // "nick channel"
	lines  map[int][]time.Time
	// firsts are lines by (nick, channel, time), in arrival order.
	firsts []ircSaid
}

type ircSaid struct {
	nick, channel string
	at            time.Time
}

// joinAfter is when the first nick joined a channel after t.
func (iw *ircWatch) joinAfter(t time.Time) (first time.Time) {
	iw.mu.Lock()
	defer iw.mu.Unlock()
	for _, at := range iw.joined {
		if at.After(t) && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first
}

// firstJoinedAfter is when the first line came from a nick that had
// joined its channel after t: the first from a connection opened after
// t. (A line the old holder sent just before t may arrive after it, from
// a nick the new holder takes again later.)
func (iw *ircWatch) firstJoinedAfter(t time.Time) (time.Time, bool) {
	iw.mu.Lock()
	defer iw.mu.Unlock()
	for _, s := range iw.firsts {
		if joined := iw.joined[s.nick+" "+s.channel]; joined.After(t) && s.at.After(joined) {
			return s.at, true
		}
	}
	return time.Time{}, false
}

func (w *benchCluster) failover(kills int) {
	b, n := w.b, w.links
	iw := &ircWatch{joined: map[string]time.Time{}, lines: map[int][]time.Time{}}
	alice := w.irc.Client(b, "alice")
	alice.Conn.AddCallback("JOIN", func(m ircmsg.Message) {
		iw.mu.Lock()
		iw.joined[m.Nick()+" "+m.Params[0]] = time.Now()
		iw.mu.Unlock()
	})
	alice.Conn.AddCallback("PRIVMSG", func(m ircmsg.Message) {
		var seq int
		if _, err := fmt.Sscanf(relayText(m.Params[1]), "m%d", &seq); err != nil {
			return
		}
		iw.mu.Lock()
		iw.lines[seq] = append(iw.lines[seq], time.Now())
		iw.firsts = append(iw.firsts, ircSaid{m.Nick(), m.Params[0], time.Now()})
		iw.mu.Unlock()
	})
	for i := range n {
		alice.Join(benchChannel(i))
	}
	dev := w.broker.Client(b, testenv.UniqueClientID("bench-dev"))
	stop, sent := make(chan struct{}), make(chan int, 1)
	go func() {
		tick := time.NewTicker(time.Second / 50)
		defer tick.Stop()
		seq := 0
		defer func() { sent <- seq }()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			seq++
			tok := dev.Publish(benchRoot(seq%n)+"/in/sensor", 1, false, fmt.Sprintf("m%d reading", seq))
			if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				b.Errorf("publish m%d: %v", seq, tok.Error())
				return
			}
		}
	}()
	load := startLoad()
	b.ResetTimer()
	var failovers, takeovers, joins []time.Duration
	var killTimes, handbacks []time.Time
	for k := range kills {
		time.Sleep(3 * time.Second)
		victim := w.waitHolder("libera", -1, 30*time.Second)
		killed := time.Now()
		killTimes = append(killTimes, killed)
		w.kill(victim)
		next := w.waitHolder("libera", victim, 60*time.Second)
		takeovers = append(takeovers, time.Since(killed))
		var first time.Time
		for deadline := killed.Add(60 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			at, ok := iw.firstJoinedAfter(killed)
			if ok {
				first = at
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("kill %d: the new holder %s delivered nothing on IRC in a minute", k+1, w.nameOf(next))
			}
		}
		failovers = append(failovers, first.Sub(killed))
		joins = append(joins, iw.joinAfter(killed).Sub(killed))
		b.Logf("kill %d of %s: %s holds IRC after %v (status), first joined a channel after %v, first line from it %v after the kill",
			k+1, w.nameOf(victim), w.nameOf(next), takeovers[k].Round(time.Millisecond), joins[k].Round(time.Millisecond), failovers[k].Round(time.Millisecond))
		w.restart(victim)
		// From here the killed instance is back, and IRC is handed back
		// to it (a clean handover, as on SIGTERM): repeats after this,
		// until the next kill, are the handover's.
		handbacks = append(handbacks, time.Now())
		w.waitSpread(60 * time.Second)
	}
	b.StopTimer()
	busy, loadavg := load.stop()
	close(stop)
	last := <-sent
	// Every line arrives, whoever held IRC when it was sent.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		iw.mu.Lock()
		missing := 0
		for seq := 1; seq <= last; seq++ {
			missing += max(1-len(iw.lines[seq]), 0)
		}
		iw.mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d lines never reached IRC", missing, last)
		}
	}
	time.Sleep(time.Second) // repeats still on their way
	iw.mu.Lock()
	repeats, handedBack := 0, 0
	for seq := 1; seq <= last; seq++ {
		at := iw.lines[seq]
		for _, again := range at[1:] {
			// A handback's if one came after the last kill before the
			// repeat.
			k, _ := slices.BinarySearchFunc(killTimes, again, time.Time.Compare)
			h, _ := slices.BinarySearchFunc(handbacks, again, time.Time.Compare)
			if h > 0 && k > 0 && handbacks[h-1].After(killTimes[k-1]) {
				handedBack++
				b.Logf("m%d repeated %v after handback %d began (first seen %v before it)", seq,
					again.Sub(handbacks[h-1]).Round(time.Millisecond), h, handbacks[h-1].Sub(at[0]).Round(time.Millisecond))
			} else {
				repeats++
			}
		}
	}
	iw.mu.Unlock()
	if repeats > kills {
		b.Errorf("%d lines repeated after %d kills, want at most one a kill", repeats, kills)
	}
	b.ReportMetric(float64(repeats), "repeats-kill")
	b.ReportMetric(float64(handedBack), "repeats-handback")
	reportSpread(b, "failover", failovers)
	reportSpread(b, "takeover", takeovers)
	reportSpread(b, "joined", joins)
	b.ReportMetric(busy, "machine-busy-%")
	b.Logf("%d kills, %d lines; failovers %v; load average %s", kills, last, failovers, loadavg)
}

// reportSpread reports the minimum, median and maximum of ds in seconds.
func reportSpread(b *testing.B, name string, ds []time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	b.ReportMetric(s[0].Seconds(), name+"-min-s")
	b.ReportMetric(s[len(s)/2].Seconds(), name+"-p50-s")
	b.ReportMetric(s[len(s)-1].Seconds(), name+"-max-s")
}

// benchEnvInt is the positive number in environment variable name, or
// def.
func benchEnvInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// load is the machine's CPU counters at a start: the benchmarks share a
// small machine, and say how busy it was while they measured.
type load struct{ busy, total int64 }

func startLoad() load {
	busy, total := machineCPU()
	return load{busy, total}
}

// stop is the machine's busy share of all its CPUs since start (%), and
// its load average now.
func (l load) stop() (float64, string) {
	busy, total := machineCPU()
	avg, _ := os.ReadFile("/proc/loadavg")
	if total == l.total {
		return 0, strings.TrimSpace(string(avg))
	}
	return 100 * float64(busy-l.busy) / float64(total-l.total), strings.TrimSpace(string(avg))
}

// machineCPU is the machine's busy and total CPU ticks so far (idle and
// iowait are not busy).
func machineCPU() (busy, total int64) {
	stat, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(stat), "\n")
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseInt(f, 10, 64)
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total
}

// processTreeCPU is the user+system CPU time process pid and all its
// descendants used so far, those that ended included (as the children
// its tree waited for): PostgreSQL runs a process per session.
func processTreeCPU(b *testing.B, pid int) time.Duration {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := procStat(p); f != nil {
			ppid, _ := strconv.Atoi(f[1])
			children[ppid] = append(children[ppid], p)
		}
	}
	var sum func(p int) int64
	sum = func(p int) int64 {
		f := procStat(p)
		if f == nil {
			return 0 // ended meanwhile
		}
		// utime, stime, cutime, cstime: its own, and that of its
		// children that ended (which are no longer in the tree).
		var t int64
		for _, s := range f[11:15] {
			v, _ := strconv.ParseInt(s, 10, 64)
			t += v
		}
		for _, c := range children[p] {
			t += sum(c)
		}
		return t
	}
	ticks := sum(pid)
	if ticks == 0 {
		b.Fatalf("no CPU time for process %d", pid)
	}
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(ticks) * time.Second / ticksPerSecond
}

// procStat is the fields of /proc/pid/stat after the command name (state
// first), or nil.
func procStat(pid int) []string {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(stat)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
}
