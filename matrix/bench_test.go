package matrix

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	a := benchAdapter(ctx, b, s, rid)
	defer a.Stop(context.Background())
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

// BenchmarkRooms offers b.N messages to each of 10 rooms at 10 msg/s
// each, a lane per room as the router runs them (a room's messages one
// after another, in order, the rooms in parallel), and reports the rate
// the homeserver took them at and the latency from the moment a message
// was offered to the homeserver's answer to its send. Run with
// -benchtime=50x or so. On a 2-core machine the test Dendrite (SQLite)
// is the ceiling, at about 80–95 msg/s with its CPU full: with one
// request at a time instead of maxInFlight it took 65–73.
func BenchmarkRooms(b *testing.B) {
	const rooms, rate = 10, 10
	s := newBenchServer(b)
	owner := s.Client(b, "owner")
	var rids []id.RoomID
	for range rooms {
		rids = append(rids, owner.NewRoom(true, ""))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	a := benchAdapter(ctx, b, s, rids...)
	defer a.Stop(context.Background())
	carol := foreign("carol", "Carol")
	send := func(rid id.RoomID, text string) error {
		_, err := a.Send(ctx, &bridge.Delivery{Room: string(rid), Event: &bridge.Message{Header: header(carol), Text: text}})
		return err
	}
	for _, rid := range rids {
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			// The ghost joins (and the bot's join settles) first.
			if err := send(rid, "warm-up"); err == nil {
				break
			} else if time.Now().After(deadline) {
				b.Fatal(err)
			}
		}
	}

	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for r, rid := range rids {
		lane := make(chan time.Time, b.N)
		wg.Go(func() { // the offered traffic
			defer close(lane)
			tick := time.NewTicker(time.Second / rate)
			defer tick.Stop()
			for range b.N {
				lane <- <-tick.C
			}
		})
		wg.Go(func() { // the room's lane
			i := 0
			for offered := range lane {
				if err := send(rid, fmt.Sprintf("room %d message %d", r, i)); err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				lat = append(lat, time.Since(offered))
				mu.Unlock()
				i++
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) == 0 {
		b.Fatal("nothing delivered")
	}
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "delivered-msg/s")
	b.ReportMetric(float64(rooms*rate), "offered-msg/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// benchAdapter starts an adapter on s, silent, in the rooms.
func benchAdapter(ctx context.Context, b *testing.B, s *server, rooms ...id.RoomID) *Adapter {
	a, err := New("matrix", s.network, nopLogger())
	if err != nil {
		b.Fatal(err)
	}
	a.UseState(s.state)
	a.RegisterHTTP(s.mux)
	if err := a.Start(ctx, adapterstest.NewRecorder()); err != nil {
		b.Fatal(err)
	}
	for _, rid := range rooms {
		a.Join(ctx, string(rid))
	}
	adapterstest.WaitConnected(b, a)
	return a
}

// BenchmarkUnbridgedTransaction: what a transaction of a room that
// nothing links costs Switchboard, as the homeserver pushes one for every
// message in the private rooms of users a broad double_puppet_namespace
// matches: a message event, pushed over HTTP with a new transaction id.
func BenchmarkUnbridgedTransaction(b *testing.B) {
	s := newBenchServer(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := benchAdapter(ctx, b, s)
	defer a.Stop(context.Background())
	body := func(i int) []byte {
		v, _ := json.Marshal(map[string]any{"events": []any{textEvent("!private:localhost", "@carol:localhost", fmt.Sprintf("$ev%d", i), "between us")}})
		return v
	}
	client := &http.Client{}
	b.ResetTimer()
	for i := range b.N {
		req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("http://%s/_matrix/app/v1/transactions/bench%d", s.asAddr, i), bytes.NewReader(body(i)))
		req.Header.Set("Authorization", "Bearer "+s.cfg.HSToken)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
