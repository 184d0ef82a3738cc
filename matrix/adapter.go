// Package matrix bridges Matrix rooms as an application service: the
// homeserver pushes room events to Switchboard (PUT /transactions), and
// every foreign sender speaks through a ghost user of their own.
package matrix

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/backoff"
	"github.com/switchboard-chat/switchboard/internal/linksign"
)

//go:embed example.yaml
var example string

func init() {
	adapters.Register(adapters.Type{
		NetworkType: config.NetworkType{
			Name:     "matrix",
			Config:   func() config.Section { return new(Config) },
			Example:  example,
			Rooms:    "Matrix rooms are room ids (!id:example.org) or aliases (#name:example.org).",
			Kicks:    true,
			Accounts: &config.AccountRules{Credentials: []string{"token", "double_puppet"}, Check: checkAccount, Note: noteAccount},
		},
		New: func(name string, n *config.Network, log *slog.Logger) (adapters.Adapter, error) {
			return New(name, n, log)
		},
		Commands: []adapters.Command{registrationCommand},
	})
}

// Adapter is one matrix network.
type Adapter struct {
	// unsure: sends whose answer was lost (see unsure.go).
	unsure unsure

	name  string
	cfg   Config
	relay bool
	// kickBlocks: a kicked ghost keeps its sender out (kick_blocks).
	kickBlocks bool
	mod        *adapters.Moderation
	template   string
	log        *slog.Logger
	ghosts     *ghosts
	fetch      *fetcher
	as         *appservice.AppService
	botID      id.UserID
	hsURL      string
	// publicURL is http.public_url (set before Start, then read only);
	// mediaClient fetches the files its links stand for.
	publicURL   string
	mediaClient *http.Client

	state adapters.State
	// history gives new portal rooms the link's last messages (set
	// before Start, or nil).
	history adapters.History

	mu     sync.Mutex
	in     bridge.Inbound
	ctx    context.Context
	cancel context.CancelFunc
	wanted []string             // rooms Join was called with
	left   map[string]bool      // rooms Leave was called with since
	rooms  map[string]id.RoomID // joined: configured address → room id
	byID   map[id.RoomID]string // and back
	names  map[id.UserID]string // display names of Matrix users
	typing map[id.RoomID]map[id.UserID]bool
	// encrypted are the linked rooms known to be encrypted (see
	// encryption.go).
	encrypted map[string]bool
	// seedingRooms are the portal rooms whose history is being posted
	// (see history.go): deliveries to them wait.
	seedingRooms map[string]bool
	kick         chan struct{}
	done         chan struct{}
	srv          *http.Server
	stopped      bool
	// linkKey signs media links (loaded in Start when publicURL is set).
	linkKey linksign.Key

	// dms (guarded by mu) caches the direct chats looked up (dmOf): nil
	// for a room that is none.
	dms map[id.RoomID]*dmRoom

	// txnMu runs transactions one at a time, in the order they come.
	txnMu sync.Mutex
	// joinMu orders the bot's joins and leaves: a join under way when
	// Leave comes must not take the bot back in after it.
	joinMu sync.Mutex
	// ghostMu guards ghostNames, the display names already set,
	// ghostAvatars, the avatar hashes already set (see avatar.go), and
	// quieted, the users whose notifications are off (see quiet.go).
	ghostMu       sync.Mutex
	quieted       map[id.UserID]bool
	ghostNames    map[id.UserID]string
	ghostAvatars  map[id.UserID]string
	avatarRetryAt map[id.UserID]time.Time
	// avatars is the shared avatar store (set before Start, or nil).
	avatars adapters.AvatarStore
	// userAvatars (guarded by mu) and avatarWG are Matrix users' avatars
	// on their way to the store (see useravatar.go).
	userAvatars userAvatars
	avatarWG    sync.WaitGroup
	// seedWG: portal rooms being seeded (history.go).
	seedWG sync.WaitGroup

	connected atomic.Bool

	// peopleMu guards people, the personal accounts (see personal.go).
	peopleMu sync.Mutex
	people   people
}

var (
	_ adapters.Adapter       = (*Adapter)(nil)
	_ adapters.Connected     = (*Adapter)(nil)
	_ adapters.RoomFlagger   = (*Adapter)(nil)
	_ adapters.Stateful      = (*Adapter)(nil)
	_ adapters.HTTPServer    = (*Adapter)(nil)
	_ adapters.PublicURLUser = (*Adapter)(nil)
	_ bridge.Replier         = (*Adapter)(nil)
	_ bridge.Editor          = (*Adapter)(nil)
	_ bridge.Deleter         = (*Adapter)(nil)
	_ bridge.Reactor         = (*Adapter)(nil)
	_ bridge.MemberRelayer   = (*Adapter)(nil)
	_ bridge.TypingRelayer   = (*Adapter)(nil)
	_ bridge.DirectMessenger = (*Adapter)(nil)
	_ bridge.BotSender       = (*Adapter)(nil)
	_ adapters.Leaver        = (*Adapter)(nil)
	_ adapters.AvatarUser    = (*Adapter)(nil)
)

