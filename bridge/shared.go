package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// A shared store (cluster mode, package cluster) is one that other
// instances of Switchboard commit to as well. Each network is delivered
// to by one instance at a time, the one that added it (AddNetwork, on
// acquiring the network's lease); the others commit entries for it and
// wake that instance (WakeRemote), which reads them from the store.
//
// Entries are always read back from the store then, never handed over
// in memory: another instance's commit may take a seq below one this
// instance just handed over, and the store makes each room's seqs
// visible in order (PostgreSQL: a lock per target room until commit), so
// reading after the last seq read misses nothing.

// Flusher is implemented by stores that write delivery records some time
// after Delivered returns (see Store.Delivered): Flush writes what
// waits.
type Flusher interface {
	Flush(ctx context.Context) error
}

// ShareStore puts the router in shared-store mode; wake is called, and
// must not block, for each room of a network not delivered here that an
// entry was committed for. Call it before Start.
func (r *Router) ShareStore(wake func(RoomAddr)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.shared, r.wakeRemote = true, wake
}

// errNotHolder is retried: the instance may hold the network again, and
// RemoveNetwork follows a lease that is lost anyway.
var errNotHolder = fmt.Errorf("this instance may no longer speak for the network: %w", ErrNotConnected)

// SetGate has every delivery to network check may just before it starts;
// false retries it later. (The connections check again at each write:
// see adapters.Fenced.)
func (r *Router) SetGate(network string, may func(Queued) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gates[network] = may
}

// SetFilter has the rooms of network deliver here only the entries keep
// takes; the others stay in the outbox for the instance that delivers
// them (a shard of the network's puppets held elsewhere: see
// adapters.Sharded). Set it before AddNetwork; a change of filter is a
// RemoveNetwork and an AddNetwork, so that the rooms read their
// outboxes again from the start.
func (r *Router) SetFilter(network string, keep func(Queued) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if keep == nil {
		delete(r.filters, network)
		return
	}
	r.filters[network] = keep
}

// SetInboundGate has events from network accepted only while may says
// this instance still holds it: one that lost its lease (it was frozen
// or cut off) may read what its connections had buffered before it stops
// them, which the new holder receives as well. The event is refused with
// an error, so that the adapter acknowledges nothing. nil removes it.
func (r *Router) SetInboundGate(network string, may func() bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if may == nil {
		delete(r.inGates, network)
		return
	}
	r.inGates[network] = may
}

// ErrNotHolder is returned by Commit for an event from a network this
// instance no longer holds (see SetInboundGate).
var ErrNotHolder = errors.New("this instance no longer holds the network")

func (r *Router) inboundRefused(network string) bool {
	r.mu.Lock()
	may := r.inGates[network]
	r.mu.Unlock()
	return may != nil && !may()
}

// filter is network's filter, nil for none.
func (r *Router) filter(network string) func(Queued) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.filters[network]
}

// Wake has a room of a network delivered here read its outbox now: an
// entry was committed for it elsewhere. A room of another network is
// ignored.
func (r *Router) Wake(room RoomAddr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx == nil || r.networks[room.Network] == nil {
		return
	}
	signal(r.queueLocked(room).more)
}

// WakePending wakes every room of the networks delivered here that has
// entries in the outbox: a safety net for wakes lost between instances.
func (r *Router) WakePending(ctx context.Context) error {
	targets, err := r.store.PendingTargets(ctx)
	if err != nil {
		return err
	}
	for _, t := range targets {
		r.Wake(t)
	}
	return nil
}

// RemoveNetwork stops delivering to network (its lease is being handed
// over or was lost): no delivery starts any more, those on their way are
// given until ctx ends to finish and be recorded, the room workers end,
// and the records are written, so that the next holder delivers nothing
// again. What was not delivered stays in the outbox for it.
func (r *Router) RemoveNetwork(ctx context.Context, network string) error {
	r.mu.Lock()
	delete(r.networks, network)
	delete(r.gates, network)
	delete(r.filters, network)
	var qs []*queue
	for addr, q := range r.queues {
		if addr.Network == network {
			qs = append(qs, q)
		}
	}
	run := r.runs[network]
	delete(r.runs, network)
	r.mu.Unlock()
	var err error
	for _, q := range qs {
		for err == nil && q.begun.Load() != q.ended.Load() {
			select {
			case <-q.settledWake():
			case <-ctx.Done():
				err = fmt.Errorf("deliveries to %s still on their way: %w", q.addr, ctx.Err())
			case <-time.After(50 * time.Millisecond): // begun and ended move outside settledMu
			}
		}
	}
	if run != nil {
		run.cancel()
		run.wg.Wait()
	}
	r.mu.Lock()
	for _, q := range qs {
		if r.queues[q.addr] == q {
			delete(r.queues, q.addr)
		}
	}
	r.mu.Unlock()
	if f, ok := r.store.(Flusher); ok {
		if ferr := f.Flush(context.WithoutCancel(ctx)); ferr != nil {
			err = errors.Join(err, fmt.Errorf("write delivery records: %w", ferr))
		}
	}
	return err
}

// netRun is the context of one network's room workers, ended by
// RemoveNetwork.
type netRun struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startLocked runs q's worker under its network's context.
func (r *Router) startLocked(q *queue) {
	run := r.runs[q.addr.Network]
	if run == nil {
		ctx, cancel := context.WithCancel(r.ctx)
		run = &netRun{ctx: ctx, cancel: cancel}
		r.runs[q.addr.Network] = run
	}
	r.wg.Add(1)
	run.wg.Add(1)
	go func() {
		defer run.wg.Done()
		r.run(run.ctx, q)
	}()
}

// delivers reports whether the queue of a room of network is run here.
func (r *Router) deliversLocked(network string) bool {
	return !r.shared || r.networks[network] != nil
}
