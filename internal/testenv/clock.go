package testenv

import (
	"sync"
	"time"
)

// FakeClock is a clock that moves only when told to, for unit tests of
// timing logic (backoff.Clock, the IRC flood limiter).
type FakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeTimer
	// Armed receives the duration of every timer set with After, so a
	// test knows a goroutine is waiting before it advances the clock.
	Armed chan time.Duration
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

// NewFakeClock returns a clock stopped at a fixed time.
func NewFakeClock() *FakeClock {
	return &FakeClock{now: time.Unix(1_700_000_000, 0), Armed: make(chan time.Duration, 100)}
}

func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After fires when the clock has been advanced by d, at once if d <= 0.
func (c *FakeClock) After(d time.Duration) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch, func() {}
	}
	c.timers = append(c.timers, fakeTimer{c.now.Add(d), ch})
	c.Armed <- d
	return ch, func() {}
}

// Advance moves the clock and fires the timers that are due.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	keep := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			t.ch <- c.now
		} else {
			keep = append(keep, t)
		}
	}
	c.timers = keep
}
