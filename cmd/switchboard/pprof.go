//go:build pprof

package main

import (
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"syscall"
)

// Built with -tags pprof, switchboard writes a CPU profile of its whole run
// to $SWITCHBOARD_CPUPROFILE, for measuring where relaying spends its time;
// $SWITCHBOARD_CPUPROFILE_HZ samples more often than the default 100 Hz
// (the runtime then warns that the rate was set early: harmless), and
// $SWITCHBOARD_MEMPROFILE, with it, gets the allocations profile too.
func init() {
	path := os.Getenv("SWITCHBOARD_CPUPROFILE")
	if path == "" {
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "run" {
		// Before the profiler starts: its interval timer outlives the
		// re-exec, and a SIGPROF before the new image's handlers are in
		// place killed the process.
		widenTimerSlack()
	}
	if hz, err := strconv.Atoi(os.Getenv("SWITCHBOARD_CPUPROFILE_HZ")); err == nil && hz > 0 {
		runtime.SetCPUProfileRate(hz)
	}
	f, err := os.Create(path)
	if err != nil {
		panic(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		panic(err)
	}
	mem := os.Getenv("SWITCHBOARD_MEMPROFILE")
	if mem != "" {
		runtime.MemProfileRate = 4096
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGUSR1)
	go func() {
		<-stop
		pprof.StopCPUProfile()
		f.Close()
		if mem != "" {
			if m, err := os.Create(mem); err == nil {
				pprof.Lookup("allocs").WriteTo(m, 0)
				m.Close()
			}
		}
	}()
}
