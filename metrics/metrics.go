// Package metrics is the service's Prometheus metrics: a bridge.Observer
// counting what the router accepts and delivers, and collectors asked at
// scrape time (the outbox, adapters' drops and puppets, blocks).
package metrics

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/store"
)

// kinds are the event types, for the label children made up front.
var kinds = []bridge.Kind{
	bridge.KindMessage, bridge.KindEdit, bridge.KindDelete, bridge.KindReaction, bridge.KindJoin,
	bridge.KindLeave, bridge.KindRename, bridge.KindTopic, bridge.KindTyping, bridge.KindPresence, bridge.KindRead,
}

// Metrics implements bridge.Observer with Prometheus collectors in a
// registry of the service's own. The label children of every configured
// network are made up front, so the router's hot path only looks them up.
type Metrics struct {
	reg *prometheus.Registry
	// on registers into reg; in a cluster with the instance as a label
	// (see ForInstance).
	on prometheus.Registerer

	received, delivered *prometheus.CounterVec
	retries, failures   *prometheus.CounterVec
	refused             *prometheus.CounterVec
	latency             *prometheus.HistogramVec
	store               *prometheus.HistogramVec
	storeOps            map[string]prometheus.Observer // store's children by op, filled at start

	nets map[string]*netMetrics // read-only after New

	drops routerDrops
}

// routerDrops counts the inbound events the router dropped on purpose, by
// network and reason. They are reported under the adapters' own metric,
// switchboard_inbound_dropped_total: to an operator a drop is a drop,
// whichever part of Switchboard made it.
type routerDrops struct {
	mu sync.Mutex
	n  map[string]map[string]uint64 // network: reason: count
}

var _ bridge.DropObserver = (*Metrics)(nil)

// Dropped implements bridge.DropObserver.
func (m *Metrics) Dropped(network, reason string) {
	d := &m.drops
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n == nil {
		d.n = map[string]map[string]uint64{}
	}
	if d.n[network] == nil {
		d.n[network] = map[string]uint64{}
	}
	d.n[network][reason]++
}

// Drops is every inbound drop so far of nets, by network and reason: the
// adapters' own and, m being non-nil, the router's.
func (m *Metrics) Drops(nets map[string]adapters.Adapter) map[string]map[string]uint64 {
	if m == nil {
		return droppedCounts(nets, nil)
	}
	return droppedCounts(nets, &m.drops)
}

// Handler serves the metrics to Prometheus.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// AddCluster reports, for each network, whether this instance holds it
// (any shard of it), asked at scrape time.
func (m *Metrics) AddCluster(networks []string, holds func(network string) bool) {
	for _, name := range networks {
		m.on.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "switchboard_cluster_holds",
			Help:        "Whether this instance holds a network's lease (1) or another does (0); cluster mode only.",
			ConstLabels: prometheus.Labels{"network": name},
		}, func() float64 {
			if holds(name) {
				return 1
			}
			return 0
		}))
	}
}

// AddBlocks reports the senders blocks (bridge.Router.Blocks) keeps
// out of each room, asked at scrape time.
func (m *Metrics) AddBlocks(blocks func(bridge.RoomAddr) []bridge.Block) {
	m.on.MustRegister(newBlocksCollector(blocks))
}

// droppedCounts is every inbound drop so far, by network and reason: the
// adapters' own and the router's, one count however many parts counted.
func droppedCounts(nets map[string]adapters.Adapter, router *routerDrops) map[string]map[string]uint64 {
	dropped := map[string]map[string]uint64{}
	if router != nil {
		router.add(dropped)
	}
	for name, a := range nets {
		d, ok := a.(adapters.DropCounter)
		if !ok {
			continue
		}
		for reason, n := range d.Dropped() {
			if dropped[name] == nil {
				dropped[name] = map[string]uint64{}
			}
			dropped[name][reason] += n
		}
	}
	return dropped
}

// add adds the router's counts to the adapters'.
func (d *routerDrops) add(to map[string]map[string]uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for network, reasons := range d.n {
		if to[network] == nil {
			to[network] = map[string]uint64{}
		}
		for reason, n := range reasons {
			to[network][reason] += n
		}
	}
}

