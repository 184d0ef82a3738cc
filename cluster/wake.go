package cluster

import (
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"
)

// wakeSubject carries, to every instance, the rooms an instance committed
// deliveries for: their network's holder reads them from the store at
// once. A wake lost (NATS down) only delays delivery: holders also look
// at the outbox every few seconds.
const wakeSubject = "switchboard.wake"

// PublishWake tells the cluster that room of network has new deliveries.
// It does not block (the connection buffers, also while reconnecting).
func (n *Node) PublishWake(network, room string) error {
	data, err := json.Marshal([2]string{network, room})
	if err != nil {
		return err
	}
	return n.nc.Publish(wakeSubject, data)
}

// OnWake calls fn, one call at a time, with each room any instance
// (this one included) publishes a wake for, until unsubscribe.
func (n *Node) OnWake(fn func(network, room string)) (unsubscribe func(), err error) {
	sub, err := n.nc.Subscribe(wakeSubject, func(m *nats.Msg) {
		var r [2]string
		if json.Unmarshal(m.Data, &r) == nil {
			fn(r[0], r[1])
		}
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: wakes: %w", err)
	}
	// Larger than the default pending limits: a burst of commits must
	// not drop wakes for a slow subscriber.
	sub.SetPendingLimits(1<<20, 256<<20)
	return func() { sub.Unsubscribe() }, nil
}
