// Package webrtc bridges browsers (and any WebRTC peer) over data
// channels: a peer POSTs an SDP offer to /webrtc/{room} on Switchboard's
// HTTP listener, gets the answer back with every ICE candidate in it
// (WHIP-style, no trickle), and then speaks JSON frames on a data channel
// named "chat". Rooms are plain names; a room exists while it is linked.
// The protocol is described in docs/webrtc.md.
package webrtc

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/linksign"
	"github.com/switchboard-chat/switchboard/wire"
)

var (
	_ adapters.Leaver  = (*Adapter)(nil)
	_ bridge.BotSender = (*Adapter)(nil)
)

//go:embed example.yaml
var example string

func init() {
	adapters.Register(adapters.Type{
		NetworkType: config.NetworkType{
			Name:    "webrtc",
			Config:  func() config.Section { return new(Config) },
			Example: example,
			Rooms:   "WebRTC rooms are plain names (letters, digits, . _ -, at most 64 bytes).",
			// It owns the HTTP paths of the signaling and the chat page.
			Single: "it serves the HTTP paths /webrtc/ and /",
			// A person's token shows them on the page as themselves.
			// The page is the person's own client, so it may be their
			// home: direct messages to them wait until a page of theirs
			// is open (see direct.go). Only a token tells the page it is
			// them.
			Accounts: &config.AccountRules{Credentials: []string{"token"}, Check: checkAccount, HomeNoteOf: homeNote},
		},
		New: func(name string, n *config.Network, log *slog.Logger) (adapters.Adapter, error) {
			c, _ := n.Section.(*Config)
			if c == nil {
				return nil, fmt.Errorf("networks.%s: no webrtc section", name)
			}
			return New(name, *c, log), nil
		},
	})
}

// Timeouts are the adapter's time limits; tests shorten them.
type Timeouts struct {
	// ICE: a peer is disconnected after Disconnected without traffic and
	// gone after Failed; KeepAlive is the interval of consent checks.
	Disconnected, Failed, KeepAlive time.Duration
	// Gather bounds ICE gathering before answering an offer.
	Gather time.Duration
	// Hello is how long a new session may take to open its channel and
	// say hello before it is dropped.
	Hello time.Duration
}

// DefaultTimeouts are used unless the adapter's Timeouts are changed
// before Start.
var DefaultTimeouts = Timeouts{
	Disconnected: 5 * time.Second,
	Failed:       15 * time.Second,
	KeepAlive:    2 * time.Second,
	Gather:       10 * time.Second,
	Hello:        30 * time.Second,
}

// maxBuffered is how many bytes may wait to be sent to one peer; a peer
// that reads slower than its room talks is dropped past it.
const maxBuffered = 4 << 20

// Adapter is one webrtc network.
type Adapter struct {
	name string
	cfg  Config
	log  *slog.Logger

	// Timeouts and InterfaceFilter may be set before Start.
	Timeouts Timeouts
	// InterfaceFilter, when set, restricts ICE to the interfaces it keeps
	// (config interfaces otherwise).
	InterfaceFilter func(string) bool

	dropMu  sync.Mutex
	dropped map[string]uint64

	mu       sync.Mutex
	api      *webrtc.API
	udpMux   ice.UDPMux
	in       bridge.Inbound
	ctx      context.Context
	cancel   context.CancelFunc
	rooms    map[string]*room
	sessions map[string]*peer
	people   []adapters.PersonalAccount // web accounts with a token
	// Files (files.go): set before Start, fileKey by Start.
	publicURL string
	state     adapters.State
	files     bridge.FileStore
	fileKey   linksign.Key
	history   adapters.History // nil: no history for newcomers
	stopped   bool
	wg        sync.WaitGroup

	// Cluster mode (relay.go): relay is nil on a single instance.
	relay   adapters.Relay
	origin  string // this adapter's id in the envelopes it publishes
	unrelay func()
	remote  map[string]*remoteInstance // the other instances' peers, by origin
	// relayMu orders a roster after the joins and leaves it has seen.
	relayMu sync.Mutex
}

