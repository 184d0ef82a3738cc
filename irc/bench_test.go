package irc

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// BenchmarkIdlePuppets connects 1,000 puppets to a real InspIRCd and
// reports what each costs this process while idle: Go heap, resident
// memory and goroutines. One run takes long enough that the benchmark
// runner does not repeat it; the figures do not depend on b.N.
func BenchmarkIdlePuppets(b *testing.B) {
	const puppets = 1000
	srv := testenv.InspIRCdWith(b, testenv.IRCServerConfig{MaxClients: puppets + 100})
	n := netConfig(srv, "puppet")
	n.Puppets.Max = puppets
	n.Puppets.Idle = time.Hour
	a := startAdapter(b, n, nil)

	heap0, rss0, g0 := memNow()
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	errs := make(chan error, puppets)
	for i := range puppets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			id := fmt.Sprintf("dev-%04d", i)
			p, err := a.puppetFor(ctx, bridge.Sender{Network: "devices", ID: id, Name: id})
			if err == nil && p == nil {
				err = fmt.Errorf("%s relayed", id)
			}
			if err != nil {
				errs <- err
				return
			}
			a.releasePuppet(p)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	connect := time.Since(start)
	// Let the connections settle into idleness.
	time.Sleep(2 * time.Second)
	heap1, rss1, g1 := memNow()
	if got := a.puppetCount(); got != puppets {
		b.Fatalf("%d puppets connected", got)
	}
	b.ReportMetric(float64(heap1-heap0)/puppets, "heap-B/puppet")
	b.ReportMetric(float64(rss1-rss0)/puppets, "rss-B/puppet")
	b.ReportMetric(float64(g1-g0)/puppets, "goroutines/puppet")
	b.ReportMetric(connect.Seconds(), "s-to-connect-all")
}

// memNow returns the live Go heap (after a GC), the process's resident
// set and the goroutine count.
func memNow() (heap, rss uint64, goroutines int) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	status, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			rss = kb * 1024
		}
	}
	return ms.HeapAlloc, rss, runtime.NumGoroutine()
}

// BenchmarkPersonalConnections gives 200 people their personal
// connection (SASL through Atheme, in one bridged channel) and reports
// the time from UsePeople to all of them logged in and in the channel,
// and what each costs this process once idle. The figures do not depend
// on b.N.
func BenchmarkPersonalConnections(b *testing.B) {
	const people = 200
	s := testenv.Atheme(b)
	accounts := map[string]string{}
	var list []PersonalAccount
	for i := range people {
		id := fmt.Sprintf("p%03d", i)
		accounts[id] = "pw-" + id
		list = append(list, PersonalAccount{Person: id, ID: id, Password: "pw-" + id})
	}
	s.RegisterAccounts(b, accounts)
	a := startAdapter(b, netConfig(s.IRC, "puppet"), nil, "#lobby")

	// Each takes part in the lobby's link, as the store says after a
	// restart: their connections go there as they come up.
	for _, acct := range list {
		a.PersonalRooms(acct.Person, []string{"#lobby"})
	}
	heap0, rss0, g0 := memNow()
	start := time.Now()
	a.UsePeople(list)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		n := 0
		a.mu.Lock()
		for _, p := range a.people.AllLocked() {
			if k := p.Conn(); k != nil && k.inChannel("#lobby") {
				n++
			}
		}
		a.mu.Unlock()
		if n == people {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d personal connections up after 2 min; status %v", n, people, a.PersonalStatus())
		}
		time.Sleep(10 * time.Millisecond)
	}
	up := time.Since(start)
	time.Sleep(2 * time.Second)
	heap1, rss1, g1 := memNow()
	b.ReportMetric(float64(heap1-heap0)/people, "heap-B/person")
	b.ReportMetric(float64(rss1-rss0)/people, "rss-B/person")
	b.ReportMetric(float64(g1-g0)/people, "goroutines/person")
	b.ReportMetric(up.Seconds(), "s-to-bring-all-up")
}
