package adapters

import "context"

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
