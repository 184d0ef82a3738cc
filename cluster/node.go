package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard-chat/switchboard/config"
)

// The KV buckets every instance of a cluster shares.
const (
	LeaseBucket  = "switchboard_leases"
	MemberBucket = "switchboard_members"
)

// Options configure a Node.
type Options struct {
	// URLs are the NATS servers (nats:// or tls://).
	URLs []string
	// Instance names this instance; unique in the cluster.
	Instance string
	// TTL is how long a lease or a membership lasts without renewal.
	TTL time.Duration
	// Margin is how long before the TTL runs out MaySend turns false;
	// 0 means TTL/4.
	Margin time.Duration
	// Version names the running binary in this instance's heartbeats
	// (Snapshot shows it), so a rolling upgrade can be followed.
	Version string
	Log     *slog.Logger
}

// FromConfig is the Options of a configuration's cluster section.
func FromConfig(c config.Cluster) Options {
	return Options{URLs: c.NATS, Instance: c.Instance, TTL: c.LeaseTTL}
}

// Node is one instance's connection to the cluster's NATS.
type Node struct {
	instance string
	ttl      time.Duration
	margin   time.Duration
	log      *slog.Logger

	nc      *nats.Conn
	js      jetstream.JetStream
	leases  jetstream.KeyValue // nil: an observer found no bucket
	members jetstream.KeyValue // nil: an observer found no bucket
	// observer: made by Observe, it only reads (Snapshot).
	observer bool
	version  string

	mu    sync.Mutex
	made  map[string]*Lease // every Lease made, by name
	since time.Time         // first heartbeat since joining; zero: not a member
}

// errObserver is what a Node made by Observe answers to a write.
var errObserver = errors.New("cluster: an observer node neither joins nor takes leases")

// Connect connects to NATS and creates (or updates to this TTL) the
// cluster's buckets. The connection reconnects for ever; while it is
// down leases lapse on their own (see MaySend).
func Connect(ctx context.Context, o Options) (*Node, error) {
	// The config section (config.Cluster) checks the same, naming the
	// field; this guards callers that build Options in code.
	if !config.ValidInstance(o.Instance) {
		return nil, fmt.Errorf("cluster: invalid instance name %q", o.Instance)
	}
	if o.TTL < config.MinLeaseTTL {
		return nil, fmt.Errorf("cluster: lease TTL %v is below %v", o.TTL, config.MinLeaseTTL)
	}
	if o.Margin <= 0 {
		o.Margin = o.TTL / 4
	}
	if o.Margin >= o.TTL/2 {
		return nil, fmt.Errorf("cluster: margin %v leaves less than half the TTL %v", o.Margin, o.TTL)
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	nc, js, err := dial(o.URLs, "switchboard "+o.Instance, nats.MaxReconnects(-1))
	if err != nil {
		return nil, err
	}
	n := &Node{instance: o.Instance, ttl: o.TTL, margin: o.Margin, version: o.Version, log: o.Log.With("instance", o.Instance), nc: nc, js: js}
	bucket := func(name string) (jetstream.KeyValue, error) {
		return js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:  name,
			History: 1,
			// The bucket TTL, not a per-key one: an update resets a per-key
			// TTL to none, while MaxAge counts from each write.
			TTL: o.TTL,
			// Expiry leaves a marker, so watchers (contenders) learn at
			// once that a lease ran out.
			LimitMarkerTTL: o.TTL,
			Storage:        jetstream.FileStorage,
		})
	}
	if n.leases, err = bucket(LeaseBucket); err == nil {
		n.members, err = bucket(MemberBucket)
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("cluster: buckets: %w", err)
	}
	return n, nil
}

// dial connects to NATS, failing at once (no retry) when no server
// answers, so that a bad URL is reported rather than waited on.
func dial(urls []string, name string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	opts = append([]nats.Option{
		nats.Name(name),
		nats.ReconnectWait(100 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
	}, opts...)
	nc, err := nats.Connect(strings.Join(urls, ","), opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: connect: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// Observe connects to the cluster's NATS to look (Snapshot) and nothing
// else: it does not join the members, cannot take leases, and binds to
// the buckets without creating them or changing their TTL, so it may run
// beside the instances with any configuration (switchboard cluster
// status). o.Instance is not needed; o.TTL bounds each call (default
// config.DefaultLeaseTTL). The connection attempt gives up after timeout
// per server.
func Observe(ctx context.Context, o Options, timeout time.Duration) (*Node, error) {
	if o.TTL <= 0 {
		o.TTL = config.DefaultLeaseTTL
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	nc, js, err := dial(o.URLs, "switchboard observer", nats.Timeout(timeout), nats.NoReconnect())
	if err != nil {
		return nil, err
	}
	n := &Node{ttl: o.TTL, margin: o.TTL / 4, log: o.Log, nc: nc, js: js, observer: true}
	bind := func(name string) (jetstream.KeyValue, error) {
		ctx, cancel := n.op(ctx)
		defer cancel()
		kv, err := js.KeyValue(ctx, name)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil, nil // no instance has run on this NATS yet
		}
		return kv, err
	}
	if n.leases, err = bind(LeaseBucket); err == nil {
		n.members, err = bind(MemberBucket)
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("cluster: buckets: %w", err)
	}
	return n, nil
}

// Instance is this node's instance name.
func (n *Node) Instance() string { return n.instance }

// TTL is the lease TTL.
func (n *Node) TTL() time.Duration { return n.ttl }

// Close drops the NATS connection without releasing anything: leases
// lapse after their TTL, as after a crash. Release first to hand over.
func (n *Node) Close() { n.nc.Close() }

// op bounds one KV call, so that a hung server never holds a renewal
// past the point where it no longer matters.
func (n *Node) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, n.ttl/4)
}

// beat is the value of a membership key; its time is the entry's.
type beat struct {
	Since   time.Time `json:"since"`
	Version string    `json:"version,omitempty"`
}

// Heartbeat writes this instance's membership once.
func (n *Node) Heartbeat(ctx context.Context) error {
	if n.observer {
		return errObserver
	}
	n.mu.Lock()
	if n.since.IsZero() {
		n.since = time.Now().UTC()
	}
	b := beat{Since: n.since, Version: n.version}
	n.mu.Unlock()
	v, err := json.Marshal(b)
	if err != nil {
		return err
	}
	ctx, cancel := n.op(ctx)
	defer cancel()
	_, err = n.members.Put(ctx, n.instance, v)
	return err
}

// Beat writes heartbeats every quarter TTL until ctx ends, then removes
// the membership (a clean leave: the others re-spread at once).
func (n *Node) Beat(ctx context.Context) {
	t := time.NewTicker(n.ttl / 4)
	defer t.Stop()
	for {
		if err := n.Heartbeat(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("cluster heartbeat", "err", err)
		}
		select {
		case <-ctx.Done():
			n.Leave()
			return
		case <-t.C:
		}
	}
}

// Leave removes this instance's membership.
func (n *Node) Leave() error {
	if n.observer {
		return errObserver
	}
	n.mu.Lock()
	n.since = time.Time{}
	n.mu.Unlock()
	ctx, cancel := n.op(context.Background())
	defer cancel()
	return n.members.Delete(ctx, n.instance)
}

// Members lists, sorted, the instances whose membership is live. It
// reads the bucket as Snapshot does: a KV watcher (Keys) may leave out a
// member whose heartbeat lands while it starts, which would move that
// member's networks away for nothing.
func (n *Node) Members(ctx context.Context) ([]string, error) {
	es, err := n.entries(ctx, n.members)
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, e := range es {
		keys = append(keys, e.Key())
	}
	return keys, nil
}
