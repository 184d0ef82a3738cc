package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/internal/testwait"
	"github.com/switchboard-chat/switchboard/mqtt"
)

// firstRunBinEnv, set, marks the run of TestFirstRunIsQuiet inside its
// network namespace, and names the binary it runs there.
const firstRunBinEnv = "SWITCHBOARD_FIRSTRUN_BIN"

// A first start on the embedded defaults (SQLite in ./data, the embedded
// broker, the web page), and a restart on the same data_dir after a
// SIGTERM, log no WARN or ERROR line, nor anything that is not a log
// line: nothing that would scare someone trying Switchboard out. A device
// with a persistent session publishes and subscribes across the restart,
// someone on the web page chats with it and is still there at each stop,
// and the page and health checks are fetched, as on a first try.
//
// The default ports are fixed, so, as root, it runs in a network namespace
// of its own with only a loopback interface (the test runs itself again
// under `unshare -n`); otherwise on free ports, with a config that is the
// embedded defaults but for them.
func TestFirstRunIsQuiet(t *testing.T) {
	if bin := os.Getenv(firstRunBinEnv); bin != "" {
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			t.Fatalf("ip link set lo up: %v\n%s", err, out)
		}
		cfg := config.Default()
		firstRuns(t, bin, nil, cfg.HTTP.Listen, cfg.Broker.Listen)
		return
	}
	if testing.Short() {
		t.Skip("starts the binary twice")
	}
	bin := buildSwitchboard(t, t.TempDir())
	unshare, err := exec.LookPath("unshare")
	if _, errIP := exec.LookPath("ip"); os.Getuid() != 0 || err != nil || errIP != nil {
		t.Log("not root, or no unshare or ip: on free ports")
		dir := t.TempDir()
		conf, httpAddr, brokerAddr := defaultsOnFreePorts(t, dir)
		firstRuns(t, bin, []string{"--config", conf}, httpAddr, brokerAddr)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, unshare, "-n", "--", os.Args[0],
		"-test.run", "^TestFirstRunIsQuiet$", "-test.v", "-test.count=1", "-test.timeout=100s")
	cmd.Env = append(os.Environ(), firstRunBinEnv+"="+bin)
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestFirstRunIsQuiet")) {
		t.Fatalf("inside the network namespace: %v\n%s", err, out)
	}
}

// defaultsOnFreePorts writes, into dir, a config that is the embedded
// defaults but for the HTTP and broker ports, which are free ones, and
// returns its path and the two addresses. It fails the test if the
// config differs from the defaults in anything else, so that it follows
// them.
func defaultsOnFreePorts(t *testing.T, dir string) (conf, httpAddr, brokerAddr string) {
	t.Helper()
	httpAddr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	brokerAddr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	yaml := fmt.Sprintf(`
http: { listen: %q }
broker: { listen: %q }
networks:
  local: { type: mqtt, broker: "tcp://%s" }
  web: { type: webrtc, loopback_candidates: true }
links:
  lobby: [ "local:switchboard/lobby", "web:lobby" ]
`, httpAddr, brokerAddr, brokerAddr)
	got, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Default()
	want.HTTP.Listen, want.Broker.Listen = httpAddr, brokerAddr
	want.Networks["local"].Section.(*mqtt.Config).Broker = "tcp://" + brokerAddr
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the defaults on free ports are not the embedded defaults:\n%+v\n%+v", got, want)
	}
	return testenv.WriteFile(t, dir, "switchboard.yaml", yaml), httpAddr, brokerAddr
}