// New builds the adapter for a configured matrix network.
func New(name string, n *config.Network, log *slog.Logger) (*Adapter, error) {
	cfg, _ := n.Section.(*Config)
	if cfg == nil {
		return nil, fmt.Errorf("networks.%s: no matrix section", name)
	}
	c := *cfg
	reg := Registration(&c, "127.0.0.1:0")
	as, err := appservice.CreateFull(appservice.CreateOpts{
		Registration:     reg,
		HomeserverDomain: c.Domain,
		HomeserverURL:    c.Homeserver,
	})
	if err != nil {
		return nil, fmt.Errorf("networks.%s: %w", name, err)
	}
	as.StateStore = &cowStore{MemoryStateStore: mautrix.NewMemoryStateStore().(*mautrix.MemoryStateStore)}
	// Requests fail fast; Send retries what is worth retrying (429) and
	// the router's outbox the rest.
	as.DefaultHTTPRetries = 0
	as.HTTPClient.Timeout = 30 * time.Second
	limitRequests(as.HTTPClient, maxInFlight)
	as.Log = zerolog.New(zerologWriter{log}).Level(zerolog.WarnLevel)
	a := &Adapter{
		name:          name,
		cfg:           c,
		relay:         n.Mode == "relay",
		kickBlocks:    n.KickBlocks,
		template:      n.Puppets.Template,
		log:           log,
		ghosts:        newGhosts(c.GhostLocalpart, c.Domain),
		fetch:         newFetcher(c.Media),
		mediaClient:   newMediaClient(),
		as:            as,
		botID:         id.NewUserID(c.Bot, c.Domain),
		hsURL:         strings.TrimRight(c.Homeserver, "/"),
		state:         newMemState(),
		rooms:         map[string]id.RoomID{},
		left:          map[string]bool{},
		byID:          map[id.RoomID]string{},
		names:         map[id.UserID]string{},
		dms:           map[id.RoomID]*dmRoom{},
		typing:        map[id.RoomID]map[id.UserID]bool{},
		encrypted:     map[string]bool{},
		seedingRooms:  map[string]bool{},
		ghostNames:    map[id.UserID]string{},
		quieted:       map[id.UserID]bool{},
		ghostAvatars:  map[id.UserID]string{},
		avatarRetryAt: map[id.UserID]time.Time{},
		userAvatars:   newUserAvatars(),
		kick:          make(chan struct{}, 1),
	}
	return a, nil
}

// Network is the network's name.
func (a *Adapter) Network() string { return a.name }

// UseState makes the adapter keep its state (transactions seen, portal
// rooms, DM rooms, reactions sent) in s.
func (a *Adapter) UseState(s adapters.State) { a.state = s }

// RegisterHTTP serves the appservice API on Switchboard's listener, unless
// the network has a listener of its own, and media links (always: they
// point at Switchboard's listener, http.public_url).
func (a *Adapter) RegisterHTTP(mux *http.ServeMux) {
	register(mux, a, a.cfg.Listen == "")
}

// Connected reports whether the homeserver answered the last check and
// the bot is in every room it could join.
func (a *Adapter) Connected() bool { return a.connected.Load() }

// RunsEverywhere implements adapters.Everywhere: in a cluster every
// instance answers the homeserver's transactions (behind any load
// balancer); only the holder of the network's lease sends.
func (a *Adapter) RunsEverywhere() {}

// DirectMessages says the adapter takes direct events: Matrix users get
// them in a DM room with the sender's ghost.
func (a *Adapter) DirectMessages() {}

// Start serves the own listener when configured and keeps the bot joined
// to the linked rooms in the background.
func (a *Adapter) Start(ctx context.Context, in bridge.Inbound) error {
	if err := a.loadLinkKey(ctx); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.in != nil {
		return errors.New("matrix: started twice")
	}
	a.in = in
	a.mod = adapters.NewModeration(a.name, a.kickBlocks, in, a.log)
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.done = make(chan struct{})
	if a.cfg.Listen != "" {
		ln, err := net.Listen("tcp", a.cfg.Listen)
		if err != nil {
			return fmt.Errorf("matrix: listen %s: %w", a.cfg.Listen, err)
		}
		mux := http.NewServeMux()
		register(mux, a, true)
		a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go a.srv.Serve(ln)
	}
	var wg sync.WaitGroup
	wg.Go(a.maintain)
	wg.Go(func() { a.pruneLoop(a.ctx) })
	go func() {
		wg.Wait()
		close(a.done)
	}()
	return nil
}

