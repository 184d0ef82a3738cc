package metrics

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
	m := New([]string{"libera", "devices"}, func(string) bool { return true }, noOutbox{}, func() map[string]adapters.Adapter { return nil }, "")
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

// dropper is an adapter that counts drops of its own.
type dropper struct {
	adapters.Adapter
	dropped map[string]uint64
}

func (d dropper) Dropped() map[string]uint64 { return d.dropped }

// The router's drops and an adapter's are one series per network and
// reason, summed where both counted the same reason.
func TestInboundDropsOfRouterAndAdapterAdded(t *testing.T) {
	nets := map[string]adapters.Adapter{"devices": dropper{dropped: map[string]uint64{"ignored": 2, "malformed": 1}}}
	m := New([]string{"libera", "devices"}, func(string) bool { return true }, noOutbox{}, func() map[string]adapters.Adapter { return nets }, "")
	var obs bridge.Observer = m
	d := obs.(bridge.DropObserver)
	d.Dropped("devices", bridge.DropIgnored)
	d.Dropped("devices", bridge.DropIgnored)
	d.Dropped("libera", bridge.DropIgnored)
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "switchboard_inbound_dropped_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			got[labels["network"]+"/"+labels["reason"]] += s.GetCounter().GetValue()
		}
	}
	want := map[string]float64{"devices/ignored": 4, "devices/malformed": 1, "libera/ignored": 1}
	if len(got) != len(want) {
		t.Errorf("series %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}

// In a cluster every series carries the instance, and the holdings are
// reported per network.
func TestClusterInstanceLabelsEverySeries(t *testing.T) {
	m := New([]string{"libera", "devices"}, func(string) bool { return true }, noOutbox{}, func() map[string]adapters.Adapter { return nil }, "sb-2")
	m.AddCluster([]string{"libera", "devices"}, func(n string) bool { return n == "libera" })
	m.Accepted(bridge.RoomAddr{Network: "devices", Room: "sb/room"}, bridge.KindMessage)
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	holds := map[string]float64{}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["switchboard_instance"] != "sb-2" {
				t.Errorf("%s %v: no switchboard_instance=sb-2", f.GetName(), labels)
			}
			if f.GetName() == "switchboard_cluster_holds" {
				holds[labels["network"]] = s.GetGauge().GetValue()
			}
		}
	}
	if holds["libera"] != 1 || holds["devices"] != 0 || len(holds) != 2 {
		t.Errorf("switchboard_cluster_holds %v, want libera 1, devices 0", holds)
	}
}
