package cluster

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Holder is what Spread drives for each lease name: it speaks for the
// name while this instance holds its lease.
type Holder interface {
	// Take starts speaking for name now that this instance holds l;
	// every send checks l.MaySend just before it goes out. An error
	// releases the lease again (and is retried later).
	Take(ctx context.Context, name string, l *Lease) error
	// Drop stops speaking for name and returns once nothing more is
	// sent: the lease was lost (handover false; MaySend is false
	// already), or is released when Drop returns (handover true), for a
	// clean handover that must leave nothing half done. ctx bounds it.
	Drop(ctx context.Context, name string, handover bool)
}

// Spread keeps this instance's share of names until ctx ends, then hands
// everything it holds over and leaves the cluster. It writes the
// instance's heartbeats meanwhile.
//
// Each name goes to the live member Owner picks. A holder keeps a name
// whose owner is another member until that member has been seen for a
// TTL (settled): an instance that just joined, or came back after a
// freeze or a partition, is not handed anything before it is stable,
// and a restart of the cluster does not move every name several times.
// A name nobody has held for a TTL (its owner is a member but does not
// take it) is taken by whoever sees that first.
func (n *Node) Spread(ctx context.Context, names []string, h Holder) {
	sp := &spread{n: n, h: h, seen: map[string]time.Time{}, wake: map[string]chan struct{}{}}
	for _, name := range names {
		sp.wake[name] = make(chan struct{}, 1)
	}
	beatCtx, stopBeat := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { n.Beat(beatCtx) })
	wg.Go(func() { sp.watchMembers(ctx) })
	wg.Go(func() { sp.watchLeases(ctx) })
	var stewards sync.WaitGroup
	for _, name := range names {
		stewards.Go(func() { sp.steward(ctx, name) })
	}
	stewards.Wait()
	stopBeat() // leaves the members bucket
	wg.Wait()
}

type spread struct {
	n *Node
	h Holder

	mu      sync.Mutex
	members []string             // live, sorted, as last read
	seen    map[string]time.Time // when each member was first seen (monotonic)
	wake    map[string]chan struct{}
}

// LeaseName is the lease of a network, or of a shard of one (its
// ShardName).
func LeaseName(network string) string { return "network/" + network }

// shardSep joins a network and a shard in ShardName.
const shardSep = "/shard/"

// ShardName is what Spread holds for shard k of a network's puppets
// (adapters.Sharded): the network itself for shard 0, which also has
// the bot, else "<network>/shard/<k>".
func ShardName(network string, k int) string {
	if k == 0 {
		return network
	}
	return network + shardSep + strconv.Itoa(k)
}

// SplitShardName is the network and shard of a ShardName.
func SplitShardName(name string) (network string, shard int) {
	network, k, ok := strings.Cut(name, shardSep)
	if !ok {
		return name, 0
	}
	shard, _ = strconv.Atoi(k)
	return network, shard
}

// refresh reads the members and wakes every steward when they changed.
func (sp *spread) refresh(ctx context.Context) {
	members, err := sp.n.Members(ctx)
	if err != nil {
		if ctx.Err() == nil {
			sp.n.log.Warn("cluster members", "err", err)
		}
		return
	}
	now := time.Now()
	sp.mu.Lock()
	changed := !slices.Equal(members, sp.members)
	sp.members = members
	for _, m := range members {
		if _, ok := sp.seen[m]; !ok {
			sp.seen[m] = now
		}
	}
	for m := range sp.seen {
		if !slices.Contains(members, m) {
			delete(sp.seen, m) // seen again later: settles again
		}
	}
	sp.mu.Unlock()
	if changed {
		sp.n.log.Info("cluster members", "members", members)
		for _, c := range sp.wake {
			signal(c)
		}
	}
}

// owner is the member a name goes to, and whether that member has
// settled; this instance counts as a member while it runs.
func (sp *spread) owner(name string) (string, bool) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	members := sp.members
	if !slices.Contains(members, sp.n.instance) {
		members = append(slices.Clone(members), sp.n.instance)
	}
	o := Owner(LeaseName(name), members)
	since, ok := sp.seen[o]
	return o, o == sp.n.instance || (ok && time.Since(since) >= sp.n.ttl)
}

