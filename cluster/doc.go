// Package cluster is the coordination between Switchboard instances that
// share one PostgreSQL store (issue 26): leases on NATS JetStream KV that
// give one instance at a time the right to speak for a network (or a
// shard of one), instance membership by heartbeats, and a deterministic
// spread of lease names over the live instances.
//
// Engineering note. The service (service/cluster.go) holds each network
// through Spread (spread.go): a network's adapter runs on the instance
// holding its lease, the router there delivers to it (bridge/shared.go:
// entries are read from the shared store, woken over NATS by the
// instance that committed them, through the Relay), and a clean stop drains and
// releases every lease at once. Users' guide: docs/cluster.md.
//
// Tests run against a real nats-server process (testenv.NATS): see
// lease_test.go for contention, release, a dead or frozen holder, and a
// frozen or restarted NATS; assign_test.go for the spread.
//
// How a lease is safe:
//
//   - A lease is a key in the bucket switchboard_leases, whose TTL (the
//     stream's MaxAge) is the lease TTL: a key not renewed within it is
//     gone, and the server writes a marker that wakes the contenders.
//     Acquire is a create (succeeds only if the key is absent), renewal an
//     update on the revision last written, release a delete on that
//     revision: a holder that lost the lease can neither renew nor delete
//     the new holder's key.
//   - The revision of the acquiring write is the fencing token: it is the
//     stream's sequence, so a later holder always has a larger one.
//   - MaySend is true only while less than TTL - margin has passed, on the
//     monotonic clock, since the start of the last successful write. The
//     server stamps the write after that start, so the key lives at least
//     TTL past it: the holder stops at least the margin before anyone
//     else can acquire, even if it is frozen, partitioned or its NATS
//     connection is gone. The margin covers clock rate differences and
//     the time a send checked just before takes to go out.
//   - Instance names must be unique: a key holding this instance's own
//     name is adopted (by an update on its revision), so that a renewal
//     whose answer was lost, or a restart within the TTL, does not lock
//     the instance out of its own lease for a TTL. Two processes with one
//     name would defeat the fencing.
//   - Every instance must use the same TTL (they share one configuration):
//     Connect sets it on the buckets, so a different one would change it
//     under the others.
//   - Membership: each instance writes its name to switchboard_members
//     every quarter TTL; the bucket's TTL drops an instance that stops.
//     Assign spreads lease names over the members by rendezvous hashing,
//     so every instance computes the same owners from the same members,
//     and an instance leaving moves only its own names.
//
// Seeing the cluster: Node.Snapshot reads both buckets (the live members
// with their heartbeat's age, version and start; each held lease with its
// holder, fencing token and last renewal's age) for /api/status, and
// Observe connects only to look (switchboard cluster status): it creates
// no bucket, joins nothing and takes no lease. A bucket keeps only a key's
// last revision, so a holder's renewals carry its token in the value
// ("sb-1 1042"); the acquiring write holds the name alone, its own
// revision being the token.
package cluster
