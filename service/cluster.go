package service

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/cluster"
	"github.com/switchboard-chat/switchboard/internal/every"
	"github.com/switchboard-chat/switchboard/status"
)

// clusterPart is what cluster mode adds to a Service (docs/cluster.md):
// the instance's NATS node, the networks whose lease it holds, and the
// wakes between instances. Each network's adapter runs on the instance
// holding its lease only, a new one for each holding, but for those that
// run everywhere (adapters.Everywhere: they serve HTTP any instance may
// be asked), which only the holder delivers to.
type clusterPart struct {
	s     *Service
	node  *cluster.Node
	log   *slog.Logger
	names []string // what Spread holds: networks and shards (cluster.ShardName)

	stopWakes func()
	cancel    context.CancelFunc
	done      chan struct{}

	mu   sync.Mutex
	held map[string]*cluster.Lease // by cluster.ShardName: what is held here
	// turns has one Take or Drop of a network's leases (its shards') at
	// a time: two shards taken at once must share one adapter.
	turns sync.Map // network → *sync.Mutex
}

// pendingEvery is how often a holder looks at its networks' outboxes
// without being woken: a wake lost between instances (NATS down) delays
// a delivery by this much at most.
const pendingEvery = 2 * time.Second

// startCluster connects to NATS and puts the router in shared-store
// mode; call it before the router starts. The networks are taken later,
// in run.
func (s *Service) startCluster(ctx context.Context) error {
	o := cluster.FromConfig(s.cfg.Cluster)
	o.Log = s.log.With("component", "cluster")
	o.Version = Version
	node, err := cluster.Connect(ctx, o)
	if err != nil {
		return err
	}
	c := &clusterPart{s: s, node: node, log: o.Log.With("instance", o.Instance), held: map[string]*cluster.Lease{}}
	s.cluster = c
	s.ops.SetCluster(c)
	c.hookRouter() // clustersync: tell the others of blocks, read links before failing an unlinked room
	// Wakes go to every instance; the room's holder reads its outbox. A
	// wake lost (NATS down) only delays: holders also look every
	// pendingEvery.
	relay := node.Relay()
	s.router.ShareStore(func(room bridge.RoomAddr) {
		data, _ := json.Marshal(room)
		if err := relay.Publish(context.Background(), wakeTopic, data); err != nil {
			c.log.Warn("wake the holder of a room", "room", room.String(), "err", err)
		}
	})
	c.stopWakes, err = relay.Subscribe(wakeTopic, func(data []byte) {
		var room bridge.RoomAddr
		if json.Unmarshal(data, &room) == nil {
			s.router.Wake(room)
		}
	})
	return err
}

// wakeTopic carries the rooms an instance committed deliveries for.
const wakeTopic = "switchboard/wake"

// run takes this instance's share of the networks, in the background,
// until stop.
func (c *clusterPart) run() {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel, c.done = cancel, make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { c.node.Spread(ctx, c.names, c) })
	wg.Go(func() { c.syncChanges(ctx) }) // clustersync: other instances' changes
	wg.Go(func() {
		every.Run(ctx, pendingEvery, func() {
			if err := c.s.router.WakePending(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("read outbox", "err", err)
			}
		})
	})
	go func() { wg.Wait(); close(c.done) }()
}

// stop hands every network held here over (a clean handover, at once)
// and leaves the cluster; close ends the connection to NATS, after the
// adapters that run everywhere stopped (they tell the others their
// clients left).
func (c *clusterPart) stop() {
	if c.cancel != nil {
		c.cancel()
		<-c.done
	}
	if c.stopWakes != nil {
		c.stopWakes()
	}
}

func (c *clusterPart) close() { c.node.Close() }

// use hands a new adapter what cluster mode asks of it: its connections
// check, at each write, that this instance still holds its network; one
// with local clients (the web page's peers) hands them what the others
// deliver.
func (c *clusterPart) use(a adapters.Adapter) {
	if ru, ok := a.(adapters.RelayUser); ok {
		ru.UseRelay(c.node.Relay())
	}
	if sh, ok := a.(adapters.Sharded); ok && sh.Shards() > 1 {
		return // each connection checks its own shard's lease (HoldShards)
	}
	if f, ok := a.(adapters.Fenced); ok {
		name := a.Network()
		f.UseFence(func() bool { return c.maySend(name) })
	}
}

func (c *clusterPart) maySend(network string) bool {
	c.mu.Lock()
	l := c.held[network]
	c.mu.Unlock()
	return l != nil && l.MaySend()
}

// addNetwork has Spread hold network (and each shard of it but the
// first, when a is an adapters.Sharded with several).
func (c *clusterPart) addNetwork(name string, a adapters.Adapter) {
	c.names = append(c.names, name)
	if sh, ok := a.(adapters.Sharded); ok {
		for k := 1; k < sh.Shards(); k++ {
			c.names = append(c.names, cluster.ShardName(name, k))
		}
	}
}