func (sp *spread) watchMembers(ctx context.Context) {
	t := time.NewTicker(sp.n.ttl / 4)
	defer t.Stop()
	for ctx.Err() == nil {
		sp.refresh(ctx)
		w, err := sp.n.members.WatchAll(ctx, jetstream.UpdatesOnly())
		if err != nil {
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			continue
		}
		updates := w.Updates()
	watching:
		for {
			select {
			case <-ctx.Done():
				break watching
			case e, open := <-updates:
				if !open {
					break watching
				}
				if e != nil && (e.Operation() != jetstream.KeyValuePut || !slices.Contains(sp.current(), e.Key())) {
					sp.refresh(ctx)
				}
			case <-t.C:
				sp.refresh(ctx) // a lost watch, or an expiry without marker
			}
		}
		w.Stop()
	}
}

func (sp *spread) current() []string {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.members
}

// watchLeases wakes the steward of a lease that was released or ran
// out, so that its next holder takes it at once.
func (sp *spread) watchLeases(ctx context.Context) {
	for ctx.Err() == nil {
		w, err := sp.n.leases.WatchAll(ctx, jetstream.UpdatesOnly())
		if err == nil {
			stop := context.AfterFunc(ctx, func() { w.Stop() })
			for e := range w.Updates() {
				if e == nil || e.Operation() == jetstream.KeyValuePut {
					continue
				}
				for name, c := range sp.wake {
					if LeaseName(name) == e.Key() {
						signal(c)
					}
				}
			}
			stop()
			w.Stop()
		}
		select {
		case <-ctx.Done():
		case <-time.After(sp.n.ttl / 4):
		}
	}
}

// steward holds one name's lease when it is this instance's to hold.
func (sp *spread) steward(ctx context.Context, name string) {
	log := sp.n.log.With("lease", LeaseName(name))
	l, err := sp.n.Lease(LeaseName(name))
	if err != nil {
		log.Error("cluster lease", "err", err)
		return
	}
	period := sp.n.ttl / 4
	var freeSince time.Time // when this instance first saw the lease free, not being its owner
	held := false
	drop := func(handover bool) {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sp.n.ttl/2)
		defer cancel()
		sp.h.Drop(dctx, name, handover)
		if handover {
			if err := l.Release(dctx); err != nil {
				log.Warn("lease release; it runs out on its own", "err", err)
			}
		}
		held = false
	}
	for {
		wait := period
		if ctx.Err() != nil {
			if held {
				// A last renewal gives the handover a whole TTL.
				if err := l.Renew(context.WithoutCancel(ctx)); errors.Is(err, ErrLost) {
					drop(false)
				} else {
					drop(true)
				}
			}
			return
		}
		owner, settled := sp.owner(name)
		switch {
		case held:
			switch err := l.Renew(ctx); {
			case errors.Is(err, ErrLost):
				drop(false)
				continue
			case err != nil:
				if ctx.Err() == nil {
					log.Warn("lease renewal", "err", err)
				}
				wait = period / 4
			case owner != sp.n.instance && settled:
				log.Info("handing over", "to", owner)
				drop(true)
			}
		default:
			take := owner == sp.n.instance
			if !take {
				holder, _, err := l.Holder(ctx)
				switch {
				case err != nil || holder != "":
					freeSince = time.Time{}
				case freeSince.IsZero():
					freeSince = time.Now()
				default:
					take = time.Since(freeSince) >= sp.n.ttl
				}
			}
			if !take {
				break
			}
			ok, err := l.TryAcquire(ctx)
			if err != nil && ctx.Err() == nil {
				log.Warn("lease acquire", "err", err)
			}
			if !ok {
				break
			}
			held, freeSince = true, time.Time{}
			if err := sp.h.Take(ctx, name, l); err != nil {
				log.Error("cannot take over; releasing", "err", err)
				drop(true)
				wait = sp.n.ttl
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-sp.wake[name]:
		}
		t.Stop()
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
