package xmpp

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// BenchmarkPuppetJoin500 joins 500 puppets to one room, one after the
// other as the router's per-room queue would, and reports the time per
// join, the total, and the adapter's heap growth per puppet. Every join
// is broadcast to every occupant, so the component receives O(n²)
// presences; the adapter reads only the bot's and each puppet's own.
//
//	go test -run XXX -bench PuppetJoin500 -benchtime 1x ./xmpp
func BenchmarkPuppetJoin500(b *testing.B) {
	const n = 500
	srv := testenv.ProsodyWith(b, testenv.XMPPServerConfig{Users: testUsers})
	for i := 0; i < b.N; i++ {
		room := newRoomName(srv, "bench")
		a, _ := newTestAdapter(b, srv, setup{max: 2 * n, timing: &timing{
			connect: 10 * time.Second, write: 10 * time.Second, join: 60 * time.Second, reflect: 60 * time.Second,
			ping: time.Hour, pingTimeout: 30 * time.Second, minBackoff: 100 * time.Millisecond, maxBackoff: time.Second, rejoin: time.Second,
		}})
		start(b, a, room)
		alice := joinHuman(b, srv, "alice", room, "Alice")
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		b.ResetTimer()
		t0 := time.Now()
		joinPuppets(b, a, room, n)
		elapsed := time.Since(t0)
		b.StopTimer()
		// The last one is visible to a human in the room.
		if _, err := alice.c.WaitFor(time.Minute, func(s testenv.XMPPStanza) bool {
			return s.Kind() == "presence" && s.Nick() == fmt.Sprintf("user%03d (libera)", n-1)
		}); err != nil {
			b.Fatal(err)
		}
		// And a message through the last puppet still goes through.
		send(b, a, room, message(bridge.Sender{Network: "libera", ID: "user000", Name: "user000"}, "still fast"))
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(elapsed.Milliseconds()), "ms-total")
		b.ReportMetric(float64(elapsed.Microseconds())/n/1000, "ms/join")
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/n, "heap-B/puppet")
		a.mu.Lock()
		joined := 0
		for _, p := range a.puppets {
			for _, m := range p.rooms {
				if m.joined {
					joined++
				}
			}
		}
		a.mu.Unlock()
		if joined != n {
			b.Errorf("%d puppets joined, want %d", joined, n)
		}
	}
}

// BenchmarkRoomMessage100Puppets has a person in a room with 100 of our
// puppets say something, and reports the CPU it cost this process (the
// adapter, and the person's own client) per message. The room sends the
// component a copy for each puppet and one for the bot; only the bot's is
// read.
//
//	go test -run XXX -bench RoomMessage100Puppets -benchtime 300x ./xmpp
func BenchmarkRoomMessage100Puppets(b *testing.B) {
	const n = 100
	srv := testenv.ProsodyWith(b, testenv.XMPPServerConfig{Users: testUsers})
	room := newRoomName(srv, "bench")
	a, _ := newTestAdapter(b, srv, setup{max: 2 * n})
	rec := start(b, a, room)
	alice := joinHuman(b, srv, "alice", room, "Alice")
	joinPuppets(b, a, room, n)
	alice.say("settle")
	rec.WaitMessage(b, func(m *bridge.Message) bool { return m.Text == "settle" })
	cpu := testenv.CPUTime()
	i := 0
	for b.Loop() {
		i++
		text := fmt.Sprint("m", i)
		alice.say(text)
		rec.WaitMessage(b, func(m *bridge.Message) bool { return m.Text == text })
	}
	testenv.ReportCPU(b, cpu, i, "cpu-µs/msg")
	if got := len(rec.Messages()); got != i+1 {
		b.Errorf("%d messages read, want %d: one per message said", got, i+1)
	}
}

// joinPuppets joins puppets user000 to user(n-1) to room, one after the
// other as the router's per-room queue would.
func joinPuppets(b *testing.B, a *Adapter, room string, n int) {
	b.Helper()
	for k := range n {
		s := bridge.Sender{Network: "libera", ID: fmt.Sprintf("user%03d", k), Name: fmt.Sprintf("user%03d", k)}
		ev := &bridge.Join{Header: bridge.Header{ID: bridge.NewEventID(), Sender: s}}
		if err := a.SendMembership(context.Background(), &bridge.Delivery{Room: room, Event: ev}); err != nil {
			b.Fatalf("join %d: %v", k, err)
		}
	}
}

// BenchmarkPersonalSessions200 brings up 200 people's own sessions, each
// in one room, and reports the time until all are in it and the
// adapter's heap growth (and goroutines) per session.
//
//	go test -run XXX -bench PersonalSessions200 -benchtime 1x ./xmpp
func BenchmarkPersonalSessions200(b *testing.B) {
	const n = 200
	users := map[string]string{"bob": testUsers["bob"]}
	var accts []PersonalAccount
	for i := range n {
		user := fmt.Sprintf("person%03d", i)
		users[user] = "pw-" + user
	}
	srv := testenv.ProsodyWith(b, testenv.XMPPServerConfig{Users: users})
	for i := range n {
		user := fmt.Sprintf("person%03d", i)
		accts = append(accts, PersonalAccount{Person: user, Name: user, ID: user + "@" + srv.Domain, Password: users[user]})
	}
	for i := 0; i < b.N; i++ {
		room := newRoomName(srv, "benchpeople")
		a, _ := newTestAdapter(b, srv, setup{})
		a.cfg.ClientServer, a.cfg.InsecurePlaintext = srv.C2SAddr, true
		start(b, a, room)
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		goroutines := runtime.NumGoroutine()
		b.ResetTimer()
		for _, acct := range accts {
			a.PersonalRooms(acct.Person, []string{room})
		}
		t0 := time.Now()
		a.UsePeople(accts)
		key := a.roomList()[0].key
		for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
			a.mu.Lock()
			in := 0
			for _, p := range a.peopleLocked() {
				if m := p.rooms[key]; m != nil && m.joined {
					in++
				}
			}
			a.mu.Unlock()
			if in == n {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d sessions in the room after 3 minutes: %v", in, n, a.PersonalStatus())
			}
		}
		elapsed := time.Since(t0)
		b.StopTimer()
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(elapsed.Seconds(), "s-all-up")
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/n/1024, "KiB-heap/session")
		b.ReportMetric(float64(runtime.NumGoroutine()-goroutines)/n, "goroutines/session")
	}
}
