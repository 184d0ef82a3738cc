package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/mapping"
	"github.com/switchboard-chat/switchboard/store"

	_ "github.com/switchboard-chat/switchboard/irc"
	_ "github.com/switchboard-chat/switchboard/matrix"
	_ "github.com/switchboard-chat/switchboard/mqtt"
	_ "github.com/switchboard-chat/switchboard/webrtc"
	_ "github.com/switchboard-chat/switchboard/xmpp"
)

// service is one running Switchboard: store, router, adapters, HTTP.
type service struct {
	cfg    *config.Config
	log    *slog.Logger
	broker *mochi.Server
	store  *store.Store
	router *bridge.Router
	nets   map[string]adapters.Adapter
	http   *http.Server
	mux    *http.ServeMux
	ops    *ops
	// HTTPAddr is where the HTTP listener ended up (the config may say :0).
	HTTPAddr string
}

// start brings everything up in dependency order: what receives events
// (store, router) before what produces them (adapters). On error, what was
// started is stopped again.
func start(ctx context.Context, cfg *config.Config, log *slog.Logger) (_ *service, err error) {
	s := &service{cfg: cfg, log: log, nets: map[string]adapters.Adapter{}, ops: newOps(cfg.HTTP.ReadyGrace)}
	defer func() {
		if err != nil {
			s.stop(context.Background())
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	httpLn, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return nil, listenError("http.listen", cfg.HTTP.Listen, err)
	}
	s.HTTPAddr = httpLn.Addr().String()
	s.mux = s.routes()
	s.http = &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.http.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	if cfg.Broker != nil {
		if s.broker, err = startBroker(cfg.Broker.Listen, cfg.DataDir, log); err != nil {
			return nil, err
		}
	}
	if s.store, err = store.Open(ctx, cfg.StoreDSN(), cfg.DataDir, log.With("component", "store")); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	linkMap, err := cfg.Links()
	if err != nil {
		return nil, err
	}
	links, err := mapping.NewLinks(linkMap)
	if err != nil {
		return nil, err
	}
	s.ops.setLinks(linkMap)
	names := make([]string, 0, len(cfg.Networks))
	for name := range cfg.Networks {
		names = append(names, name)
	}
	sort.Strings(names)
	m := newMetrics(names, s.ops.isUp, s.store.OutboxDepth)
	s.ops.setStore(s.store.OutboxDepth, m)
	s.router = bridge.NewRouter(s.store, links, log.With("component", "router"))
	s.router.Observer = m
	if err := s.router.Start(ctx); err != nil {
		return nil, err
	}
	go s.ops.watch()
	for _, name := range names {
		a, err := adapters.New(name, cfg.Networks[name], log)
		if err != nil {
			return nil, err
		}
		s.nets[name] = a
		s.ops.addNetwork(name, cfg.Networks[name].Type, a)
		if st, ok := a.(adapters.Stateful); ok {
			st.UseState(s.store.State(name))
		}
		if hs, ok := a.(adapters.HTTPServer); ok {
			hs.RegisterHTTP(s.mux)
		}
		s.router.AddNetwork(name, a)
		if err := a.Start(ctx, s.router); err != nil {
			return nil, fmt.Errorf("networks.%s: %w", name, err)
		}
		for _, room := range links.Rooms(name) {
			if err := a.Join(ctx, room); err != nil {
				return nil, fmt.Errorf("networks.%s: join %s: %w", name, room, err)
			}
		}
	}
	log.Info("switchboard running", "http", s.HTTPAddr, "networks", len(s.nets), "links", len(links.Names()))
	return s, nil
}

// stop shuts down in reverse: adapters first, so nothing new arrives, then
// the router (undelivered events stay in the outbox), then the rest.
func (s *service) stop(ctx context.Context) {
	s.ops.stop()
	for name, a := range s.nets {
		if err := a.Stop(ctx); err != nil {
			s.log.Warn("stop network", "network", name, "err", err)
		}
	}
	if s.router != nil {
		s.router.Stop()
	}
	if s.http != nil {
		s.http.Shutdown(ctx)
	}
	if s.broker != nil {
		s.broker.Close()
	}
	if s.store != nil {
		s.store.Close()
	}
}

func (s *service) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	s.ops.routes(mux) // /readyz, /metrics, /api/status, /status
	return mux
}