// Stop ends the background work and the own listener.
func (a *Adapter) Stop(ctx context.Context) error {
	a.mu.Lock()
	if a.in == nil || a.stopped {
		a.mu.Unlock()
		return nil
	}
	a.stopped = true
	a.cancel()
	srv, done := a.srv, a.done
	a.mu.Unlock()
	unregister(a)
	var err error
	if srv != nil {
		err = srv.Shutdown(ctx)
	}
	// Avatar downloads end with a.ctx; none starts once stopped is set.
	avatars := make(chan struct{})
	go func() {
		a.avatarWG.Wait()
		a.seedWG.Wait()
		close(avatars)
	}()
	for _, ch := range []chan struct{}{done, avatars} {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	a.connected.Store(false)
	return err
}

// Join starts bridging a room (a room id or alias); the bot joins it in
// the background, now and after every reconnect.
func (a *Adapter) Join(ctx context.Context, room string) error {
	a.mu.Lock()
	delete(a.left, room)
	for _, r := range a.wanted {
		if r == room {
			a.mu.Unlock()
			return nil
		}
	}
	a.wanted = append(a.wanted, room)
	a.mu.Unlock()
	a.poke()
	return nil
}

func (a *Adapter) poke() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// maintain checks the homeserver and joins the wanted rooms, backing off
// while it is unreachable. A homeserver that answers once and fails again
// soon after is not hammered: the backoff starts over only after it kept
// answering for a while.
func (a *Adapter) maintain() {
	b := backoff.New(500*time.Millisecond, 30*time.Second)
	quietened := false
	for {
		ok := a.sync(a.ctx)
		was := a.connected.Swap(ok)
		if ok && !was {
			a.log.Info("matrix homeserver reachable, bot in every linked room")
			a.in.Online(a.name)
			b.Connected()
		}
		if ok && !was {
			a.checkPeople(a.ctx)
		}
		if ok && !quietened {
			a.quietGhosts(a.ctx)
			quietened = true
		}
		wait := 5 * time.Second
		if !ok {
			wait = b.Next()
		}
		if !backoff.Sleep(a.ctx, wait, a.kick) {
			return
		}
	}
}

// sync makes sure the bot exists and is in every wanted room; it reports
// whether all of it holds.
func (a *Adapter) sync(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	bot := a.as.BotIntent()
	if err := ensureRegistered(ctx, bot); err != nil {
		if ctx.Err() == nil {
			a.log.Warn("matrix bot registration", "err", err)
		}
		return false
	}
	if _, err := bot.Whoami(ctx); err != nil {
		if ctx.Err() == nil {
			a.log.Warn("matrix homeserver check failed", "err", err)
		}
		return false
	}
	a.quiet(ctx, bot)
	a.mu.Lock()
	wanted := append([]string(nil), a.wanted...)
	a.mu.Unlock()
	ok := true
	for _, room := range wanted {
		if err := a.joinWanted(ctx, room); errors.Is(err, errPortalPending) {
			continue // not an error: it is made when someone asks for it
		} else if err != nil {
			a.log.Warn("matrix join", "room", room, "err", err)
			ok = false
		}
	}
	return ok
}

// errPortalPending says a portal room has not been asked for yet.
var errPortalPending = errors.New("portal room not created yet (no Matrix user has joined its alias)")

// joinWanted joins a room unless Leave took it off the list meanwhile.
func (a *Adapter) joinWanted(ctx context.Context, room string) error {
	a.joinMu.Lock()
	defer a.joinMu.Unlock()
	if !a.wants(room) {
		return nil
	}
	return a.joinRoom(ctx, room)
}

// joinRoom resolves a configured room to its id and has the bot join it.
func (a *Adapter) joinRoom(ctx context.Context, room string) error {
	a.mu.Lock()
	rid, known := a.rooms[room]
	a.mu.Unlock()
	bot := a.as.BotIntent()
	if known {
		// Still there? The cache says yes unless a leave or kick came in.
		if a.as.StateStore.IsInRoom(ctx, rid, a.botID) {
			return nil
		}
	}
	if !known {
		var err error
		if rid, err = a.resolve(ctx, room); err != nil {
			return err
		}
	}
	// Known before the join: an invite arriving meanwhile is accepted.
	a.link(room, rid)
	if _, err := bot.JoinRoomByID(ctx, rid); err != nil {
		return fmt.Errorf("join %s: %w", rid, err)
	}
	if err := a.as.StateStore.SetMembership(ctx, rid, a.botID, event.MembershipJoin); err != nil {
		return err
	}
	a.reportMembers(ctx, room, rid)
	// Not a failed join: the room's next encrypted event tries again.
	if err := a.checkEncrypted(ctx, room, rid); err != nil {
		a.log.Warn("matrix: could not tell whether a room is encrypted", "room", room, "err", err)
	}
	return nil
}

// resolve finds a configured room's id: a portal's in State, an alias's
// on the homeserver.
func (a *Adapter) resolve(ctx context.Context, room string) (id.RoomID, error) {
	if !strings.HasPrefix(room, "#") {
		return id.RoomID(room), nil
	}
	if a.isPortal(room) {
		v, ok, err := a.state.Get(ctx, "portal:"+room)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", errPortalPending
		}
		return id.RoomID(v), nil
	}
	res, err := a.as.BotIntent().ResolveAlias(ctx, id.RoomAlias(room))
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", room, err)
	}
	return res.RoomID, nil
}

