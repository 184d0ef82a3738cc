package main

import (
	"runtime"
	"slices"
	"testing"
	"time"
)

// The governor widens as soon as a sample is busy, by CPU or by goroutines
// waiting to run, and narrows only after procsNarrowAfter quiet samples
// in a row.
func TestProcsGovernor(t *testing.T) {
	var set []int
	g := &procsGovernor{widest: 4, procs: 1, set: func(n int) { set = append(set, n) }}
	load := func(l float64, longWaits uint64) {
		g.sample(time.Duration(l*float64(procsSample)), procsSample, waitCounts{long: longWaits})
	}

	load(0.1, 0)
	load(procsWidenAbove-0.01, procsLongWaits-1)
	if len(set) != 0 {
		t.Fatalf("widened at low load: %v", set)
	}
	load(procsWidenAbove+0.01, 0)
	if !slices.Equal(set, []int{4}) || g.procs != 4 {
		t.Fatalf("after a busy sample: set %v, %d Ps", set, g.procs)
	}
	for range procsNarrowAfter - 1 {
		load(0.05, 0)
	}
	load(procsNarrowBelow+0.01, 0) // not quiet: starts the count again
	for range procsNarrowAfter - 1 {
		load(0.05, 0)
	}
	load(0.05, 1) // a goroutine waited: not quiet either
	for range procsNarrowAfter - 1 {
		load(0.05, 0)
	}
	if len(set) != 1 {
		t.Fatalf("narrowed before %d quiet samples in a row: %v", procsNarrowAfter, set)
	}
	load(0.05, 0)
	if !slices.Equal(set, []int{4, 1}) || g.procs != 1 {
		t.Fatalf("after %d quiet samples: set %v, %d Ps", procsNarrowAfter, set, g.procs)
	}
	// Goroutines waiting for the one P widen it at any CPU load.
	load(0.05, procsLongWaits)
	if g.procs != 4 {
		t.Fatalf("%d long waits kept %d Ps", procsLongWaits, g.procs)
	}
	// A few goroutines kept from running for long (a P held by a system
	// call that blocks) widen it too, fewer do not.
	g.procs = 1
	g.sample(procsSample/10, procsSample, waitCounts{long: procsStalls - 1, stalls: procsStalls - 1})
	if g.procs != 1 {
		t.Fatalf("%d stalls widened to %d Ps", procsStalls-1, g.procs)
	}
	g.sample(procsSample/10, procsSample, waitCounts{long: procsStalls, stalls: procsStalls})
	if g.procs != 4 {
		t.Fatalf("%d stalls kept %d Ps", procsStalls, g.procs)
	}
	// Sample periods need not be exact: the load is time used per time.
	g.procs = 1
	g.sample(600*time.Millisecond, 500*time.Millisecond, waitCounts{})
	if g.procs != 4 {
		t.Errorf("1.2 CPUs of load kept %d Ps", g.procs)
	}
}

// The runtime's histogram of scheduling waits counts a goroutine kept
// from running by another that holds the only P.
func TestLongWaitsCounted(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	w := newWaits()
	before := w.counts()
	// The runtime times one goroutine in 8; 100 make missing all of them
	// a one in a million chance.
	for range 100 {
		ran := make(chan struct{})
		go func() { close(ran) }()
		for deadline := time.Now().Add(3 * procsLongWait); time.Now().Before(deadline); {
		} // holds the P: the goroutine above waits
		<-ran
	}
	if n := w.counts().since(before).long; n == 0 {
		t.Errorf("no wait over %v counted", procsLongWait)
	}
}
