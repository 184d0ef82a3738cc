package main

import (
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// BenchmarkRelayMQTTToIRC runs the switchboard binary against real
// Mosquitto and InspIRCd, publishes b.N messages at 200 msg/s from one
// device, and measures when an IRC user sees each one. It reports the
// relay latency (publish to IRC delivery, through the durable commit, the
// outbox and the puppet's connection) and the CPU time the switchboard
// process spent per message. Run with -benchtime=2000x or so.
func BenchmarkRelayMQTTToIRC(b *testing.B) {
	const rate = 200
	irc, broker := testenv.InspIRCd(b), testenv.Mosquitto(b)
	dir := b.TempDir()
	bin := filepath.Join(dir, "switchboard")
	if out, err := exec.Command("go", "build", "-tags", "pprof", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b))
	conf := testenv.WriteFile(b, dir, "switchboard.yaml", fmt.Sprintf(`
data_dir: %s/data
http: { listen: "%s" }
log: { level: info }
networks:
  libera: { type: irc, server: "%s", nick: switchboard, flood: { burst: 1000, interval: 0 } }
  devices: { type: mqtt, broker: "%s" }
links:
  lobby: [ "libera:#bench", "devices:bench" ]
`, dir, httpAddr, irc.Addr, broker.URL))
	sb := &testenv.Process{Name: bin, Args: []string{"run", "--config", conf}, Dir: dir, Ready: httpAddr}
	if profile := os.Getenv("SWITCHBOARD_CPUPROFILE"); profile != "" {
		sb.Env = []string{"SWITCHBOARD_CPUPROFILE=" + profile}
		defer func() { syscall.Kill(sb.Pid(), syscall.SIGUSR1); time.Sleep(200 * time.Millisecond) }()
	}
	sb.Start(b)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if r, err := http.Get("http://" + httpAddr + "/readyz"); err == nil && r.StatusCode == 200 {
			r.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("switchboard not ready")
		}
	}

	var (
		mu       sync.Mutex
		received = map[int]time.Time{}
		got      = make(chan struct{}, 1)
	)
	alice := irc.Client(b, "alice")
	alice.Conn.AddCallback("PRIVMSG", func(m ircmsg.Message) {
		var seq int
		if _, err := fmt.Sscanf(m.Params[1], "m%d", &seq); err == nil {
			mu.Lock()
			received[seq] = time.Now()
			mu.Unlock()
			select {
			case got <- struct{}{}:
			default:
			}
		}
	})
	alice.Join("#bench")
	dev := broker.Client(b, testenv.UniqueClientID("bench-dev"))
	publish := func(seq int) {
		testenv.MQTTPublish(b, dev, "bench/in/sensor", 1, false, fmt.Sprintf("m%d reading", seq))
	}
	waitFor := func(seq int) {
		deadline := time.After(60 * time.Second)
		for {
			mu.Lock()
			_, ok := received[seq]
			mu.Unlock()
			if ok {
				return
			}
			select {
			case <-got:
			case <-deadline:
				mu.Lock()
				n, last := len(received), 0
				for s := range received {
					last = max(last, s)
				}
				mu.Unlock()
				var events, queued int
				if db, err := sql.Open("sqlite", filepath.Join(dir, "data", "switchboard.db")); err == nil {
					db.QueryRow(`SELECT (SELECT COUNT(*) FROM events), (SELECT COUNT(*) FROM outbox)`).Scan(&events, &queued)
					db.Close()
				}
				b.Fatalf("message %d never reached IRC (%d received, the last %d; %d events stored, %d queued)",
					seq, n, last, events, queued)
			}
		}
	}
	publish(0) // the puppet connects on its first message
	waitFor(0)

	idle0 := processCPU(b, sb)
	time.Sleep(2 * time.Second)
	idle := processCPU(b, sb) - idle0

	sent := make(map[int]time.Time, b.N)
	cpu0 := processCPU(b, sb)
	b.ResetTimer()
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	for i := 1; i <= b.N; i++ {
		<-tick.C
		sent[i] = time.Now()
		publish(i)
	}
	waitFor(b.N)
	b.StopTimer()
	cpu := processCPU(b, sb) - cpu0

	mu.Lock()
	defer mu.Unlock()
	lat := make([]time.Duration, 0, b.N)
	order := make([]int, 0, b.N)
	for i := 1; i <= b.N; i++ {
		at, ok := received[i]
		if !ok {
			b.Fatalf("message %d lost", i)
		}
		lat = append(lat, at.Sub(sent[i]))
		order = append(order, i)
	}
	slices.SortFunc(order, func(x, y int) int { return received[x].Compare(received[y]) })
	if !slices.IsSorted(order) {
		b.Errorf("messages arrived out of order")
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
	b.ReportMetric(float64(idle.Milliseconds())/2, "idle-cpu-ms/s")
}

// processCPU is the user+system CPU time a process has used so far.
func processCPU(b *testing.B, p *testenv.Process) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the parenthesized command name; utime and stime are
	// the 14th and 15th fields of the whole line.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}
