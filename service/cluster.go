package service

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/cluster"
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
	names []string

	stopWakes func()
	cancel    context.CancelFunc
	done      chan struct{}

	mu   sync.Mutex
	held map[string]*cluster.Lease // the networks held here
}

// pendingEvery is how often a holder looks at its networks' outboxes
// without being woken: a wake lost between instances (NATS down) delays
// a delivery by this much at most. (A variable for tests.)
var pendingEvery = 2 * time.Second

// startCluster connects to NATS and puts the router in shared-store
// mode; call it before the router starts. The networks are taken later,
// in run.
func (s *Service) startCluster(ctx context.Context, names []string) error {
	o := cluster.FromConfig(s.cfg.Cluster)
	o.Log = s.log.With("component", "cluster")
	node, err := cluster.Connect(ctx, o)
	if err != nil {
		return err
	}
	c := &clusterPart{s: s, node: node, log: o.Log.With("instance", o.Instance), names: names, held: map[string]*cluster.Lease{}}
	s.cluster = c
	s.ops.SetCluster(c)
	c.hookRouter() // clustersync: tell the others of blocks, read links before failing an unlinked room
	s.router.ShareStore(func(room bridge.RoomAddr) {
		if err := node.PublishWake(room.Network, room.Room); err != nil {
			c.log.Warn("wake the holder of a room", "room", room.String(), "err", err)
		}
	})
	c.stopWakes, err = node.OnWake(func(network, room string) {
		s.router.Wake(bridge.RoomAddr{Network: network, Room: room})
	})
	return err
}

// run takes this instance's share of the networks, in the background,
// until stop.
func (c *clusterPart) run() {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel, c.done = cancel, make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { c.node.Spread(ctx, c.names, c) })
	wg.Go(func() { c.syncChanges(ctx) }) // clustersync: other instances' changes
	wg.Go(func() {
		t := time.NewTicker(pendingEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := c.s.router.WakePending(ctx); err != nil && ctx.Err() == nil {
					c.log.Warn("read outbox", "err", err)
				}
			}
		}
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

// Take implements cluster.Holder.
func (c *clusterPart) Take(ctx context.Context, name string, l *cluster.Lease) error {
	s := c.s
	c.mu.Lock()
	c.held[name] = l
	c.mu.Unlock()
	token, _ := l.Token()
	if a := s.nets.get(name); a != nil {
		// Runs everywhere: only the deliveries move.
		s.deliverTo(name, a, func(bridge.Queued) bool { return l.MaySend() })
		c.log.Info("delivering to network", "network", name, "token", token)
		return nil
	}
	ncfg := s.cfg.Networks[name]
	a, err := adapters.New(name, ncfg, s.log)
	if err != nil {
		return err
	}
	s.ops.AddNetwork(name, ncfg.Type, a)
	if err := s.startNetwork(context.WithoutCancel(ctx), name, a, s.router.PeopleRooms()); err != nil {
		s.nets.remove(name)
		stopCtx, cancel := context.WithTimeout(context.Background(), c.node.TTL()/4)
		defer cancel()
		a.Stop(stopCtx)
		return err
	}
	s.deliverTo(name, a, func(bridge.Queued) bool { return l.MaySend() })
	c.log.Info("took network over", "network", name, "token", token)
	return nil
}

// Drop implements cluster.Holder.
func (c *clusterPart) Drop(ctx context.Context, name string, handover bool) {
	s := c.s
	if err := s.router.RemoveNetwork(ctx, name); err != nil {
		c.log.Warn("stop delivering", "network", name, "err", err)
	}
	if a := s.nets.get(name); a != nil {
		if _, everywhere := a.(adapters.Everywhere); !everywhere {
			s.nets.remove(name)
			if err := a.Stop(ctx); err != nil {
				c.log.Warn("stop network", "network", name, "err", err)
			}
		}
	}
	c.mu.Lock()
	delete(c.held, name)
	c.mu.Unlock()
	if handover {
		c.log.Info("handed network over", "network", name)
	} else {
		c.log.Warn("lease lost: network given up", "network", name)
	}
}

// Instance implements status.ClusterView.
func (c *clusterPart) Instance() string { return c.node.Instance() }

// Holds implements status.ClusterView.
func (c *clusterPart) Holds(network string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held[network] != nil
}

// Snapshot implements status.ClusterView.
func (c *clusterPart) Snapshot(ctx context.Context) any { return nil }

var (
	_ cluster.Holder     = (*clusterPart)(nil)
	_ status.ClusterView = (*clusterPart)(nil)
)
