package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/cluster"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/status"
)

// switchboards are Switchboard processes of one config, each with its
// own instance name (SWITCHBOARD_INSTANCE) and HTTP address
// (SWITCHBOARD_HTTP), as the cluster tests and benchmarks run them, and
// what their /api/status says.
type switchboards struct {
	tb    testing.TB
	names []string
	procs []*testenv.Process
	http  []string
	down  []bool // killed, stopped or frozen: not asked
}

// newSwitchboards gives each name an HTTP address; start runs them.
func newSwitchboards(tb testing.TB, names []string) *switchboards {
	s := &switchboards{tb: tb, names: names}
	for range names {
		s.http = append(s.http, "127.0.0.1:"+strconv.Itoa(testenv.FreePort(tb)))
		s.down = append(s.down, false)
	}
	return s
}

// start runs one process of bin on conf for each name, at once, with
// env(i) added to instance i's environment (env may be nil).
func (s *switchboards) start(bin, dir, conf string, env func(i int) []string) {
	s.tb.Helper()
	for i, name := range s.names {
		e := []string{"SWITCHBOARD_INSTANCE=" + name, "SWITCHBOARD_HTTP=" + s.http[i]}
		if env != nil {
			e = append(e, env(i)...)
		}
		s.procs = append(s.procs, &testenv.Process{Name: bin, Args: []string{"run", "--config", conf}, Dir: dir, Ready: s.http[i], Env: e})
	}
	var wg sync.WaitGroup
	for _, p := range s.procs {
		wg.Go(func() { p.Start(s.tb) })
	}
	wg.Wait()
}

// status is instance i's /api/status, or false if it does not answer.
func (s *switchboards) status(i int) (status.Status, bool) {
	var st status.Status
	if s.down[i] {
		return st, false
	}
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + s.http[i] + "/api/status")
	if err != nil {
		return st, false
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st) == nil
}

// holders lists the live instances that have network up and, in a
// cluster, say they hold it.
func (s *switchboards) holders(network string) []int {
	var out []int
	for i := range s.procs {
		st, ok := s.status(i)
		if !ok || (st.Cluster != nil && !slices.Contains(st.Cluster.Holds, network)) {
			continue
		}
		for _, n := range st.Networks {
			if n.Name == network && n.State == "up" {
				out = append(out, i)
			}
		}
	}
	return out
}

// waitHolder waits until exactly one live instance, other than not
// (-1: any), holds network with it up, and returns it.
func (s *switchboards) waitHolder(network string, not int, timeout time.Duration) int {
	s.tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		h := s.holders(network)
		if len(h) == 1 && h[0] != not {
			return h[0]
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("%s: held by instances %v after %v, want one other than %d", network, h, timeout, not)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leases is who holds each lease, as a live instance's /api/status
// shows the cluster.
func (s *switchboards) leases() map[string]string {
	for i := range s.procs {
		st, ok := s.status(i)
		if !ok || st.Cluster == nil || st.Cluster.State == nil {
			continue
		}
		data, _ := json.Marshal(st.Cluster.State)
		var snap cluster.Snapshot
		if json.Unmarshal(data, &snap) != nil {
			continue
		}
		out := map[string]string{}
		for _, l := range snap.Leases {
			out[l.Name] = l.Holder
		}
		return out
	}
	return nil
}

// nameOf is instance i's name.
func (s *switchboards) nameOf(i int) string { return s.names[i] }

// live are the names of the instances not down.
func (s *switchboards) live() []string {
	var out []string
	for i, name := range s.names {
		if !s.down[i] {
			out = append(out, name)
		}
	}
	return out
}

// waitSpread waits until each of leaseNames is held by the live
// instance the spread gives it to (cluster.Owner), and each of networks
// is up on the holder of its lease.
func (s *switchboards) waitSpread(leaseNames, networks []string, timeout time.Duration) {
	s.tb.Helper()
	live := s.live()
	deadline := time.Now().Add(timeout)
	for {
		ok, leases := true, s.leases()
		for _, l := range leaseNames {
			if leases[l] != cluster.Owner(l, live) {
				ok = false
			}
		}
		for _, network := range networks {
			holder := slices.Index(s.names, leases[cluster.LeaseName(network)])
			if holder < 0 || !slices.Contains(s.holders(network), holder) {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("leases not spread over %v after %v: %v", live, timeout, leases)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// heldBy lists the networks instance i holds.
func (s *switchboards) heldBy(i int) []string {
	st, ok := s.status(i)
	if !ok || st.Cluster == nil {
		return nil
	}
	return st.Cluster.Holds
}

func (s *switchboards) kill(i int) {
	s.procs[i].Kill()
	s.down[i] = true
}

func (s *switchboards) stop(i int) {
	s.procs[i].Stop()
	s.down[i] = true
}

func (s *switchboards) restart(i int) {
	s.tb.Helper()
	s.procs[i].Restart()
	s.down[i] = false
}
