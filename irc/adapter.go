// Package irc bridges IRC channels: one bot connection that joins the
// linked channels and reads them, and (in puppet mode) one connection per
// foreign sender, so that each appears as a user of their own.
//
// Direct messages go out as private messages from the sender's puppet (or
// from the bot, prefixed, when relaying), and a private message to a
// puppet is a direct message to the sender it speaks for. That lasts as
// long as the puppet is connected: once it has quit (idle, or
// disconnected), the server answers a private message to its old nick
// with "No such nick", and nothing reaches the bridge until the sender's
// next message brings the puppet back. A private message to the bot is
// addressed to Switchboard itself (a chat command, see bridge.ToBot) and
// is never bridged; the bot answers with notices (SendAsBot).
package irc

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/every"
	"github.com/switchboard-chat/switchboard/internal/fence"
	"github.com/switchboard-chat/switchboard/mapping"
)

//go:embed example.yaml
var example string

func init() {
	adapters.Register(adapters.Type{
		NetworkType: config.NetworkType{
			Name:    "irc",
			Config:  func() config.Section { return new(Config) },
			Example: example,
			Rooms:   "IRC rooms are channels (#name or &name, at most 50 bytes, no space, comma or BEL).",
			Kicks:   true,
			// A person's IRC account logs in with SASL PLAIN; services
			// compare account names as nicks, without case.
			Accounts: &config.AccountRules{Credentials: []string{"password"}, Key: caseRFC1459.fold, NotHome: notHome},
		},
		New: New,
	})
}

const (
	// puppetPause is how long puppet mode falls back to relaying after a
	// puppet could not connect (the server may limit connections per
	// host): better relayed than stuck in the outbox.
	puppetPause = 30 * time.Second
	// progressTTL bounds how long a partly delivered message remembers
	// which of its lines were already confirmed.
	progressTTL = time.Hour
	maxProgress = 10000
	// ownGrace is how long a departed puppet's nick is still taken for
	// ours, for the lines about its departure the bot sees afterwards.
	ownGrace = 30 * time.Second
)

// unknownNickLen is the nick length used before the server said its
// own: long enough for a readable nick, short enough for most networks
// (a 432 makes it 9).
const unknownNickLen = 16

// rejoinDelay is how long the bot waits before going back into a channel
// it was kicked from (a variable for tests).
var rejoinDelay = 5 * time.Second

// botCaps are requested on the bot connection; ircevent requests them
// blindly and the server acknowledges those it offers.
var botCaps = []string{
	"message-tags", "server-time", "echo-message", "labeled-response", "batch",
	"account-tag", "account-notify", "extended-join", "multi-prefix", "userhost-in-names",
	"chghost", "cap-notify", chatHistoryCap,
}

// puppetCaps: puppets send, which needs confirmation, and read the
// private messages to them, whose senders must have the same id (their
// account) as in the bot's channels.
var puppetCaps = []string{"message-tags", "echo-message", "labeled-response", "batch", "chghost", "account-tag"}

// Adapter is the IRC network adapter.
type Adapter struct {
	name       string
	cfg        Config
	mode       string
	kickBlocks bool
	template   string
	maxPuppets int
	idle       time.Duration
	log        *slog.Logger
	clock      clock
	botCaps    []string
	puppetCaps []string

	// textLinks makes the links to the whole of a long message (set
	// before Start, then read only); nil without http.public_url.
	textLinks adapters.TextLinks
	// fence (cluster mode) is checked before every dial and every write
	// of every connection: the bot's, puppets', people's. Set before
	// Start, then read only.
	fence *fence.Fence

	in     bridge.Inbound
	mod    *adapters.Moderation
	ctx    context.Context
	cancel context.CancelFunc
	bot    *conn
	wg     sync.WaitGroup
	queue  *adapters.AcceptQueue

	mu          sync.Mutex
	started     bool
	stopped     bool
	info        serverInfo
	rooms       map[string]*room // by folded name
	puppets     map[string]*puppet
	own         map[string]time.Time // folded puppet nick -> zero while active, else when to forget it
	progress    map[string]*progress
	pausedUntil time.Time
	people      *adapters.Personal[*conn, struct{}] // people's own connections, and the channels each is to be in
	accounts    map[string]string                   // folded personal account -> person
	tagState                                        // IRCv3 client tags: typing both ways (tags.go)
	cm          atomic.Uint32                       // info.cm, readable without a.mu
	ready       atomic.Bool                         // registered and rejoined

	catchUpState // join playback (catchup.go); a.mu guards it
	shardState   // which shards run here (shard.go)
	sourceAddr   net.IP
}

// serverInfo is what the bot learned from ISUPPORT.
type serverInfo struct {
	known     bool // learned from the server, not defaults
	cm        caseMapping
	nickLen   int
	chanLen   int
	userLen   int
	lineLen   int
	chanTypes string
	prefixes  string // membership prefix symbols, "@+", highest first
	// prefixModes are the mode letters of prefixes, in the same order.
	prefixModes string
	chanModes   string // ISUPPORT CHANMODES, "A,B,C,D"
	chatHistory int    // ISUPPORT CHATHISTORY: most lines per request, 0 for no limit
}