// shardsHeld lists the shards of network held here, sorted.
func (c *clusterPart) shardsHeld(network string) []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for name := range c.held {
		if n, k := cluster.SplitShardName(name); n == network {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// mayShard reports whether this instance may speak for shard k of
// network.
func (c *clusterPart) mayShard(network string, k int) bool {
	return c.maySend(cluster.ShardName(network, k))
}

// turn waits for network's turn; call what it returns when done.
func (c *clusterPart) turn(network string) (done func()) {
	m, _ := c.turns.LoadOrStore(network, new(sync.Mutex))
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// mayAny reports whether this instance may still speak for some shard
// of network.
func (c *clusterPart) mayAny(network string) bool {
	for _, k := range c.shardsHeld(network) {
		if c.mayShard(network, k) {
			return true
		}
	}
	return false
}

// Take implements cluster.Holder.
func (c *clusterPart) Take(ctx context.Context, name string, l *cluster.Lease) error {
	s := c.s
	network, shard := cluster.SplitShardName(name)
	defer c.turn(network)()
	c.mu.Lock()
	c.held[name] = l
	c.mu.Unlock()
	token, _ := l.Token()
	a := s.nets.get(network)
	if _, everywhere := a.(adapters.Everywhere); everywhere {
		// Runs everywhere: only the deliveries move.
		s.deliverTo(network, a, func(bridge.Queued) bool { return l.MaySend() })
		c.log.Info("delivering to network", "network", network, "token", token)
		return nil
	}
	if a != nil {
		// Another shard of a network running here.
		c.reshard(ctx, network, a)
		c.log.Info("took shard over", "network", network, "shard", shard, "token", token)
		return nil
	}
	ncfg := s.cfg.Networks[network]
	a, err := adapters.New(network, ncfg, s.log)
	if err != nil {
		return err
	}
	c.shard(network, a)
	s.ops.AddNetwork(network, ncfg.Type, a)
	if err := s.startNetwork(context.WithoutCancel(ctx), network, a, s.router.PeopleRooms()); err != nil {
		s.nets.remove(network)
		stopCtx, cancel := context.WithTimeout(context.Background(), c.node.TTL()/4)
		defer cancel()
		a.Stop(stopCtx)
		return err
	}
	c.deliverHere(network, a)
	s.router.SetInboundGate(network, func() bool { return c.mayAny(network) })
	c.log.Info("took network over", "network", network, "shard", shard, "token", token)
	return nil
}

// shard tells a sharded adapter the shards of network it holds here,
// and returns whether it is one.
func (c *clusterPart) shard(network string, a adapters.Adapter) bool {
	sh, ok := a.(adapters.Sharded)
	if !ok || sh.Shards() < 2 {
		return false
	}
	sh.HoldShards(c.shardsHeld(network), func(k int) bool { return c.mayShard(network, k) })
	return true
}

// deliverHere has the router deliver to network through a what this
// instance's leases let it: the entries of the shards it holds.
func (c *clusterPart) deliverHere(network string, a adapters.Adapter) {
	s := c.s
	sh, ok := a.(adapters.Sharded)
	if !ok || sh.Shards() < 2 {
		s.router.SetFilter(network, nil)
		s.deliverTo(network, a, func(bridge.Queued) bool { return c.maySend(network) })
		return
	}
	held := c.shardsHeld(network)
	shardOf := func(item bridge.Queued) int { return sh.ShardOf(item.Event, s.links.Relayed(item.Target)) }
	s.router.SetFilter(network, func(item bridge.Queued) bool { return slices.Contains(held, shardOf(item)) })
	s.deliverTo(network, a, func(item bridge.Queued) bool { return c.mayShard(network, shardOf(item)) })
}

// reshard puts a change of the shards held of a network running here in
// place: the adapter runs the shards' connections, and the router's
// rooms read their outboxes again with the new filter.
func (c *clusterPart) reshard(ctx context.Context, network string, a adapters.Adapter) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.node.TTL()/4)
	defer cancel()
	if err := c.s.router.RemoveNetwork(rctx, network); err != nil {
		c.log.Warn("stop delivering", "network", network, "err", err)
	}
	c.shard(network, a)
	c.deliverHere(network, a)
}

// Drop implements cluster.Holder.
func (c *clusterPart) Drop(ctx context.Context, name string, handover bool) {
	s := c.s
	network, shard := cluster.SplitShardName(name)
	defer c.turn(network)()
	release := func() {
		c.mu.Lock()
		delete(c.held, name)
		c.mu.Unlock()
	}
	a := s.nets.get(network)
	if _, everywhere := a.(adapters.Everywhere); !everywhere && a != nil && len(c.shardsHeld(network)) > 1 {
		release()
		c.reshard(ctx, network, a) // other shards stay here
	} else {
		if err := s.router.RemoveNetwork(ctx, network); err != nil {
			c.log.Warn("stop delivering", "network", network, "err", err)
		}
		if a != nil && !everywhere {
			s.nets.remove(network)
			// Still held (a handover) until it stopped: its connections'
			// fence lets the last acknowledgements (an MQTT PUBACK of
			// what was committed) and the goodbyes out. A lost lease
			// fences them anyway (MaySend is false).
			if err := a.Stop(ctx); err != nil {
				c.log.Warn("stop network", "network", network, "err", err)
			}
		}
		release()
	}
	if handover {
		c.log.Info("handed over", "network", network, "shard", shard)
	} else {
		c.log.Warn("lease lost: given up", "network", network, "shard", shard)
	}
}

// Instance implements status.ClusterView.
func (c *clusterPart) Instance() string { return c.node.Instance() }

// Holds implements status.ClusterView: any shard of network.
func (c *clusterPart) Holds(network string) bool {
	return len(c.shardsHeld(network)) > 0
}

// Snapshot implements status.ClusterView.
func (c *clusterPart) Snapshot(ctx context.Context) any {
	snap, err := c.node.Snapshot(ctx)
	if err != nil {
		return nil
	}
	return snap
}

var (
	_ cluster.Holder     = (*clusterPart)(nil)
	_ status.ClusterView = (*clusterPart)(nil)
)
