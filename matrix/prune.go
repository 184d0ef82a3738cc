package matrix

import (
	"context"
	"errors"
	"time"
)

// retention is how long the records of transactions done and of uploads
// are kept. A homeserver sends a transaction again only until it is
// acknowledged, within minutes, and the router drops events whose remote
// id it has seen anyway; an upload is remembered so that a retried
// delivery does not upload again, which a week more than covers.
const retention = 7 * 24 * time.Hour

// pruned are the State records that prune forgets, by key prefix, with
// how to read when each was made.
var pruned = []struct {
	prefix string
	made   func(value string) (time.Time, bool)
}{
	{txnPrefix, txnTime},
	{mediaPrefix, mediaTime},
}

// prune forgets the records made before cutoff and returns how many. A
// record whose time cannot be read was not written by this adapter: it is
// forgotten too.
func (a *Adapter) prune(ctx context.Context, cutoff time.Time) (int, error) {
	n := 0
	var errs []error
	for _, p := range pruned {
		var derr error
		err := a.state.Scan(ctx, p.prefix, func(key, value string) bool {
			if at, ok := p.made(value); ok && !at.Before(cutoff) {
				return true
			}
			if derr = a.state.Delete(ctx, key); derr != nil {
				return false
			}
			n++
			return true
		})
		errs = append(errs, err, derr)
	}
	return n, errors.Join(errs...)
}

// pruneLoop prunes at start and then hourly, until ctx ends (Stop).
func (a *Adapter) pruneLoop(ctx context.Context) {
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		n, err := a.prune(ctx, time.Now().Add(-retention))
		switch {
		case err != nil && ctx.Err() == nil:
			a.log.Warn("matrix: pruning old records", "err", err)
		case n > 0:
			a.log.Debug("matrix: old records pruned", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