var (
	_ adapters.Adapter       = (*Adapter)(nil)
	_ adapters.Connected     = (*Adapter)(nil)
	_ adapters.Leaver        = (*Adapter)(nil)
	_ bridge.BotSender       = (*Adapter)(nil)
	_ bridge.MemberRelayer   = (*Adapter)(nil)
	_ bridge.DirectMessenger = (*Adapter)(nil)
	_ adapters.TextLinkUser  = (*Adapter)(nil)
	_ adapters.Fenced        = (*Adapter)(nil)
	_ bridge.Replier         = (*Adapter)(nil)
	_ bridge.Reactor         = (*Adapter)(nil)
	_ bridge.TypingRelayer   = (*Adapter)(nil)
)

// New builds the adapter for a configured IRC network.
func New(name string, n *config.Network, log *slog.Logger) (adapters.Adapter, error) {
	var cfg *Config
	if n != nil {
		cfg, _ = n.Section.(*Config)
	}
	if cfg == nil {
		return nil, fmt.Errorf("networks.%s: no irc settings", name)
	}
	if log == nil {
		log = slog.Default()
	}
	c := *cfg
	if c.SASL != nil {
		s := *c.SASL
		c.SASL = &s
	}
	if err := config.CheckHostPort(c.Server, true, false); err != nil {
		return nil, fmt.Errorf("networks.%s.server: %w", name, err)
	}
	if err := validNick(c.Nick); err != nil {
		return nil, fmt.Errorf("networks.%s.nick: %w", name, err)
	}
	if c.Username == "" {
		c.Username = c.Nick
	}
	c.Username = identFrom(c.Username)
	if c.Realname == "" {
		c.Realname = defaultRealname
	}
	c.Realname = cleanLine(c.Realname)
	if c.Flood.Burst <= 0 {
		c.Flood.Burst = defaultBurst
	}
	// An interval of 0 is the config's way to turn pacing off; the config
	// package fills in the 1s default when the key is absent.
	if c.Flood.Interval < 0 {
		c.Flood.Interval = 0
	}
	if c.MaxLineBytes <= 0 {
		c.MaxLineBytes = defaultLineLen
	}
	if c.ReconnectMax <= 0 {
		c.ReconnectMax = defaultReconnectMax
	}
	if c.MaxMessageLines <= 0 {
		c.MaxMessageLines = defaultMaxMessageLines
	}
	if strings.ContainsAny(c.Password, "\r\n\x00") {
		return nil, fmt.Errorf("networks.%s.password: contains a line break or NUL", name)
	}
	if err := checkSourceAddress(c.SourceAddress); err != nil {
		return nil, fmt.Errorf("networks.%s.source_address: %w", name, err)
	}
	if c.Shards > maxShards {
		return nil, fmt.Errorf("networks.%s.shards: at most %d, got %d", name, maxShards, c.Shards)
	}
	a := &Adapter{
		name:       name,
		cfg:        c,
		mode:       n.Mode,
		kickBlocks: n.KickBlocks,
		template:   n.Puppets.Template,
		maxPuppets: n.Puppets.Max,
		idle:       n.Puppets.Idle,
		log:        log,
		clock:      realClock{},
		botCaps:    botCaps,
		puppetCaps: puppetCaps,
		rooms:      map[string]*room{},
		puppets:    map[string]*puppet{},
		own:        map[string]time.Time{},
		progress:   map[string]*progress{},
		accounts:   map[string]string{},
		info:       defaultServerInfo(c.MaxLineBytes),
		sourceAddr: parseSourceAddr(c.SourceAddress),
	}
	a.people = newPersonal(a)
	a.shardState.init(c.Shards)
	if a.shards > 1 {
		for k := range a.shards {
			a.fences = append(a.fences, fence.New(func() bool { return a.mayShard(k) }, a.log.With("shard", k)))
		}
	}
	if a.mode == "" {
		a.mode = config.DefaultMode
	}
	if a.mode != "puppet" && a.mode != "relay" {
		return nil, fmt.Errorf("networks.%s.mode: %q is neither puppet nor relay", name, a.mode)
	}
	if a.template == "" {
		a.template = mapping.DefaultTemplate
	}
	if a.maxPuppets <= 0 {
		a.maxPuppets = config.DefaultPuppetMax
	}
	if a.idle <= 0 {
		a.idle = config.DefaultPuppetIdle
	}
	return a, nil
}

func defaultServerInfo(lineLen int) serverInfo {
	return serverInfo{cm: caseRFC1459, nickLen: 9, chanLen: 200, userLen: 10, lineLen: lineLen, chanTypes: "#&", prefixes: "~&@%+", prefixModes: "qaohv", chanModes: defaultChanModes}
}

// Network is the network's name in the config.
func (a *Adapter) Network() string { return a.name }

// Connected reports whether the bot is registered and back in its
// channels, so that what is said there now reaches the bridge. Without
// shard 0 (adapters.Sharded) there is no bot here: connected while
// running, puppets connecting as they are needed.
func (a *Adapter) Connected() bool {
	a.mu.Lock()
	bot, running, botHere := a.bot, a.started && !a.stopped, a.heldLocked(0)
	a.mu.Unlock()
	if !botHere {
		return running
	}
	return bot != nil && bot.isUp() && a.ready.Load()
}

