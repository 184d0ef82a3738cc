package cluster

import (
	"context"
	"encoding/json"
	"math"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Snapshot is the cluster as NATS sees it at one moment: the live
// instances and the held leases. It is what /api/status shows as
// "cluster" and switchboard cluster status prints.
type Snapshot struct {
	// Instance is the instance that took the snapshot; "" for an
	// observer (switchboard cluster status).
	Instance string    `json:"instance,omitempty"`
	Time     time.Time `json:"time"`
	// LeaseTTL is the TTL of this node's configuration.
	LeaseTTL float64 `json:"lease_ttl_seconds"`
	// Instances are the members whose heartbeat is younger than the TTL,
	// by name.
	Instances []Member `json:"instances"`
	// Leases are the leases held (written within the TTL), by name.
	Leases []LeaseState `json:"leases"`
}

// Member is one live instance.
type Member struct {
	Name string `json:"name"`
	// Heartbeat is when NATS stored its last heartbeat; Age how long
	// before the snapshot that was.
	Heartbeat time.Time `json:"heartbeat"`
	Age       float64   `json:"heartbeat_age_seconds"`
	// Since is when it began heartbeating (its start, or its return
	// after leaving); Version the binary it runs. Both are empty for a
	// heartbeat without them.
	Since   *time.Time `json:"since,omitempty"`
	Version string     `json:"version,omitempty"`
	// Leases are the names of the leases it holds, sorted.
	Leases []string `json:"leases"`
}

// LeaseState is one held lease.
type LeaseState struct {
	Name   string `json:"name"` // "network/libera"
	Holder string `json:"holder"`
	// Token is the fencing token of the holding: the revision of the
	// acquiring write. Revision is that of the last write (the latest
	// renewal); equal to Token until the first renewal.
	Token    uint64 `json:"token"`
	Revision uint64 `json:"revision"`
	// Renewed is when NATS stored the last write; Age how long before
	// the snapshot that was. The lease lapses when Age reaches the TTL.
	Renewed time.Time `json:"renewed"`
	Age     float64   `json:"age_seconds"`
}

// Snapshot reads the members and leases buckets. Times are the NATS
// server's; ages are taken against this machine's clock (never below 0).
func (n *Node) Snapshot(ctx context.Context) (Snapshot, error) {
	now := time.Now()
	s := Snapshot{Instance: n.instance, Time: now.UTC(), LeaseTTL: n.ttl.Seconds(), Instances: []Member{}, Leases: []LeaseState{}}
	members, err := n.entries(ctx, n.members)
	if err != nil {
		return Snapshot{}, err
	}
	leases, err := n.entries(ctx, n.leases)
	if err != nil {
		return Snapshot{}, err
	}
	held := map[string][]string{}
	for _, e := range leases {
		holder, token := parseLeaseValue(e.Value())
		if token == 0 {
			token = e.Revision()
		}
		s.Leases = append(s.Leases, LeaseState{
			Name: e.Key(), Holder: holder, Token: token, Revision: e.Revision(),
			Renewed: e.Created().UTC(), Age: age(now, e.Created()),
		})
		held[holder] = append(held[holder], e.Key())
	}
	for _, e := range members {
		m := Member{Name: e.Key(), Heartbeat: e.Created().UTC(), Age: age(now, e.Created()), Leases: held[e.Key()]}
		var b beat
		// Not JSON: a heartbeat of the first format (a bare time).
		if json.Unmarshal(e.Value(), &b) == nil {
			if !b.Since.IsZero() {
				m.Since = &b.Since
			}
			m.Version = b.Version
		}
		if m.Leases == nil {
			m.Leases = []string{}
		}
		sort.Strings(m.Leases)
		s.Instances = append(s.Instances, m)
	}
	return s, nil
}

// entries are the live keys of a bucket, by key: one watch over the
// bucket (deletes and expiry markers left out) rather than a Get per key.
// A bucket an observer did not find has none.
func (n *Node) entries(ctx context.Context, kv jetstream.KeyValue) ([]jetstream.KeyValueEntry, error) {
	if kv == nil {
		return nil, nil
	}
	ctx, cancel := n.op(ctx)
	defer cancel()
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	last := map[string]jetstream.KeyValueEntry{}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e := <-w.Updates():
			if e != nil {
				// A key written during the watch may come twice: keep
				// the latest.
				if p := last[e.Key()]; p == nil || e.Revision() > p.Revision() {
					last[e.Key()] = e
				}
				continue
			}
			// nil: every stored value has been sent.
			out := make([]jetstream.KeyValueEntry, 0, len(last))
			for _, e := range last {
				out = append(out, e)
			}
			sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
			return out, nil
		}
	}
}

// age is now - t in seconds to the millisecond, 0 if t is ahead (the
// NATS server's clock runs ahead of this machine's).
func age(now, t time.Time) float64 {
	d := now.Sub(t)
	if d < 0 {
		return 0
	}
	return math.Round(d.Seconds()*1000) / 1000
}
