package cluster

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
)

// changesSubject carries, to every instance, notices that one of them
// changed something every instance keeps in memory from the shared store
// (the links, the people, the blocks): the others read that part again
// from the store. The notice names the part only; the store stays the
// one truth, so a notice repeated or out of order does no harm.
const changesSubject = "switchboard.changed"

type changeNotice struct {
	From string `json:"from"` // the instance that made the change
	Part string `json:"part"`
}

// PublishChange tells the other instances that this one changed part in
// the shared store. It does not block (the connection buffers, also while
// reconnecting); a notice lost while NATS is down is the subscribers'
// to make up for (see OnChange).
func (n *Node) PublishChange(part string) error {
	data, err := json.Marshal(changeNotice{From: n.instance, Part: part})
	if err != nil {
		return err
	}
	if err := n.nc.Publish(changesSubject, data); err != nil {
		return fmt.Errorf("cluster: publish change of %s: %w", part, err)
	}
	return nil
}

// OnChange calls fn, one call at a time, with the part each other
// instance publishes a change of, and with "" (read everything again)
// each time the connection to NATS is back after it was lost, since
// notices published meanwhile did not arrive. Notices of this instance's
// own are not passed on. fn should return soon: notices wait for it.
// After unsubscribe returns no call starts.
func (n *Node) OnChange(fn func(part string)) (unsubscribe func(), err error) {
	var mu sync.Mutex
	stopped := false
	call := func(part string) {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			fn(part)
		}
	}
	// Registered before subscribing: a reconnect from now on is seen.
	status := n.nc.StatusChanged(nats.CONNECTED)
	sub, err := n.nc.Subscribe(changesSubject, func(m *nats.Msg) {
		var c changeNotice
		if json.Unmarshal(m.Data, &c) != nil || c.From == n.instance {
			return
		}
		call(c.Part)
	})
	if err != nil {
		n.nc.RemoveStatusListener(status)
		return nil, fmt.Errorf("cluster: changes: %w", err)
	}
	// The server knows of the subscription when the flush returns; the
	// caller reads the store after this, so nothing falls in between.
	n.nc.FlushTimeout(subscribeWait)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range status { // closed by RemoveStatusListener
			// The subscription is sent again on reconnect: once the
			// server has it, every later notice arrives, and what came
			// before is in the store the caller reads now.
			n.nc.FlushTimeout(subscribeWait)
			call("")
		}
	}()
	return func() {
		n.nc.RemoveStatusListener(status)
		<-done
		mu.Lock()
		stopped = true
		mu.Unlock()
		// The connection may be closed by now; the subscription is gone
		// with it then.
		sub.Unsubscribe()
	}, nil
}