// casemap is the server's casemapping. Connections call it with their own
// locks held, so it must not take a.mu.
func (a *Adapter) casemap() caseMapping { return caseMapping(a.cm.Load()) }

func (a *Adapter) serverInfo() serverInfo {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.info
}

func (a *Adapter) connConfig(label, nick string) connConfig {
	return connConfig{
		label:        label,
		server:       a.cfg.Server,
		useTLS:       a.cfg.TLS,
		skipVerify:   a.cfg.TLSInsecureSkipVerify,
		nick:         nick,
		user:         a.cfg.Username,
		realname:     a.cfg.Realname,
		password:     a.cfg.Password,
		maxLineLen:   max(a.cfg.MaxLineBytes, defaultLineLen),
		flood:        a.cfg.Flood,
		reconnectMax: a.cfg.ReconnectMax,
		fence:        a.fence,
		sourceAddr:   a.sourceAddr,
		shardFences:  a.fences,
		casemap:      a.casemap,
		clock:        a.clock,
		log:          a.log.With("conn", label),
	}
}

// UseFence implements adapters.Fenced: every connection of the adapter
// checks may before each dial and each write to its socket, after flood
// control (internal/fence).
func (a *Adapter) UseFence(may func() bool) { a.fence = fence.New(may, a.log) }

