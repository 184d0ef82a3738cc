// Command switchboard links chat rooms across IRC, MQTT, XMPP, Matrix and
// WebRTC data channels.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/matrix"
)

// Set at build time: -ldflags "-X main.version=… -X main.commit=…".
var (
	version = "dev"
	commit  = "unknown"
)

const usage = `usage:
  switchboard run [--config FILE]     run (with no config: embedded defaults)
  switchboard check --config FILE     validate a config file
  switchboard matrix-registration --config FILE [--network NAME]
                                      print the appservice registration YAML
                                      for a matrix network's homeserver
  switchboard version                 print version and commit
`

func main() {
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

func cli(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "version":
		fmt.Fprintf(stdout, "switchboard %s (commit %s)\n", version, commit)
		return 0
	case "check":
		fs := flag.NewFlagSet("check", flag.ContinueOnError)
		fs.SetOutput(stderr)
		path := fs.String("config", "", "config file to validate")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if *path == "" {
			fmt.Fprintln(stderr, "check: --config FILE is required")
			return 2
		}
		if _, err := config.Load(*path); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", *path, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: ok\n", *path)
		return 0
	case "run":
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		fs.SetOutput(stderr)
		path := fs.String("config", "", "config file (default: embedded defaults)")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		return run(*path, stderr)
	case "matrix-registration":
		return matrixRegistration(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "unknown command %q\n%s", args[0], usage)
	return 2
}

func matrixRegistration(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("matrix-registration", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file")
	network := fs.String("network", "", "the matrix network (default: the only one)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "matrix-registration: --config FILE is required")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *path, err)
		return 1
	}
	out, err := matrix.RegistrationYAML(cfg, *network)
	if err != nil {
		fmt.Fprintf(stderr, "matrix-registration: %v\n", err)
		return 1
	}
	stdout.Write(out)
	return 0
}

func run(path string, stderr io.Writer) int {
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
	ctx, stopSignals := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stopSignals()
	svc, err := start(ctx, cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	<-ctx.Done()
	log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	svc.stop(shutdown)
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