// firstRuns starts bin run (with args) in a fresh directory, uses it,
// stops it with SIGTERM, starts and uses it again, stops it, and fails on
// every WARN or ERROR line of its log, naming it.
func firstRuns(t *testing.T, bin string, args []string, httpAddr, brokerAddr string) {
	dir := t.TempDir()
	sb := &testenv.Process{Name: bin, Args: append([]string{"run"}, args...), Dir: dir, Ready: httpAddr}
	var received syncText
	// A device with a persistent session, and a subscription to what
	// Switchboard publishes. It connects once Switchboard answers (the
	// broker may still turn it away for a moment: it retries), stays
	// connected while Switchboard stops, and reconnects to its session
	// after the restart.
	dev := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + brokerAddr).SetClientID("sensor-1").
		SetProtocolVersion(4).SetCleanSession(false).
		SetConnectTimeout(5 * time.Second).SetWriteTimeout(5 * time.Second).
		SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(100 * time.Millisecond).SetMaxReconnectInterval(250 * time.Millisecond).
		SetOnConnectHandler(func(c paho.Client) { c.Subscribe("switchboard/lobby/out/#", 1, nil) }).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { received.add(string(m.Payload())) }))
	defer dev.Disconnect(0)
	var runs []string // the log of each run
	for i, text := range []string{"hello on the first start", "hello after the restart"} {
		before := len(sb.Output())
		if i == 0 {
			sb.Start(t)
			if tok := dev.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
				t.Fatalf("device: connect: %v", tok.Error())
			}
		} else {
			sb.Restart()
			testwait.For(t, "the device to reconnect", dev.IsConnectionOpen)
			// Alice's leaving at the stop waited in the outbox for MQTT.
			testwait.For(t, "the device to see alice leave at the stop", func() bool {
				return strings.Contains(received.String(), `"switchboard stopped"`)
			})
		}
		// Someone on the web page chats with the device, and is still
		// there when Switchboard stops: their leaving is bridged to MQTT
		// once it is back.
		web := testenv.MustDialWebRTC(t, "http://"+httpAddr, "lobby", "", "alice", "web-alice")
		testenv.MQTTPublish(t, dev, "switchboard/lobby/in/sensor-1", 1, false, text)
		web.Wait(t, testwait.Patience, "the device's message", func(f testenv.WebRTCFrame) bool { return f.Text == text })
		if err := web.Say("re: " + text); err != nil {
			t.Fatal(err)
		}
		testwait.For(t, "the device to get alice's message", func() bool { return strings.Contains(received.String(), "re: "+text) })
		testwait.For(t, "/readyz to answer 200", func() bool {
			resp, _ := testenv.HTTP(t, "GET", "http://"+httpAddr+"/readyz", "", nil)
			return resp.StatusCode == 200
		})
		if resp, page := testenv.HTTP(t, "GET", "http://"+httpAddr+"/", "", nil); resp.StatusCode != 200 || !strings.Contains(string(page), "<title>Switchboard</title>") {
			t.Errorf("run %d: GET / answered %d %q", i+1, resp.StatusCode, page)
		}
		for _, path := range []string{"/healthz", "/status", "/api/status", "/metrics"} {
			if resp, body := testenv.HTTP(t, "GET", "http://"+httpAddr+path, "", nil); resp.StatusCode != 200 {
				t.Errorf("run %d: GET %s answered %d %q", i+1, path, resp.StatusCode, body)
			}
		}
		// A few of the scheduler governor's samples, the store's syncs.
		time.Sleep(time.Second)
		sb.Stop()
		runs = append(runs, sb.Output()[before:])
	}

	for i, log := range runs {
		for _, want := range []string{`msg="switchboard running"`, `msg="broker open to devices`, `msg="shutting down"`} {
			if !strings.Contains(log, want) {
				t.Errorf("run %d: no %s in its log:\n%s", i+1, want, log)
			}
		}
		for line := range strings.Lines(log) {
			line = strings.TrimSpace(line)
			if strings.Contains(line, " level=WARN ") || strings.Contains(line, " level=ERROR ") || !strings.HasPrefix(line, "time=") {
				t.Errorf("run %d (%s) logged: %s", i+1, []string{"first start", "restart"}[i], line)
			}
		}
	}
	if n := storedMessages(t, filepath.Join(dir, "data"), "local", "switchboard/lobby", "sensor-1", "hello"); n != 2 {
		t.Errorf("messages of the device stored over both runs: %d, want 2", n)
	}
}

// syncText is text that several goroutines add to.
type syncText struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncText) add(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(text + "\n")
}

func (s *syncText) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
