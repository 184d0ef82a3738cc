package cluster

import (
	"crypto/sha256"
	"encoding/binary"
	"sort"
)

// Owner is the instance that should hold the lease name among instances,
// by rendezvous (highest random weight) hashing: every instance computes
// the same owner from the same set, and removing an instance moves only
// the names it owned. "" when there are no instances.
func Owner(name string, instances []string) string {
	best, bestW := "", uint64(0)
	for _, in := range instances {
		w := weight(name, in)
		// Ties (astronomically rare) go to the smaller name, so the
		// order of instances never matters.
		if best == "" || w > bestW || (w == bestW && in < best) {
			best, bestW = in, w
		}
	}
	return best
}

// weight hashes both strings with a separator that neither contains
// (lease names and instance names are validated key characters), so
// ("a", "bc") and ("ab", "c") differ.
func weight(name, instance string) uint64 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write([]byte(instance))
	var sum [sha256.Size]byte
	return binary.BigEndian.Uint64(h.Sum(sum[:0]))
}

// Assign maps every name to its Owner among instances.
func Assign(names, instances []string) map[string]string {
	m := make(map[string]string, len(names))
	for _, n := range names {
		m[n] = Owner(n, instances)
	}
	return m
}

// Mine lists, sorted, the names instance should hold among instances.
func Mine(instance string, names, instances []string) []string {
	var mine []string
	for _, n := range names {
		if Owner(n, instances) == instance {
			mine = append(mine, n)
		}
	}
	sort.Strings(mine)
	return mine
}