// Start connects the bot in the background.
func (a *Adapter) Start(ctx context.Context, in bridge.Inbound) error {
	if in == nil {
		return errors.New("irc: Start needs an Inbound")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.started || a.stopped {
		return errors.New("irc: already started or stopped")
	}
	a.started = true
	a.in = in
	// The adapter lives until Stop, not until the caller's context ends.
	a.ctx, a.cancel = context.WithCancel(context.WithoutCancel(ctx))
	a.queue = adapters.NewAcceptQueue(a.log)
	a.mod = adapters.NewModeration(a.name, a.kickBlocks, in, a.log)

	botID := bridge.Sender{Network: a.name, ID: a.cfg.Nick}
	cc := a.connConfig("bot", a.cfg.Nick)
	cc.caps = a.botCaps
	cc.sasl = a.cfg.SASL
	cc.altNick = func(base string, maxLen, attempt int) string {
		return mapping.IRCNickAlternative(base, maxLen, botID, attempt)
	}
	cc.nickLen = func() int {
		if info := a.serverInfo(); info.known {
			return info.nickLen
		}
		return unknownNickLen
	}
	cc.onUp = a.botUp
	cc.gate = a.botGate // shard 0 only
	cc.onDown = a.botDown
	cc.onHistory = a.catchUp
	cc.onJoined = a.joinedHistory
	a.bot = newConn(cc)
	a.addInboundCallbacks(a.bot)

	a.wg.Add(5)
	go func() { defer a.wg.Done(); a.mod.Run(a.ctx) }()
	go func() { defer a.wg.Done(); a.bot.run(a.ctx) }()
	go func() { defer a.wg.Done(); a.queue.Run(a.ctx, acceptHook{in, a}) }()
	go func() { defer a.wg.Done(); a.flushCursors(a.ctx) }()
	go func() { defer a.wg.Done(); a.janitor(a.ctx) }()
	a.people.StartLocked(a.ctx)
	if !a.heldLocked(0) {
		// No bot to wait for: deliveries waiting for the network may go.
		a.wg.Add(1)
		go func() { defer a.wg.Done(); in.Online(a.name) }()
	}
	a.log.Info("irc adapter started", "server", a.cfg.Server, "nick", a.cfg.Nick, "mode", a.mode, "tls", a.cfg.TLS)
	return nil
}

// botUp runs in the bot's read loop once it is registered.
func (a *Adapter) botUp(k *conn) {
	is := k.irc.ISupport()
	a.mu.Lock()
	a.learnServerLocked(is)
	stopped := a.stopped || !a.heldLocked(0)
	if !stopped {
		a.wg.Add(1)
	}
	a.mu.Unlock()
	if stopped {
		if !a.holds(0) {
			k.leaveNetwork() // shard 0 was let go while we connected
		}
		return
	}
	a.log.Info("connected", "nick", k.nick(), "server", a.cfg.Server)
	// Joining waits for flood tokens and replies, which the read loop we
	// are in must keep reading.
	go func() {
		defer a.wg.Done()
		a.rejoin(k)
	}()
}

// learnServerLocked takes what the server says of itself in a
// connection's ISUPPORT; a.mu must be held.
func (a *Adapter) learnServerLocked(is map[string]string) {
	info := defaultServerInfo(a.cfg.MaxLineBytes)
	info.known = true
	info.cm = parseCaseMapping(is["CASEMAPPING"])
	if v, err := strconv.Atoi(is["NICKLEN"]); err == nil && v > 0 {
		info.nickLen = v
	} else if v, err := strconv.Atoi(is["MAXNICKLEN"]); err == nil && v > 0 {
		info.nickLen = v
	}
	if v, err := strconv.Atoi(is["CHANNELLEN"]); err == nil && v > 0 {
		info.chanLen = v
	}
	if v, err := strconv.Atoi(is["USERLEN"]); err == nil && v > 0 {
		info.userLen = v
	}
	if v, err := strconv.Atoi(is["LINELEN"]); err == nil && v >= defaultLineLen {
		info.lineLen = min(v, max(a.cfg.MaxLineBytes, defaultLineLen))
	}
	if v := is["CHANTYPES"]; v != "" {
		info.chanTypes = v
	}
	if p := is["PREFIX"]; strings.HasPrefix(p, "(") {
		if i := strings.IndexByte(p, ')'); i > 0 {
			info.prefixModes, info.prefixes = p[1:i], p[i+1:]
		}
	}
	if v := is["CHANMODES"]; v != "" {
		info.chanModes = v
	}
	if v, err := strconv.Atoi(is["CHATHISTORY"]); err == nil && v > 0 {
		info.chatHistory = v
	}
	a.info = info
	a.cm.Store(uint32(info.cm))
	// Folded keys depend on the casemapping, which may differ from the
	// last server's.
	rooms := map[string]*room{}
	for _, r := range a.rooms {
		r.members, r.names = map[string]*member{}, nil
		rooms[info.cm.fold(r.name)] = r
	}
	a.rooms = rooms
	a.indexAccountsLocked()
}

func (a *Adapter) rejoin(k *conn) {
	var chans []string
	a.mu.Lock()
	for _, r := range a.rooms {
		chans = append(chans, r.name)
	}
	a.mu.Unlock()
	for ch, err := range k.joinAll(a.ctx, chans) {
		a.log.Warn("cannot join channel", "channel", ch, "err", err)
	}
	if k.isUp() && a.ctx.Err() == nil {
		a.ready.Store(true)
		a.in.Online(a.name)
	}
}

func (a *Adapter) botDown(k *conn) {
	a.ready.Store(false)
	a.mu.Lock()
	for _, r := range a.rooms {
		r.members, r.names = map[string]*member{}, nil
	}
	clear(a.peers) // NAMES tells them again
	stopped := a.stopped || !a.heldLocked(0)
	a.mu.Unlock()
	if !stopped {
		a.log.Warn("disconnected; reconnecting", "server", a.cfg.Server)
	}
}

// Join starts bridging a channel; it is joined again after every
// reconnect.
func (a *Adapter) Join(ctx context.Context, channel string) error {
	info := a.serverInfo()
	if err := validChannel(channel, info.chanTypes, info.chanLen); err != nil {
		return err
	}
	a.mu.Lock()
	f := info.cm.fold(channel)
	_, known := a.rooms[f]
	a.mu.Unlock()
	var catch roomCatchUp
	if !known {
		// Before the room exists, so that no playback comes first.
		c, ok := a.loadCursor(ctx, channel)
		catch = roomCatchUp{loaded: ok, saved: c, seen: c}
	}
	a.mu.Lock()
	if _, ok := a.rooms[f]; !ok {
		a.rooms[f] = &room{name: channel, members: map[string]*member{}, catch: catch}
	}
	bot := a.bot
	a.people.BridgedLocked(channel)
	a.mu.Unlock()
	if bot == nil || !bot.isUp() {
		return nil // joined once connected
	}
	return bot.join(ctx, channel)
}

// Leave stops bridging a channel: the bot and every puppet in it part,
// and it is not joined again on reconnect. What is said there from now on
// is not reported, even before the server has processed the parts.
func (a *Adapter) Leave(ctx context.Context, channel string) error {
	info := a.serverInfo()
	if err := validChannel(channel, info.chanTypes, info.chanLen); err != nil {
		return err
	}
	a.mu.Lock()
	f := info.cm.fold(channel)
	if r := a.rooms[f]; r != nil {
		delete(a.catchUps, r.name)
	}
	delete(a.rooms, f)
	bot := a.bot
	var puppets []*puppet
	for _, p := range a.puppets {
		p.busy++ // kept from the reaper while it parts
		puppets = append(puppets, p)
	}
	personal := a.people.UpConnsLocked()
	a.mu.Unlock()
	var errs []error
	for _, p := range puppets {
		errs = append(errs, a.leavePuppet(ctx, p, channel))
	}
	for _, k := range personal {
		if k.inChannel(channel) {
			errs = append(errs, k.part(ctx, channel, "unlinked"))
		}
	}
	if bot != nil && bot.isUp() && bot.inChannel(channel) {
		errs = append(errs, bot.part(ctx, channel, "unlinked"))
	}
	a.forgetCursor(ctx, channel)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("irc: leave %s: %w", channel, err)
	}
	a.log.Info("left channel", "channel", channel)
	return nil
}

// leavePuppet parts a puppet from a channel it is in, and releases it.
func (a *Adapter) leavePuppet(ctx context.Context, p *puppet, channel string) error {
	defer a.releasePuppet(p)
	select {
	case <-p.ready:
	default:
		// Still connecting, so in no channel yet; a delivery still on its
		// way may take it in, as it would before the room was left.
		return nil
	}
	if p.err != nil || !p.k.inChannel(channel) {
		return nil
	}
	return a.partPuppet(ctx, p, channel, "")
}

