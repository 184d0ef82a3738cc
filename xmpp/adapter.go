// Package xmpp bridges XMPP multi-user chat rooms (XEP-0045).
//
// As an external component (XEP-0114), the adapter gives every foreign
// sender a JID of their own on the component's domain
// (bob%libera@bridge.example.org, see puppetLocal) that joins the room as
// an occupant with a nick rendered from the puppet template; XMPP users
// can also write to such a JID directly. A bot occupant (the configured
// nick) joins every linked room and is what the adapter reads rooms
// through. With an ordinary account (jid and password) only the bot
// exists and it relays everyone as "<name> text".
//
// Messages are known by the room's XEP-0359 stanza-id (what MAM-enabled
// rooms add); what the adapter sends carries an origin-id derived from
// the bridge event id, and Send returns the stanza-id the room gave it.
// Corrections (XEP-0308), replies (XEP-0461), reactions (XEP-0444),
// retractions (XEP-0424), chat states (XEP-0085), message styling
// (XEP-0393) and out-of-band URLs (XEP-0066) map onto the bridge's events.
package xmpp

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/backoff"
	"github.com/switchboard-chat/switchboard/internal/fence"
	"github.com/switchboard-chat/switchboard/internal/quickack"
)

//go:embed example.yaml
var example string

func init() {
	adapters.Register(adapters.Type{
		NetworkType: config.NetworkType{
			Name:    "xmpp",
			Config:  func() config.Section { return new(Config) },
			Example: example,
			Rooms:   "XMPP rooms are MUC JIDs (room@conference.example.org, no /nick).",
			Kicks:   true,
			// An account with a password may be its person's home (no
			// NotHome): Switchboard's session is one resource of their
			// JID, and they keep their own client online as another; with
			// XMPP as home the session's priority is negative (see
			// homePriority), so chats to their bare JID reach their own
			// clients only.
			Accounts: &config.AccountRules{Credentials: []string{"password"}, Key: accountKey, Check: checkAccount},
		},
		New: New,
	})
}

// Defaults for zero fields of a network built in code (tests) rather
// than loaded, the ones Config.SetDefaults applies.
const (
	defaultNick      = "switchboard"
	defaultMaxStanza = 256 * 1024
	defaultTemplate  = "{name} ({network})"
	// maxNickAttempts bounds the nicks tried for one occupant.
	maxNickAttempts = 6
	// maxSent bounds the sent messages remembered for idempotent retries.
	maxSent = 10000
	sentTTL = 15 * time.Minute
)

// Drop reasons counted by Dropped.
const (
	DropOversize  = "oversize"  // larger than max_stanza
	DropMalformed = "malformed" // not XML we can read, bad addresses
	DropHistory   = "history"   // room history (a delay from before we joined)
)

// timing holds the adapter's timeouts; tests shorten them.
type timing struct {
	connect     time.Duration // dialing and stream negotiation
	write       time.Duration // writing one stanza
	join        time.Duration // a room's answer to a join
	reflect     time.Duration // a sent message coming back from the room
	ping        time.Duration // XEP-0410 self-ping interval
	pingTimeout time.Duration
	minBackoff  time.Duration // reconnect backoff
	maxBackoff  time.Duration
	rejoin      time.Duration // after the bot was removed from a room
}

var defaultTiming = timing{
	connect:     20 * time.Second,
	write:       15 * time.Second,
	join:        20 * time.Second,
	reflect:     20 * time.Second,
	ping:        time.Minute,
	pingTimeout: 30 * time.Second,
	minBackoff:  250 * time.Millisecond,
	maxBackoff:  30 * time.Second,
	rejoin:      5 * time.Second,
}

var (
	errNotConnected = fmt.Errorf("xmpp: %w", bridge.ErrNotConnected)
	errDisconnected = errors.New("xmpp: disconnected")
	errTimeout      = errors.New("xmpp: no answer in time")
)