// room is a linked room and the peers in it.
type room struct {
	name    string
	pending int              // sessions not yet said hello
	peers   map[string]*peer // by session, after hello
	authors *authorLog
	// left is set once the room is left: its sessions are closing and
	// nothing they send is accepted any more.
	left bool
}

// New builds an adapter; Start opens its UDP port.
func New(name string, cfg Config, log *slog.Logger) *Adapter {
	return &Adapter{
		name:     name,
		dropped:  map[string]uint64{},
		cfg:      cfg,
		log:      log,
		Timeouts: DefaultTimeouts,
		rooms:    map[string]*room{},
		sessions: map[string]*peer{},
		origin:   newOrigin(),
		remote:   map[string]*remoteInstance{},
	}
}

func (a *Adapter) Network() string { return a.name }

// Start opens the UDP port every peer is served on.
func (a *Adapter) Start(ctx context.Context, in bridge.Inbound) error {
	filter := a.InterfaceFilter
	if filter == nil && len(a.cfg.Interfaces) > 0 {
		ifs := slices.Clone(a.cfg.Interfaces)
		filter = func(name string) bool { return slices.Contains(ifs, name) }
	}
	opts := []ice.UDPMuxFromPortOption{ice.UDPMuxFromPortWithNetworks(ice.NetworkTypeUDP4, ice.NetworkTypeUDP6)}
	if filter != nil {
		opts = append(opts, ice.UDPMuxFromPortWithInterfaceFilter(filter))
	}
	if a.cfg.LoopbackCandidates {
		opts = append(opts, ice.UDPMuxFromPortWithLoopback())
	}
	if err := a.loadFileKey(ctx); err != nil {
		return fmt.Errorf("webrtc: files: %w", err)
	}
	mux, err := ice.NewMultiUDPMuxFromPort(a.cfg.UDPPort, opts...)
	if err != nil {
		return fmt.Errorf("webrtc: udp_port %d: %w", a.cfg.UDPPort, err)
	}
	if len(mux.GetListenAddresses()) == 0 {
		mux.Close()
		return errors.New("webrtc: no address to serve peers on (check interfaces and loopback_candidates)")
	}
	se := webrtc.SettingEngine{}
	se.SetICEUDPMux(mux)
	se.SetIncludeLoopbackCandidate(a.cfg.LoopbackCandidates)
	// mDNS would send multicast queries for the .local names browsers
	// hide their addresses behind; their checks reach us anyway and make
	// peer-reflexive candidates, so nothing is lost without it.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	if filter != nil {
		se.SetInterfaceFilter(filter)
	}
	t := a.Timeouts
	se.SetICETimeouts(t.Disconnected, t.Failed, t.KeepAlive)
	a.mu.Lock()
	a.api = webrtc.NewAPI(webrtc.WithSettingEngine(se))
	a.udpMux = mux
	a.in = in
	a.ctx, a.cancel = context.WithCancel(context.WithoutCancel(ctx))
	var addrs []string
	for _, ad := range mux.GetListenAddresses() {
		addrs = append(addrs, ad.String())
	}
	a.mu.Unlock()
	if err := a.startRelay(); err != nil {
		a.Stop(context.WithoutCancel(ctx))
		return fmt.Errorf("webrtc: cluster relay: %w", err)
	}
	a.log.Info("webrtc serving peers", "udp", addrs)
	return nil
}

// UDPAddrs lists the local UDP addresses peers are served on.
func (a *Adapter) UDPAddrs() []net.Addr {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.udpMux == nil {
		return nil
	}
	return a.udpMux.GetListenAddresses()
}

// Join makes a room available to peers.
func (a *Adapter) Join(_ context.Context, name string) error {
	if err := CheckRoom(name); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.rooms[name] == nil {
		a.rooms[name] = &room{name: name, peers: map[string]*peer{}, authors: newAuthorLog(authorLogSize)}
	}
	return nil
}

