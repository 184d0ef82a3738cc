// Package status is what the operations endpoints (/readyz, /metrics,
// /api/status, /status) and the chat commands' "!sb status" know about the
// running service: the networks' states and latest problems, the links,
// the outbox and the blocks.
package status

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/metrics"
	"github.com/switchboard-chat/switchboard/store"
)

// Ops is what the operations endpoints (/metrics, /api/status, /status,
// /readyz) know about the service. The HTTP listener starts before the
// store and the networks, so the service fills it in under its lock as
// they come up.
type Ops struct {
	cluster ClusterView   // nil on one instance
	grace   time.Duration // a network down longer than this fails /readyz
	version string
	commit  string
	started time.Time

	errs *netErrors // the networks' latest problems, from the log

	mu      sync.Mutex
	nets    []*netState // sorted by name
	links   []link
	rooms   metrics.OutboxReader                 // nil until the store is open
	blocks  func(bridge.RoomAddr) []bridge.Block // the router's; nil until it runs
	metrics *metrics.Metrics
	done    chan struct{}
}

// link is a configured link and its rooms, in order.
type link struct {
	name  string
	rooms []bridge.RoomAddr
}

// netState is a network's connection state as last polled.
type netState struct {
	name, typ string
	adapter   adapters.Adapter
	conn      adapters.Connected // nil: the adapter cannot tell; counted as up
	up        bool
	since     time.Time // of the last change (or of the start)
}

// New tracks a service whose networks count as down for /readyz after
// grace; version and commit name the binary.
func New(grace time.Duration, version, commit string) *Ops {
	return &Ops{grace: grace, version: version, commit: commit, started: time.Now(), errs: newNetErrors(), done: make(chan struct{})}
}

func (o *Ops) AddNetwork(name, typ string, a adapters.Adapter) {
	n := &netState{name: name, typ: typ, adapter: a, since: time.Now()}
	if c, ok := a.(adapters.Connected); ok {
		n.conn = c
	} else {
		n.up = true
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, old := range o.nets {
		if old.name == name {
			// A new adapter for the network (cluster mode: taken over).
			o.nets[i] = n
			return
		}
	}
	o.nets = append(o.nets, n)
	sort.Slice(o.nets, func(i, j int) bool { return o.nets[i].name < o.nets[j].name })
}

func (o *Ops) SetLinks(links map[string][]bridge.RoomAddr) {
	var ls []link
	for name, rooms := range links {
		ls = append(ls, link{name: name, rooms: rooms})
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].name < ls[j].name })
	o.mu.Lock()
	o.links = ls
	o.mu.Unlock()
}

// setBlocks gives the router's blocks (bridge.Router.Blocks) to the
// status.
func (o *Ops) SetBlocks(blocks func(bridge.RoomAddr) []bridge.Block) {
	o.mu.Lock()
	o.blocks = blocks
	o.mu.Unlock()
}

func (o *Ops) SetStore(rooms metrics.OutboxReader, m *metrics.Metrics) {
	o.mu.Lock()
	o.rooms, o.metrics = rooms, m
	o.mu.Unlock()
}

// LogHandler wraps next so that it records the networks' latest
// problems, which the status shows.
func (o *Ops) LogHandler(next slog.Handler) slog.Handler { return o.errs.handler(next) }

// Done is closed by Stop.
func (o *Ops) Done() <-chan struct{} { return o.done }

// Watch polls the networks every second until stop, so that the times of
// their changes are known to within a second.
func (o *Ops) Watch() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-o.done:
			return
		case <-t.C:
			o.poll()
		}
	}
}

func (o *Ops) Stop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	select {
	case <-o.done:
	default:
		close(o.done)
	}
}

// poll records changes of the networks' states.
func (o *Ops) poll() {
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, n := range o.nets {
		if n.conn == nil {
			continue
		}
		if up := n.conn.Connected(); up != n.up {
			n.up, n.since = up, now
		}
	}
}

// isUp polls and tells whether network is up.
func (o *Ops) IsUp(network string) bool {
	o.poll()
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, n := range o.nets {
		if n.name == network {
			return n.up
		}
	}
	return false
}

type Status struct {
	Version  string    `json:"version"`
	Commit   string    `json:"commit"`
	Time     time.Time `json:"time"`
	Ready    bool      `json:"ready"`
	Problems []string  `json:"problems"`
	Networks []Network `json:"networks"`
	Links    []Link    `json:"links"`
	Outbox   Outbox    `json:"outbox"`
	Store    Store     `json:"store"`
	// Blocks are the senders kept out of rooms (bans, kicks, operators'
	// "!sb block"), by room, oldest first within one.
	Blocks []Block `json:"blocks"`
	// Cluster is cluster mode's part; absent on one instance.
	Cluster *Cluster `json:"cluster,omitempty"`
}