// Adapter is the XMPP network adapter.
type Adapter struct {
	name       string
	cfg        Config
	component  bool
	relay      bool // the bot speaks for everyone
	kickBlocks bool
	template   string
	maxPuppets int
	idle       time.Duration
	maxStanza  int
	// textLinks makes the links to the whole of a cut message (set
	// before Start, then read only); nil without http.public_url.
	textLinks adapters.TextLinks
	// fence (cluster mode) is checked before every dial and every write
	// of every stream: the bot's or component's, people's. Set before
	// Start, then read only.
	fence *fence.Fence
	// state keeps what must survive a restart (thread ids, see
	// thread.go; uploads, see upload.go); set before Start, nil in some
	// unit tests.
	state     adapters.State
	domain    string  // the component's domain
	account   jid.JID // the client account (relay bot)
	botSender bridge.Sender
	log       *slog.Logger
	t         timing

	in     bridge.Inbound
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	queue  *adapters.AcceptQueue
	mod    *adapters.Moderation

	mu      sync.Mutex
	started bool
	stopped bool
	conn    *session
	gen     uint64
	rooms   map[string]*room                        // by bare room JID
	left    map[string]bool                         // rooms Leave took us out of, by bare room JID
	parting []*element                              // departures Leave could not send yet
	puppets map[string]*puppet                      // by sender network and id
	people  *adapters.Personal[*session, *personal] // people's own sessions, and the rooms each is to be in
	byJID   map[string]*puppet                      // by puppet JID
	sent    map[string]*outMsg                      // by room key and message id
	joins   map[string]chan joinResult
	iqs     map[string]chan *stanza
	archive map[string]*archiveQuery // by query id
	cu      catchUps                 // see catchup.go
	dropped map[string]uint64
	ready   atomic.Bool
	// iqLimits raises the size bound for answers to our own IQs that
	// carry more than max_stanza allows (vCards), by IQ id.
	iqLimits map[string]int

	up *uploads // XEP-0363 uploads of attachments

	// avatars, when set (before Start), receives occupants' vCard
	// avatars; see avatar.go.
	avatars    adapters.AvatarStore
	avatarSeen map[string]string // by sender key: the hash last dealt with
	avatarBusy map[string]bool   // by sender key: a fetch under way
	avatarSem  chan struct{}

	// testDropReflection, when set, makes the read loop ignore the
	// reflections it returns true for (tests: a reflection lost with the
	// connection). Called with mu held.
	testDropReflection func(*stanza) bool
	// testVCardFetch, when set, is told of every vCard request before
	// it is sent (tests: whom the adapter asks).
	testVCardFetch func(occupant jid.JID)
	// testDropPresence, when set, makes the read loop ignore the room
	// presences it returns true for (tests: a room slow to answer a
	// join). Called with mu held.
	testDropPresence func(*stanza) bool
}

// session is one stream to the server.
type session struct {
	s      *xmpp.Session
	gen    uint64
	ctx    context.Context // ends with the session
	cancel context.CancelFunc
	me     jid.JID       // the bot: the component's domain, or the bound JID
	filter *stanzaFilter // a component's; nil for an account
	person *personal     // the person whose own session this is; nil for the bot's
}

func (c *session) kill() {
	c.cancel()
	c.s.Conn().Close()
}

var (
	_ adapters.Adapter       = (*Adapter)(nil)
	_ adapters.Connected     = (*Adapter)(nil)
	_ bridge.Replier         = (*Adapter)(nil)
	_ bridge.Editor          = (*Adapter)(nil)
	_ bridge.Deleter         = (*Adapter)(nil)
	_ bridge.Reactor         = (*Adapter)(nil)
	_ bridge.MemberRelayer   = (*Adapter)(nil)
	_ bridge.TypingRelayer   = (*Adapter)(nil)
	_ bridge.PresenceRelayer = (*Adapter)(nil)
	_ bridge.DirectMessenger = (*Adapter)(nil)
	_ bridge.BotSender       = (*Adapter)(nil)
	_ adapters.Leaver        = (*Adapter)(nil)
	_ adapters.AvatarUser    = (*Adapter)(nil)
	_ adapters.TextLinkUser  = (*Adapter)(nil)
	_ adapters.Stateful      = (*Adapter)(nil)
	_ adapters.PublicURLUser = (*Adapter)(nil)
	_ adapters.Fenced        = (*Adapter)(nil)
)

