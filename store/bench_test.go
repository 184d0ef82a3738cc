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
	cpu := testenv.CPUTime()
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
	testenv.ReportCPU(b, cpu, n, "cpu-µs/op")
}

// BenchmarkRelayWrites measures the store's part in relaying a message as
// the relay does it at 200 msg/s: each message accepted without waiting
// for the disk and delivered to one room, four messages to a sync window
// (a commit and an fdatasync), delivery records riding along with the
// next accept.
func BenchmarkRelayWrites(b *testing.B) {
	s := openStore(b, "sqlite://"+filepath.Join(b.TempDir(), "bench.db"), "")
	ctx := b.Context()
	targets := []bridge.RoomAddr{lobby}
	b.ReportAllocs()
	n := 0
	cpu := testenv.CPUTime()
	for b.Loop() {
		n++
		ev := message(mqtt, fmt.Sprint("mqtt-", n), "hello, bench")
		qs, ok, durable, err := s.AcceptCommitted(ctx, "lobby", ev, targets)
		if err != nil || !ok || len(qs) != 1 {
			b.Fatalf("accept: %v, %v, %v", qs, ok, err)
		}
		if err := s.Delivered(ctx, qs[0], fmt.Sprint("irc-", n)); err != nil {
			b.Fatal(err)
		}
		if n%4 == 0 {
			if err := durable(true); err != nil {
				b.Fatal(err)
			}
		}
	}
	testenv.ReportCPU(b, cpu, n, "cpu-µs/op")
}