// closeGrace is how long a session of a closed room stays open after it
// was told, so the error frame is not lost in the channel's teardown.
const closeGrace = time.Second

// Leave stops serving a room: new offers for it get 404, and its peers
// get a room_closed error and are disconnected shortly after (the page
// then shows the join form). Their leaving is not reported: the room is
// no longer linked. Joining the room again serves it afresh.
func (a *Adapter) Leave(_ context.Context, name string) error {
	a.mu.Lock()
	r := a.rooms[name]
	if r == nil {
		a.mu.Unlock()
		return nil
	}
	delete(a.rooms, name)
	r.left = true
	var peers []*peer
	for _, p := range a.sessions {
		if p.room == r {
			peers = append(peers, p)
		}
	}
	a.mu.Unlock()
	frame := encodeFrame(errorFrame{Type: "error", Code: codeRoomClosed, Message: "room " + name + " is no longer bridged"})
	for _, p := range peers {
		p.sendRaw(frame)
		time.AfterFunc(closeGrace, func() { p.close("room closed") })
	}
	a.log.Info("room left", "room", name, "peers", len(peers))
	return nil
}

// SendAsBot shows a notice from Switchboard to the room's peers or, when
// room is "", to the peer(s) with id user. It has the shape of an event
// frame, with type "notice" (see wire.EncodeNotice).
func (a *Adapter) SendAsBot(_ context.Context, room, user, text string) error {
	now := time.Now()
	if room != "" {
		frame, err := wire.EncodeNotice(room, text, now)
		if err != nil {
			return bridge.Permanent(fmt.Errorf("webrtc: encode notice: %w", err))
		}
		a.mu.Lock()
		r := a.rooms[room]
		if r == nil {
			a.mu.Unlock()
			return bridge.Permanent(fmt.Errorf("webrtc: room %q is not joined", room))
		}
		peers := r.list()
		a.mu.Unlock()
		for _, p := range peers {
			p.sendRaw(frame)
		}
		a.relayRoomFrame(room, frame, nil)
		return nil
	}
	a.mu.Lock()
	peers := a.peersByID(user)
	remote := a.remoteID(user, false)
	a.mu.Unlock()
	if len(peers) == 0 && !remote {
		return bridge.Permanent(fmt.Errorf("webrtc: no peer with id %q", user))
	}
	a.noticeTo(peers, text, now)
	a.publish(relayEnvelope{Kind: relayNotice, To: user, Notice: text, Time: now})
	return nil
}

// noticeTo shows a private notice to peers, each in its own room, which
// the notice names.
func (a *Adapter) noticeTo(peers []*peer, text string, at time.Time) {
	by := map[string][]byte{}
	for _, p := range peers {
		frame, ok := by[p.room.name]
		if !ok {
			f, err := wire.EncodeNotice(p.room.name, text, at)
			if err != nil {
				a.log.Warn("encode notice", "err", err)
				return
			}
			frame, by[p.room.name] = f, f
		}
		p.sendRaw(frame)
	}
}

// peersByID returns the sessions that said hello as id, in any room;
// a.mu is held.
func (a *Adapter) peersByID(id string) []*peer {
	var out []*peer
	for _, p := range a.sessions {
		p.mu.Lock()
		match := p.hello && p.sender.ID == id
		p.mu.Unlock()
		if match && !p.room.left {
			out = append(out, p)
		}
	}
	return out
}

// Stop closes every peer connection (each says leave) and the UDP port.
func (a *Adapter) Stop(ctx context.Context) error {
	a.mu.Lock()
	a.stopped = true
	peers := make([]*peer, 0, len(a.sessions))
	for _, p := range a.sessions {
		peers = append(peers, p)
	}
	a.mu.Unlock()
	for _, p := range peers {
		p.close("switchboard stopped")
	}
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	a.mu.Lock()
	if a.cancel != nil {
		a.cancel()
	}
	if a.udpMux != nil {
		a.udpMux.Close()
		a.udpMux = nil
	}
	a.mu.Unlock()
	a.stopRelay()
	return nil
}

