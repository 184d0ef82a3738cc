package store

import (
	"fmt"
	"testing"

	"github.com/switchboard-chat/switchboard/bridge"
)

// BenchmarkHistory reads the last 50 messages of a busy link, and of a
// quiet one whose messages are older than 20000 of the busy one's (which,
// without the events_link index, its history walked: 15 ms, against
// 0.5 ms with it).
func BenchmarkHistory(b *testing.B) {
	s := openStore(b, "sqlite?_synchronous=OFF", b.TempDir())
	for i := range 100 {
		if _, _, err := s.Accept(b.Context(), "quiet", message(lobby, fmt.Sprintf("q-%d", i), "a quiet word"), []bridge.RoomAddr{mx}); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 20000 {
		if _, _, err := s.Accept(b.Context(), "busy", message(mqtt, fmt.Sprintf("b-%d", i), "a busy word"), []bridge.RoomAddr{mx}); err != nil {
			b.Fatal(err)
		}
	}
	for _, link := range []string{"busy", "quiet"} {
		b.Run(link, func(b *testing.B) {
			for b.Loop() {
				es, err := s.History(b.Context(), bridge.HistoryQuery{Link: link, Limit: 50})
				if err != nil || len(es) != 50 {
					b.Fatalf("%d, %v", len(es), err)
				}
			}
		})
	}
}
