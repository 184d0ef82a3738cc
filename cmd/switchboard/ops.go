package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/metrics"
	"github.com/switchboard-chat/switchboard/store"
)

// ops is what the operations endpoints (/metrics, /api/status, /status,
// /readyz) know about the service. The HTTP listener starts before the
// store and the networks, so start fills it in under its lock as they come
// up.
type ops struct {
	grace   time.Duration // a network down longer than this fails /readyz
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

func newOps(grace time.Duration) *ops {
	return &ops{grace: grace, started: time.Now(), errs: newNetErrors(), done: make(chan struct{})}
}

func (o *ops) addNetwork(name, typ string, a adapters.Adapter) {
	n := &netState{name: name, typ: typ, adapter: a, since: time.Now()}
	if c, ok := a.(adapters.Connected); ok {
		n.conn = c
	} else {
		n.up = true
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.nets = append(o.nets, n)
	sort.Slice(o.nets, func(i, j int) bool { return o.nets[i].name < o.nets[j].name })
}

func (o *ops) setLinks(links map[string][]bridge.RoomAddr) {
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
func (o *ops) setBlocks(blocks func(bridge.RoomAddr) []bridge.Block) {
	o.mu.Lock()
	o.blocks = blocks
	o.mu.Unlock()
}

func (o *ops) setStore(rooms metrics.OutboxReader, m *metrics.Metrics) {
	o.mu.Lock()
	o.rooms, o.metrics = rooms, m
	o.mu.Unlock()
}

// watch polls the networks every second until stop, so that the times of
// their changes are known to within a second.
func (o *ops) watch() {
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

func (o *ops) stop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	select {
	case <-o.done:
	default:
		close(o.done)
	}
}

// poll records changes of the networks' states.
func (o *ops) poll() {
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
func (o *ops) isUp(network string) bool {
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

type status struct {
	Version  string          `json:"version"`
	Commit   string          `json:"commit"`
	Time     time.Time       `json:"time"`
	Ready    bool            `json:"ready"`
	Problems []string        `json:"problems"`
	Networks []networkStatus `json:"networks"`
	Links    []linkStatus    `json:"links"`
	Outbox   outboxStatus    `json:"outbox"`
	Store    storeStatus     `json:"store"`
	// Blocks are the senders kept out of rooms (bans, kicks, operators'
	// "!sb block"), by room, oldest first within one.
	Blocks []blockStatus `json:"blocks"`
}

// blockStatus is a bridge.Block, its room and sender written out.
type blockStatus struct {
	Room   string    `json:"room"`   // network:room
	Sender string    `json:"sender"` // network:id
	Source string    `json:"source"` // ban, kick or operator
	Reason string    `json:"reason"`
	By     string    `json:"by,omitempty"`
	Since  time.Time `json:"since"`
}

func newBlockStatus(b bridge.Block) blockStatus {
	return blockStatus{Room: b.Room.String(), Sender: b.Sender.String(), Source: string(b.Source), Reason: b.Reason, By: b.By, Since: b.Since.UTC()}
}

type storeStatus struct {
	// SizeBytes is the space the store takes: SQLite's file and its log,
	// or the PostgreSQL database; absent when it could not be read.
	SizeBytes *int64 `json:"size_bytes,omitempty"`
}

type networkStatus struct {
	Name  string    `json:"name"`
	Type  string    `json:"type"`
	State string    `json:"state"` // "up" or "down"
	Since time.Time `json:"since"` // of the last change of state
	// For is how long the network has been in its state, in seconds.
	For float64 `json:"for_seconds"`
	// LastError is the latest warning or error logged for the network,
	// whether or not it is up now; absent if there was none.
	LastError *lastError `json:"last_error,omitempty"`
	// Dropped counts the network's inbound events dropped on purpose
	// since the start, by reason, as switchboard_inbound_dropped_total;
	// absent when none were.
	Dropped map[string]uint64 `json:"dropped,omitempty"`
}

type linkStatus struct {
	Name  string       `json:"name"`
	Rooms []roomStatus `json:"rooms"`
}

// roomStatus is a room and its outbox.
type roomStatus struct {
	Room  string `json:"room"` // network:room
	Depth int    `json:"outbox_depth"`
	// Oldest is when the delivery waiting longest was queued, Age how
	// many seconds ago; both absent when nothing waits.
	Oldest *time.Time `json:"oldest_queued_at,omitempty"`
	Age    *float64   `json:"oldest_age_seconds,omitempty"`
	// Failed counts its deliveries on the failed list.
	Failed int `json:"failed"`
}

type outboxStatus struct {
	Depth  int `json:"depth"`  // all rooms together
	Failed int `json:"failed"` // deliveries on the failed list (GET /api/failed)
	// Rooms are the rooms with deliveries waiting or failed, including
	// any no link has any more and people's direct messages.
	Rooms []roomStatus `json:"rooms"`
	Error string       `json:"error,omitempty"`
}

// status polls the networks and the store.
func (o *ops) status(ctx context.Context) status {
	o.poll()
	now := time.Now()
	st := status{Version: version, Commit: commit, Time: now.UTC(), Problems: []string{}, Networks: []networkStatus{}, Links: []linkStatus{}, Blocks: []blockStatus{}}
	st.Outbox.Rooms = []roomStatus{}
	dropped := o.storeMetrics().Drops(o.adapters())
	o.mu.Lock()
	rooms, links, blocks := o.rooms, o.links, o.blocks
	for _, n := range o.nets {
		ns := networkStatus{Name: n.name, Type: n.typ, State: "down", Since: n.since.UTC(), For: now.Sub(n.since).Round(time.Second).Seconds()}
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
		st.Networks = append(st.Networks, ns)
	}
	o.mu.Unlock()
	queues := map[bridge.RoomAddr]roomStatus{}
	if rooms == nil {
		st.Outbox.Error = "store not open"
		st.Problems = append(st.Problems, "store: not open")
	} else if qs, fs, err := metrics.QueryRooms(ctx, rooms); err != nil {
		st.Outbox.Error = err.Error()
		st.Problems = append(st.Problems, "store: "+err.Error())
	} else {
		for _, q := range qs {
			queues[q.Room] = newRoomStatus(q, now)
			st.Outbox.Depth += q.Depth
		}
		for _, f := range fs {
			rs, ok := queues[f.Room]
			if !ok {
				rs = roomStatus{Room: f.Room.String()}
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
		ls := linkStatus{Name: l.name, Rooms: []roomStatus{}}
		for _, r := range l.rooms {
			rs, ok := queues[r]
			if !ok {
				rs = roomStatus{Room: r.String()}
			}
			ls.Rooms = append(ls.Rooms, rs)
		}
		st.Links = append(st.Links, ls)
	}
	if blocks != nil {
		for _, b := range blocks(bridge.RoomAddr{}) {
			st.Blocks = append(st.Blocks, newBlockStatus(b))
		}
		sort.SliceStable(st.Blocks, func(i, j int) bool { return st.Blocks[i].Room < st.Blocks[j].Room })
	}
	sort.Strings(st.Problems)
	st.Ready = len(st.Problems) == 0
	return st
}

func newRoomStatus(q store.RoomQueue, now time.Time) roomStatus {
	oldest := q.Oldest.UTC()
	age := metrics.QueueAge(q, now).Round(time.Second).Seconds()
	return roomStatus{Room: q.Room.String(), Depth: q.Depth, Oldest: &oldest, Age: &age}
}

func (o *ops) routes(mux *http.ServeMux) {
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
		st := o.status(r.Context())
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
		enc.Encode(o.status(r.Context()))
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		if err := statusPage.Execute(w, o.status(r.Context())); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
}

//go:embed status.html
var statusHTML string

var statusPage = template.Must(template.New("status").Funcs(template.FuncMap{
	"ago": func(secs float64) string { return (time.Duration(secs) * time.Second).String() },
}).Parse(statusHTML))

// adapters lists the networks' adapters, for collectors.
// storeMetrics is the metrics setStore was given; nil before.
func (o *ops) storeMetrics() *metrics.Metrics {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.metrics
}

func (o *ops) adapters() map[string]adapters.Adapter {
	o.mu.Lock()
	defer o.mu.Unlock()
	m := make(map[string]adapters.Adapter, len(o.nets))
	for _, n := range o.nets {
		m[n.name] = n.adapter
	}
	return m
}