// Block is a bridge.Block, its room and sender written out.
type Block struct {
	Room   string    `json:"room"`   // network:room
	Sender string    `json:"sender"` // network:id
	Source string    `json:"source"` // ban, kick or operator
	Reason string    `json:"reason"`
	By     string    `json:"by,omitempty"`
	Since  time.Time `json:"since"`
}

func newBlock(b bridge.Block) Block {
	return Block{Room: b.Room.String(), Sender: b.Sender.String(), Source: string(b.Source), Reason: b.Reason, By: b.By, Since: b.Since.UTC()}
}

type Store struct {
	// SizeBytes is the space the store takes: SQLite's file and its log,
	// or the PostgreSQL database; absent when it could not be read.
	SizeBytes *int64 `json:"size_bytes,omitempty"`
}

type Network struct {
	Name  string    `json:"name"`
	Type  string    `json:"type"`
	State string    `json:"state"` // "up", "down", or in a cluster "elsewhere" (held by another instance)
	Since time.Time `json:"since"` // of the last change of state
	// For is how long the network has been in its state, in seconds.
	For float64 `json:"for_seconds"`
	// LastError is the latest warning or error logged for the network,
	// whether or not it is up now; absent if there was none.
	LastError *LastError `json:"last_error,omitempty"`
	// Dropped counts the network's inbound events dropped on purpose
	// since the start, by reason, as switchboard_inbound_dropped_total;
	// absent when none were.
	Dropped map[string]uint64 `json:"dropped,omitempty"`
	// People is the state of each person's own account on the network
	// (adapters.PersonalStatuser), by person: "connecting", "connected"
	// or "failed: <reason>"; absent where there are none. A failed one
	// is no problem for readiness: their puppet speaks meanwhile.
	People map[string]string `json:"people,omitempty"`
}

type Link struct {
	Name  string `json:"name"`
	Rooms []Room `json:"rooms"`
}

// Room is a room and its outbox.
type Room struct {
	Room  string `json:"room"` // network:room
	Depth int    `json:"outbox_depth"`
	// Oldest is when the delivery waiting longest was queued, Age how
	// many seconds ago; both absent when nothing waits.
	Oldest *time.Time `json:"oldest_queued_at,omitempty"`
	Age    *float64   `json:"oldest_age_seconds,omitempty"`
	// Failed counts its deliveries on the failed list.
	Failed int `json:"failed"`
	// Flags are what its adapter says of it (adapters.RoomFlagger):
	// "encrypted" for a Matrix room Switchboard cannot read.
	Flags []string `json:"flags,omitempty"`
	// CatchUp is its latest catch-up (adapters.CatchUpper): absent
	// before the first, and for networks that need none.
	CatchUp *CatchUp `json:"catch_up,omitempty"`
}

// CatchUp is when a room last caught up on what was said while
// Switchboard was away, and how many lines that recovered.
type CatchUp struct {
	At        time.Time `json:"at"`
	Recovered int       `json:"recovered"`
}

type Outbox struct {
	Depth  int `json:"depth"`  // all rooms together
	Failed int `json:"failed"` // deliveries on the failed list (GET /api/failed)
	// Rooms are the rooms with deliveries waiting or failed, including
	// any no link has any more and people's direct messages.
	Rooms []Room `json:"rooms"`
	Error string `json:"error,omitempty"`
}

