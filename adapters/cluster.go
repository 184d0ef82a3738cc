package adapters

import (
	"context"

	"github.com/switchboard-chat/switchboard/bridge"
)

// Cluster mode (issue 26, package cluster): several instances share one
// store, and each network's connections are held by one instance at a
// time, the holder of the network's lease.

// Everywhere is implemented by adapters that run on every instance of a
// cluster, not only on the lease holder of their network: they serve
// HTTP that any instance may be asked (Matrix appservice transactions,
// the web page's signalling) and connect to nothing that two instances
// must not both hold. The router still delivers to them only on the
// holder.
type Everywhere interface {
	RunsEverywhere()
}

// Fenced is implemented by adapters whose connections can check, just
// before each write to the network, that this instance may still speak
// for it. may turns false when the instance's lease is about to pass to
// another (it was frozen, cut off from NATS, or is handing over); a write
// it refuses is dropped and its connection closed, so that two instances
// never speak as the same bot or puppet at once. UseFence is called
// before Start.
type Fenced interface {
	UseFence(may func() bool)
}

// Relay carries data between the instances of a cluster: what one
// publishes on a topic reaches every instance subscribed to it, itself
// included. Delivery is at most once (NATS core): it is for what each
// instance hands on to its own local clients as it happens (the web
// page's peers), never for what must not be lost.
type Relay interface {
	// Publish sends data to every subscriber of topic. Any string is a
	// topic.
	Publish(ctx context.Context, topic string, data []byte) error
	// Subscribe calls fn, one call at a time, with the data of every
	// Publish on topic from now until unsubscribe is called.
	Subscribe(topic string, fn func(data []byte)) (unsubscribe func(), err error)
}

// RelayUser is implemented by adapters that hand what they deliver to
// the local clients of every instance (the web page's peers live on the
// instance they connected to). UseRelay is called before Start in
// cluster mode only.
type RelayUser interface {
	UseRelay(r Relay)
}

// Sharded is implemented by adapters whose puppets can be split into
// shards (IRC `shards: N`), so that thousands of puppets spread over the
// instances of a cluster, each connecting from its own source address.
// Each shard is held like a network, through a lease of its own: shard 0
// is the network's lease ("network/<name>") and also runs the bot; shard
// k > 0 is "network/<name>/shard/<k>". An instance may hold several
// shards of one network, in one adapter.
type Sharded interface {
	// Shards is the number of shards, from the config (1: not sharded;
	// outside cluster mode the adapter holds every shard).
	Shards() int
	// ShardOf is the shard whose connections deliver ev to a room: the
	// shard of the puppet (or person's own connection) it goes out
	// through, 0 when the bot says it (relay mode, room notices). A pure
	// function of ev and relay, the same on every instance.
	ShardOf(ev bridge.Event, relay bool) int
	// HoldShards tells the adapter which shards it runs (sorted), before
	// Start and whenever that changes: the bot only with shard 0, and
	// only the puppets of the shards held (the others quit). may(k)
	// reports whether this instance may still speak for shard k; each
	// connection checks its shard's just before each write, as in
	// Fenced.
	HoldShards(held []int, may func(shard int) bool)
}