// partPuppet parts a puppet from a channel and retires it when that was
// its last one: nothing is left for it to do. One that carries a private
// conversation waits to be idle.
func (a *Adapter) partPuppet(ctx context.Context, p *puppet, channel, reason string) error {
	if err := p.k.part(ctx, channel, reason); err != nil {
		return err
	}
	a.mu.Lock()
	direct := p.direct
	a.mu.Unlock()
	if p.k.channelCount() == 0 && !direct {
		a.retirePuppet(p)
	}
	return nil
}

// bridging reports whether r is still a bridged channel.
func (a *Adapter) bridging(r *room) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rooms[a.info.cm.fold(r.name)] == r
}

// Stop quits every connection and waits for the adapter's goroutines.
func (a *Adapter) Stop(ctx context.Context) error {
	a.mu.Lock()
	a.people.StopLocked()
	if !a.started || a.stopped {
		a.stopped = true
		a.mu.Unlock()
		return nil
	}
	a.stopped = true
	conns := a.people.CurrentsLocked()
	for _, p := range a.puppets {
		if p.k != nil {
			conns = append(conns, p.k)
		}
	}
	a.mu.Unlock()
	conns = append(conns, a.bot)
	for _, k := range conns {
		k.quit()
	}
	a.cancel()
	done := make(chan struct{})
	go func() {
		a.wg.Wait()
		close(done)
	}()
	grace := time.NewTimer(3 * time.Second)
	defer grace.Stop()
	select {
	case <-done:
	case <-ctx.Done():
	case <-grace.C:
	}
	select {
	case <-done:
		a.log.Info("irc adapter stopped")
		return nil
	default:
	}
	// The server did not close the connections after QUIT: close them.
	for _, k := range conns {
		k.closeSocket()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("irc: stop: %w", ctx.Err())
	}
}

// janitor retires idle puppets and forgets stale state.
func (a *Adapter) janitor(ctx context.Context) {
	tick := min(max(a.idle/4, 50*time.Millisecond), 10*time.Second)
	every.Run(ctx, tick, func() {
		now := a.clock.Now()
		a.reapPuppets(now)
		a.mu.Lock()
		for key, p := range a.progress {
			if now.Sub(p.touched) > progressTTL {
				delete(a.progress, key)
			}
		}
		for nick, until := range a.own {
			if !until.IsZero() && now.After(until) {
				delete(a.own, nick)
			}
		}
		a.mu.Unlock()
	})
}