// status polls the networks and the store.
func (o *Ops) Status(ctx context.Context) Status {
	o.poll()
	now := time.Now()
	st := Status{Version: o.version, Commit: o.commit, Time: now.UTC(), Problems: []string{}, Networks: []Network{}, Links: []Link{}, Blocks: []Block{}}
	st.Outbox.Rooms = []Room{}
	nets := o.Adapters()
	dropped := o.storeMetrics().Drops(nets)
	// Asked before o.mu is taken: an adapter answers under its own lock.
	personal := map[string]map[string]string{}
	flags := map[string]map[string][]string{}
	catchUps := map[string]map[string]adapters.CatchUp{}
	for name, a := range nets {
		if ps, ok := a.(adapters.PersonalStatuser); ok {
			personal[name] = ps.PersonalStatus()
		}
		if rf, ok := a.(adapters.RoomFlagger); ok {
			flags[name] = rf.RoomFlags()
		}
		if cu, ok := a.(adapters.CatchUpper); ok {
			catchUps[name] = cu.CatchUps()
		}
	}
	o.mu.Lock()
	cv := o.cluster
	o.mu.Unlock()
	if cv != nil {
		st.Cluster = &Cluster{Instance: cv.Instance(), Holds: []string{}, State: cv.Snapshot(ctx)}
	}
	o.mu.Lock()
	rooms, links, blocks := o.rooms, o.links, o.blocks
	for _, n := range o.nets {
		ns := Network{Name: n.name, Type: n.typ, State: "down", Since: n.since.UTC(), For: now.Sub(n.since).Round(time.Second).Seconds()}
		if cv != nil {
			if !cv.Holds(n.name) {
				ns.State = elsewhere
				st.Networks = append(st.Networks, ns)
				continue
			}
			st.Cluster.Holds = append(st.Cluster.Holds, n.name)
		}
		if n.up {
			ns.State = "up"
		} else if d := now.Sub(n.since); d > o.grace {
			st.Problems = append(st.Problems, fmt.Sprintf("networks.%s: down for %v", n.name, d.Round(time.Second)))
		}
		if le, ok := o.errs.get(n.name); ok {
			le.Time = le.Time.UTC()
			ns.LastError = &le
		}
		if len(dropped[n.name]) > 0 {
			ns.Dropped = dropped[n.name]
		}
		if people := personal[n.name]; len(people) > 0 {
			ns.People = people
		}
		st.Networks = append(st.Networks, ns)
	}
	o.mu.Unlock()
	queues := map[bridge.RoomAddr]Room{}
	if rooms == nil {
		st.Outbox.Error = "store not open"
		st.Problems = append(st.Problems, "store: not open")
	} else if qs, fs, err := metrics.QueryRooms(ctx, rooms); err != nil {
		st.Outbox.Error = err.Error()
		st.Problems = append(st.Problems, "store: "+err.Error())
	} else {
		for _, q := range qs {
			queues[q.Room] = newRoom(q, now)
			st.Outbox.Depth += q.Depth
		}
		for _, f := range fs {
			rs, ok := queues[f.Room]
			if !ok {
				rs = Room{Room: f.Room.String()}
			}
			rs.Failed = f.Count
			queues[f.Room] = rs
			st.Outbox.Failed += f.Count
		}
		for _, rs := range queues {
			st.Outbox.Rooms = append(st.Outbox.Rooms, rs)
		}
		sort.Slice(st.Outbox.Rooms, func(i, j int) bool { return st.Outbox.Rooms[i].Room < st.Outbox.Rooms[j].Room })
		if n, err := rooms.Size(ctx); err == nil {
			st.Store.SizeBytes = &n
		}
	}
	for _, l := range links {
		ls := Link{Name: l.name, Rooms: []Room{}}
		for _, r := range l.rooms {
			rs, ok := queues[r]
			if !ok {
				rs = Room{Room: r.String()}
			}
			rs.Flags = flags[r.Network][r.Room]
			if c, ok := catchUps[r.Network][r.Room]; ok {
				rs.CatchUp = &CatchUp{At: c.At.UTC(), Recovered: c.Recovered}
			}
			ls.Rooms = append(ls.Rooms, rs)
		}
		st.Links = append(st.Links, ls)
	}
	if blocks != nil {
		for _, b := range blocks(bridge.RoomAddr{}) {
			st.Blocks = append(st.Blocks, newBlock(b))
		}
		sort.SliceStable(st.Blocks, func(i, j int) bool { return st.Blocks[i].Room < st.Blocks[j].Room })
	}
	sort.Strings(st.Problems)
	st.Ready = len(st.Problems) == 0
	return st
}

func newRoom(q store.RoomQueue, now time.Time) Room {
	oldest := q.Oldest.UTC()
	age := metrics.QueueAge(q, now).Round(time.Second).Seconds()
	return Room{Room: q.Room.String(), Depth: q.Depth, Oldest: &oldest, Age: &age}
}

func (o *Ops) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		m := o.metrics
		o.mu.Unlock()
		if m == nil {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		m.Handler().ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		st := o.Status(r.Context())
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !st.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
			for _, p := range st.Problems {
				fmt.Fprintln(w, p)
			}
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(o.Status(r.Context()))
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		if err := statusPage.Execute(w, o.Status(r.Context())); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
}

//go:embed status.html
var statusHTML string

var statusPage = template.Must(template.New("status").Funcs(template.FuncMap{
	"ago": func(secs float64) string { return (time.Duration(secs) * time.Second).String() },
}).Parse(statusHTML))

// storeMetrics is the metrics SetStore was given; nil before.
func (o *Ops) storeMetrics() *metrics.Metrics {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.metrics
}

// Adapters lists the networks' adapters, for collectors.
func (o *Ops) Adapters() map[string]adapters.Adapter {
	o.mu.Lock()
	defer o.mu.Unlock()
	m := make(map[string]adapters.Adapter, len(o.nets))
	for _, n := range o.nets {
		m[n.name] = n.adapter
	}
	return m
}
