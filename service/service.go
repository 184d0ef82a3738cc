// Package service is one running Switchboard: it wires the store, the
// router, the networks' adapters, the chat commands, the status, the
// metrics, the provisioning API and the embedded broker together, runs
// them until told to stop, and reloads the config file on SIGHUP. It
// runs the network types registered with adapters.Register; the binary
// picks them (adapters/all).
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/avatars"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/broker"
	"github.com/switchboard-chat/switchboard/chatcmd"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/httpapi"
	"github.com/switchboard-chat/switchboard/internal/listenerr"
	"github.com/switchboard-chat/switchboard/mapping"
	"github.com/switchboard-chat/switchboard/metrics"
	"github.com/switchboard-chat/switchboard/status"
	"github.com/switchboard-chat/switchboard/store"
	"github.com/switchboard-chat/switchboard/textlinks"
)

// Service is one running Switchboard: store, router, adapters, HTTP.
type Service struct {
	cfg    *config.Config
	log    *slog.Logger
	broker *broker.Broker
	store  *store.Store
	router *bridge.Router
	nets   *netSet
	http   *http.Server
	// stopRetention ends the store's pruning and waits for it.
	stopRetention func()
	// stopNotices ends the telling of people whose accounts failed.
	stopNotices func()
	mux         *http.ServeMux
	ops         *status.Ops

	// Links: the file's, with runtime changes laid over (see links.go).
	linkMu  sync.Mutex // serializes link changes and reloads
	links   *mapping.Links
	overlay linkOverlay
	// ignores are the networks' and links' ignore lists; a reload swaps
	// them.
	ignores *mapping.Ignores
	// people are the config's people with the API's changes laid over
	// (people.go); a reload or a change swaps them, and hands each
	// adapter with personal connections its accounts again.
	people        *mapping.People
	peopleOverlay peopleOverlay
	// peopleCfg is s.cfg with the overlay's people: what is in place.
	peopleCfg *config.Config
	state     adapters.State
	// roomsWake has people's connections' rooms handed over again
	// (wakePersonalRooms).
	roomsWake chan struct{}
	// onReload is told of each config a reload puts in place (the chat
	// commands take their admins from it).
	onReload func(*config.Config)
	// away marks people's own connections away while they are idle at
	// home (away.go).
	away *awayTracker
	api  *httpapi.API // the provisioning API

	// What every network's adapter is handed (see startNetwork).
	avatars *avatars.Store
	texts   *textlinks.Links
	cmds    *chatcmd.Commands
	// cluster is cluster mode's part, nil on one instance (cluster.go).
	cluster *clusterPart

	// HTTPAddr is where the HTTP listener ended up (the config may say :0).
	HTTPAddr string
}

