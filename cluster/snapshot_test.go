package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/cluster"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

func snapshot(t *testing.T, n *cluster.Node) cluster.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := n.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func acquire(t *testing.T, l *cluster.Lease) uint64 {
	t.Helper()
	if ok, err := l.TryAcquire(context.Background()); !ok || err != nil {
		t.Fatalf("acquire %s: %v %v", l.Name(), ok, err)
	}
	token, _ := l.Token()
	return token
}

func heartbeat(t *testing.T, n *cluster.Node) {
	t.Helper()
	if err := n.Heartbeat(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// leaseOf finds a lease in a snapshot; nil if it is not there.
func leaseOf(s cluster.Snapshot, name string) *cluster.LeaseState {
	for i := range s.Leases {
		if s.Leases[i].Name == name {
			return &s.Leases[i]
		}
	}
	return nil
}

func memberNames(s cluster.Snapshot) []string {
	var names []string
	for _, m := range s.Instances {
		names = append(names, m.Name)
	}
	return names
}

// A snapshot lists the live instances and who holds what, with the
// fencing token of each holding; a released lease leaves it at once, a
// dead holder's lease and membership after the TTL.
func TestSnapshot(t *testing.T) {
	srv := testenv.NATS(t)
	a := nodeVersion(t, srv.URL, "sb-a", "v9.9.9")
	b := node(t, srv.URL, "sb-b")
	heartbeat(t, a)
	heartbeat(t, b)
	libera := lease(t, a, "network/libera")
	tokLibera := acquire(t, libera)
	devices := lease(t, b, "network/devices")
	tokDevices := acquire(t, devices)
	// A renewal moves the revision on; the token stays the acquiring one.
	if err := libera.Renew(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Live on: the test outlasts the TTL.
	beat(t, a)
	beat(t, b)
	hold(t, libera)

	s := snapshot(t, a)
	if s.Instance != "sb-a" || s.LeaseTTL != ttl.Seconds() {
		t.Errorf("snapshot by %q with TTL %v, want sb-a, %v", s.Instance, s.LeaseTTL, ttl.Seconds())
	}
	if got := memberNames(s); !slices.Equal(got, []string{"sb-a", "sb-b"}) {
		t.Fatalf("instances %v, want [sb-a sb-b]", got)
	}
	ma, mb := s.Instances[0], s.Instances[1]
	if !slices.Equal(ma.Leases, []string{"network/libera"}) || !slices.Equal(mb.Leases, []string{"network/devices"}) {
		t.Errorf("sb-a holds %v, sb-b %v; want network/libera, network/devices", ma.Leases, mb.Leases)
	}
	if ma.Version != "v9.9.9" || ma.Since == nil || time.Since(*ma.Since) > time.Minute || ma.Age < 0 || ma.Age > ttl.Seconds() {
		t.Errorf("sb-a: version %q since %v heartbeat age %v", ma.Version, ma.Since, ma.Age)
	}
	l := leaseOf(s, "network/libera")
	if l == nil || l.Holder != "sb-a" || l.Token != tokLibera || l.Revision <= tokLibera || l.Age > ttl.Seconds() {
		t.Errorf("network/libera: %+v, want holder sb-a, token %d, a later revision", l, tokLibera)
	}
	d := leaseOf(s, "network/devices")
	if d == nil || d.Holder != "sb-b" || d.Token != tokDevices || d.Revision != tokDevices {
		t.Errorf("network/devices: %+v, want holder sb-b, token = revision = %d", d, tokDevices)
	}
	if len(s.Leases) != 2 {
		t.Errorf("leases %+v, want 2", s.Leases)
	}

	// The JSON that /api/status carries under "cluster".
	js, _ := json.Marshal(s)
	for _, want := range []string{`"instance":"sb-a"`, `"name":"sb-b"`, `"heartbeat_age_seconds":`, `"version":"v9.9.9"`, `"leases":["network/libera"]`, `"name":"network/devices","holder":"sb-b"`, `"token":`, `"age_seconds":`, `"lease_ttl_seconds":2`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("JSON lacks %s:\n%s", want, js)
		}
	}

	// Released: gone at once.
	if err := devices.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	s = snapshot(t, a)
	if leaseOf(s, "network/devices") != nil || len(s.Instances[1].Leases) != 0 {
		t.Errorf("network/devices still listed after its release: %+v", s)
	}

	// A holder that dies (no release, no leave): its lease and its
	// membership last the TTL from their last writes, then go.
	c := node(t, srv.URL, "sb-c")
	dead := lease(t, c, "network/xmpp")
	acquire(t, dead)
	heartbeat(t, c)
	c.Close()
	died := time.Now()
	s = snapshot(t, a)
	if x := leaseOf(s, "network/xmpp"); x == nil || x.Holder != "sb-c" {
		t.Fatalf("a just-dead holder's lease is already gone: %+v", s.Leases)
	}
	if !slices.Contains(memberNames(s), "sb-c") {
		t.Fatalf("sb-c missing right after it died: %v", memberNames(s))
	}
	for {
		s = snapshot(t, a)
		if leaseOf(s, "network/xmpp") == nil && !slices.Contains(memberNames(s), "sb-c") {
			break
		}
		if time.Since(died) > ttl+3*time.Second {
			t.Fatalf("%v after sb-c died its lease or membership is still listed: %+v", time.Since(died), s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if gone := time.Since(died); gone < ttl/2 {
		t.Errorf("sb-c's lease went %v after it died, before the TTL %v could pass", gone, ttl)
	}
	// The live ones stay, with their holdings.
	if got := memberNames(s); !slices.Equal(got, []string{"sb-a", "sb-b"}) {
		t.Errorf("instances %v after sb-c went, want [sb-a sb-b]", got)
	}
	if l := leaseOf(s, "network/libera"); l == nil || l.Holder != "sb-a" || l.Token != tokLibera {
		t.Errorf("network/libera after sb-c went: %+v", l)
	}
}

// An observer sees what the instances wrote, and neither joins, takes a
// lease, nor creates the buckets on a NATS no instance has used.
func TestObserver(t *testing.T) {
	srv := testenv.NATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o, err := cluster.Observe(ctx, cluster.Options{URLs: []string{srv.URL}, TTL: ttl}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if s := snapshot(t, o); len(s.Instances) != 0 || len(s.Leases) != 0 || s.Instance != "" {
		t.Errorf("fresh NATS: %+v, want no instance, no lease", s)
	}
	if err := o.Heartbeat(ctx); err == nil {
		t.Error("an observer heartbeated")
	}
	if _, err := o.Lease("network/libera"); err == nil {
		t.Error("an observer made a lease")
	}

	a := node(t, srv.URL, "sb-a")
	heartbeat(t, a)
	tok := acquire(t, lease(t, a, "network/libera"))
	// Observe binds to the buckets as it connects; one made after it
	// connected is seen by a new observer.
	o2, err := cluster.Observe(ctx, cluster.Options{URLs: []string{srv.URL}, TTL: ttl}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer o2.Close()
	s := snapshot(t, o2)
	if got := memberNames(s); !slices.Equal(got, []string{"sb-a"}) {
		t.Errorf("observer sees instances %v, want [sb-a] (and not itself)", got)
	}
	if l := leaseOf(s, "network/libera"); l == nil || l.Holder != "sb-a" || l.Token != tok {
		t.Errorf("observer sees network/libera as %+v", l)
	}

	// Unreachable NATS: an error, quickly.
	start := time.Now()
	if _, err := cluster.Observe(ctx, cluster.Options{URLs: []string{fmt.Sprintf("nats://127.0.0.1:%d", testenv.FreePort(t))}}, time.Second); err == nil {
		t.Error("Observe of a closed port succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Observe of a closed port took %v", d)
	}
}

// beat runs n.Beat until the test ends.
func beat(t *testing.T, n *cluster.Node) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Beat(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// nodeVersion connects an instance running the given version.
func nodeVersion(t *testing.T, url, instance, version string) *cluster.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := cluster.Connect(ctx, cluster.Options{URLs: []string{url}, Instance: instance, TTL: ttl, Version: version, Log: testenv.NewLog(t).Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

// Members and Snapshot list every live instance while the instances
// heartbeat: a KV watcher's first pass could leave out a key written as
// it started, which would have moved a live instance's networks away.
func TestMembersWhileBeating(t *testing.T) {
	srv := testenv.NATS(t)
	a := node(t, srv.URL, "sb-a")
	b := node(t, srv.URL, "sb-b")
	heartbeat(t, a)
	heartbeat(t, b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	for _, n := range []*cluster.Node{a, b} {
		go func() {
			defer func() { done <- struct{}{} }()
			for ctx.Err() == nil {
				n.Heartbeat(ctx)
				time.Sleep(time.Millisecond)
			}
		}()
	}
	defer func() { cancel(); <-done; <-done }()
	for i := range 300 {
		m, err := a.Members(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(m, []string{"sb-a", "sb-b"}) {
			t.Fatalf("Members, call %d: %v", i, m)
		}
		if got := memberNames(snapshot(t, b)); !slices.Equal(got, []string{"sb-a", "sb-b"}) {
			t.Fatalf("Snapshot, call %d: %v", i, got)
		}
	}
}
