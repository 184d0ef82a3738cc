package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/switchboard-chat/switchboard/config"
)

// Version and Commit name the running binary on /api/status and /status;
// cmd/switchboard sets them from its build info before Run.
var Version, Commit string

// Run runs Switchboard on the config file at path ("": the embedded
// defaults) until ctx ends, reloading the config file on
// SIGHUP.
func Run(ctx context.Context, path string, stderr io.Writer) int {
	cfg := config.Default()
	if path != "" {
		var err error
		if cfg, err = config.Load(path); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", path, err)
			return 1
		}
	}
	log := newLogger(cfg.Log, stderr)
	if path == "" {
		log.Info("no --config given: running on embedded defaults")
	}
	// Caught from before the HTTP listener is up, so that whoever sees it
	// answer may send SIGHUP without killing the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	svc, err := Start(ctx, cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	for ctx.Err() == nil {
		select {
		case <-hup:
			reload(ctx, svc, path, log)
		case <-ctx.Done():
		}
	}
	log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	svc.Stop(shutdown)
	if errors.Is(shutdown.Err(), context.DeadlineExceeded) {
		log.Warn("shutdown timed out")
	}
	return 0
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// reload re-reads the config file on SIGHUP; a file that does not load
// or fit leaves the running config in place.
func reload(ctx context.Context, svc *Service, path string, log *slog.Logger) {
	if path == "" {
		log.Warn("SIGHUP: running on embedded defaults, there is no file to reload")
		return
	}
	cfg, err := config.Load(path)
	if err != nil {
		log.Error("SIGHUP: config rejected, keeping the running one", "file", path, "err", err)
		return
	}
	if err := svc.reload(ctx, cfg); err != nil {
		log.Error("SIGHUP: "+err.Error(), "file", path)
	}
}
