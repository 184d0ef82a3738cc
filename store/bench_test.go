package store

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// BenchmarkAcceptDeliver measures one event's way through the store as the
// router takes it: Accept for two rooms, then per room Pending and
// Delivered with a remote id.
func BenchmarkAcceptDeliver(b *testing.B) {
	b.Run("sqlite-full", func(b *testing.B) {
		benchAcceptDeliver(b, openStore(b, "sqlite://"+filepath.Join(b.TempDir(), "bench.db"), ""))
	})
	// For comparison only: a commit may be lost on power failure, after
	// the source was acknowledged.
	b.Run("sqlite-normal", func(b *testing.B) {
		benchAcceptDeliver(b, openStore(b, "sqlite://"+filepath.Join(b.TempDir(), "bench.db")+"?_synchronous=NORMAL", ""))
	})
	b.Run("postgres", func(b *testing.B) {
		benchAcceptDeliver(b, openStore(b, testenv.Postgres(b), ""))
	})
}

func benchAcceptDeliver(b *testing.B, s *Store) {
	ctx := b.Context()
	targets := []bridge.RoomAddr{mqtt, mx}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		ev := message(lobby, fmt.Sprint("irc-", n), "hello, bench")
		if _, ok, err := s.Accept(ctx, "lobby", ev, targets); err != nil || !ok {
			b.Fatalf("accept: %v, %v", ok, err)
		}
		for _, t := range targets {
			qs, err := s.Pending(ctx, t, 0, 1)
			if err != nil || len(qs) != 1 {
				b.Fatalf("pending: %v, %v", qs, err)
			}
			if err := s.Delivered(ctx, qs[0], fmt.Sprint(t.Network, "-", n)); err != nil {
				b.Fatal(err)
			}
		}
	}
}
