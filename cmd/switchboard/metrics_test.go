package main

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/store"
)

// noOutbox has nothing waiting and nothing failed.
type noOutbox struct{}

func (noOutbox) OutboxRooms(context.Context) ([]store.RoomQueue, error)  { return nil, nil }
func (noOutbox) FailedRooms(context.Context) ([]store.RoomFailed, error) { return nil, nil }
func (noOutbox) Size(context.Context) (int64, error)                     { return 0, nil }

// BenchmarkMetricsPerEvent is what the metrics add to relaying one event:
// the observer calls the router makes on accept and on delivery. Compare
// with BenchmarkRouter in bridge/ (the whole relay path, without them).
func BenchmarkMetricsPerEvent(b *testing.B) {
	m := newMetrics([]string{"libera", "devices"}, func(string) bool { return true }, noOutbox{}, func() map[string]adapters.Adapter { return nil })
	from := bridge.RoomAddr{Network: "devices", Room: "sb/room"}
	to := bridge.RoomAddr{Network: "libera", Room: "#room"}
	accepted := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		m.Accepted(from, bridge.KindMessage)
		m.Delivered(to, bridge.KindMessage, accepted)
		m.Stored("accept", 300*time.Microsecond, nil)
		m.Stored("delivered", 10*time.Microsecond, nil)
	}
}