// New builds the adapter for a configured XMPP network.
func New(name string, n *config.Network, log *slog.Logger) (adapters.Adapter, error) {
	var cfg *Config
	if n != nil {
		cfg, _ = n.Section.(*Config)
	}
	if cfg == nil {
		return nil, fmt.Errorf("networks.%s: no xmpp settings", name)
	}
	if log == nil {
		log = slog.Default()
	}
	c := *cfg
	if c.Component != nil {
		comp := *c.Component
		c.Component = &comp
	}
	if err := config.CheckHostPort(c.Server, true, false); err != nil {
		return nil, fmt.Errorf("networks.%s.server: %w", name, err)
	}
	a := &Adapter{
		name:       name,
		cfg:        c,
		template:   n.Puppets.Template,
		kickBlocks: n.KickBlocks,
		maxPuppets: n.Puppets.Max,
		idle:       n.Puppets.Idle,
		maxStanza:  c.MaxStanza,
		log:        log,
		t:          defaultTiming,
		rooms:      map[string]*room{},
		left:       map[string]bool{},
		puppets:    map[string]*puppet{},
		byJID:      map[string]*puppet{},
		sent:       map[string]*outMsg{},
		joins:      map[string]chan joinResult{},
		iqs:        map[string]chan *stanza{},
		archive:    map[string]*archiveQuery{},
		cu: catchUps{runs: map[string]*catchUpRun{}, queries: map[string]*catchUpQuery{},
			pos: map[string]string{}, dirty: map[string]bool{}, done: map[string]adapters.CatchUp{},
			wake: make(chan struct{}, 1)},
		dropped:    map[string]uint64{},
		iqLimits:   map[string]int{},
		avatarSeen: map[string]string{},
		avatarBusy: map[string]bool{},
		avatarSem:  make(chan struct{}, avatarParallel),
	}
	a.people = newPersonal(a)
	a.up = newUploads(c.Upload)
	switch {
	case c.Component != nil && c.JID != "":
		return nil, fmt.Errorf("networks.%s: component and jid are exclusive", name)
	// The rules are those of Config.Validate, for a network built in code.
	case c.Component != nil:
		if err := checkXMPPDomain(c.Component.Domain); err != nil {
			return nil, fmt.Errorf("networks.%s.component.domain: %w", name, err)
		}
		if c.Component.Secret == "" {
			return nil, fmt.Errorf("networks.%s.component.secret: not set", name)
		}
		a.component, a.domain = true, jid.MustParse(c.Component.Domain).String()
	case c.JID != "":
		if err := checkBareJID(c.JID, "an account"); err != nil {
			return nil, fmt.Errorf("networks.%s.jid: %w", name, err)
		}
		if c.Password == "" {
			return nil, fmt.Errorf("networks.%s.password: not set", name)
		}
		a.account = jid.MustParse(c.JID)
	default:
		return nil, fmt.Errorf("networks.%s: set component or jid", name)
	}
	switch n.Mode {
	case "", "puppet":
		a.relay = !a.component
	case "relay":
		a.relay = true
	default:
		return nil, fmt.Errorf("networks.%s.mode: %q is neither puppet nor relay", name, n.Mode)
	}
	if a.cfg.Nick == "" {
		a.cfg.Nick = defaultNick
	}
	if err := checkMUCNick(a.cfg.Nick); err != nil {
		return nil, fmt.Errorf("networks.%s.nick: %w", name, err)
	}
	if a.template == "" {
		a.template = defaultTemplate
	}
	if a.maxPuppets <= 0 {
		a.maxPuppets = config.DefaultPuppetMax
	}
	if a.idle <= 0 {
		a.idle = config.DefaultPuppetIdle
	}
	if a.maxStanza <= 0 {
		a.maxStanza = defaultMaxStanza
	}
	if err := c.Upload.check(); err != nil {
		return nil, fmt.Errorf("networks.%s.upload.service: %w", name, err)
	}
	a.botSender = bridge.Sender{Network: name, ID: a.cfg.Nick, Name: a.cfg.Nick}
	return a, nil
}

