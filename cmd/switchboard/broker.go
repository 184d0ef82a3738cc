package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/hooks/storage/bolt"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.etcd.io/bbolt"
)

// startBroker runs the embedded MQTT broker. Its sessions and queued QoS 1
// messages live in dataDir, so a device's messages to a persistent session
// survive a restart of Switchboard like they would with Mosquitto.
//
// Devices are answered "server unavailable" until open is called, except
// the clients whose ids are in bridgeClients (see deviceGate).
func startBroker(listen, dataDir string, bridgeClients []string, log *slog.Logger) (_ *mochi.Server, open func(), _ error) {
	srv := mochi.New(&mochi.Options{
		Logger:       log.With("component", "broker"),
		InlineClient: false,
	})
	gate := &deviceGate{srv: srv, bridge: map[string]bool{}, log: log.With("component", "broker")}
	for _, id := range bridgeClients {
		gate.bridge[id] = true
	}
	if err := srv.AddHook(gate, nil); err != nil {
		return nil, nil, err
	}
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, nil, err
	}
	err := srv.AddHook(new(bolt.Hook), &bolt.Options{
		Path: filepath.Join(dataDir, "broker.db"),
		// A second Switchboard on the same data_dir fails here instead of waiting.
		Options: &bbolt.Options{Timeout: time.Second},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("broker: open %s: %w", filepath.Join(dataDir, "broker.db"), err)
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: listen})); err != nil {
		srv.Close()
		return nil, nil, listenError("broker.listen", listen, err)
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return nil, nil, fmt.Errorf("broker: %w", err)
	}
	return srv, gate.openUp, nil
}

// brokerCloseTimeout bounds how long stopping waits for the broker.
const brokerCloseTimeout = 5 * time.Second

// closeBroker closes the embedded broker, giving up after
// brokerCloseTimeout or when ctx ends, so that stopping never hangs on
// it: mochi v2.7.9's Close can deadlock when a client's disconnect races
// it (Clients.GetByListener takes the clients' read lock twice, and a
// disconnect waiting for the write lock in between blocks both for good).
// What the broker holds is in its bolt store already.
func closeBroker(ctx context.Context, srv *mochi.Server, log *slog.Logger) {
	done := make(chan struct{})
	go func() {
		srv.Close()
		close(done)
	}()
	ctx, cancel := context.WithTimeout(ctx, brokerCloseTimeout)
	defer cancel()
	select {
	case <-done:
	case <-ctx.Done():
		log.Warn("the embedded broker did not stop in time; going on without it", "err", ctx.Err())
	}
}

// deviceGate keeps devices off the embedded broker until the bridge's own
// clients have subscribed their rooms. A broker drops what is published
// to a topic nobody subscribes to, and on a fresh data_dir the bridge has
// no session yet to queue it in: a device that got in first would have
// its first messages acknowledged and lost.
type deviceGate struct {
	mochi.HookBase
	srv    *mochi.Server
	bridge map[string]bool // client ids of the bridge's MQTT networks on this broker
	log    *slog.Logger
	open   atomic.Bool
}

func (g *deviceGate) ID() string { return "switchboard-device-gate" }

func (g *deviceGate) Provides(b byte) bool { return b == mochi.OnConnect }

func (g *deviceGate) OnConnect(cl *mochi.Client, _ packets.Packet) error {
	if g.open.Load() || g.bridge[cl.ID] {
		return nil
	}
	// A device retries "server unavailable" like any broker restart.
	if err := g.srv.SendConnack(cl, packets.ErrServerUnavailable, false, nil); err != nil {
		return err
	}
	return packets.ErrServerUnavailable
}

func (g *deviceGate) openUp() {
	if !g.open.Swap(true) {
		g.log.Info("broker open to devices: the bridge has subscribed its rooms")
	}
}

// onBroker reports whether an MQTT network's broker URL points at the
// embedded broker listening on listen.
func onBroker(brokerURL, listen string) bool {
	u, err := url.Parse(brokerURL)
	if err != nil {
		return false
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil || port != u.Port() {
		return false
	}
	if host == u.Hostname() {
		return true
	}
	// A broker on every address (":1883", "0.0.0.0:1883") is reachable on loopback.
	ip := net.ParseIP(host)
	unspecified := host == "" || ip != nil && ip.IsUnspecified()
	uip := net.ParseIP(u.Hostname())
	return unspecified && (u.Hostname() == "localhost" || uip != nil && uip.IsLoopback())
}

// listenError explains a failed listen, naming the config key that moves
// the port.
func listenError(key, addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s: %s is already in use; set %s to another address", key, addr, key)
	}
	return fmt.Errorf("%s: listen on %s: %w", key, addr, err)
}
