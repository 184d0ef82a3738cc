package bridge_test

import (
	"context"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
)

// counter is a network that takes everything at once.
type counter struct{ n atomic.Int64 }

func (c *counter) Send(context.Context, *bridge.Delivery) (string, error) {
	c.n.Add(1)
	return "", nil
}

// BenchmarkRouter measures one event's whole way: accept (durable commit of
// the event and its outbox entry) and delivery (read from the outbox, hand
// to the network, durable removal), on the embedded SQLite store.
func BenchmarkRouter(b *testing.B) {
	sink := &counter{}
	f := newFixture(b, b.TempDir(), map[string]bridge.MessageSender{"irc": &counter{}, "mqtt": sink})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		if err := f.router.Accept(ctx, msg("irc", "#ops", "alice", "", "benchmark line")); err != nil {
			b.Fatal(err)
		}
	}
	for sink.n.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