// Start brings everything up in dependency order: what receives events
// (store, router) before what produces them (adapters). On error, what was
// started is stopped again.
func Start(ctx context.Context, cfg *config.Config, log *slog.Logger) (_ *Service, err error) {
	s := &Service{cfg: cfg, nets: newNetSet(), ops: status.New(cfg.HTTP.ReadyGrace, Version, Commit), roomsWake: make(chan struct{}, 1), away: newAwayTracker(nil)}
	// Everything logs through the ops' handler, which keeps each
	// network's latest problem for the status pages.
	log = slog.New(s.ops.LogHandler(log.Handler()))
	s.log = log
	defer func() {
		if err != nil {
			s.Stop(context.Background())
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	httpLn, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return nil, listenerr.Wrap("http.listen", cfg.HTTP.Listen, err)
	}
	// Bound now, so a port in use fails the start; served once every
	// handler is in place (until then, requests wait in the backlog
	// instead of getting a 404 for the chat page).
	defer func() {
		if err != nil {
			httpLn.Close()
		}
	}()
	s.HTTPAddr = httpLn.Addr().String()
	s.mux = s.routes()
	s.http = &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	var brokerNets map[string]*config.Network
	if cfg.Broker != nil {
		var creds []broker.Credential
		if brokerNets, creds, err = broker.Networks(cfg, cfg.Broker.Listen); err != nil {
			return nil, err
		}
		if s.broker, err = broker.Start(cfg.Broker.Listen, cfg.DataDir, creds, log); err != nil {
			return nil, err
		}
	}
	if s.store, err = store.Open(ctx, cfg.StoreDSN(), cfg.DataDir, log.With("component", "store")); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := s.loadOverlay(ctx); err != nil {
		return nil, err
	}
	linkMap, err := effectiveLinks(cfg, s.overlay)
	if err != nil {
		return nil, fmt.Errorf("links changed at runtime (through the API or chat commands) no longer fit the config: %w", err)
	}
	links, err := mapping.NewLinks(linkMap)
	if err != nil {
		return nil, err
	}
	s.links = links
	s.links.SetRelayed(parseRooms(s.overlay.Relay))
	s.ops.SetLinks(linkMap)
	names := make([]string, 0, len(cfg.Networks))
	for name := range cfg.Networks {
		names = append(names, name)
	}
	sort.Strings(names)
	m := metrics.New(names, s.ops.IsUp, s.store, s.ops.Adapters, cfg.Cluster.Instance)
	s.ops.SetStore(s.store, m)
	s.router = bridge.NewRouter(s.store, links, log.With("component", "router"))
	s.router.Observer = m
	if s.ignores, err = mapping.NewIgnores(cfg.IgnoreLists()); err != nil {
		return nil, err
	}
	s.router.Ignore = s.ignores
	if err := s.loadPeopleOverlay(ctx); err != nil {
		return nil, err
	}
	effPeople, err := effectivePeople(cfg, s.peopleOverlay, "")
	if err != nil {
		return nil, fmt.Errorf("people changed at runtime (through the API) no longer fit the config: %w", err)
	}
	// No adapter yet: each gets its accounts below, as it is made.
	if err := s.usePeople(effPeople); err != nil {
		return nil, err
	}
	s.router.People = s.people
	s.router.OnPresence = s.wakePersonalRooms
	s.router.OnActive = s.away.active
	if cfg.Cluster.On() {
		if err := s.startCluster(ctx); err != nil {
			return nil, err
		}
		m.AddCluster(names, s.cluster.Holds)
	}
	if err := s.router.Start(ctx); err != nil {
		return nil, err
	}
	// Where people were when Switchboard last ran: their connections go
	// back into those links' rooms without their speaking again.
	peopleRooms := s.router.PeopleRooms()
	m.AddBlocks(s.router.Blocks)
	s.ops.SetBlocks(s.router.Blocks)
	s.api = httpapi.New(s, s.store, s.router, log)
	s.api.UsePeople(s)
	s.api.SetToken(cfg.HTTP.APIToken)
	s.api.Routes(s.mux)
	go s.ops.Watch()
	s.startRetention()
	admins, err := mapping.ParseAdmins(cfg.Admins)
	if err != nil {
		return nil, err
	}
	// Adapters hand their traffic to the chat commands, which pass all
	// but !sb commands on to the router.
	cmds := chatcmd.New(s.router, s, s.ops.Status, admins, log.With("component", "commands"))
	s.onReload = cmds.Reload
	cmds.IgnoreBy(s.ignores)
	// One avatar store for all networks: one reads avatars, another shows
	// them.
	avatarStore := avatars.New(s.store.State(avatars.Namespace), log.With("component", "avatars"))
	// Long messages link to their whole text, served here, when there is
	// a public URL to link to.
	var texts *textlinks.Links
	if cfg.HTTP.PublicURL != "" {
		if texts, err = textlinks.New(ctx, cfg.HTTP.PublicURL, s.store.State(stateNamespace), s.store, log.With("component", "textlinks")); err != nil {
			return nil, err
		}
		texts.Routes(s.mux)
	}
	s.avatars, s.texts, s.cmds = avatarStore, texts, cmds
	for _, name := range names {
		ncfg := cfg.Networks[name]
		if n, ok := brokerNets[name]; ok {
			ncfg = n // with the credentials the embedded broker knows it by
		}
		a, err := adapters.New(name, ncfg, log)
		if err != nil {
			return nil, err
		}
		s.ops.AddNetwork(name, cfg.Networks[name].Type, a)
		if s.cluster != nil {
			s.cluster.addNetwork(name, a)
		}
		if _, everywhere := a.(adapters.Everywhere); cfg.Cluster.On() && !everywhere {
			// Started by the instance that holds the network's lease.
			continue
		}
		if !cfg.Cluster.On() {
			s.deliverTo(name, a, nil)
		}
		if err := s.startNetwork(ctx, name, a, peopleRooms); err != nil {
			return nil, err
		}
	}
	nctx, stopNotices := context.WithCancel(context.Background())
	s.stopNotices = stopNotices
	go s.runPersonalRooms()
	go s.away.run(nctx)
	if s.cluster != nil {
		s.cluster.run()
	}
	go (&failureNotices{nets: s.nets, people: s.people, log: log.With("component", "people"), told: map[[2]string]bool{}}).run(nctx)
	go func() {
		if err := s.http.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	if s.broker != nil {
		go s.openBrokerWhenSubscribed(slices.Collect(maps.Keys(brokerNets)), s.broker.Open)
	}
	log.Info("switchboard running", "http", s.HTTPAddr, "networks", s.nets.len(), "links", len(links.Names()))
	return s, nil
}

// startNetwork hands a new adapter what it uses, starts it and joins its
// rooms; it then runs here (s.nets). rooms are where people's own
// connections were when Switchboard last ran.
func (s *Service) startNetwork(ctx context.Context, name string, a adapters.Adapter, rooms map[string][]bridge.RoomAddr) error {
	cfg := s.cfg
	if st, ok := a.(adapters.Stateful); ok {
		st.UseState(s.store.State(name))
	}
	if fu, ok := a.(adapters.FileUser); ok {
		fu.UseFiles(s.store)
	}
	if au, ok := a.(adapters.AvatarUser); ok {
		au.UseAvatars(s.avatars)
	}
	if pu, ok := a.(adapters.PublicURLUser); ok && cfg.HTTP.PublicURL != "" {
		pu.UsePublicURL(cfg.HTTP.PublicURL)
	}
	if tu, ok := a.(adapters.TextLinkUser); ok && s.texts != nil {
		tu.UseTextLinks(s.texts)
	}
	if hu, ok := a.(adapters.HistoryUser); ok {
		hu.UseHistory(&history{network: name, store: s.store, links: s.links, retain: cfg.Retention.Messages})
	}
	if hs, ok := a.(adapters.HTTPServer); ok {
		hs.RegisterHTTP(s.mux)
	}
	s.linkMu.Lock()
	personal := adapters.PersonalAccounts(s.peopleCfg)[name]
	s.linkMu.Unlock()
	if pu, ok := a.(adapters.PeopleUser); ok {
		pu.UsePeople(personal)
	}
	personalRooms(name, a, personal, rooms)
	if pa, ok := a.(adapters.PersonalAwayer); ok {
		s.away.addAwayer(name, pa)
	}
	if s.cluster != nil {
		s.cluster.use(a)
	}
	s.cmds.AddNetwork(name, cfg.Networks[name].Type, a)
	if err := a.Start(ctx, s.cmds); err != nil {
		return fmt.Errorf("networks.%s: %w", name, err)
	}
	s.nets.set(name, a)
	for _, room := range s.links.Rooms(name) {
		if err := a.Join(ctx, room); err != nil {
			return fmt.Errorf("networks.%s: join %s: %w", name, room, err)
		}
	}
	return nil
}

// deliverTo makes the router deliver to network through a, checking may
// (when not nil) before each delivery.
func (s *Service) deliverTo(name string, a adapters.Adapter, may func(bridge.Queued) bool) {
	if may != nil {
		s.router.SetGate(name, may)
	}
	s.router.AddNetwork(name, a)
	if r := s.cfg.Networks[name].SenderRate(); r != nil {
		s.router.SetRate(name, bridge.RateLimit{PerSecond: r.PerSecond, Burst: r.Burst})
	}
}

// openBrokerWhenSubscribed lets devices onto the embedded broker once the
// bridge's networks on it have subscribed every room they joined in Start.
func (s *Service) openBrokerWhenSubscribed(networks []string, open func()) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		ready := true
		for _, name := range networks {
			if c, ok := s.nets.get(name).(adapters.Connected); ok && !c.Connected() {
				ready = false
			}
		}
		if ready {
			open()
			return
		}
		select {
		case <-s.ops.Done():
			return
		case <-t.C:
		}
	}
}

