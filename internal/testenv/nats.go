package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// NATSServer is a nats-server with JetStream started for a test, as its
// own process so that a test can kill it (Kill), restart it on the same
// port and store (Restart), or freeze it (Freeze, Thaw).
type NATSServer struct {
	*Process
	URL      string // nats://127.0.0.1:PORT
	StoreDir string // the JetStream store, kept across Restart
}

// NATS starts nats-server -js on a free loopback port with its own store
// dir and stops it when the test ends.
func NATS(t testing.TB) *NATSServer {
	t.Helper()
	bin := natsServerBin(t)
	dir := t.TempDir()
	port := FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s := &NATSServer{
		URL:      "nats://" + addr,
		StoreDir: filepath.Join(dir, "jetstream"),
		Process: &Process{
			Name: bin,
			// No HTTP monitor, no cluster port: only the client port, on
			// loopback.
			Args:  []string{"-js", "-sd", filepath.Join(dir, "jetstream"), "-a", "127.0.0.1", "-p", fmt.Sprint(port)},
			Dir:   dir,
			Ready: addr,
		},
	}
	s.Start(t)
	return s
}

var natsBuild struct {
	once sync.Once
	path string
	err  error
}

// natsServerBin finds the nats-server binary: $SWITCHBOARD_NATS_BIN, else
// the cache dir .ci/build-nats-server builds into, else it builds it
// there itself from the module cache: the version go.mod pins (the broker
// package embeds the same module), so no network is needed.
func natsServerBin(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SWITCHBOARD_NATS_BIN"); p != "" {
		return p
	}
	natsBuild.once.Do(func() { natsBuild.path, natsBuild.err = buildNATSServer() })
	if natsBuild.err != nil {
		msg := fmt.Sprintf("nats-server not built (run .ci/build-nats-server and set SWITCHBOARD_NATS_BIN): %v", natsBuild.err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return natsBuild.path
}

const natsServerModule = "github.com/nats-io/nats-server/v2"

func buildNATSServer() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", natsServerModule).Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %v", natsServerModule, err)
	}
	version := strings.TrimSpace(string(out))
	cache := os.Getenv("SWITCHBOARD_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(home, ".cache", "switchboard")
	}
	dir := filepath.Join(cache, "nats-server-"+version)
	bin := filepath.Join(dir, "nats-server")
	if st, err := os.Stat(bin); err == nil && !st.IsDir() {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// Built beside and renamed into place, so that a half build (or two
	// test packages building at once) never leaves a broken binary.
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(tmp, "nats-server"), natsServerModule)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", natsServerModule, err, out)
	}
	return bin, os.Rename(filepath.Join(tmp, "nats-server"), bin)
}