// Network is the network's name in the config.
func (a *Adapter) Network() string { return a.name }

// DirectMessages marks the adapter as one that delivers direct events.
func (a *Adapter) DirectMessages() {}

// Connected reports whether the stream is up and every room rejoined.
func (a *Adapter) Connected() bool { return a.ready.Load() }

// Dropped counts the inbound stanzas dropped on purpose, by reason.
func (a *Adapter) Dropped() map[string]uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.dropped)
}

func (a *Adapter) drop(reason string, args ...any) {
	a.mu.Lock()
	a.dropped[reason]++
	a.mu.Unlock()
	a.log.Warn("xmpp: dropped inbound stanza", append([]any{"reason", reason}, args...)...)
}

// Start connects in the background and keeps reconnecting until Stop.
func (a *Adapter) Start(ctx context.Context, in bridge.Inbound) error {
	if in == nil {
		return errors.New("xmpp: Start needs an Inbound")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.started || a.stopped {
		return errors.New("xmpp: already started or stopped")
	}
	a.started = true
	a.in = in
	a.ctx, a.cancel = context.WithCancel(context.WithoutCancel(ctx))
	a.queue = adapters.NewAcceptQueue(a.log)
	a.queue.OnTaken(a.taken)
	a.mod = adapters.NewModeration(a.name, a.kickBlocks, in, a.log)
	a.wg.Add(5)
	go func() { defer a.wg.Done(); a.catchUpFlusher() }()
	go func() { defer a.wg.Done(); a.mod.Run(a.ctx) }()
	go func() { defer a.wg.Done(); a.queue.Run(a.ctx, in) }()
	go func() { defer a.wg.Done(); a.run() }()
	go func() { defer a.wg.Done(); a.janitor() }()
	a.people.StartLocked(a.ctx)
	mode := "puppet"
	if a.relay {
		mode = "relay"
	}
	if a.component {
		a.log.Info("xmpp adapter started", "server", a.cfg.Server, "component", a.domain, "mode", mode)
	} else {
		a.log.Info("xmpp adapter started", "server", a.cfg.Server, "jid", a.account.String(), "mode", mode)
	}
	return nil
}

// run connects, serves the stream until it ends and connects again, with
// backoff, until Stop. A server that accepts the stream and ends it soon
// after is not connected to again at once: the backoff starts over only
// after a stream stayed up.
func (a *Adapter) run() {
	b := backoff.New(a.t.minBackoff, a.t.maxBackoff)
	for a.ctx.Err() == nil {
		c, err := a.connect()
		if err != nil {
			if a.ctx.Err() != nil {
				return
			}
			d := b.Next()
			a.log.Warn("xmpp: cannot connect", "server", a.cfg.Server, "err", err, "retry_in", d)
			if !b.Sleep(a.ctx, d, nil) {
				return
			}
			continue
		}
		b.Connected()
		err = a.serve(c)
		if a.ctx.Err() != nil {
			return
		}
		d := b.Next()
		a.log.Warn("xmpp: disconnected; reconnecting", "server", a.cfg.Server, "err", err, "retry_in", d)
		if !b.Sleep(a.ctx, d, nil) {
			return
		}
	}
}

// UseFence implements adapters.Fenced: every stream of the adapter
// checks may before each dial and each write to its socket
// (internal/fence).
func (a *Adapter) UseFence(may func() bool) { a.fence = fence.New(may, a.log) }

// connect dials the server and negotiates the adapter's own stream: the
// component handshake, or a login as the bot's account.
func (a *Adapter) connect() (*session, error) {
	if a.component {
		return a.connectAs(a.ctx, a.cfg.Server, jid.JID{}, "")
	}
	return a.connectAs(a.ctx, a.cfg.Server, a.account, a.cfg.Password)
}

// connectAs dials server and negotiates a stream: the component
// handshake when account is zero, else StartTLS (unless
// insecure_plaintext), SASL and resource binding (the resource account
// asks for, if any) as account. The session ends with parent.
func (a *Adapter) connectAs(parent context.Context, server string, account jid.JID, password string) (*session, error) {
	// A fenced instance opens no stream (internal/fence); run's backoff
	// paces the retries until the adapter is stopped.
	if err := a.fence.CheckDial("tcp", server); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(parent, a.t.connect)
	defer cancel()
	raw, err := (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext(ctx, "tcp", server)
	if err != nil {
		return nil, err
	}
	// The fence is under StartTLS and the stanza filter: every byte of
	// the stream is checked, the stream's close included.
	raw = a.fence.Wrap(quickack.Wrap(raw))
	// mellium bounds negotiation by its context from a goroutine that can
	// still fire after negotiation returned and our cancel ran: it sets a
	// past deadline and clears it, failing whatever the session writes in
	// between. So negotiation gets a context that never ends, a deadline
	// on the connection bounds it, and Stop closes the connection.
	raw.SetDeadline(time.Now().Add(a.t.connect))
	bounded := ctx
	unwatch := context.AfterFunc(bounded, func() { raw.Close() })
	defer unwatch()
	ctx = context.WithoutCancel(ctx)
	var s *xmpp.Session
	var filter *stanzaFilter
	isComponent := account.Equal(jid.JID{})
	if isComponent {
		// The copies skip drops are dropped unread (stanzaFilter).
		filter = newStanzaFilter(raw, a.skip)
		s, err = component.NewSession(ctx, jid.MustParse(a.domain), []byte(a.cfg.Component.Secret), filter)
	} else {
		var features []xmpp.StreamFeature
		var state xmpp.SessionState
		mechs := []sasl.Mechanism{sasl.ScramSha256Plus, sasl.ScramSha1Plus, sasl.ScramSha256, sasl.ScramSha1}
		if a.cfg.InsecurePlaintext {
			// The stream carries no password in clear with SCRAM; PLAIN
			// is left out for the same reason.
			state = xmpp.Secure
		} else {
			features = append(features, xmpp.StartTLS(&tls.Config{ServerName: account.Domainpart(), MinVersion: tls.VersionTLS12}))
			mechs = append(mechs, sasl.Plain)
		}
		features = append(features, xmpp.SASL("", password, mechs...), xmpp.BindResource())
		s, err = xmpp.NewSession(ctx, account.Domain(), account, raw, state,
			xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
				return xmpp.StreamConfig{Features: features}
			}))
	}
	if err != nil || !unwatch() {
		raw.Close()
		return nil, fmt.Errorf("stream negotiation: %w", cmp.Or(err, bounded.Err()))
	}
	raw.SetDeadline(time.Time{})
	c := &session{s: s, me: s.LocalAddr(), filter: filter}
	if isComponent {
		c.me = jid.MustParse(a.domain)
		filter.handle = a.handleRaw(c)
	}
	c.ctx, c.cancel = context.WithCancel(parent)
	return c, nil
}

