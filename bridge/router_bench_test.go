package bridge_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// counter is a network that takes everything at once.
type counter struct{ n atomic.Int64 }

func (c *counter) Send(context.Context, *bridge.Delivery) (string, error) {
	c.n.Add(1)
	return "", nil
}

// BenchmarkRouter measures one event's whole way: accept (durable commit of
// the event and its outbox entry) and delivery (read from the outbox, hand
// to the network, removal from the outbox), on the embedded SQLite store:
// with its default synchronous=FULL (an fsync per commit) and, for
// comparison, NORMAL (safe from crashes of Switchboard, not of the OS).
func BenchmarkRouter(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run("sync="+sync, func(b *testing.B) {
			dir := b.TempDir()
			benchmarkRouter(b, newFixtureDSN(b, "sqlite://"+dir+"/bench.db?_synchronous="+sync, dir,
				map[string]bridge.MessageSender{"irc": &counter{}, "mqtt": &counter{}}))
		})
	}
}

func benchmarkRouter(b *testing.B, f *fixture) { benchmarkRouterWith(b, f, f.router.Accept) }

// benchmarkRouterWith hands the router b.N events through accept and
// waits until all are delivered.
func benchmarkRouterWith(b *testing.B, f *fixture, accept func(context.Context, bridge.Event) error) {
	sink := &counter{}
	f.router.AddNetwork("mqtt", sink)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := testenv.CPUTime()
	for i := 0; i < b.N; i++ {
		if err := accept(ctx, msg("irc", "#ops", "alice", "", "benchmark line")); err != nil {
			b.Fatal(err)
		}
	}
	for sink.n.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	testenv.ReportCPU(b, cpu, b.N, "cpu-µs/op")
}

// BenchmarkRouterCommit is BenchmarkRouter for an adapter that does not
// wait for the disk (IRC, XMPP: bridge.Commit): it commits events as fast
// as it can while their deliveries wait for the disk syncs, and measures
// until the last is delivered.
func BenchmarkRouterCommit(b *testing.B) {
	dir := b.TempDir()
	f := newFixtureDSN(b, "sqlite://"+dir+"/bench.db?_synchronous=FULL", dir,
		map[string]bridge.MessageSender{"irc": &counter{}})
	benchmarkRouterWith(b, f, func(ctx context.Context, ev bridge.Event) error {
		_, err := f.router.Commit(ctx, ev)
		return err
	})
}
