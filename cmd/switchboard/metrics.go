package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
)

// kinds are the event types, for the label children made up front.
var kinds = []bridge.Kind{
	bridge.KindMessage, bridge.KindEdit, bridge.KindDelete, bridge.KindReaction, bridge.KindJoin,
	bridge.KindLeave, bridge.KindRename, bridge.KindTopic, bridge.KindTyping, bridge.KindPresence,
}

// metrics implements bridge.Observer with Prometheus collectors in a
// registry of the service's own. The label children of every configured
// network are made up front, so the router's hot path only looks them up.
type metrics struct {
	reg *prometheus.Registry

	received, delivered *prometheus.CounterVec
	retries, failures   *prometheus.CounterVec
	latency             *prometheus.HistogramVec
	store               *prometheus.HistogramVec
	storeOps            map[string]prometheus.Observer // store's children by op, filled at start

	nets map[string]*netMetrics // read-only after newMetrics

	adapters *adapterCollector
}

type netMetrics struct {
	received, delivered map[bridge.Kind]prometheus.Counter
	retries, failures   prometheus.Counter
	latency             prometheus.Observer
}

// newMetrics registers the service's collectors. up tells whether a
// network is connected, rooms lists the outbox by room; both are asked at
// scrape time.
func newMetrics(networks []string, up func(network string) bool, rooms outboxReader, nets func() map[string]adapters.Adapter) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_events_received_total",
			Help: "Events accepted (committed) from a network, by type.",
		}, []string{"network", "type"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_events_delivered_total",
			Help: "Events delivered to a network, by type.",
		}, []string{"network", "type"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_delivery_retries_total",
			Help: "Failed delivery attempts to a network that will be retried.",
		}, []string{"network"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_delivery_failures_total",
			Help: "Deliveries to a network that failed for good and left the outbox.",
		}, []string{"network"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchboard_relay_latency_seconds",
			Help:    "Time from an event's acceptance to its delivery to a network.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"network"}),
		store: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchboard_store_operation_seconds",
			Help:    "Time of the router's store writes, by operation (accept: an event and its outbox entries; delivered; failed).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"op"}),
		nets: map[string]*netMetrics{},
	}
	m.storeOps = map[string]prometheus.Observer{}
	for _, op := range []string{"accept", "delivered", "failed"} {
		m.storeOps[op] = m.store.WithLabelValues(op)
	}
	m.reg.MustRegister(m.received, m.delivered, m.retries, m.failures, m.latency,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, name := range networks {
		n := &netMetrics{
			received:  map[bridge.Kind]prometheus.Counter{},
			delivered: map[bridge.Kind]prometheus.Counter{},
			retries:   m.retries.WithLabelValues(name),
			failures:  m.failures.WithLabelValues(name),
			latency:   m.latency.WithLabelValues(name),
		}
		for _, k := range kinds {
			n.received[k] = m.received.WithLabelValues(name, string(k))
			n.delivered[k] = m.delivered.WithLabelValues(name, string(k))
		}
		m.nets[name] = n
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "switchboard_network_up",
			Help:        "Whether a network's connection is up (1) or not (0).",
			ConstLabels: prometheus.Labels{"network": name},
		}, func() float64 {
			if up(name) {
				return 1
			}
			return 0
		}))
	}
	m.adapters = newAdapterCollector(nets)
	m.reg.MustRegister(newOutboxCollector(rooms), m.adapters, m.store)
	return m
}

// adapterCollector reports what adapters count themselves, asked at
// scrape time: inbound drops by reason, and puppets.
type adapterCollector struct {
	nets func() map[string]adapters.Adapter
	// routerDrops counts what the router drops on purpose (over a
	// sender's rate limit), by network and reason; set before serving.
	routerDrops                   func() map[string]map[string]uint64
	dropped, brokerDrops, puppets *prometheus.Desc
}

func newAdapterCollector(nets func() map[string]adapters.Adapter) *adapterCollector {
	return &adapterCollector{
		nets: nets,
		dropped: prometheus.NewDesc("switchboard_inbound_dropped_total",
			"Inbound messages dropped on purpose, by their network and reason (malformed, oversize, rate_limited: over the sender's rate limit, ...).",
			[]string{"network", "reason"}, nil),
		brokerDrops: prometheus.NewDesc("switchboard_broker_dropped_total",
			"Messages the network's MQTT broker reports it dropped since it started (Mosquitto's $SYS/broker/publish/messages/dropped), for all its clients.",
			[]string{"network"}, nil),
		puppets: prometheus.NewDesc("switchboard_puppets",
			"Puppets connected (IRC) or present (XMPP) on a network now.",
			[]string{"network"}, nil),
	}
}

func (c *adapterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.dropped
	ch <- c.brokerDrops
	ch <- c.puppets
}

// drops counts the inbound messages dropped on purpose, by network and
// reason, whoever dropped them (the adapter or the router).
func (c *adapterCollector) drops() map[string]map[string]uint64 {
	drops := map[string]map[string]uint64{}
	if c.routerDrops != nil {
		drops = c.routerDrops()
	}
	for name, a := range c.nets() {
		if d, ok := a.(adapters.DropCounter); ok {
			for reason, n := range d.Dropped() {
				if drops[name] == nil {
					drops[name] = map[string]uint64{}
				}
				drops[name][reason] += n
			}
		}
	}
	return drops
}