// isOwn reports whether nick is the bot or one of our puppets.
func (a *Adapter) isOwn(nick string) bool {
	if a.bot != nil && a.bot.isMe(nick) {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.info.cm.fold(nick)
	until, ok := a.own[f]
	return a.peers[f] || ok && (until.IsZero() || a.clock.Now().Before(until))
}

// progress remembers which lines of a message a room already got, so a
// retry after a partial delivery sends only the rest.
type progress struct {
	pieces  []string // the lines, without prefix
	done    []bool
	ids     []string
	touched time.Time
	tagged  // the client tags of the lines (tags.go)
}

func (a *Adapter) progressFor(key string, build func() *progress) *progress {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.progress[key]
	if p == nil {
		p = build()
		if len(a.progress) >= maxProgress {
			var oldest string
			var t time.Time
			for k, q := range a.progress {
				if oldest == "" || q.touched.Before(t) {
					oldest, t = k, q.touched
				}
			}
			delete(a.progress, oldest)
		}
		a.progress[key] = p
	}
	p.touched = a.clock.Now()
	return p
}

// DirectMessages implements bridge.DirectMessenger: direct messages are
// private messages to a nick.
func (*Adapter) DirectMessages() {}

// Send delivers a message to a channel, or as a direct message to a nick:
// through the sender's puppet in puppet mode (while there is room for
// one), else through the bot as "<name> text". It returns once the server
// confirmed every line.
func (a *Adapter) Send(ctx context.Context, d *bridge.Delivery) (string, error) {
	return a.startSend(ctx, d, renderBody)(ctx)
}

// SendPipelined implements bridge.Pipeliner: a message's lines are
// confirmed by the server's labeled responses or echoes, which the
// connection's read loop takes while the next messages go out.
func (a *Adapter) SendPipelined(ctx context.Context, d *bridge.Delivery) (bridge.Confirm, error) {
	return a.startSend(ctx, d, renderBody), nil
}

// startSend writes a message's lines, as render makes them, and returns
// the wait for their confirmation.
func (a *Adapter) startSend(ctx context.Context, d *bridge.Delivery, render func(*bridge.Message) ircText) bridge.Confirm {
	m, ok := d.Event.(*bridge.Message)
	if !ok {
		return bridge.Settled("", bridge.Permanent(fmt.Errorf("irc: cannot send %s events", d.Event.Kind())))
	}
	info := a.serverInfo()
	target, direct := d.Room, d.Room == "" && m.To != nil
	if direct {
		if m.To.Network != a.name {
			return bridge.Settled("", bridge.Permanent(fmt.Errorf("irc: direct message for network %q", m.To.Network)))
		}
		// Checked as strictly as our own nicks: a target with a channel
		// prefix, a comma or a space would reach others than the one person.
		target = a.directNick(*m.To)
		if err := validNick(target); err != nil {
			return bridge.Settled("", bridge.Permanent(err))
		}
	} else if err := validChannel(d.Room, info.chanTypes, info.chanLen); err != nil {
		return bridge.Settled("", bridge.Permanent(err))
	}
	shard := a.ShardOf(m, d.Relay)
	a.mu.Lock()
	started, stopped, bot := a.started, a.stopped, a.bot
	held, botHere := a.heldLocked(shard), a.heldLocked(0)
	if botHere && a.takeBotFallbackLocked(m.ID) && !held {
		// A topic the bot could not set, announced by the bot.
		held, shard = true, 0
		rd := *d
		rd.Relay = true
		d = &rd
	}
	a.mu.Unlock()
	if !started || stopped {
		return bridge.Settled("", errors.New("irc: adapter not running"))
	}
	if !held {
		return bridge.Settled("", a.notHeld(shard))
	}
	if botHere && !bot.isUp() {
		return bridge.Settled("", errNotConnected)
	}
	if !direct {
		if err := a.Join(ctx, d.Room); err != nil && !bot.inChannel(d.Room) {
			return bridge.Settled("", err)
		}
	}
	key := string(m.ID) + "\x00" + info.cm.fold(target)
	// d.Reply is set where the text opens with the reply's fallback quote.
	m = a.withMentions(m, target, d.Relay, d.Reply != nil)
	confirm := a.sendMessage(ctx, d, key, target, direct, m, render(m))
	if !direct {
		return confirm
	}
	return func(ctx context.Context) (string, error) {
		id, err := confirm(ctx)
		if noSuchNick(err) {
			// Retrying would hand the message to whoever takes the nick next.
			a.forgetProgress(key)
			a.log.Info("direct message to a nick that is not online", "nick", target, "err", err)
			return "", bridge.Permanent(fmt.Errorf("%s is not online", target))
		}
		return id, err
	}
}

// sendMessage sends through the sender's puppet when there is one, else
// through the bot, and returns the wait for the confirmation.
func (a *Adapter) sendMessage(ctx context.Context, d *bridge.Delivery, key, target string, direct bool, m *bridge.Message, b ircText) bridge.Confirm {
	// A person with an account here speaks from it, in relayed rooms
	// too: it is them, not a puppet.
	if k := a.personalFor(ctx, m.Sender.Person); k != nil {
		confirm, fallback := a.sendPersonal(ctx, k, key, target, direct, m, b)
		if !fallback {
			return confirm
		}
	}
	if a.mode == "puppet" && !d.Relay {
		p, err := a.puppetFor(ctx, m.Sender)
		if err != nil {
			return bridge.Settled("", err)
		}
		if p != nil {
			confirm, relay := a.sendPuppet(ctx, p, key, target, direct, m, b)
			if !relay {
				return confirm
			}
		}
	}
	if !a.holds(0) {
		// The bot is another instance's: wait for a puppet of ours.
		return bridge.Settled("", fmt.Errorf("irc: no puppet for %s now, and the bot is held by another instance: %w", m.Sender.ID, bridge.ErrNotConnected))
	}
	return a.startVia(ctx, a.bot, key, target, m, b, relayPrefix(m))
}

// SendAsBot sends text from the bot as NOTICEs, one for each line, to a
// channel or, when room is "", to a user (an IRC account or nick): the
// answer to a chat command. A notice, because no client or bot answers
// one automatically, and nothing the bot says is bridged.
func (a *Adapter) SendAsBot(ctx context.Context, room, user, text string) error {
	target, err := a.botTarget(room, user)
	if err != nil {
		return bridge.Permanent(err)
	}
	bot, err := a.upBot()
	if err != nil {
		return err
	}
	m := &bridge.Message{Header: bridge.Header{ID: bridge.NewEventID()}, Text: text, Notice: true}
	key := string(m.ID) + "\x00" + a.serverInfo().cm.fold(target)
	// No retry ever resends this text: forget what a failed attempt sent.
	defer a.forgetProgress(key)
	// Never cut: a command's answer (!sb help) is meant to be read whole,
	// and it has no stored text to link to.
	_, err = a.sendVia(ctx, bot, key, target, m, ircText{text: text}, "")
	return err
}

// upBot is the bot's connection, when the adapter runs and it is up.
func (a *Adapter) upBot() (*conn, error) {
	a.mu.Lock()
	started, stopped, bot, botHere := a.started, a.stopped, a.bot, a.heldLocked(0)
	a.mu.Unlock()
	if !started || stopped {
		return nil, errors.New("irc: adapter not running")
	}
	if !botHere {
		return nil, a.notHeld(0)
	}
	if !bot.isUp() {
		return nil, errNotConnected
	}
	return bot, nil
}

// botTarget checks where SendAsBot may send: a channel, or the nick of a
// user, as strictly as direct messages.
func (a *Adapter) botTarget(room, user string) (string, error) {
	if room != "" {
		info := a.serverInfo()
		return room, validChannel(room, info.chanTypes, info.chanLen)
	}
	if user == "" {
		return "", errors.New("irc: bot message with neither room nor user")
	}
	nick := a.directNick(bridge.Sender{Network: a.name, ID: user})
	return nick, validNick(nick)
}

func (a *Adapter) forgetProgress(key string) {
	a.mu.Lock()
	delete(a.progress, key)
	a.mu.Unlock()
}

// directNick is the nick a direct message to an IRC user goes to. Their
// id is their account when they have one, which need not be a nick they
// use: a channel we share with them tells which nick is theirs.
func (a *Adapter) directNick(to bridge.Sender) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.rooms {
		for _, m := range r.members {
			if m.account != "" && a.info.cm.equal(m.account, to.ID) {
				return m.nick
			}
		}
	}
	return to.ID
}