// serve runs one session: it reads the stream (the handler processes each
// stanza in order), joins the rooms and keeps checking them, and returns
// when the stream ends.
func (a *Adapter) serve(c *session) error {
	err := a.serveStream(c, xmpp.HandlerFunc(a.handler(c)), func() { a.setup(c) }, func() { a.pinger(c) })
	a.sessionDown(c)
	return err
}

// serveStream reads c's stream with h until it ends, and runs alongside
// the goroutines of also; it returns why the stream ended. The bot's
// session becomes the adapter's; once c's context is done, a person's
// stream is closed at once, which takes its occupant out of its rooms,
// while the server is given a moment to end the bot's.
func (a *Adapter) serveStream(c *session, h xmpp.Handler, also ...func()) error {
	a.mu.Lock()
	a.gen++
	c.gen = a.gen
	if c.person == nil {
		a.conn = c
	}
	stopped := a.stopped
	a.mu.Unlock()
	if stopped {
		c.kill()
		return errDisconnected
	}
	done := make(chan error, 1)
	go func() { done <- c.s.Serve(h) }()
	a.wg.Add(len(also))
	for _, f := range also {
		go func() { defer a.wg.Done(); f() }()
	}
	var err error
	select {
	case err = <-done:
	case <-c.ctx.Done():
		// Stopped, removed or a failed write.
		if c.person != nil {
			go c.s.Close()
		}
		select {
		case err = <-done:
		case <-time.After(2 * time.Second):
			c.s.Conn().Close()
			err = <-done
		}
	}
	c.kill()
	return err
}

