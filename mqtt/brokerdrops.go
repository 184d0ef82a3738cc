package mqtt

import (
	"context"
	"strconv"
	"strings"
	"sync"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// droppedTopic is where Mosquitto publishes how many messages it has
// dropped since it started, every sys_interval (10 s by default): QoS 1
// messages it had acknowledged to their publisher and then could not queue
// for a subscriber, because that client's queue held max_queued_messages
// already. A burst from one device outruns us there: we acknowledge a
// message only once it is on disk, and the broker keeps only
// max_inflight_messages (20) unacknowledged with us. Nothing on our side
// of the connection can get them back, so we count them and say which
// setting to change.
const droppedTopic = "$SYS/broker/publish/messages/dropped"

// brokerDrops follows the broker's count of dropped messages.
type brokerDrops struct {
	mu   sync.Mutex
	n    uint64
	seen bool
}

// BrokerDropped implements adapters.BrokerDropCounter: the broker's count
// of the messages it dropped since it started, once it has published one.
// The count covers every client of the broker, not just Switchboard.
func (a *Adapter) BrokerDropped() (uint64, bool) {
	a.drops.mu.Lock()
	defer a.drops.mu.Unlock()
	return a.drops.n, a.drops.seen
}

// watchBrokerDrops subscribes to the broker's dropped count. Brokers
// without one (or that refuse $SYS to us) never publish it, or refuse the
// subscription; either is fine.
func (a *Adapter) watchBrokerDrops(ctx context.Context, c paho.Client) {
	ctx, cancel := context.WithTimeout(ctx, a.timeouts.subscribe)
	defer cancel()
	_, err := await(ctx, func() paho.Token {
		return c.Subscribe(droppedTopic, 0, func(_ paho.Client, m paho.Message) { a.brokerDropped(m.Payload()) })
	})
	if err != nil {
		a.log.Debug("mqtt: the broker's dropped count is not available", "err", err)
	}
}

// brokerDropped takes the broker's count. It runs on paho's dispatcher
// goroutine, and so never blocks.
func (a *Adapter) brokerDropped(payload []byte) {
	n, err := strconv.ParseUint(strings.TrimSpace(string(payload)), 10, 64)
	if err != nil {
		return
	}
	a.drops.mu.Lock()
	prev, seen := a.drops.n, a.drops.seen
	a.drops.n, a.drops.seen = n, true
	a.drops.mu.Unlock()
	var more uint64
	switch {
	case !seen || n < prev: // our first look, or the broker restarted
		more = n
	default:
		more = n - prev
	}
	if more == 0 {
		return
	}
	a.log.Warn("mqtt: the broker dropped messages it had acknowledged to their senders: its queue for a client was full."+
		" For Mosquitto, raise max_queued_messages in mosquitto.conf above the largest burst or backlog"+
		" Switchboard must take (0: no limit) and restart it",
		"broker", a.broker.Redacted(), "dropped", more, "dropped_since_broker_start", n)
}