func (c *adapterCollector) Collect(ch chan<- prometheus.Metric) {
	drops := c.drops()
	for name, a := range c.nets() {
		if d, ok := a.(adapters.BrokerDropCounter); ok {
			if n, ok := d.BrokerDropped(); ok {
				ch <- prometheus.MustNewConstMetric(c.brokerDrops, prometheus.CounterValue, float64(n), name)
			}
		}
		if p, ok := a.(adapters.PuppetCounter); ok {
			ch <- prometheus.MustNewConstMetric(c.puppets, prometheus.GaugeValue, float64(p.Puppets()), name)
		}
	}
	for name, byReason := range drops {
		for reason, n := range byReason {
			ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(n), name, reason)
		}
	}
}

// Stored implements bridge.Observer.
func (m *metrics) Stored(op string, took time.Duration, err error) {
	if err != nil {
		return // a failed write's time says little; the error is logged
	}
	o, ok := m.storeOps[op]
	if !ok {
		o = m.store.WithLabelValues(op)
	}
	o.Observe(took.Seconds())
}

// outboxCollector reports the outbox per target room, read at scrape time
// with one grouped query, off the relay path. A room whose queue emptied
// is not in the answer and so drops out of the scrape: no series is left
// behind for every room that ever waited.
type outboxCollector struct {
	rooms                          outboxReader
	depth, age, failed, read, size *prometheus.Desc
}

func newOutboxCollector(rooms outboxReader) *outboxCollector {
	return &outboxCollector{
		rooms: rooms,
		depth: prometheus.NewDesc("switchboard_outbox_depth",
			"Deliveries waiting in the outbox for a room (rooms with none waiting have no series; sum for the total).",
			[]string{"network", "room"}, nil),
		age: prometheus.NewDesc("switchboard_outbox_oldest_age_seconds",
			"How long the delivery waiting longest for a room has been in the outbox.",
			[]string{"network", "room"}, nil),
		failed: prometheus.NewDesc("switchboard_failed_deliveries",
			"Deliveries to a room on the failed list, waiting for an operator (GET /api/failed; rooms with none have no series).",
			[]string{"network", "room"}, nil),
		read: prometheus.NewDesc("switchboard_store_up",
			"Whether the outbox could be read at this scrape (1) or not (0).", nil, nil),
		size: prometheus.NewDesc("switchboard_store_size_bytes",
			"Space the store takes: the SQLite file and its log, or the PostgreSQL database.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.age
	ch <- c.failed
	ch <- c.read
	ch <- c.size
}

// Collect implements prometheus.Collector. A store that cannot be read
// shows as switchboard_store_up 0, without failing the rest of the scrape.
func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	qs, fs, err := queryRooms(context.Background(), c.rooms)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.read, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.read, prometheus.GaugeValue, 1)
	now := time.Now()
	for _, q := range qs {
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(q.Depth), q.Room.Network, q.Room.Room)
		ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, queueAge(q, now).Seconds(), q.Room.Network, q.Room.Room)
	}
	for _, f := range fs {
		ch <- prometheus.MustNewConstMetric(c.failed, prometheus.GaugeValue, float64(f.Count), f.Room.Network, f.Room.Room)
	}
	if n, err := c.rooms.Size(context.Background()); err == nil {
		ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(n))
	}
}

// counter returns the cached child, or (for a network or type not known up
// front, which should not happen) a looked-up one.
func counter(cache map[bridge.Kind]prometheus.Counter, vec *prometheus.CounterVec, network string, k bridge.Kind) prometheus.Counter {
	if c, ok := cache[k]; ok {
		return c
	}
	return vec.WithLabelValues(network, string(k))
}

// Accepted implements bridge.Observer.
func (m *metrics) Accepted(from bridge.RoomAddr, k bridge.Kind) {
	var cache map[bridge.Kind]prometheus.Counter
	if n := m.nets[from.Network]; n != nil {
		cache = n.received
	}
	counter(cache, m.received, from.Network, k).Inc()
}

// Delivered implements bridge.Observer.
func (m *metrics) Delivered(to bridge.RoomAddr, k bridge.Kind, accepted time.Time) {
	n := m.nets[to.Network]
	if n == nil {
		m.delivered.WithLabelValues(to.Network, string(k)).Inc()
		if !accepted.IsZero() {
			m.latency.WithLabelValues(to.Network).Observe(time.Since(accepted).Seconds())
		}
		return
	}
	counter(n.delivered, m.delivered, to.Network, k).Inc()
	if !accepted.IsZero() {
		n.latency.Observe(max(0, time.Since(accepted).Seconds()))
	}
}

// Retried implements bridge.Observer.
func (m *metrics) Retried(to bridge.RoomAddr, _ bridge.Kind) {
	if n := m.nets[to.Network]; n != nil {
		n.retries.Inc()
		return
	}
	m.retries.WithLabelValues(to.Network).Inc()
}

// Failed implements bridge.Observer.
func (m *metrics) Failed(to bridge.RoomAddr, _ bridge.Kind) {
	if n := m.nets[to.Network]; n != nil {
		n.failures.Inc()
		return
	}
	m.failures.WithLabelValues(to.Network).Inc()
}