type netMetrics struct {
	received, delivered map[bridge.Kind]prometheus.Counter
	retries, failures   prometheus.Counter
	latency             prometheus.Observer
}

// New registers the service's collectors. up tells whether a
// network is connected, rooms lists the outbox by room; both are asked at
// scrape time. instance, when not "" (cluster mode), labels every metric
// switchboard_instance: the instances of a cluster report the same
// networks.
func New(networks []string, up func(network string) bool, rooms OutboxReader, nets func() map[string]adapters.Adapter, instance string) *Metrics {
	reg := prometheus.NewRegistry()
	var on prometheus.Registerer = reg
	if instance != "" {
		on = prometheus.WrapRegistererWith(prometheus.Labels{"switchboard_instance": instance}, reg)
	}
	m := &Metrics{
		reg: reg,
		on:  on,
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
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_events_refused_total",
			Help: "Edits and deletes of someone else's message from a network that were not bridged: their sender was neither the author nor a moderator of the room.",
		}, []string{"network", "type"}),
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
	m.on.MustRegister(m.received, m.delivered, m.retries, m.failures, m.refused, m.latency,
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
		m.on.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
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
	m.on.MustRegister(newOutboxCollector(rooms), newAdapterCollector(nets, &m.drops), m.store)
	return m
}

// adapterCollector reports what adapters count themselves, asked at
// scrape time: inbound drops by reason, and puppets.
type adapterCollector struct {
	nets                          func() map[string]adapters.Adapter
	routerDrops                   *routerDrops // nil: none
	dropped, brokerDrops, puppets *prometheus.Desc
	personal                      *prometheus.Desc
}

func newAdapterCollector(nets func() map[string]adapters.Adapter, drops *routerDrops) *adapterCollector {
	return &adapterCollector{
		nets:        nets,
		routerDrops: drops,
		dropped: prometheus.NewDesc("switchboard_inbound_dropped_total",
			"Inbound messages dropped on purpose, by the network's adapter or the router, by reason (malformed, oversize, ignored, ...).",
			[]string{"network", "reason"}, nil),
		brokerDrops: prometheus.NewDesc("switchboard_broker_dropped_total",
			"Messages the network's MQTT broker reports it dropped since it started (Mosquitto's $SYS/broker/publish/messages/dropped), for all its clients.",
			[]string{"network"}, nil),
		puppets: prometheus.NewDesc("switchboard_puppets",
			"Puppets connected (IRC) or present (XMPP) on a network now.",
			[]string{"network"}, nil),
		personal: prometheus.NewDesc("switchboard_personal_accounts",
			"People's own accounts on a network by the state of Switchboard's connection as them: connecting, connected, failed (their puppet speaks for them meanwhile).",
			[]string{"network", "state"}, nil),
	}
}

func (c *adapterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.dropped
	ch <- c.brokerDrops
	ch <- c.puppets
	ch <- c.personal
}

func (c *adapterCollector) Collect(ch chan<- prometheus.Metric) {
	nets := c.nets()
	for name, a := range nets {
		if d, ok := a.(adapters.BrokerDropCounter); ok {
			if n, ok := d.BrokerDropped(); ok {
				ch <- prometheus.MustNewConstMetric(c.brokerDrops, prometheus.CounterValue, float64(n), name)
			}
		}
		if p, ok := a.(adapters.PuppetCounter); ok {
			ch <- prometheus.MustNewConstMetric(c.puppets, prometheus.GaugeValue, float64(p.Puppets()), name)
		}
		if p, ok := a.(adapters.PersonalStatuser); ok {
			states := map[string]int{adapters.PersonalConnecting: 0, adapters.PersonalConnected: 0, "failed": 0}
			for _, st := range p.PersonalStatus() {
				if adapters.IsPersonalFailed(st) {
					st = "failed"
				}
				states[st]++
			}
			for state, n := range states {
				ch <- prometheus.MustNewConstMetric(c.personal, prometheus.GaugeValue, float64(n), name, state)
			}
		}
	}
	for name, reasons := range droppedCounts(nets, c.routerDrops) {
		for reason, n := range reasons {
			ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(n), name, reason)
		}
	}
}