// Peers counts the peers in a room that said hello.
func (a *Adapter) Peers(roomName string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r := a.rooms[roomName]; r != nil {
		return len(r.peers)
	}
	return 0
}

// Send and the capabilities broadcast the event to the room's peers. The
// remote id is the bridge event id: it is the "id" peers see and what
// they put in reply_to, target and edit frames.
func (a *Adapter) Send(ctx context.Context, d *bridge.Delivery) (string, error) {
	return a.deliver(d)
}

func (a *Adapter) SendReply(ctx context.Context, d *bridge.Delivery) (string, error) {
	return a.deliver(d)
}

func (a *Adapter) SendEdit(ctx context.Context, d *bridge.Delivery) (string, error) {
	return a.deliver(d)
}

func (a *Adapter) SendDelete(ctx context.Context, d *bridge.Delivery) error {
	_, err := a.deliver(d)
	return err
}

func (a *Adapter) SendReaction(ctx context.Context, d *bridge.Delivery) (string, error) {
	return a.deliver(d)
}

func (a *Adapter) SendMembership(ctx context.Context, d *bridge.Delivery) error {
	_, err := a.deliver(d)
	return err
}

func (a *Adapter) SendTopic(ctx context.Context, d *bridge.Delivery) error {
	_, err := a.deliver(d)
	return err
}

func (a *Adapter) SendTyping(ctx context.Context, d *bridge.Delivery) error {
	_, err := a.deliver(d)
	return err
}

func (a *Adapter) SendPresence(ctx context.Context, d *bridge.Delivery) error {
	_, err := a.deliver(d)
	return err
}

func (a *Adapter) deliver(d *bridge.Delivery) (string, error) {
	if d == nil || d.Event == nil {
		return "", bridge.Permanent(errors.New("webrtc: empty delivery"))
	}
	if d.Room == "" && d.Event.Head().To != nil {
		return a.deliverDirect(d)
	}
	frame, err := wire.Encode(d.Event)
	if err != nil {
		return "", bridge.Permanent(fmt.Errorf("webrtc: encode %s event: %w", d.Event.Kind(), err))
	}
	a.mu.Lock()
	r := a.rooms[d.Room]
	if r == nil {
		a.mu.Unlock()
		return "", bridge.Permanent(fmt.Errorf("webrtc: room %q is not joined", d.Room))
	}
	var author *bridge.Sender
	if m, ok := d.Event.(*bridge.Message); ok {
		r.authors.add(string(m.ID), m.Sender)
		author = &m.Sender
	}
	peers := r.list()
	a.mu.Unlock()
	for _, p := range peers {
		p.sendRaw(frame)
	}
	a.relayRoomFrame(d.Room, frame, author)
	return string(d.Event.Head().ID), nil
}

// list returns the room's peers that said hello; a.mu is held.
func (r *room) list() []*peer {
	out := make([]*peer, 0, len(r.peers))
	for _, p := range r.peers {
		out = append(out, p)
	}
	return out
}

// authorLogSize bounds how many message authors a room remembers for
// checking edits and deletes before they are shown to the room's peers.
const authorLogSize = 4096

// authorLog remembers who wrote the recent messages of a room.
type authorLog struct {
	max   int
	order []string
	by    map[string]bridge.Sender
}

func newAuthorLog(max int) *authorLog {
	return &authorLog{max: max, by: map[string]bridge.Sender{}}
}

func (l *authorLog) add(id string, s bridge.Sender) {
	if _, ok := l.by[id]; ok {
		return
	}
	if len(l.order) >= l.max {
		delete(l.by, l.order[0])
		l.order = l.order[1:]
	}
	l.order = append(l.order, id)
	l.by[id] = s
}

func (l *authorLog) get(id string) (bridge.Sender, bool) {
	s, ok := l.by[id]
	return s, ok
}