func (a *Adapter) link(room string, rid id.RoomID) {
	a.mu.Lock()
	a.rooms[room] = rid
	a.byID[rid] = room
	a.mu.Unlock()
}

// isPortal reports whether a configured room is a portal alias: an alias
// of our domain in the portal namespace (#sb_...:domain).
func (a *Adapter) isPortal(room string) bool {
	local, server, ok := strings.Cut(strings.TrimPrefix(room, "#"), ":")
	return ok && strings.HasPrefix(room, "#") && server == a.cfg.Domain && strings.HasPrefix(local, a.ghosts.prefix)
}

// roomAddr returns the configured address of a linked room id.
func (a *Adapter) roomAddr(rid id.RoomID) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.byID[rid]
	return r, ok
}

// roomID returns the id of a linked room, once joined.
func (a *Adapter) roomID(room string) (id.RoomID, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.rooms[room]
	return r, ok
}

func (a *Adapter) wants(room string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.wanted {
		if r == room {
			return true
		}
	}
	return false
}

// isOurs reports whether a user is the bot or a ghost: their events are
// Switchboard's own and never bridged back.
func (a *Adapter) isOurs(u id.UserID) bool {
	return u == a.botID || a.ghosts.isGhost(string(u))
}

// zerologWriter hands mautrix's log lines to slog.
type zerologWriter struct{ log *slog.Logger }

func (w zerologWriter) Write(p []byte) (int, error) {
	w.log.Warn("mautrix", "line", strings.TrimSpace(string(p)))
	return len(p), nil
}

// memState is the State an adapter keeps when the service hands it none
// (tests): in memory, lost on restart.
type memState struct {
	mu sync.Mutex
	m  map[string]string
}

func newMemState() *memState { return &memState{m: map[string]string{}} }

func (s *memState) Get(_ context.Context, k string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[k]
	return v, ok, nil
}

func (s *memState) Put(_ context.Context, k, v string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k] = v
	return nil
}

func (s *memState) PutIfAbsent(_ context.Context, k, v string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[k]; ok {
		return false, nil
	}
	s.m[k] = v
	return true, nil
}

func (s *memState) Delete(_ context.Context, k string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
	return nil
}

func (s *memState) Scan(_ context.Context, prefix string, fn func(k, v string) bool) error {
	s.mu.Lock()
	var keys []string
	for k := range s.m {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	s.mu.Unlock()
	slices.Sort(keys)
	for _, k := range keys {
		// Read again: fn may have changed it.
		if v, ok, _ := s.Get(context.Background(), k); ok && !fn(k, v) {
			return nil
		}
	}
	return nil
}

// isForbidden reports a Matrix M_FORBIDDEN answer.
func isForbidden(err error) bool { return errors.Is(err, mautrix.MForbidden) }

// cowStore is mautrix's in-memory state store with SetMembership made
// copy-on-write: the original changes the cached member in place, under
// readers that hold the pointer.
type cowStore struct {
	*mautrix.MemoryStateStore
	mu sync.Mutex
}

func (s *cowStore) SetMembership(ctx context.Context, rid id.RoomID, u id.UserID, m event.Membership) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var c event.MemberEventContent
	if old, _ := s.MemoryStateStore.TryGetMember(ctx, rid, u); old != nil {
		c = *old
	}
	c.Membership = m
	return s.MemoryStateStore.SetMember(ctx, rid, u, &c)
}

func (s *cowStore) SetMember(ctx context.Context, rid id.RoomID, u id.UserID, m *event.MemberEventContent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.MemoryStateStore.SetMember(ctx, rid, u, m)
}
