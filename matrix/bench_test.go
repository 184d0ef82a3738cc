package matrix

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/adapters/adapterstest"
	"github.com/switchboard-chat/switchboard/bridge"
)

// BenchmarkGhosts registers 1,000 ghosts and joins them to one room, and
// reports the adapter's heap per ghost and the time per ghost.
func BenchmarkGhosts(b *testing.B) {
	const ghosts = 1000
	for b.Loop() {
		benchGhosts(b, ghosts)
	}
}

func benchGhosts(b *testing.B, ghosts int) {
	b.StopTimer()
	s := newBenchServer(b)
	owner := s.Client(b, "owner")
	rid := owner.NewRoom(true, "")
	a, err := New("matrix", s.network, nopLogger())
	if err != nil {
		b.Fatal(err)
	}
	a.UseState(s.state)
	a.RegisterHTTP(s.mux)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := a.Start(ctx, adapterstest.NewRecorder()); err != nil {
		b.Fatal(err)
	}
	defer a.Stop(context.Background())
	a.Join(ctx, string(rid))
	adapterstest.WaitConnected(b, a)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.StartTimer()
	start := time.Now()
	for i := range ghosts {
		j := &bridge.Join{Header: header(foreign(fmt.Sprintf("user%04d", i), fmt.Sprintf("User %d", i)))}
		if err := a.SendMembership(ctx, &bridge.Delivery{Room: string(rid), Event: j}); err != nil {
			b.Fatalf("ghost %d: %v", i, err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := float64(int64(after.HeapAlloc) - int64(before.HeapAlloc))
	b.ReportMetric(heap/float64(ghosts), "heap-B/ghost")
	b.ReportMetric(heap/(1<<20), "heap-MiB")
	b.ReportMetric(float64(elapsed.Milliseconds())/float64(ghosts), "ms/ghost")
	b.StartTimer()
}
