package service

import (
	"maps"
	"sync"

	"github.com/switchboard-chat/switchboard/adapters"
)

// netSet is the adapters running in this instance, by network. On one
// instance that is every network, for good; in a cluster, a network
// whose connections another instance holds is not in it, and one taken
// over gets a new adapter (see cluster.go).
type netSet struct {
	mu sync.RWMutex
	m  map[string]adapters.Adapter
}

func newNetSet() *netSet { return &netSet{m: map[string]adapters.Adapter{}} }

// get is the network's adapter, nil when it does not run here.
func (n *netSet) get(name string) adapters.Adapter {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.m[name]
}

// all is a copy of the set.
func (n *netSet) all() map[string]adapters.Adapter {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return maps.Clone(n.m)
}

func (n *netSet) set(name string, a adapters.Adapter) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.m[name] = a
}

func (n *netSet) remove(name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.m, name)
}

func (n *netSet) len() int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return len(n.m)
}