// sendPuppet sends through a puppet and returns the wait for the
// confirmation; relay says the bot should send instead. The puppet is
// held until the confirmation came.
func (a *Adapter) sendPuppet(ctx context.Context, p *puppet, key, target string, direct bool, m *bridge.Message, b ircText) (bridge.Confirm, bool) {
	if direct {
		a.mu.Lock()
		p.direct = true
		a.mu.Unlock()
	} else if err := p.k.join(ctx, target); err != nil {
		defer a.releasePuppet(p)
		if ctx.Err() != nil || errors.Is(err, errNotConnected) || errors.Is(err, errDisconnected) {
			return bridge.Settled("", err), false
		}
		if ban := a.puppetRefused(ctx, p, target, err); ban != nil {
			// Never the bot instead: that would bypass the ban.
			return bridge.Settled("", ban), false
		}
		// Banned, invite-only, registered-only...: the bot may still
		// speak there.
		a.log.Warn("puppet cannot join; relaying", "puppet", p.k.nick(), "channel", target, "err", err)
		return nil, true
	}
	sent := a.startVia(ctx, p.k, key, target, m, b, "")
	return func(ctx context.Context) (string, error) {
		defer a.releasePuppet(p)
		id, err := sent(ctx)
		if !direct {
			if ban := a.puppetRefused(ctx, p, target, err); ban != nil {
				a.forgetProgress(key)
				return "", ban
			}
		}
		return id, err
	}, false
}

// ircText is what a message says on IRC, "\n" between lines: its text,
// which is cut short when long, and the lines of its attachments, which
// are sent whole after it (the link to the whole text shows the text
// only).
type ircText struct {
	text, attachments string
	cut               bool // the text may be cut (see cutMessage)
	lineTags               // IRCv3 client tags (tags.go)
}

// renderBody is the message as IRC text.
func renderBody(m *bridge.Message) ircText {
	text := m.Text
	if m.HTML != "" {
		if b := htmlToIRC(m.HTML); visible(b) {
			text = b
		}
	}
	if bridge.OnlyAttachmentName(text, m.Attachments) {
		text = "" // the attachment's line names it
	}
	// The attachments whose URL the text does not show already.
	atts := strings.TrimPrefix(bridge.WithAttachmentLines(text, m.Attachments), text)
	return ircText{text: text, attachments: strings.TrimPrefix(atts, "\n"), cut: true}
}

// relayName is the sender's name in a relay prefix, bounded, since every
// line repeats it, and with no "<" or ">" to end the prefix early.
func relayName(s bridge.Sender) string {
	s.Name, s.ID = stripCodes(s.Name), stripCodes(s.ID)
	return s.Shown(bridge.RelayDelims)
}

func relayPrefix(m *bridge.Message) string {
	if m.Emote {
		return "* " + relayName(m.Sender) + " "
	}
	return "<" + relayName(m.Sender) + "> "
}

// sendVia sends the message's lines over k and waits for them to be
// confirmed.
func (a *Adapter) sendVia(ctx context.Context, k *conn, key, target string, m *bridge.Message, b ircText, prefix string) (string, error) {
	return a.startVia(ctx, k, key, target, m, b, prefix)(ctx)
}

// sentLine is a line sent for a piece of a message, and where its
// confirmation arrives.
type sentLine struct {
	idx  int // the piece
	ch   <-chan lineResult
	dead <-chan struct{}
}