// setup joins every room with the bot, then every puppet back into its
// rooms, and tells the router the network is back.
func (a *Adapter) setup(c *session) {
	if !a.component {
		// Available, like any client after login: the server hands
		// messages to the bare account JID (direct messages to the bot)
		// only to available resources.
		if err := a.write(c, el("", "presence")); err != nil {
			return
		}
	}
	if err := a.departPending(c); err != nil {
		return
	}
	for _, r := range a.roomList() {
		if err := a.joinBot(c.ctx, c, r); err != nil && c.ctx.Err() == nil {
			a.log.Warn("xmpp: cannot join room", "room", r.addr, "err", err)
		}
	}
	if !a.relay {
		a.rejoinPuppets(c, "")
	}
	if c.ctx.Err() != nil {
		return
	}
	a.ready.Store(true)
	a.log.Info("xmpp: connected", "server", a.cfg.Server, "as", c.me.String())
	a.in.Online(a.name)
}

// rejoinPuppets takes puppets back into the rooms they were in (all
// rooms, or one), a few at a time.
func (a *Adapter) rejoinPuppets(c *session, only string) {
	type job struct {
		p *puppet
		r *room
	}
	var jobs []job
	a.mu.Lock()
	for _, p := range a.puppets {
		for key := range p.rooms {
			if r := a.rooms[key]; r != nil && (only == "" || only == key) {
				jobs = append(jobs, job{p, r})
			}
		}
	}
	a.mu.Unlock()
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, j := range jobs {
		if c.ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := a.joinPuppet(c.ctx, c, j.r, j.p); err != nil && c.ctx.Err() == nil {
				a.log.Warn("xmpp: cannot rejoin puppet", "room", j.r.addr, "puppet", j.p.jid.String(), "err", err)
			}
		}()
	}
	wg.Wait()
}

// sessionDown forgets what only held for the session that ended, and
// fails whoever waits for it.
func (a *Adapter) sessionDown(c *session) {
	a.ready.Store(false)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.conn == c {
		a.conn = nil
	}
	for _, r := range a.rooms {
		r.reset()
	}
	a.dropRunsLocked()
	for _, p := range a.puppets {
		for _, m := range p.rooms {
			m.joined = false
		}
	}
	// Messages still waiting for their reflection stay known: the room
	// may have them, and their retry looks in its archive first.
	for _, om := range a.sent {
		if om.gen == c.gen && !om.finished() {
			om.finish("", errDisconnected)
		}
	}
}

// current is the session when it is up and the rooms are joined.
func (a *Adapter) current() (*session, error) {
	a.mu.Lock()
	started, stopped, c := a.started, a.stopped, a.conn
	a.mu.Unlock()
	switch {
	case !started || stopped:
		return nil, errors.New("xmpp: adapter not running")
	case c == nil || c.ctx.Err() != nil:
		return nil, errNotConnected
	}
	return c, nil
}

