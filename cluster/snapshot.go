package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"sort"
	"strings"
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

// entries are the live keys of a bucket, by key. The keys come from the
// stream's list of subjects and each value from a Get: a KV watcher's
// first pass (Keys, WatchAll) may leave out a key written while it
// starts, and the members and leases are rewritten every quarter TTL.
// A bucket an observer did not find has none.
func (n *Node) entries(ctx context.Context, kv jetstream.KeyValue) ([]jetstream.KeyValueEntry, error) {
	if kv == nil {
		return nil, nil
	}
	ctx, cancel := n.op(ctx)
	defer cancel()
	st, err := n.js.Stream(ctx, "KV_"+kv.Bucket())
	if err != nil {
		return nil, err
	}
	prefix := "$KV." + kv.Bucket() + "."
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(prefix+">"))
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(info.State.Subjects))
	for subj := range info.State.Subjects {
		keys = append(keys, strings.TrimPrefix(subj, prefix))
	}
	sort.Strings(keys)
	out := make([]jetstream.KeyValueEntry, 0, len(keys))
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
			// Deleted, expired (its marker is the subject's last
			// message) or gone since the list.
		case err != nil:
			return nil, err
		default:
			out = append(out, e)
		}
	}
	return out, nil
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