// startVia sends the message's lines over k and returns the wait for
// their confirmation. Lines go out back to back (flood control
// permitting), with the connection held for them alone; a line confirmed
// in an earlier attempt is not sent again. A text that may be cut and is
// longer than max_message_lines is cut short (see cutMessage) when its
// lines are first made, so a retry resends the same lines.
func (a *Adapter) startVia(ctx context.Context, k *conn, key, target string, m *bridge.Message, b ircText, prefix string) bridge.Confirm {
	command := "PRIVMSG"
	if m.Notice && !m.Emote {
		command = "NOTICE"
	}
	action := m.Emote && prefix == ""
	if err := k.acquire(ctx); err != nil {
		return bridge.Settled("", err)
	}
	if !k.isUp() {
		k.release()
		return bridge.Settled("", errNotConnected)
	}
	info := a.serverInfo()
	budget := lineBudget(info.lineLen, k.nick(), k.getUserHost(), info.userLen, command, target, action)
	pr := a.progressFor(key, func() *progress {
		lines := func(s string) []string {
			var out []string
			for _, l := range splitText(s, prefix, budget) {
				out = append(out, strings.TrimPrefix(l, prefix))
			}
			return out
		}
		atts := lines(b.attachments)
		quote := lines(b.quote)
		text := append(quote, lines(b.text)...)
		if b.cut {
			text = a.cutMessage(text, len(atts), m.ID)
		}
		pieces := append(text, atts...)
		pieces, tg := b.lineTags.pieces(pieces, min(len(quote), len(text)))
		return &progress{pieces: pieces, done: make([]bool, len(pieces)), ids: make([]string, len(pieces)), tagged: tg}
	})
	// The lines to send now: the ones not confirmed yet, re-split if this
	// attempt's prefix or budget is tighter than the first one's.
	type item struct {
		idx  int
		text string
	}
	var todo []item
	a.mu.Lock()
	for i, piece := range pr.pieces {
		if pr.done[i] {
			continue
		}
		if pr.isTagmsg(i) {
			todo = append(todo, item{idx: i})
			continue
		}
		for _, l := range splitLine(nil, piece, prefix, budget) {
			todo = append(todo, item{i, l})
		}
	}
	a.mu.Unlock()
	var out []sentLine
	var sendErr error
	for _, it := range todo {
		cmd, text := command, it.text
		if pr.isTagmsg(it.idx) {
			cmd = "TAGMSG"
		} else if action {
			text = "\x01ACTION " + text + "\x01"
		}
		rc, dead, err := k.submit(ctx, cmd, target, text, pr.tagsOf(it.idx))
		if err != nil {
			sendErr = err
			break
		}
		out = append(out, sentLine{it.idx, rc, dead})
	}
	k.release()
	return func(ctx context.Context) (string, error) {
		return a.settleLines(ctx, k, key, target, pr, out, sendErr)
	}
}

// settleLines waits for the confirmations of the lines startVia sent
// and records which pieces of the message are done, for a retry to send
// only the others; sendErr is the error that ended the sending early.
func (a *Adapter) settleLines(ctx context.Context, k *conn, key, target string, pr *progress, out []sentLine, sendErr error) (string, error) {
	// A piece re-split into several lines is done only when all are.
	failed := map[int]bool{}
	ids := map[int]string{}
	for _, s := range out {
		r := k.await(ctx, s.ch, s.dead)
		if r.err != nil {
			failed[s.idx] = true
			if sendErr == nil {
				sendErr = r.err
			}
			continue
		}
		if _, ok := ids[s.idx]; !ok {
			ids[s.idx] = r.msgid
		}
	}
	a.mu.Lock()
	for _, s := range out {
		if !failed[s.idx] {
			pr.done[s.idx] = true
			if pr.ids[s.idx] == "" {
				pr.ids[s.idx] = ids[s.idx]
			}
		}
	}
	complete := true
	for _, d := range pr.done {
		complete = complete && d
	}
	first := pr.remoteID(pr.ids)
	if complete {
		delete(a.progress, key)
	}
	a.mu.Unlock()
	if sendErr != nil {
		return "", fmt.Errorf("irc: send to %s: %w", target, sendErr)
	}
	return first, nil
}

// SendMembership mirrors a foreign user's joins, leaves and renames with
// their puppet, when they have one; puppets are created by messages only.
func (a *Adapter) SendMembership(ctx context.Context, d *bridge.Delivery) error {
	if a.mode != "puppet" {
		return nil
	}
	info := a.serverInfo()
	if err := validChannel(d.Room, info.chanTypes, info.chanLen); err != nil {
		return bridge.Permanent(err)
	}
	if k := a.ShardOf(d.Event, d.Relay); !a.holds(k) {
		return a.notHeld(k)
	}
	s := d.Event.Head().Sender
	p, err := a.existingPuppet(ctx, s)
	if err != nil || p == nil {
		return err
	}
	defer a.releasePuppet(p)
	switch ev := d.Event.(type) {
	case *bridge.Join:
		if d.Relay {
			return nil // the bot speaks for everyone in a relayed room
		}
		return p.k.join(ctx, d.Room)
	case *bridge.Leave:
		if !p.k.inChannel(d.Room) {
			return nil
		}
		return a.partPuppet(ctx, p, d.Room, stripCodes(cleanLine(ev.Reason)))
	case *bridge.Rename:
		nick := mapping.IRCNick(mapping.Render(a.template, ev.Sender), info.nickLen, ev.Sender)
		if nick == p.k.nick() {
			return nil
		}
		a.mu.Lock()
		p.sender = ev.Sender
		a.mu.Unlock()
		return p.k.rename(ctx, nick)
	}
	return nil
}

// Puppets counts the puppet connections open now.
func (a *Adapter) Puppets() int {
	a.mu.Lock()
	conns := make([]*conn, 0, len(a.puppets))
	for _, p := range a.puppets {
		if !p.retired && p.k != nil {
			conns = append(conns, p.k)
		}
	}
	a.mu.Unlock()
	n := 0
	for _, k := range conns { // k.mu is not taken under a.mu
		if k.isUp() {
			n++
		}
	}
	return n
}
