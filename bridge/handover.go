package bridge

import (
	"context"
	"time"

	"github.com/switchboard-chat/switchboard/internal/backoff"
)

// An event's deliveries go out only once its commit is on disk. The
// store commits at once but syncs its log for many commits together (see
// EarlyStore); had the deliveries gone out meanwhile, a crash before the
// sync would lose the event after it was delivered, and the same line
// replayed after the restart (IRC playback, an XMPP archive, a Matrix
// transaction the homeserver sends again, an MQTT message the broker
// sends again) would be accepted as new and delivered a second time. The
// adapter still does not wait for the sync (Commit returns once
// committed): the deliveries wait here, in commit order, while it takes
// its next events, and one sync releases all that wait.
//
// held is that wait: the committed entries, oldest first, each with what
// returns once its commit is on disk (nil: it is). Entries that need no
// wait go through it too while anything is held, so that no room receives
// an entry before one committed earlier.
type heldCommit struct {
	items   []Queued
	durable func(now bool) error
}

// handOver gives committed entries to their rooms' workers, at once if
// durable is nil and nothing waits before them, else once durable has
// returned. acceptMu is held: calls come in commit order.
func (r *Router) handOver(items []Queued, durable func(now bool) error) {
	if len(items) == 0 {
		return // a duplicate, or an event for no other room
	}
	r.heldMu.Lock()
	defer r.heldMu.Unlock()
	if len(r.held) == 0 && durable == nil {
		r.pushAll(items)
		return
	}
	if len(r.held) == 0 {
		r.unsynced.Store(minSeq(items))
		go r.release()
	}
	r.held = append(r.held, heldCommit{items, durable})
}

// syncNowHeld is how many held commits have the store sync at once rather
// than at the end of its window: a sync costs about 200 µs of CPU, which
// that many share.
const syncNowHeld = 16

// release hands over the held entries as their commits reach the disk,
// until none is held.
func (r *Router) release() {
	b := backoff.New(10*time.Millisecond, 5*time.Second)
	for {
		r.heldMu.Lock()
		head, now := r.held[0], len(r.held) >= syncNowHeld
		r.heldMu.Unlock()
		if head.durable != nil {
			// The store's group commit: one sync per window for every
			// commit made meanwhile (see store/walsync.go), or at once when
			// enough wait to share it (a burst).
			if err := head.durable(now); err != nil {
				if r.stopped() {
					r.log.Warn("router stopped with deliveries waiting for the disk", "err", err)
					r.dropHeld()
					return
				}
				r.log.Error("deliveries wait: their commit is not on disk yet", "err", err)
				time.Sleep(b.Next())
				continue
			}
			b.Reset()
		}
		if r.stopped() {
			r.dropHeld()
			return
		}
		// Removed and pushed in one step under heldMu: an entry that need
		// not wait is pushed by handOver only when nothing is held, so
		// never ahead of this. The mark moves before the push: a worker
		// that read the outbox with the old mark then gets the push.
		r.heldMu.Lock()
		r.held[0] = heldCommit{}
		r.held = r.held[1:]
		if len(r.held) == 0 {
			r.held = nil
			r.unsynced.Store(0)
		} else {
			r.unsynced.Store(minSeq(r.held[0].items))
		}
		r.pushAll(head.items)
		last := len(r.held) == 0
		r.heldMu.Unlock()
		if last {
			return
		}
	}
}

// dropHeld forgets the held entries once the router has stopped: what
// was committed is in the outbox, and the next start delivers it.
func (r *Router) dropHeld() {
	r.heldMu.Lock()
	r.held = nil
	r.unsynced.Store(0)
	r.heldMu.Unlock()
}

// pushAll hands entries to their rooms' workers.
func (r *Router) pushAll(items []Queued) {
	if len(items) == 0 {
		return
	}
	r.mu.Lock()
	var remote []RoomAddr
	for _, item := range items {
		if !r.deliversLocked(item.Target.Network) {
			remote = append(remote, item.Target)
			continue
		}
		r.queueLocked(item.Target).push(item)
	}
	wake := r.wakeRemote
	r.mu.Unlock()
	for _, room := range remote {
		wake(room)
	}
}

// stopped reports whether Stop was called.
func (r *Router) stopped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ctx != nil && r.ctx.Err() != nil
}

// pending reads a room's outbox after seq after, for a worker behind its
// room, up to the first entry whose commit may not be on disk yet (the
// outbox shows what is committed): release pushes that and the rest once
// they are. It reports whether it cut the batch.
func (r *Router) pending(ctx context.Context, room RoomAddr, after int64) ([]Queued, bool, error) {
	r.seqMu.RLock()
	defer r.seqMu.RUnlock()
	batch, err := r.store.Pending(ctx, room, after, batchSize)
	first := r.unsynced.Load()
	if err != nil || first == 0 {
		return batch, false, err
	}
	for i, item := range batch {
		if item.Seq >= first {
			return batch[:i], true, nil
		}
	}
	return batch, false, nil
}

// minSeq is the lowest seq of items, 0 for none. Seqs grow in commit
// order, so the first held entry's is the lowest of all held.
func minSeq(items []Queued) int64 {
	var m int64
	for _, item := range items {
		if m == 0 || item.Seq < m {
			m = item.Seq
		}
	}
	return m
}
