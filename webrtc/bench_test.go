package webrtc

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/adapters/adapterstest"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// BenchmarkBroadcast delivers messages to a room of pion peers on
// loopback and waits until every peer has them; it reports peers, heap
// per peer and frames delivered per second.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{10, 50} {
		b.Run(fmt.Sprintf("peers=%d", n), func(b *testing.B) {
			cfg := testConfig()
			cfg.MaxPeers = 1000
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			s := startServer(b, cfg, "bench")
			peers := make([]*testenv.WebRTCPeer, n)
			for i := range peers {
				peers[i] = testenv.MustDialWebRTC(b, s.url, "bench", "", fmt.Sprintf("p%d", i), "")
			}
			runtime.GC()
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			// Both ends live in this process: half is a fair guess per side.
			perPeer := (float64(after.HeapInuse) - float64(before.HeapInuse)) / float64(n) / 2 / 1024
			b.ResetTimer()
			start := time.Now()
			var last string
			for i := range b.N {
				m := adapterstest.Message(bridge.Sender{Network: "x", ID: "x", Name: "x"}, fmt.Sprintf("bench %d", i))
				last = m.Text
				if _, err := s.a.Send(context.Background(), &bridge.Delivery{Room: "bench", Event: m}); err != nil {
					b.Fatal(err)
				}
			}
			for _, p := range peers {
				p.Wait(b, time.Minute, last, func(f testenv.WebRTCFrame) bool { return f.Text == last })
			}
			b.ReportMetric(float64(b.N*n)/time.Since(start).Seconds(), "frames/s")
			b.ReportMetric(perPeer, "KiB/peer")
		})
	}
}
