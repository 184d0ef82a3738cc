// Command switchboard links chat rooms across IRC, MQTT, XMPP, Matrix and
// WebRTC data channels.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/switchboard-chat/switchboard/adapters"
	_ "github.com/switchboard-chat/switchboard/adapters/all" // every network type the binary offers
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/service"
)

const usageHead = `usage:
  switchboard run [--config FILE]     run (with no config: embedded defaults)
  switchboard check --config FILE     validate a config file
  switchboard cluster status --config FILE [--json]
                                      the instances and leases of a cluster
`

const usageTail = `  switchboard version                 print version and commit

environment:
  SWITCHBOARD_RUNTIME_TUNING=off      run without the timer slack and the
                                      scheduler governor (for debugging)
`

// usage lists the commands, with those the network types register
// (adapters.Command) between check and version.
func usage() string {
	var b strings.Builder
	b.WriteString(usageHead)
	for _, c := range adapters.Commands() {
		fmt.Fprintf(&b, "  switchboard %s %s\n", c.Name, strings.ReplaceAll(c.Usage, "\n\t", "\n"+strings.Repeat(" ", 38)))
	}
	b.WriteString(usageTail)
	return b.String()
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "run" {
		if tune, err := runtimeTuning(); tune && err == nil {
			widenTimerSlack()
		}
	}
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

func cli(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return 2
	}
	switch args[0] {
	case "version":
		fmt.Fprintln(stdout, versionLine())
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
		cfg, err := config.Load(*path)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", *path, err)
			return 1
		}
		// Valid, but needing a step outside Switchboard (a registration
		// to write again, say).
		for _, n := range cfg.PeopleNotes(cfg.People) {
			fmt.Fprintf(stdout, "%s: note: %v\n", *path, n)
		}
		fmt.Fprintf(stdout, "%s: ok\n", *path)
		return 0
	case "run":
		service.Version, service.Commit = version, commit
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		fs.SetOutput(stderr)
		path := fs.String("config", "", "config file (default: embedded defaults)")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		tune, err := runtimeTuning()
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		return run(*path, tune, stderr)
	case "cluster":
		return clusterCmd(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage())
		return 0
	}
	if c, ok := adapters.LookupCommand(args[0]); ok {
		return c.Run(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "unknown command %q\n%s", args[0], usage())
	return 2
}

// run runs Switchboard until SIGINT or SIGTERM; tune governs the
// scheduler's width (procs.go).
func run(path string, tune bool, stderr io.Writer) int {
	ctx, stopSignals := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stopSignals()
	if tune {
		go governProcs(ctx)
	}
	return service.Run(ctx, path, stderr)
}
