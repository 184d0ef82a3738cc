// Package backoff paces reconnects and retries: waits that double from a
// minimum to a maximum, with jitter, end with their context, and do not
// start over just because a connection was accepted. A server that accepts
// a connection and drops it at once would otherwise be reconnected to in a
// tight loop; the wait starts from the minimum again only once a
// connection has stayed up for a while.
package backoff

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// DefaultStable is how long a connection must stay up before the backoff
// starts over, unless Backoff.Stable says otherwise.
const DefaultStable = 30 * time.Second

// Clock is time as a Backoff sees it, so tests can drive it.
type Clock interface {
	Now() time.Time
	// After is time.After with a stop function.
	After(d time.Duration) (<-chan time.Time, func())
}

// RealClock is the system's time.
type RealClock struct{}

func (RealClock) Now() time.Time { return time.Now() }

func (RealClock) After(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}

// Backoff is the wait between attempts of one reconnect or retry loop.
// The n-th wait (from 0) is drawn uniformly from [max(Min, d/2), d] with
// d = min(Min·2ⁿ, Max): never shorter than Min nor longer than Max, and
// random enough that many clients dropped together do not come back in
// lockstep. It is safe for concurrent use.
type Backoff struct {
	// Min and Max must be positive; Max below Min means every wait is Max.
	Min, Max time.Duration
	// Stable is how long a connection must last before the next wait
	// starts from Min again (DefaultStable if 0).
	Stable time.Duration
	// Clock and Rand (in [0, 1)) are for tests; nil: real time, math/rand.
	Clock Clock
	Rand  func() float64

	mu      sync.Mutex
	n       int       // waits since the last reset
	upSince time.Time // when Connected was called; zero when not connected
}

// New returns a Backoff from min to max that starts over after a
// connection stayed up for DefaultStable.
func New(min, max time.Duration) *Backoff {
	return &Backoff{Min: min, Max: max}
}

func (b *Backoff) clock() Clock {
	if b.Clock == nil {
		return RealClock{}
	}
	return b.Clock
}

// Connected reports that an attempt succeeded: a connection is up. The
// backoff starts over only if it is still up Stable later, when the next
// wait is asked for; one that drops sooner keeps the waits growing.
func (b *Backoff) Connected() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.upSince = b.clock().Now()
}

// Reset starts over now: for retries of one task, when the task is done.
func (b *Backoff) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n, b.upSince = 0, time.Time{}
}

// Next returns the wait before the next attempt and counts it. Ask for it
// when the attempt failed or the connection dropped.
func (b *Backoff) Next() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.upSince.IsZero() {
		stable := b.Stable
		if stable <= 0 {
			stable = DefaultStable
		}
		if b.clock().Now().Sub(b.upSince) >= stable {
			b.n = 0
		}
		b.upSince = time.Time{}
	}
	d := b.Min
	for i := 0; i < b.n && d > 0 && d < b.Max; i++ {
		d *= 2
	}
	d = min(max(d, 0), b.Max)
	if d < b.Max {
		b.n++ // once at Max, the count stops growing
	}
	lo := max(b.Min, d/2)
	if lo >= d {
		return d
	}
	r := rand.Float64
	if b.Rand != nil {
		r = b.Rand
	}
	return lo + time.Duration(r()*float64(d-lo))
}

// Wait waits Next, or until wake fires (nil: never); false when ctx ended
// first.
func (b *Backoff) Wait(ctx context.Context, wake <-chan struct{}) bool {
	return b.Sleep(ctx, b.Next(), wake)
}

// Sleep is the package's Sleep on b's clock: for a caller that takes Next
// itself, to log it.
func (b *Backoff) Sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	return sleep(ctx, b.clock(), d, wake)
}

// Sleep waits d, or until wake fires (nil: never); false when ctx ended
// first.
func Sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	return sleep(ctx, RealClock{}, d, wake)
}

func sleep(ctx context.Context, c Clock, d time.Duration, wake <-chan struct{}) bool {
	if ctx.Err() != nil {
		return false
	}
	ch, stop := c.After(d)
	defer stop()
	select {
	case <-ctx.Done():
		return false
	case <-ch:
	case <-wake:
	}
	return true
}
