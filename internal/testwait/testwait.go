// Package testwait waits, in tests, for what a user would see happen.
package testwait

import (
	"testing"
	"time"
)

// Patience is how long a test waits for what should happen at once: long
// enough for a loaded CI machine, short enough to fail before the
// package's timeout.
const Patience = 30 * time.Second

// For polls cond until it holds, failing t after Patience.
func For(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