// Refused implements bridge.RefusalObserver. Refusals are rare: the
// child is looked up each time.
func (m *Metrics) Refused(from bridge.RoomAddr, kind bridge.Kind) {
	m.refused.WithLabelValues(from.Network, string(kind)).Inc()
}

// Stored implements bridge.Observer.
func (m *Metrics) Stored(op string, took time.Duration, err error) {
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
	rooms                          OutboxReader
	depth, age, failed, read, size *prometheus.Desc
}

func newOutboxCollector(rooms OutboxReader) *outboxCollector {
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
	qs, fs, err := QueryRooms(context.Background(), c.rooms)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.read, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.read, prometheus.GaugeValue, 1)
	now := time.Now()
	for _, q := range qs {
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(q.Depth), q.Room.Network, q.Room.Room)
		ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, QueueAge(q, now).Seconds(), q.Room.Network, q.Room.Room)
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
func (m *Metrics) Accepted(from bridge.RoomAddr, k bridge.Kind) {
	var cache map[bridge.Kind]prometheus.Counter
	if n := m.nets[from.Network]; n != nil {
		cache = n.received
	}
	counter(cache, m.received, from.Network, k).Inc()
}

// Delivered implements bridge.Observer.
func (m *Metrics) Delivered(to bridge.RoomAddr, k bridge.Kind, accepted time.Time) {
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
func (m *Metrics) Retried(to bridge.RoomAddr, _ bridge.Kind) {
	if n := m.nets[to.Network]; n != nil {
		n.retries.Inc()
		return
	}
	m.retries.WithLabelValues(to.Network).Inc()
}

// Failed implements bridge.Observer.
func (m *Metrics) Failed(to bridge.RoomAddr, _ bridge.Kind) {
	if n := m.nets[to.Network]; n != nil {
		n.failures.Inc()
		return
	}
	m.failures.WithLabelValues(to.Network).Inc()
}

// blocksCollector reports how many senders are kept out of each room,
// asked of the router at scrape time; a room without blocks has no
// series.
type blocksCollector struct {
	blocks func(bridge.RoomAddr) []bridge.Block
	desc   *prometheus.Desc
}

func newBlocksCollector(blocks func(bridge.RoomAddr) []bridge.Block) *blocksCollector {
	return &blocksCollector{blocks: blocks, desc: prometheus.NewDesc("switchboard_blocks",
		"Senders kept out of a room now: by a ban or kick of their puppet, or an operator's \"!sb block\" (rooms with none have no series).",
		[]string{"network", "room"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *blocksCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *blocksCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[bridge.RoomAddr]int{}
	for _, b := range c.blocks(bridge.RoomAddr{}) {
		counts[b.Room]++
	}
	for room, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), room.Network, room.Room)
	}
}

// OutboxReader reads, per room, the deliveries waiting and those that
// failed for good (the store).
type OutboxReader interface {
	OutboxRooms(context.Context) ([]store.RoomQueue, error)
	FailedRooms(context.Context) ([]store.RoomFailed, error)
	// Size is the space the store takes on disk, in bytes.
	Size(context.Context) (int64, error)
}

// QueryRooms asks the store, without letting a stuck database hold up a
// status page or a scrape for long.
func QueryRooms(ctx context.Context, rooms OutboxReader) ([]store.RoomQueue, []store.RoomFailed, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	qs, err := rooms.OutboxRooms(ctx)
	if err != nil {
		return nil, nil, err
	}
	fs, err := rooms.FailedRooms(ctx)
	return qs, fs, err
}

// QueueAge is how long the head of a room's queue has waited. Never
// negative: the clocks of two processes sharing a PostgreSQL database may
// disagree a little.
func QueueAge(q store.RoomQueue, now time.Time) time.Duration {
	return max(0, now.Sub(q.Oldest))
}