// Join starts bridging a MUC room (a bare JID); it is joined again after
// every reconnect.
func (a *Adapter) Join(ctx context.Context, room string) error {
	j, err := parseRoom(room)
	if err != nil {
		return err
	}
	a.relinkCatchUp(room)
	a.mu.Lock()
	delete(a.left, j.String())
	r := a.rooms[j.String()]
	if r == nil {
		r = newRoom(room, j)
		a.rooms[r.key] = r
	}
	c := a.conn
	a.mu.Unlock()
	a.joinPersonalAll(r)
	if c == nil || c.ctx.Err() != nil {
		return nil // joined once connected
	}
	return a.joinBot(ctx, c, r)
}

func parseRoom(room string) (jid.JID, error) {
	j, err := parseJID(room)
	if err != nil || j.Localpart() == "" || j.Resourcepart() != "" {
		return jid.JID{}, bridge.Permanent(fmt.Errorf("xmpp: %q is not a MUC room JID (room@service)", room))
	}
	return j, nil
}

func (a *Adapter) roomList() []*room {
	a.mu.Lock()
	defer a.mu.Unlock()
	rooms := make([]*room, 0, len(a.rooms))
	for _, r := range a.rooms {
		rooms = append(rooms, r)
	}
	return rooms
}

// Stop leaves every room, ends the stream and waits for the adapter's
// goroutines.
func (a *Adapter) Stop(ctx context.Context) error {
	a.mu.Lock()
	a.people.StopLocked()
	if !a.started || a.stopped {
		a.stopped = true
		a.mu.Unlock()
		return nil
	}
	a.stopped = true
	c := a.conn
	a.mu.Unlock()
	a.ready.Store(false)
	if c != nil {
		a.leaveAll(c)
		closed := make(chan struct{})
		go func() { c.s.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(2 * time.Second):
		}
	}
	a.cancel()
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
		a.flushCatchUp(ctx) // how far the accept queue got
		a.log.Info("xmpp adapter stopped")
		return nil
	case <-ctx.Done():
		if c != nil {
			c.s.Conn().Close()
		}
		return fmt.Errorf("xmpp: stop: %w", ctx.Err())
	}
}

// leaveAll takes the puppets and the bot out of their rooms: a component
// going away does not make the server remove its occupants.
func (a *Adapter) leaveAll(c *session) {
	var out []*element
	a.mu.Lock()
	for _, p := range a.puppets {
		for key, m := range p.rooms {
			if r := a.rooms[key]; r != nil && m.joined {
				out = append(out, a.presence(p.jid, r.occupantJID(m.nick), "unavailable"))
			}
		}
	}
	for _, r := range a.rooms {
		if r.joined {
			out = append(out, a.presence(c.me, r.occupantJID(r.nick), "unavailable"))
		}
	}
	a.mu.Unlock()
	deadline := time.Now().Add(3 * time.Second)
	for _, e := range out {
		if time.Now().After(deadline) || a.write(c, e) != nil {
			return
		}
	}
}

// janitor retires idle puppets and forgets old sent messages.
func (a *Adapter) janitor() {
	tick := min(max(a.idle/4, 50*time.Millisecond), 30*time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
		}
		a.reapPuppets(time.Now())
		a.pruneUploads(a.ctx, time.Now())
		a.mu.Lock()
		for key, om := range a.sent {
			if om.finished() && time.Since(om.at) > sentTTL {
				delete(a.sent, key)
			}
		}
		a.mu.Unlock()
	}
}

// write sends one stanza. A failed write may have left part of a stanza
// on the stream, so it ends the session (the adapter reconnects).
func (a *Adapter) write(c *session, e *element) error {
	if c.ctx.Err() != nil {
		return errDisconnected
	}
	if c.person != nil {
		// A client stream: the server stamps the sender, and a
		// component's from (stanzaBase) is not theirs.
		delAttr(e, "from")
	}
	if err := sendBounded(c.s, e, a.t.write); err != nil {
		c.kill()
		return fmt.Errorf("%w: %v", errDisconnected, err)
	}
	return nil
}

