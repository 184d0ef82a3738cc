package backoff

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

func fixed(r float64) func() float64 { return func() float64 { return r } }

func waits(b *Backoff, n int) []time.Duration {
	var ds []time.Duration
	for range n {
		ds = append(ds, b.Next())
	}
	return ds
}

func equal(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestGrowthAndCap(t *testing.T) {
	ms := time.Millisecond
	// The top of the jitter range: the plain doubling, capped.
	b := &Backoff{Min: 250 * ms, Max: 30 * time.Second, Rand: fixed(0.999999999)}
	got := waits(b, 10)
	want := []time.Duration{250 * ms, 500 * ms, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second}
	for i := range got {
		got[i] = got[i].Round(ms)
	}
	if !equal(got, want) {
		t.Errorf("waits %v, want %v", got, want)
	}
	// The bottom: half of it, never below Min.
	b = &Backoff{Min: 250 * ms, Max: 30 * time.Second, Rand: fixed(0)}
	got = waits(b, 9)
	want = []time.Duration{250 * ms, 250 * ms, 500 * ms, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 15 * time.Second, 15 * time.Second}
	if !equal(got, want) {
		t.Errorf("waits %v, want %v", got, want)
	}
	// Many waits later it is still capped, and does not overflow.
	waits(b, 10_000)
	if d := b.Next(); d != 15*time.Second {
		t.Errorf("after 10,000 waits: %v", d)
	}
}

func TestJitterBounds(t *testing.T) {
	b := New(100*time.Millisecond, 10*time.Second)
	seen := map[time.Duration]bool{}
	for range 200 {
		b.Reset()
		for n := range 12 {
			d := b.Next()
			top := min(100*time.Millisecond<<n, 10*time.Second)
			lo := max(100*time.Millisecond, top/2)
			if d < lo || d > top {
				t.Fatalf("wait %d is %v, want within [%v, %v]", n, d, lo, top)
			}
			if n == 5 {
				seen[d] = true
			}
		}
	}
	if len(seen) < 100 {
		t.Errorf("only %d distinct waits of 200 at the same step: no jitter", len(seen))
	}
}

func TestShortConnectionKeepsBackingOff(t *testing.T) {
	c := testenv.NewFakeClock()
	b := &Backoff{Min: time.Second, Max: time.Minute, Stable: 30 * time.Second, Clock: c, Rand: fixed(0.999999999)}
	var got []time.Duration
	for range 6 {
		// Accepted, then dropped after 29 s: not healthy long enough.
		b.Connected()
		c.Advance(29 * time.Second)
		got = append(got, b.Next().Round(time.Second))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second}
	if !equal(got, want) {
		t.Errorf("waits after short connections %v, want %v", got, want)
	}
}

func TestResetAfterHealthyPeriod(t *testing.T) {
	c := testenv.NewFakeClock()
	b := &Backoff{Min: time.Second, Max: time.Minute, Stable: 30 * time.Second, Clock: c, Rand: fixed(0.999999999)}
	waits(b, 5)
	b.Connected()
	c.Advance(30 * time.Second)
	if d := b.Next().Round(time.Second); d != time.Second {
		t.Errorf("first wait after a healthy connection %v, want 1s", d)
	}
	if d := b.Next().Round(time.Second); d != 2*time.Second {
		t.Errorf("second wait %v, want 2s", d)
	}
	// A connection counts once: a later failed attempt that never
	// connected does not reset again.
	c.Advance(time.Hour)
	if d := b.Next().Round(time.Second); d != 4*time.Second {
		t.Errorf("third wait %v, want 4s", d)
	}
	// DefaultStable when Stable is 0.
	b.Stable = 0
	b.Connected()
	c.Advance(DefaultStable - time.Second)
	if d := b.Next().Round(time.Second); d != 8*time.Second {
		t.Errorf("wait after %v up: %v, want 8s", DefaultStable-time.Second, d)
	}
	b.Connected()
	c.Advance(DefaultStable)
	if d := b.Next().Round(time.Second); d != time.Second {
		t.Errorf("wait after %v up: %v, want 1s", DefaultStable, d)
	}
}

func TestWait(t *testing.T) {
	c := testenv.NewFakeClock()
	b := &Backoff{Min: time.Second, Max: time.Minute, Clock: c, Rand: fixed(0)}
	done := make(chan bool, 1)
	go func() { done <- b.Wait(context.Background(), nil) }()
	if d := <-c.Armed; d != time.Second {
		t.Fatalf("armed %v, want 1s", d)
	}
	c.Advance(999 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("Wait returned before its time")
	case <-time.After(20 * time.Millisecond):
	}
	c.Advance(time.Millisecond)
	if !<-done {
		t.Fatal("Wait false after its time")
	}

	// wake ends the wait early, and counts as a wait.
	wake := make(chan struct{}, 1)
	go func() { done <- b.Wait(context.Background(), wake) }()
	<-c.Armed
	wake <- struct{}{}
	if !<-done {
		t.Fatal("Wait false after wake")
	}
	if d := b.Next(); d != 2*time.Second {
		t.Errorf("wait after a woken one %v, want 2s", d)
	}
}

func TestWaitCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	b := New(time.Hour, time.Hour)
	done := make(chan bool, 1)
	go func() { done <- b.Wait(ctx, nil) }()
	time.Sleep(10 * time.Millisecond)
	cancel()
	select {
	case ok := <-done:
		if ok {
			t.Error("Wait true after cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not end with its context")
	}
	// Already canceled: false without waiting, even for no time at all.
	if Sleep(ctx, 0, nil) {
		t.Error("Sleep true on a canceled context")
	}
	if !Sleep(context.Background(), time.Millisecond, nil) {
		t.Error("Sleep false")
	}
}
