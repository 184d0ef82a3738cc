package main

import (
	"context"
	"os"
	"runtime"
	"time"
)

// Switchboard runs the Go scheduler on a single P (GOMAXPROCS=1) while it
// uses little CPU, and on every CPU it may use once it is busy. Relaying
// a message hands it from goroutine to goroutine (connection reader,
// dispatcher, router, connection writer) a dozen times; with a second P
// idle, each hand-off wakes another thread to take the work, which then
// finds little to do and sleeps again. On a virtual machine a thread's
// wakeup costs tens of µs of CPU, and one P relays a message for about a
// fifth less CPU (see the relay benchmarks). One P carries well over a
// thousand messages a second; above a share of one CPU the process gets
// them all back within a sample.
const (
	procsSample = 250 * time.Millisecond
	// The CPUs' worth of time used during a sample above which the
	// process widens, and below which, for procsNarrowAfter samples in a
	// row, it goes back to one P.
	procsWidenAbove  = 0.6
	procsNarrowBelow = 0.3
	procsNarrowAfter = 8
)

// procsGovernor decides, one sample at a time, how many Ps to run.
type procsGovernor struct {
	widest int       // the Ps to run when busy
	set    func(int) // sets GOMAXPROCS
	procs  int       // the Ps now
	quiet  int       // samples in a row below procsNarrowBelow while wide
}

// sample takes the CPU time the process used during one period.
func (g *procsGovernor) sample(used, period time.Duration) {
	load := used.Seconds() / period.Seconds()
	switch {
	case g.procs == 1 && load > procsWidenAbove:
		g.procs = g.widest
		g.set(g.procs)
	case g.procs > 1 && load < procsNarrowBelow:
		if g.quiet++; g.quiet >= procsNarrowAfter {
			g.procs, g.quiet = 1, 0
			g.set(1)
		}
	default:
		g.quiet = 0
	}
}

// governProcs runs the governor until ctx ends, then restores the
// default. It does nothing where GOMAXPROCS is set in the environment
// (the operator's choice), where there is one CPU to use anyway, or where
// the process's CPU time cannot be read.
func governProcs(ctx context.Context) {
	widest := runtime.GOMAXPROCS(0)
	if _, set := os.LookupEnv("GOMAXPROCS"); set || widest <= 1 {
		return
	}
	before, ok := ownCPUTime()
	if !ok {
		return
	}
	g := &procsGovernor{widest: widest, procs: 1, set: func(n int) { runtime.GOMAXPROCS(n) }}
	runtime.GOMAXPROCS(1)
	defer runtime.SetDefaultGOMAXPROCS()
	tick := time.NewTicker(procsSample)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			cpu, _ := ownCPUTime()
			g.sample(cpu-before, now.Sub(last))
			before, last = cpu, now
		}
	}
}
