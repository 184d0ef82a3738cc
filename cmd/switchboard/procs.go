package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	rtmetrics "runtime/metrics"
	"time"
)

// Switchboard runs the Go scheduler on a single P (GOMAXPROCS=1) while it
// uses little CPU, and on every CPU it may use once it is busy. Relaying
// a message hands it from goroutine to goroutine (connection reader,
// dispatcher, router, connection writer) a dozen times; with a second P
// idle, each hand-off wakes another thread to take the work, which then
// finds little to do and sleeps again. On a virtual machine a thread's
// wakeup costs tens of µs of CPU, and one P relays a message for about a
// fifth less CPU (see the relay benchmarks).
//
// One P stops being enough in two ways: the process needs more than a
// share of one CPU, or goroutines wait to run, most of all while the P is
// held by a goroutine in a blocking system call (an fdatasync, say) until
// the runtime hands it over. Either widens the scheduler within a sample;
// it narrows again after procsNarrowAfter quiet samples in a row.
const (
	procsSample = 250 * time.Millisecond
	// The CPUs' worth of time used during a sample above which the
	// process widens, and below which it may go back to one P.
	procsWidenAbove  = 0.6
	procsNarrowBelow = 0.3
	// Goroutines that waited longer than procsLongWait to run, in one
	// sample, that make the process widen. Not a handful: a few come and
	// go without one P being short (a background fdatasync holds it for
	// a millisecond; the host's scheduling), and 5 made the relay
	// benchmarks widen at random, with a context switch per message more
	// and up to twice the p99; one P that is not enough makes dozens.
	procsLongWait  = time.Millisecond
	procsLongWaits = 20
	// Goroutines that waited longer than procsStall, in one sample, that
	// make the process widen: a P held that long is a system call that
	// blocks (the runtime hands the P over only when its monitor next
	// looks, up to tens of ms later with the timer slack), not the host's
	// noise, and a flood of messages then stalls with the CPU half idle.
	// (The runtime times one goroutine in 8: 3 stand for about two dozen.)
	procsStall       = 5 * time.Millisecond
	procsStalls      = 3
	procsNarrowAfter = 8
)

// tuningEnv, set to "off", turns off both tunings of the runtime that
// `switchboard run` makes: the timer slack (timerslack_linux.go) and the
// governor of the scheduler's width below. For debugging: to tell whether
// a latency, or the CPU a message costs, comes from them. "on", or unset,
// keeps them. Measured (IRC→XMPP at 200 msg/s, a loaded 2-core VM), they
// cut CPU per message from 410–470 µs to 250–270 and context switches
// from 14–16 to 3.4–4.1, for a p90 of 7 ms rather than 3 (README).
const tuningEnv = "SWITCHBOARD_RUNTIME_TUNING"

// runtimeTuning reports whether to tune the runtime, or an error naming
// the variable for a value that is neither on nor off.
func runtimeTuning() (bool, error) {
	switch v := os.Getenv(tuningEnv); v {
	case "", "on":
		return true, nil
	case "off":
		return false, nil
	default:
		return false, fmt.Errorf("%s: %q is neither on nor off", tuningEnv, v)
	}
}

// procsGovernor decides, one sample at a time, how many Ps to run.
type procsGovernor struct {
	widest int       // the Ps to run when busy
	set    func(int) // sets GOMAXPROCS
	procs  int       // the Ps now
	quiet  int       // quiet samples in a row while wide
}

// sample takes the CPU time the process used during one period, and how
// many times a goroutine waited longer than procsLongWait, and than
// procsStall, to run.
func (g *procsGovernor) sample(used, period time.Duration, w waitCounts) {
	load := used.Seconds() / period.Seconds()
	longWaits := w.long
	busy := load > procsWidenAbove || w.long >= procsLongWaits || w.stalls >= procsStalls
	switch {
	case g.procs == 1 && busy:
		g.procs = g.widest
		g.set(g.procs)
	case g.procs > 1 && load < procsNarrowBelow && longWaits == 0:
		if g.quiet++; g.quiet >= procsNarrowAfter {
			g.procs, g.quiet = 1, 0
			g.set(1)
		}
	default:
		g.quiet = 0
	}
}

// waitCounts are the waits for a P longer than procsLongWait, and than
// procsStall.
type waitCounts struct{ long, stalls uint64 }

func (c waitCounts) since(before waitCounts) waitCounts {
	return waitCounts{c.long - before.long, c.stalls - before.stalls}
}

// waits counts them, so far, from the runtime's histogram of how long
// runnable goroutines waited for a P.
type waits struct{ sample []rtmetrics.Sample }

func newWaits() *waits {
	return &waits{sample: []rtmetrics.Sample{{Name: "/sched/latencies:seconds"}}}
}

func (w *waits) counts() waitCounts {
	rtmetrics.Read(w.sample)
	if w.sample[0].Value.Kind() != rtmetrics.KindFloat64Histogram {
		return waitCounts{}
	}
	h := w.sample[0].Value.Float64Histogram()
	var n waitCounts
	for i, c := range h.Counts {
		switch lower := h.Buckets[i]; {
		case lower >= procsStall.Seconds():
			n.stalls += c
			n.long += c
		case lower >= procsLongWait.Seconds():
			n.long += c
		}
	}
	return n
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
	w := newWaits()
	waitsBefore := w.counts()
	tick := time.NewTicker(procsSample)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			cpu, _ := ownCPUTime()
			counts := w.counts()
			g.sample(cpu-before, now.Sub(last), counts.since(waitsBefore))
			before, last, waitsBefore = cpu, now, counts
		}
	}
}
