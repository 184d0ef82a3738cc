package status

import "context"

// ClusterView is what the status shows of cluster mode (docs/cluster.md).
type ClusterView interface {
	// Instance is this instance's name.
	Instance() string
	// Holds reports whether this instance holds network's lease: a
	// network held elsewhere is neither up nor down here.
	Holds(network string) bool
	// Snapshot is the cluster as NATS shows it (its members and leases),
	// for /api/status; nil when NATS cannot say.
	Snapshot(ctx context.Context) any
}

// Cluster is the status of cluster mode.
type Cluster struct {
	Instance string `json:"instance"`
	// Holds are the networks whose lease this instance holds.
	Holds []string `json:"holds"`
	// State is the cluster as NATS shows it; absent when NATS did not
	// answer.
	State any `json:"state,omitempty"`
}

// SetCluster has the status show cluster mode: networks held by other
// instances are "elsewhere" and no problem for readiness.
func (o *Ops) SetCluster(v ClusterView) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.cluster = v
}

// elsewhere is the state of a network another instance holds.
const elsewhere = "elsewhere"
