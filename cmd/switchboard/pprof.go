//go:build pprof

package main

import (
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

// Built with -tags pprof, switchboard writes a CPU profile of its whole run
// to $SWITCHBOARD_CPUPROFILE, for measuring where relaying spends its time.
func init() {
	path := os.Getenv("SWITCHBOARD_CPUPROFILE")
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		panic(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		panic(err)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGUSR1)
	go func() {
		<-stop
		pprof.StopCPUProfile()
		f.Close()
	}()
}
