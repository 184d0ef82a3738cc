package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// Test 8: check names the field of each mistake and exits non-zero.
func TestCheckNamesTheField(t *testing.T) {
	dir := t.TempDir()
	good := `
networks:
  libera: { type: irc, server: "127.0.0.1:6667", nick: sb }
  devices: { type: mqtt, broker: "tcp://127.0.0.1:1883" }
links:
  lobby: [ "libera:#lobby", "devices:chat/lobby" ]
`
	for _, c := range []struct {
		name, config string
		want         string // in stderr; "" means the config is valid
	}{
		{"valid", good, ""},
		{"unknown network type", strings.Replace(good, "type: mqtt", "type: carrier-pigeon", 1),
			`networks.devices.type: unknown network type "carrier-pigeon"`},
		{"link names an unknown network", strings.Replace(good, `"devices:chat/lobby"`, `"libera2:#x"`, 1),
			`links.lobby[1]: unknown network "libera2"`},
		{"malformed room address", strings.Replace(good, `"devices:chat/lobby"`, `"devices-chat-lobby"`, 1),
			`links.lobby[1]:`},
		{"IRC room that is no channel", strings.Replace(good, `"libera:#lobby"`, `"libera:lobby"`, 1),
			`links.lobby[0]:`},
		{"unknown key", strings.Replace(good, "nick: sb", "nick: sb, sever: x", 1),
			`networks.libera.sever`},
		// Issue 26: instances share the store, which a SQLite file is not.
		{"cluster on sqlite", good + `cluster: {nats: ["nats://127.0.0.1:4222"], instance: sb-1}`,
			`store: cluster mode needs a postgres:// store`},
		// Issue 22, test 4: a home Switchboard holds is refused.
		{"home that Switchboard holds", good + `
people:
  alice: { home: libera, accounts: { libera: { id: alice, password: pw }, devices: alices-phone } }
`, `people.alice.home: "libera": Switchboard holds their nick there (the account has a password), so direct messages to it reach Switchboard, not them; home must be a network where alice has a client of their own (want one of devices)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".yaml")
			if err := os.WriteFile(path, []byte(c.config), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			code := cli([]string{"check", "--config", path}, &stdout, &stderr)
			if c.want == "" {
				if code != 0 {
					t.Fatalf("exit %d for a valid config: %s", code, stderr.String())
				}
				return
			}
			if code == 0 {
				t.Fatalf("exit 0 for a bad config; stdout %q", stdout.String())
			}
			if !strings.Contains(stderr.String(), c.want) {
				t.Errorf("stderr %q does not name %q", stderr.String(), c.want)
			}
		})
	}
}

// A double_puppet Matrix person outside double_puppet_namespace is
// valid, but check says, naming the field, that the registration must be
// written again for them; one inside it needs nothing.
func TestCheckNotesARegistrationToRewrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(`
networks:
  mx: { type: matrix, homeserver: "http://127.0.0.1:8008", domain: example.org, as_token: a-token, hs_token: h-token,
        double_puppet_namespace: '@p-[^:]+:example\.org' }
people:
  alice: { accounts: { mx: { id: "@alice:example.org", double_puppet: true } } }
  pat: { accounts: { mx: { id: "@p-pat:example.org", double_puppet: true } } }
`), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := cli([]string{"check", "--config", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	if !strings.Contains(out, path+": note: people.alice.accounts.mx.double_puppet: @alice:example.org is outside networks.mx.double_puppet_namespace") ||
		!strings.Contains(out, "switchboard matrix-registration") || strings.Contains(out, "pat") || !strings.HasSuffix(out, path+": ok\n") {
		t.Errorf("check printed %q; want a note on alice only, then ok", out)
	}
}

// A home without direct messages (MQTT) is valid, but check says what a
// person Switchboard speaks as elsewhere misses there.
func TestCheckNotesAHomeWithoutDirectMessages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(`
networks:
  libera: { type: irc, server: "127.0.0.1:6667", nick: sb }
  devices: { type: mqtt, broker: "tcp://127.0.0.1:1883" }
people:
  alice: { home: devices, accounts: { libera: { id: alice, password: pw }, devices: alices-phone } }
  bob: { home: devices, accounts: { libera: bob, devices: bobs-phone } }
`), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := cli([]string{"check", "--config", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	want := path + ": note: people.alice.home: mqtt has no direct messages: what is written to their accounts that Switchboard holds elsewhere, and Switchboard's notices, cannot reach them there\n" + path + ": ok\n"
	if got := stdout.String(); got != want {
		t.Errorf("check printed %q\nwant %q (bob, whom Switchboard holds nowhere, gets no note)", got, want)
	}
}

// The web page is a home with direct messages, for a person with a token:
// no note; without a token check says their inbox cannot reach them.
func TestCheckNotesAWebHomeWithoutAToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(`
networks:
  libera: { type: irc, server: "127.0.0.1:6667", nick: sb }
  web: { type: webrtc }
people:
  alice: { home: web, accounts: { libera: { id: alice, password: pw }, web: { id: alice, token: alices-t0ken } } }
  dave: { home: web, accounts: { libera: { id: dave, password: pw }, web: dave } }
`), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := cli([]string{"check", "--config", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	want := path + ": note: people.dave.home: their web account has no token, so no page is known to be theirs: the direct messages to their accounts that Switchboard holds elsewhere are not delivered to them (their writers are told); give it a token\n" + path + ": ok\n"
	if got := stdout.String(); got != want {
		t.Errorf("check printed %q\nwant %q (alice, with her token, gets no note)", got, want)
	}
}

func TestVersionAndUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := cli([]string{"version"}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "switchboard ") {
		t.Errorf("version: exit %d, %q", code, out.String())
	}
	if code := cli([]string{"frobnicate"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "usage") {
		t.Errorf("unknown command: exit %d, %q", code, errOut.String())
	}
}

// Test 10: with no config, the binary runs on its embedded defaults: a
// device publishes to the embedded broker on 127.0.0.1:1883 and the event
// is stored. The default ports are fixed, so this runs in a network
// namespace of its own with only a loopback interface.
func TestDefaultsServeEmbeddedBroker(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	unshare := testenv.Need(t, "unshare")
	testenv.Need(t, "ip")
	testenv.Need(t, "mosquitto_pub")
	dir := t.TempDir()
	buildSwitchboard(t, dir)
	// Inside the namespace: start it, wait for the broker, publish at QoS
	// 1 (mosquitto_pub waits for the broker's ack), ask /healthz, stop it
	// with SIGTERM.
	script := `
set -e
ip link set lo up
./switchboard run > switchboard.log 2>&1 &
pid=$!
for i in $(seq 100); do
  if mosquitto_pub -h 127.0.0.1 -p 1883 -q 1 -t switchboard/lobby/in/x -m 'hello from x' 2>/dev/null; then break; fi
  sleep 0.1
done
cat /proc/$pid/timerslack_ns > slack.txt
# Startup may have been busy enough to widen the scheduler; it narrows
# after two quiet seconds.
for i in $(seq 50); do
  exec 3<>/dev/tcp/127.0.0.1/8080
  printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
  cat <&3 > metrics.txt
  if grep -q '^go_sched_gomaxprocs_threads 1$' metrics.txt; then break; fi
  sleep 0.1
done
# A flood of messages widens it. At QoS 0: the broker stores and syncs a
# QoS 1 message before it hands it on, which paces a QoS 1 flood to the
# disk's speed, and Switchboard, waiting for the disk, has no need of more
# Ps.
# It is kept up until the scheduler widens (or the polls below give up).
(while true; do seq 20000 | mosquitto_pub -h 127.0.0.1 -p 1883 -q 0 -l -t switchboard/lobby/in/flood; done) &
flood=$!
for i in $(seq 100); do
  exec 3<>/dev/tcp/127.0.0.1/8080
  printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
  cat <&3 > busy.txt
  if ! grep -q '^go_sched_gomaxprocs_threads 1$' busy.txt; then break; fi
  sleep 0.1
done
kill $flood || true
exec 3<>/dev/tcp/127.0.0.1/8080
printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3
cat <&3 > healthz.txt
exec 3<>/dev/tcp/127.0.0.1/8080
printf 'GET / HTTP/1.0\r\n\r\n' >&3
cat <&3 > page.txt
sleep 0.5
kill -TERM $pid
wait $pid
`
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, unshare, "-n", "--", "bash", "-c", script)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	logs, _ := os.ReadFile(filepath.Join(dir, "switchboard.log"))
	if err != nil {
		t.Fatalf("%v\n%s\nswitchboard log:\n%s", err, out, logs)
	}
	if health, _ := os.ReadFile(filepath.Join(dir, "healthz.txt")); !strings.Contains(string(health), "200 OK") {
		t.Errorf("/healthz answered %q", health)
	}
	// The default config serves the WebRTC chat page.
	if page, _ := os.ReadFile(filepath.Join(dir, "page.txt")); !strings.Contains(string(page), "200 OK") ||
		!strings.Contains(string(page), "<title>Switchboard</title>") || !strings.Contains(string(page), "Content-Security-Policy") {
		t.Errorf("GET / answered %q", page)
	}
	// run restarted itself, under the same pid, with its timer slack
	// widened (timerslack_linux.go); its other threads descend from that
	// one, and Linux shows only the first one's.
	if slack, _ := os.ReadFile(filepath.Join(dir, "slack.txt")); strings.TrimSpace(string(slack)) != fmt.Sprint(timerSlack.Nanoseconds()) {
		t.Errorf("switchboard's timer slack: %q ns, want %d", slack, timerSlack.Nanoseconds())
	}
	// Idle, it runs the scheduler on one P (procs.go), wherever there
	// are more CPUs.
	if metrics, _ := os.ReadFile(filepath.Join(dir, "metrics.txt")); !strings.Contains(string(metrics), "\ngo_sched_gomaxprocs_threads 1\n") {
		t.Errorf("idle GOMAXPROCS is not 1:\n%s", metrics)
	}
	if runtime.NumCPU() > 1 {
		if busy, _ := os.ReadFile(filepath.Join(dir, "busy.txt")); strings.Contains(string(busy), "\ngo_sched_gomaxprocs_threads 1\n") {
			t.Errorf("GOMAXPROCS stayed 1 under a flood of messages")
		}
	}
	if n := storedMessages(t, filepath.Join(dir, "data"), "local", "switchboard/lobby", "x", "hello from x"); n != 1 {
		t.Errorf("stored events matching the published message: %d\nswitchboard log:\n%s", n, logs)
	}
}

// storedMessages counts the messages in the SQLite store in dataDir that
// sender sent in room of network, with text in them.
func storedMessages(t *testing.T, dataDir, network, room, sender, text string) int {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dataDir, "switchboard.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	err = db.QueryRow(`SELECT COUNT(*) FROM events WHERE kind = 'message' AND origin_network = ?
		AND origin_room = ? AND sender_id = ? AND instr(payload, ?) > 0`, network, room, sender, text).Scan(&n)
	if err != nil {
		t.Fatalf("counting stored messages: %v", err)
	}
	return n
}
