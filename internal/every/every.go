// Package every runs work at a steady period until its context ends: the
// one ticker loop of every poll, janitor and heartbeat.
package every

import (
	"context"
	"time"
)

// Run calls fn every d (the first time after d) until ctx ends; a call
// that takes longer than d delays the next rather than piling up.
func Run(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}
