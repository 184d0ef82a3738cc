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

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
)

// ops is what the operations endpoints (/metrics, /api/status, /status,
// /readyz) know about the service. The HTTP listener starts before the
// store and the networks, so start fills it in under its lock as they come
// up.
type ops struct {
	grace   time.Duration // a network down longer than this fails /readyz
	started time.Time

	mu      sync.Mutex
	nets    []*netState // sorted by name
	links   []linkStatus
	depth   func(context.Context) (int, error) // nil until the store is open
	metrics *metrics
	done    chan struct{}
}

// netState is a network's connection state as last polled.
type netState struct {
	name, typ string
	conn      adapters.Connected // nil: the adapter cannot tell; counted as up
	up        bool
	since     time.Time // of the last change (or of the start)
}

func newOps(grace time.Duration) *ops {
	return &ops{grace: grace, started: time.Now(), done: make(chan struct{})}
}

func (o *ops) addNetwork(name, typ string, a adapters.Adapter) {
	n := &netState{name: name, typ: typ, since: time.Now()}
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
	var ls []linkStatus
	for name, rooms := range links {
		l := linkStatus{Name: name, Rooms: []string{}}
		for _, r := range rooms {
			l.Rooms = append(l.Rooms, r.String())
		}
		ls = append(ls, l)
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
	o.mu.Lock()
	o.links = ls
	o.mu.Unlock()
}

func (o *ops) setStore(depth func(context.Context) (int, error), m *metrics) {
	o.mu.Lock()
	o.depth, o.metrics = depth, m
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
}

type networkStatus struct {
	Name  string    `json:"name"`
	Type  string    `json:"type"`
	State string    `json:"state"` // "up" or "down"
	Since time.Time `json:"since"` // of the last change of state
	// For is how long the network has been in its state, in seconds.
	For float64 `json:"for_seconds"`
}

type linkStatus struct {
	Name  string   `json:"name"`
	Rooms []string `json:"rooms"`
}

type outboxStatus struct {
	Depth int    `json:"depth"`
	Error string `json:"error,omitempty"`
}

// status polls the networks and the store.
func (o *ops) status(ctx context.Context) status {
	o.poll()
	now := time.Now()
	st := status{Version: version, Commit: commit, Time: now.UTC(), Problems: []string{}, Networks: []networkStatus{}, Links: []linkStatus{}}
	o.mu.Lock()
	depth := o.depth
	for _, n := range o.nets {
		ns := networkStatus{Name: n.name, Type: n.typ, State: "down", Since: n.since.UTC(), For: now.Sub(n.since).Round(time.Second).Seconds()}
		if n.up {
			ns.State = "up"
		} else if d := now.Sub(n.since); d > o.grace {
			st.Problems = append(st.Problems, fmt.Sprintf("networks.%s: down for %v", n.name, d.Round(time.Second)))
		}
		st.Networks = append(st.Networks, ns)
	}
	st.Links = append(st.Links, o.links...)
	o.mu.Unlock()
	if depth == nil {
		st.Outbox.Error = "store not open"
		st.Problems = append(st.Problems, "store: not open")
	} else {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		n, err := depth(ctx)
		if err != nil {
			st.Outbox.Error = err.Error()
			st.Problems = append(st.Problems, "store: "+err.Error())
		}
		st.Outbox.Depth = n
	}
	sort.Strings(st.Problems)
	st.Ready = len(st.Problems) == 0
	return st
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
		promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
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
