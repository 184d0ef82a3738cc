package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/switchboard-chat/switchboard/cluster"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// clusterConfig is a cluster config of three networks on the NATS at
// natsURL, whose password is "hunter2" (the test server takes any).
func clusterConfig(t *testing.T, natsURL string) string {
	t.Helper()
	withPassword := strings.Replace(natsURL, "nats://", "nats://ops:hunter2@", 1)
	path := filepath.Join(t.TempDir(), "cluster.yaml")
	cfg := fmt.Sprintf(`
store: postgres://switchboard:dbsecret@127.0.0.1:5432/switchboard
cluster:
  nats: [%q]
  instance: ${SWITCHBOARD_INSTANCE}
  lease_ttl: 2s
networks:
  libera: { type: irc, server: "127.0.0.1:6667", nick: sb, shards: 2 }
  devices: { type: mqtt, broker: "tcp://127.0.0.1:1883" }
  jabber: { type: xmpp, server: "127.0.0.1:5347", component: { domain: bridge.localhost, secret: s3cret } }
links:
  lobby: [ "libera:#lobby", "devices:chat/lobby", "jabber:lobby@conference.localhost" ]
`, withPassword)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// clusterNode is an instance's part in the cluster without the rest of
// Switchboard: a heartbeat and the leases given.
func clusterNode(t *testing.T, url, instance string, leases ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := cluster.Connect(ctx, cluster.Options{URLs: []string{url}, Instance: instance, TTL: 2 * time.Second, Version: "v1.2.3", Log: testenv.NewLog(t).Logger()})
	if err != nil {
		t.Fatal(err)
	}
	beatCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{}, 1+len(leases))
	running := 1
	if err := n.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	go func() { n.Beat(beatCtx); done <- struct{}{} }()
	for _, name := range leases {
		l, err := n.Lease(name)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := l.TryAcquire(ctx); !ok || err != nil {
			t.Fatalf("%s: acquire %s: %v %v", instance, name, ok, err)
		}
		running++
		go func() { l.Hold(beatCtx, nil); done <- struct{}{} }()
	}
	t.Cleanup(func() {
		stop()
		for range running {
			<-done
		}
		n.Close()
	})
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = cli(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// Issue 26, operators see the cluster: cluster status lists the live
// instances, who holds which network's lease, and the network nobody
// holds; --json is the snapshot; credentials never show.
func TestClusterStatus(t *testing.T) {
	srv := testenv.NATS(t)
	path := clusterConfig(t, srv.URL)
	clusterNode(t, srv.URL, "sb-1", "network/libera")
	clusterNode(t, srv.URL, "sb-2", "network/devices")
	// An operator's shell has no instance name; the look needs none.
	t.Setenv("SWITCHBOARD_INSTANCE", "")
	os.Unsetenv("SWITCHBOARD_INSTANCE")

	code, out, errOut := runCLI("cluster", "status", "--config", path)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	t.Logf("cluster status:\n%s", out)
	for _, want := range []string{
		`(?m)^Instances \(2\):$`,
		`(?m)^sb-1 +\d+(\.\d)?m?s ago +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +v1\.2\.3 +1$`,
		`(?m)^sb-2 +\d+(\.\d)?m?s ago .* 1$`,
		`(?m)^Leases \(2\):$`,
		`(?m)^network/devices +sb-2 +\d+ +\d+(\.\d)?m?s$`,
		`(?m)^network/libera +sb-1 +\d+ +\d+(\.\d)?m?s$`,
		`(?m)^Unowned networks \(2\): `,
		`(?m)^jabber +sb-[12]$`,
		`(?m)^libera/shard/1 +sb-[12]$`, // the second shard of libera's puppets
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("output lacks %s", want)
		}
	}
	for _, secret := range []string{"hunter2", "dbsecret", "s3cret"} {
		if strings.Contains(out+errOut, secret) {
			t.Errorf("output shows the secret %q", secret)
		}
	}
	if !strings.Contains(out, "nats://ops:xxxxx@127.0.0.1:") {
		t.Errorf("output does not name the NATS server (redacted): %s", out)
	}

	code, out, errOut = runCLI("cluster", "status", "--json", "--config", path)
	if code != 0 {
		t.Fatalf("--json: exit %d: %s", code, errOut)
	}
	t.Logf("cluster status --json:\n%s", out)
	var s cluster.Snapshot
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	holders := map[string]string{}
	for _, l := range s.Leases {
		holders[l.Name] = l.Holder
	}
	if len(s.Instances) != 2 || s.Instance != "" || len(holders) != 2 || holders["network/libera"] != "sb-1" || holders["network/devices"] != "sb-2" {
		t.Errorf("--json: %s", out)
	}

	// Looking joined nothing: still two instances.
	if _, out, _ = runCLI("cluster", "status", "--config", path); !strings.Contains(out, "Instances (2):") {
		t.Errorf("a second look sees:\n%s", out)
	}
}

func TestClusterStatusRefuses(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.yaml")
	if err := os.WriteFile(plain, []byte(`
networks:
  libera: { type: irc, server: "127.0.0.1:6667", nick: sb, shards: 2 }
`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI("cluster", "status", "--config", plain)
	if code == 0 || !strings.Contains(errOut, "cluster.nats") || out != "" {
		t.Errorf("non-cluster config: exit %d, stdout %q, stderr %q; want a refusal naming cluster.nats", code, out, errOut)
	}

	// NATS not there: a clear error within seconds, no password.
	path := clusterConfig(t, fmt.Sprintf("nats://127.0.0.1:%d", testenv.FreePort(t)))
	start := time.Now()
	code, out, errOut = runCLI("cluster", "status", "--config", path)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("unreachable NATS took %v to report", took)
	}
	if code == 0 || !strings.Contains(errOut, "NATS at nats://ops:xxxxx@127.0.0.1:") || strings.Contains(out+errOut, "hunter2") {
		t.Errorf("unreachable NATS: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	t.Logf("unreachable: %s", errOut)

	// A variable only the instances have: named, with what to do.
	other := filepath.Join(dir, "other.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, append(data, "http: { listen: \"${SB_TEST_UNSET_LISTEN}\" }\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI("cluster", "status", "--config", other)
	if code == 0 || !strings.Contains(errOut, "http.listen: environment variable SB_TEST_UNSET_LISTEN is not set") || !strings.Contains(errOut, "with an instance's environment") {
		t.Errorf("unset variable: exit %d, stderr %q", code, errOut)
	}

	if code, _, errOut := runCLI("cluster", "status"); code != 2 || !strings.Contains(errOut, "--config") {
		t.Errorf("no --config: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runCLI("cluster"); code != 2 || !strings.Contains(errOut, "cluster status") {
		t.Errorf("no subcommand: exit %d, %q", code, errOut)
	}
}

// The three-instance deployment in packaging/: the example config passes
// check as each compose service and each systemd instance would run it,
// each instance with its own name and its own state directory (the
// unit's StateDirectory, the service's volume).
func TestClusterPackaging(t *testing.T) {
	const example = "../../packaging/cluster.example.yaml"
	data, err := os.ReadFile("../../packaging/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Build       map[string]any    `yaml:"build"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			Command     []string          `yaml:"command"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &compose); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"postgres", "nats"} {
		if _, ok := compose.Services[name]; !ok {
			t.Errorf("compose.yaml has no %s service", name)
		}
	}
	if !slices.Contains(compose.Services["nats"].Command, "--jetstream") {
		t.Errorf("compose.yaml runs NATS without JetStream: %v", compose.Services["nats"].Command)
	}
	dockerfile, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	dataDirs := map[string]string{}
	for _, svc := range []string{"sb-1", "sb-2", "sb-3"} {
		s, ok := compose.Services[svc]
		if !ok {
			t.Fatalf("compose.yaml has no service %s", svc)
		}
		if s.Build["context"] != ".." {
			t.Errorf("%s is not built from the repo's Dockerfile: build %v", svc, s.Build)
		}
		instance := s.Environment["SWITCHBOARD_INSTANCE"]
		// The config is mounted where the Dockerfile's CMD reads it.
		if !slices.Contains(s.Volumes, "./cluster.yaml:/etc/switchboard/switchboard.yaml:ro") || !bytes.Contains(dockerfile, []byte(`"--config", "/etc/switchboard/switchboard.yaml"`)) {
			t.Errorf("%s: config not mounted where the image reads it: %v", svc, s.Volumes)
		}
		if !slices.Contains(s.Volumes, svc+":/var/lib/switchboard") {
			t.Errorf("%s has no state volume of its own: %v", svc, s.Volumes)
		}
		cfg := checkExample(t, example, instance)
		if cfg.Cluster.Instance != instance || dataDirs[cfg.DataDir] != "" || !strings.HasPrefix(cfg.DataDir, "/var/lib/switchboard/") {
			t.Errorf("%s: instance %q, data_dir %q (shared with %q)", svc, cfg.Cluster.Instance, cfg.DataDir, dataDirs[cfg.DataDir])
		}
		dataDirs[cfg.DataDir] = svc
	}

	unit, err := os.ReadFile("../../packaging/switchboard@.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"Environment=SWITCHBOARD_INSTANCE=%i", "StateDirectory=switchboard/%i", "ExecStart=/usr/local/bin/switchboard run --config /etc/switchboard/cluster.yaml"} {
		if !bytes.Contains(unit, []byte("\n"+line+"\n")) {
			t.Errorf("switchboard@.service lacks %s", line)
		}
	}
	if cfg := checkExample(t, example, "sb-7"); cfg.DataDir != "/var/lib/switchboard/sb-7" {
		t.Errorf("as switchboard@sb-7: data_dir %s, not the unit's StateDirectory /var/lib/switchboard/sb-7", cfg.DataDir)
	}
}

// checkExample runs switchboard check on the example config with the
// environment an instance named instance has, and loads it.
func checkExample(t *testing.T, path, instance string) *config.Config {
	t.Helper()
	for k, v := range map[string]string{"SWITCHBOARD_INSTANCE": instance, "POSTGRES_PASSWORD": "pw", "IRC_SASL_PASSWORD": "pw", "MATRIX_AS_TOKEN": "as-token", "MATRIX_HS_TOKEN": "hs-token"} {
		t.Setenv(k, v)
	}
	if code, out, errOut := runCLI("check", "--config", path); code != 0 || !strings.HasSuffix(out, ": ok\n") {
		t.Fatalf("check as %s: exit %d\n%s%s", instance, code, out, errOut)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
