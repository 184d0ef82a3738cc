package main

import (
	"slices"
	"testing"
	"time"
)

// The governor widens as soon as a sample is busy, and narrows only after
// procsNarrowAfter quiet samples in a row.
func TestProcsGovernor(t *testing.T) {
	var set []int
	g := &procsGovernor{widest: 4, procs: 1, set: func(n int) { set = append(set, n) }}
	load := func(l float64) { g.sample(time.Duration(l*float64(procsSample)), procsSample) }

	load(0.1)
	load(procsWidenAbove - 0.01)
	if len(set) != 0 {
		t.Fatalf("widened at low load: %v", set)
	}
	load(procsWidenAbove + 0.01)
	if !slices.Equal(set, []int{4}) || g.procs != 4 {
		t.Fatalf("after a busy sample: set %v, %d Ps", set, g.procs)
	}
	for range procsNarrowAfter - 1 {
		load(0.05)
	}
	load(procsNarrowBelow + 0.01) // not quiet: starts the count again
	for range procsNarrowAfter - 1 {
		load(0.05)
	}
	if len(set) != 1 {
		t.Fatalf("narrowed before %d quiet samples in a row: %v", procsNarrowAfter, set)
	}
	load(0.05)
	if !slices.Equal(set, []int{4, 1}) || g.procs != 1 {
		t.Fatalf("after %d quiet samples: set %v, %d Ps", procsNarrowAfter, set, g.procs)
	}
	// Sample periods need not be exact: the load is time used per time.
	g.sample(600*time.Millisecond, 500*time.Millisecond)
	if g.procs != 4 {
		t.Errorf("1.2 CPUs of load kept %d Ps", g.procs)
	}
}
