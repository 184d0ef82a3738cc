package irc

import (
	"context"
	"time"

	"golang.org/x/time/rate"

	"github.com/switchboard-chat/switchboard/internal/backoff"
)

// clock is time as the flood limiter and the reconnect backoff see it, so
// tests can drive it.
type (
	clock     = backoff.Clock
	realClock = backoff.RealClock
)

// bucket is flood control: burst lines at once, then one line per
// interval. It is a rate.Limiter driven by the connection's clock (its
// Reserve and Cancel take explicit times), so that a line waits its turn
// without a background refill and hands its token back when its sender
// gives up.
type bucket struct {
	interval time.Duration // 0: no pacing
	lim      *rate.Limiter
	clock    clock
}

func newBucket(burst int, interval time.Duration, c clock) *bucket {
	if c == nil {
		c = realClock{}
	}
	limit := rate.Inf
	if interval > 0 {
		limit = rate.Every(interval)
	}
	return &bucket{interval: interval, lim: rate.NewLimiter(limit, max(burst, 1)), clock: c}
}

// reserve takes a token and says how long to wait before using it; the
// reservation hands it back (CancelAt) when the line is not sent.
func (b *bucket) reserve(now time.Time) (time.Duration, *rate.Reservation) {
	r := b.lim.ReserveN(now, 1)
	return r.DelayFrom(now), r
}

// wait blocks until the caller may send one line, or ctx ends.
func (b *bucket) wait(ctx context.Context) error {
	if b.interval <= 0 {
		return ctx.Err()
	}
	d, r := b.reserve(b.clock.Now())
	if d == 0 {
		if err := ctx.Err(); err != nil {
			r.CancelAt(b.clock.Now())
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
		r.CancelAt(b.clock.Now())
		return ctx.Err()
	}
}