// sendBounded sends a stanza within d. Not with a context that has a
// deadline: mellium watches such a context in a goroutine that may see it
// end only after Send has returned (a select between two ready channels
// picks either), and then sets a write deadline in the past that fails
// the next write. A deadline on the connection bounds the write instead;
// a session that ends closes the connection, which ends the write too.
//
// The stanza is written as appendXML writes it, straight to the
// connection, with the session's output held (every writer flushes
// before letting go of it): mellium's encoder, its token copying and the
// goroutine it starts per write cost more than the write itself.
func sendBounded(s *xmpp.Session, e *element, d time.Duration) error {
	buf := writeBufs.Get().(*[]byte)
	raw, ok := e.appendXML((*buf)[:0], s.Out().XMLNS)
	if cap(raw) <= 64<<10 { // a rare large stanza's buffer is not kept
		*buf = raw[:0]
		defer writeBufs.Put(buf)
	}
	if err := s.Conn().SetWriteDeadline(time.Now().Add(d)); err != nil {
		return err
	}
	if !ok {
		return s.Send(context.Background(), e.reader())
	}
	w := s.TokenWriter()
	defer w.Close()
	if err := w.Flush(); err != nil {
		return err // the output stream is closed
	}
	_, err := s.Conn().Write(raw)
	return err
}

var writeBufs = sync.Pool{New: func() any { return new([]byte) }}

// writeAsync sends a stanza from the read loop, which must not wait for
// the output stream.
func (a *Adapter) writeAsync(c *session, e *element) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := a.write(c, e); err != nil {
			a.log.Debug("xmpp: write failed", "err", err)
		}
	}()
}

// stanzaBase is a stanza of kind from from (left out on a client stream,
// where the server sets it) to to.
func (a *Adapter) stanzaBase(kind string, from, to jid.JID, typ string) *element {
	e := el("", kind, "type", typ, "to", to.String(), "id", newID())
	if a.component && from.String() != "" {
		e.attr = append(e.attr, attr("from", from.String()))
	}
	return e
}

func (a *Adapter) presence(from, to jid.JID, typ string) *element {
	return a.stanzaBase("presence", from, to, typ)
}

// iq sends a request and waits for its answer.
func (a *Adapter) iq(ctx context.Context, c *session, from, to jid.JID, typ string, payload *element, timeout time.Duration) (*stanza, error) {
	return a.iqLimit(ctx, c, from, to, typ, payload, timeout, 0)
}

// iqLimit is iq for a request whose answer may be up to limit bytes,
// over max_stanza (0: max_stanza holds).
func (a *Adapter) iqLimit(ctx context.Context, c *session, from, to jid.JID, typ string, payload *element, timeout time.Duration, limit int) (*stanza, error) {
	e := a.stanzaBase("iq", from, to, typ).add(payload)
	id := e.get("id")
	ch := make(chan *stanza, 1)
	a.mu.Lock()
	a.iqs[id] = ch
	if limit > 0 {
		a.iqLimits[id] = limit
	}
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.iqs, id)
		delete(a.iqLimits, id)
		a.mu.Unlock()
	}()
	if err := a.write(c, e); err != nil {
		return nil, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case st := <-ch:
		return st, nil
	case <-t.C:
		return nil, errTimeout
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.ctx.Done():
		return nil, errDisconnected
	}
}

func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// recoverStanza keeps a panic in stanza handling from taking the process
// (and the stream) down: the stanza is dropped and logged.
func (a *Adapter) recoverStanza() {
	if p := recover(); p != nil {
		a.log.Error("xmpp: panic while handling a stanza; dropped", "panic", p, "stack", string(debug.Stack()))
	}
}

// Puppets counts the puppets Switchboard has on this network now.
func (a *Adapter) Puppets() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.puppets)
}
