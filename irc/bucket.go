package irc

import (
	"context"
	"sync"
	"time"

	"github.com/switchboard-chat/switchboard/internal/backoff"
)

// clock is time as the flood limiter and the reconnect backoff see it, so
// tests can drive it.
type (
	clock     = backoff.Clock
	realClock = backoff.RealClock
)

// bucket is a token bucket: burst lines at once, then one line per
// interval. It is kept as the theoretical arrival time of the next line
// (GCRA), which needs no background refill and lets a reservation be
// handed back when its sender gives up.
type bucket struct {
	interval time.Duration
	burst    int
	clock    clock

	mu  sync.Mutex
	tat time.Time // when the bucket is full again
}

func newBucket(burst int, interval time.Duration, c clock) *bucket {
	if burst < 1 {
		burst = 1
	}
	if c == nil {
		c = realClock{}
	}
	return &bucket{burst: burst, interval: interval, clock: c}
}

// reserve takes a token and says how long to wait before using it.
func (b *bucket) reserve(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tat.Before(now) {
		b.tat = now
	}
	wait := b.tat.Sub(now) - time.Duration(b.burst-1)*b.interval
	b.tat = b.tat.Add(b.interval)
	if wait < 0 {
		wait = 0
	}
	return wait
}

// unreserve hands back a token that was reserved but not used.
func (b *bucket) unreserve(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tat = b.tat.Add(-b.interval)
	if b.tat.Before(now) {
		b.tat = now
	}
}

// wait blocks until the caller may send one line, or ctx ends.
func (b *bucket) wait(ctx context.Context) error {
	if b.interval <= 0 {
		return ctx.Err()
	}
	d := b.reserve(b.clock.Now())
	if d == 0 {
		if err := ctx.Err(); err != nil {
			b.unreserve(b.clock.Now())
			return err
		}
		return nil
	}
	ch, stop := b.clock.After(d)
	defer stop()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		b.unreserve(b.clock.Now())
		return ctx.Err()
	}
}
