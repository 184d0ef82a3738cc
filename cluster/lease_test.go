package cluster_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/cluster"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// ttl is short so that the failover tests stay short; margin is TTL/4.
const ttl = 2 * time.Second

func node(t *testing.T, url, instance string) *cluster.Node {
	t.Helper()
	return nodeVersion(t, url, instance, "")
}

func lease(t *testing.T, n *cluster.Node, name string) *cluster.Lease {
	t.Helper()
	l, err := n.Lease(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// hold runs l.Hold until the returned stop is called (or the test ends).
func hold(t *testing.T, l *cluster.Lease) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Hold(ctx, nil); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// sampler watches MaySend of some leases every millisecond: when each
// turned true or false, and whether two were ever true at once.
type sampler struct {
	mu     sync.Mutex
	leases []*cluster.Lease
	state  []bool
	since  []time.Time // when state last changed
	both   int         // samples with more than one true
	stop   context.CancelFunc
	done   chan struct{}
}

func sample(t *testing.T, ls ...*cluster.Lease) *sampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sampler{leases: ls, state: make([]bool, len(ls)), since: make([]time.Time, len(ls)), stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for ctx.Err() == nil {
			now := time.Now()
			s.mu.Lock()
			n := 0
			for i, l := range s.leases {
				v := l.MaySend()
				if v {
					n++
				}
				if v != s.state[i] {
					s.state[i], s.since[i] = v, now
				}
			}
			if n > 1 {
				s.both++
			}
			s.mu.Unlock()
			time.Sleep(time.Millisecond)
		}
	}()
	t.Cleanup(func() { cancel(); <-s.done })
	return s
}

// holder waits until exactly one lease may send and returns its index
// and when the sampler saw it turn true.
func (s *sampler) holder(t *testing.T, within time.Duration) (int, time.Time) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		i := slices.Index(s.state, true)
		at := time.Time{}
		if i >= 0 {
			at = s.since[i]
		}
		s.mu.Unlock()
		if i >= 0 {
			return i, at
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no instance may send after %v", within)
	return -1, time.Time{}
}

// waitFor waits until lease i may send, returning when it turned true.
func (s *sampler) waitFor(t *testing.T, i int, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		v, at := s.state[i], s.since[i]
		s.mu.Unlock()
		if v {
			return at
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("lease %d may not send after %v", i, within)
	return time.Time{}
}

// off is when lease i turned false; zero if it is true.
func (s *sampler) off(i int) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state[i] {
		return time.Time{}
	}
	return s.since[i]
}

func (s *sampler) checkNeverBoth(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.both > 0 {
		t.Errorf("two instances could send at once in %d samples", s.both)
	}
}

func TestLeases(t *testing.T) {
	srv := testenv.NATS(t)
	a, b := node(t, srv.URL, "a"), node(t, srv.URL, "b")
	ctx := context.Background()

	// pair starts both instances contending for name and returns their
	// leases, the sampler, the holder's index and the stops of their
	// Hold loops.
	pair := func(t *testing.T, name string) ([]*cluster.Lease, *sampler, int, []func()) {
		ls := []*cluster.Lease{lease(t, a, name), lease(t, b, name)}
		s := sample(t, ls...)
		start := time.Now()
		stops := []func(){hold(t, ls[0]), hold(t, ls[1])}
		h, at := s.holder(t, ttl)
		t.Logf("acquired by %s in %v", []string{"a", "b"}[h], at.Sub(start))
		return ls, s, h, stops
	}

	t.Run("names", func(t *testing.T) {
		if l1, l2 := lease(t, a, "network/x/shard/1"), lease(t, a, "network/x/shard/1"); l1 != l2 {
			t.Error("two Leases for one name in one instance")
		}
		for _, bad := range []string{"", ".x", "x.", "a..b", "network/#x", "a b", "a*"} {
			if _, err := a.Lease(bad); err == nil {
				t.Errorf("lease name %q accepted", bad)
			}
		}
	})

	t.Run("one holder", func(t *testing.T) {
		ls, s, h, _ := pair(t, "network/libera")
		time.Sleep(ttl + ttl/2) // several renewals, both contending
		s.checkNeverBoth(t)
		if !ls[h].MaySend() || ls[1-h].MaySend() {
			t.Fatalf("after %v: MaySend a=%v b=%v, want only the first holder", ttl+ttl/2, ls[0].MaySend(), ls[1].MaySend())
		}
		who, _, err := ls[h].Holder(ctx)
		if err != nil || who != []string{"a", "b"}[h] {
			t.Fatalf("NATS says the holder is %q (%v)", who, err)
		}
	})

	t.Run("release hands over at once", func(t *testing.T) {
		ls, s, h, stops := pair(t, "network/release")
		stops[h]() // a SIGTERM: stop renewing, then release
		tok, _ := ls[h].Token()
		start := time.Now()
		if err := ls[h].Release(ctx); err != nil {
			t.Fatal(err)
		}
		at := s.waitFor(t, 1-h, ttl/2) // well before the TTL could run out
		t.Logf("handover after release: %v", at.Sub(start))
		s.checkNeverBoth(t)
		if newTok, _ := ls[1-h].Token(); newTok <= tok {
			t.Errorf("new holder's fencing token %d is not above the old one's %d", newTok, tok)
		}
	})

	t.Run("holder dies", func(t *testing.T) {
		c := node(t, srv.URL, "c")
		d := node(t, srv.URL, "d")
		ls := []*cluster.Lease{lease(t, c, "network/death"), lease(t, d, "network/death")}
		s := sample(t, ls...)
		stop0 := hold(t, ls[0])
		s.waitFor(t, 0, ttl)
		hold(t, ls[1])
		time.Sleep(ttl / 2)
		// c's process is gone: its connection drops, nothing is released.
		dead := time.Now()
		c.Close()
		at := s.waitFor(t, 1, ttl+2*time.Second)
		stop0()
		off := s.off(0)
		if off.IsZero() {
			t.Fatal("the dead holder may still send")
		}
		gap := at.Sub(off)
		t.Logf("failover: %v after the holder died; its MaySend turned false %v before the new holder's turned true", at.Sub(dead), gap)
		if gap < 0 {
			t.Errorf("the new holder could send %v before the old one stopped", -gap)
		}
		s.checkNeverBoth(t)
	})

	t.Run("frozen holder", func(t *testing.T) {
		ls, s, h, stops := pair(t, "network/frozen")
		old, _ := ls[h].Token()
		// Frozen: it stops renewing (and sending) without knowing it.
		stops[h]()
		s.waitFor(t, 1-h, ttl+time.Second)
		who, rev, err := ls[h].Holder(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Resumed: it must find out, not send, not overwrite.
		if ls[h].MaySend() {
			t.Fatal("the resumed holder may send without re-acquiring")
		}
		if err := ls[h].Renew(ctx); !errors.Is(err, cluster.ErrLost) {
			t.Fatalf("renewing with the stale revision: %v, want ErrLost", err)
		}
		if ok, err := ls[h].TryAcquire(ctx); ok || err != nil {
			t.Fatalf("re-acquiring a held lease: %v %v, want false", ok, err)
		}
		if err := ls[h].Release(ctx); err != nil {
			t.Fatalf("stale release: %v", err)
		}
		who2, rev2, err := ls[h].Holder(ctx)
		if err != nil || who2 != who || rev2 < rev || !ls[1-h].MaySend() {
			t.Fatalf("after the stale holder's attempts NATS says %q rev %d (%v), was %q rev %d; new holder may send: %v", who2, rev2, err, who, rev, ls[1-h].MaySend())
		}
		if tok, _ := ls[1-h].Token(); tok <= old {
			t.Errorf("new fencing token %d not above the frozen holder's %d", tok, old)
		}
		// Its Hold loop resumed: it contends, and waits.
		hold(t, ls[h])
		time.Sleep(ttl / 2)
		if ls[h].MaySend() || !ls[1-h].MaySend() {
			t.Errorf("after resuming: old holder may send %v, new one %v", ls[h].MaySend(), ls[1-h].MaySend())
		}
		s.checkNeverBoth(t)
	})

	t.Run("members", func(t *testing.T) {
		e, f := node(t, srv.URL, "e"), node(t, srv.URL, "f")
		ectx, ecancel := context.WithCancel(ctx)
		edone := make(chan struct{})
		go func() { e.Beat(ectx); close(edone) }()
		fctx, fcancel := context.WithCancel(ctx)
		defer fcancel()
		go f.Beat(fctx)
		waitMembers(t, e, []string{"e", "f"}, ttl)
		ecancel() // a clean leave
		<-edone
		waitMembers(t, f, []string{"f"}, 100*time.Millisecond)
		f.Close() // gone without leaving: the bucket's TTL drops it
		waitMembers(t, a, nil, ttl+time.Second)
	})

	t.Run("NATS frozen", func(t *testing.T) {
		ls, s, _, _ := pair(t, "network/partition")
		// NATS hangs (or the network to it): nobody can renew, so
		// nobody may send once the margin is reached, whatever happens
		// to the server later.
		srv.Freeze()
		frozen := time.Now()
		time.Sleep(ttl - ttl/4 + 50*time.Millisecond)
		if ls[0].MaySend() || ls[1].MaySend() {
			srv.Thaw()
			t.Fatalf("%v after NATS froze an instance may still send", time.Since(frozen))
		}
		srv.Thaw()
		thawed := time.Now()
		_, at := s.holder(t, 2*ttl)
		t.Logf("NATS frozen for %v: a holder may send again %v after it thawed", thawed.Sub(frozen), at.Sub(thawed))
		s.checkNeverBoth(t)
	})

	// Last two: they restart the server under the others' feet.
	t.Run("NATS restarted", func(t *testing.T) {
		ls, s, h, _ := pair(t, "network/restart")
		tok, _ := ls[h].Token()
		start := time.Now()
		srv.Restart()
		back := time.Now()
		// The holder's first renewal once NATS is back (or its loss).
		for ls[h].Age() >= time.Since(back) && time.Since(back) < 2*ttl {
			time.Sleep(5 * time.Millisecond)
		}
		renewed := time.Now()
		i, _ := s.holder(t, 2*ttl)
		newTok, _ := ls[i].Token()
		t.Logf("NATS down for %v; the holder renewed %v after it was back; %s holds it (before: %s; same holding: %v)",
			back.Sub(start), renewed.Sub(back), []string{"a", "b"}[i], []string{"a", "b"}[h], newTok == tok)
		who, _, err := ls[i].Holder(ctx)
		if err != nil || who != []string{"a", "b"}[i] {
			t.Fatalf("NATS says the holder is %q (%v)", who, err)
		}
		if i != h && newTok <= tok {
			t.Errorf("new holder's token %d not above %d", newTok, tok)
		}
		time.Sleep(ttl) // and keeps it
		if !ls[i].MaySend() {
			t.Error("the holder lost the lease after the restart")
		}
		s.checkNeverBoth(t)
	})

	t.Run("NATS killed", func(t *testing.T) {
		ls, s, _, _ := pair(t, "network/killed")
		srv.Kill() // kill -9: nothing flushed
		killed := time.Now()
		time.Sleep(ttl - ttl/4 + 50*time.Millisecond)
		if ls[0].MaySend() || ls[1].MaySend() {
			t.Fatalf("%v after NATS died an instance may still send", time.Since(killed))
		}
		srv.Restart() // same port, same store
		back := time.Now()
		_, at := s.holder(t, 2*ttl)
		t.Logf("NATS killed for %v: a holder may send again %v after it was back", back.Sub(killed), at.Sub(back))
		s.checkNeverBoth(t)
	})
}

func waitMembers(t *testing.T, n *cluster.Node, want []string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var got []string
	for {
		var err error
		got, err = n.Members(context.Background())
		if err == nil && slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("members %v (%v), want %v within %v", got, err, want, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