// Stop shuts down in reverse: adapters first, so nothing new arrives, then
// the router (undelivered events stay in the outbox), then the rest.
func (s *Service) Stop(ctx context.Context) {
	s.ops.Stop()
	if s.stopNotices != nil {
		s.stopNotices()
	}
	if s.cluster != nil {
		// Hands this instance's networks over, at once.
		s.cluster.stop()
	}
	for name, a := range s.nets.all() {
		if err := a.Stop(ctx); err != nil {
			s.log.Warn("stop network", "network", name, "err", err)
		}
	}
	if s.cluster != nil {
		s.cluster.close()
	}
	if s.router != nil {
		s.router.Stop()
	}
	if s.http != nil {
		s.http.Shutdown(ctx)
	}
	if s.broker != nil {
		broker.Close(ctx, s.broker, s.log)
	}
	if s.stopRetention != nil {
		s.stopRetention()
	}
	if s.store != nil {
		s.store.Close()
	}
}

// retentionEvery is how often the store prunes what retention removes,
// besides at start. (A variable for tests.)
var retentionEvery = time.Hour

// startRetention has the store prune by the config's retention, in the
// background, until stop.
func (s *Service) startRetention() {
	r := s.cfg.Retention
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.store.RunRetention(ctx, store.Retention{Messages: r.Messages, IDs: r.IDs, Failed: r.Failed}, retentionEvery)
	}()
	s.stopRetention = func() { cancel(); <-done }
}

func (s *Service) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	s.ops.Routes(mux) // /readyz, /metrics, /api/status, /status
	return mux
}
