package main

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"syscall"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/hooks/storage/bolt"
	"github.com/mochi-mqtt/server/v2/listeners"
	"go.etcd.io/bbolt"
)

// startBroker runs the embedded MQTT broker. Its sessions and queued QoS 1
// messages live in dataDir, so a device's messages to a persistent session
// survive a restart of Switchboard like they would with Mosquitto.
func startBroker(listen, dataDir string, log *slog.Logger) (*mochi.Server, error) {
	srv := mochi.New(&mochi.Options{
		Logger:       log.With("component", "broker"),
		InlineClient: false,
	})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, err
	}
	err := srv.AddHook(new(bolt.Hook), &bolt.Options{
		Path: filepath.Join(dataDir, "broker.db"),
		// A second Switchboard on the same data_dir fails here instead of waiting.
		Options: &bbolt.Options{Timeout: time.Second},
	})
	if err != nil {
		return nil, fmt.Errorf("broker: open %s: %w", filepath.Join(dataDir, "broker.db"), err)
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: listen})); err != nil {
		srv.Close()
		return nil, listenError("broker.listen", listen, err)
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return nil, fmt.Errorf("broker: %w", err)
	}
	return srv, nil
}

// listenError explains a failed listen, naming the config key that moves
// the port.
func listenError(key, addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s: %s is already in use; set %s to another address", key, addr, key)
	}
	return fmt.Errorf("%s: listen on %s: %w", key, addr, err)
}
