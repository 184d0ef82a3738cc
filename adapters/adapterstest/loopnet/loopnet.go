// Package loopnet is a network type for tests only: chat rooms on an
// in-process hub, reached by name. It is what a new network type amounts
// to (a config section, an adapter, one Register call), and tests use it
// to prove that a package outside config/ and cmd/ can add one: check
// validates its keys, the service relays through it, and it passes the
// conformance suite.
package loopnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
)

// Type is the network type's name.
const Type = "loopnet"

// Config is a loopnet network's keys.
type Config struct {
	// Hub names the hub (NewHub) the network's rooms are on.
	Hub string `yaml:"hub"`
	// Nick is the bot's name in the rooms.
	Nick string `yaml:"nick"`
	// Token is checked by the hub, when it has one: a secret.
	Token string `yaml:"token" secret:"true"`
}

func (c *Config) SetDefaults(_ string, _ *config.Network, _ func(string) bool) {
	config.SetDefault(&c.Nick, "switchboard")
}

func (c *Config) Validate(p *config.Problems, _ *config.Network) {
	if c.Hub == "" {
		p.Add("hub", "required (the name of a hub)")
	}
	if strings.ContainsAny(c.Nick, " \r\n\x00") {
		p.Add("nick", "%q contains a space or a control character", c.Nick)
	}
}

func (*Config) CheckRoom(room string) error {
	if strings.ContainsFunc(room, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') }) {
		return errors.New("a loopnet room is lowercase letters, digits and -")
	}
	return nil
}

func (c Config) String() string { return config.Redacted(&c) }

var register sync.Once

// Register registers the type, once however often it is called: tests
// call it, so that only the binaries that want it have it.
func Register() {
	register.Do(func() {
		adapters.Register(adapters.Type{
			NetworkType: config.NetworkType{
				Name:    Type,
				Config:  func() config.Section { return new(Config) },
				Example: "  loop:\n    # string, required. Network type.\n    type: loopnet\n    # string, required. The hub.\n    hub: h\n",
				Rooms:   "Loopnet rooms are lowercase letters, digits and -.",
			},
			New: func(name string, n *config.Network, log *slog.Logger) (adapters.Adapter, error) {
				c, _ := n.Section.(*Config)
				if c == nil {
					return nil, fmt.Errorf("networks.%s: no loopnet settings", name)
				}
				return &Adapter{name: name, cfg: *c, rooms: map[string]*Member{}}, nil
			},
		})
	})
}

// Line is a line said in a room.
type Line struct{ From, Text string }

// Hub is a chat server: rooms of members that see each other's lines.
type Hub struct {
	name  string
	token string
	mu    sync.Mutex
	rooms map[string]map[*Member]bool
}

var (
	hubsMu sync.Mutex
	hubs   = map[string]*Hub{}
)

// NewHub starts a hub that networks reach by name; token, when set, is
// what they must present. Close removes it.
func NewHub(name, token string) *Hub {
	h := &Hub{name: name, token: token, rooms: map[string]map[*Member]bool{}}
	hubsMu.Lock()
	defer hubsMu.Unlock()
	hubs[name] = h
	return h
}

// Close removes the hub and disconnects its members.
func (h *Hub) Close() {
	hubsMu.Lock()
	delete(hubs, h.name)
	hubsMu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ms := range h.rooms {
		for m := range ms {
			m.closeLocked()
		}
	}
	h.rooms = map[string]map[*Member]bool{}
}

// Join connects nick to room.
func (h *Hub) Join(room, nick string) *Member {
	m := &Member{hub: h, room: room, Nick: nick, lines: make(chan Line, 1024), done: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.rooms[room] == nil {
		h.rooms[room] = map[*Member]bool{}
	}
	h.rooms[room][m] = true
	return m
}

// Member is one connection in one room.
type Member struct {
	hub    *Hub
	room   string
	Nick   string
	lines  chan Line
	done   chan struct{}
	closed bool
}

// Say sends a line to the room's other members.
func (m *Member) Say(text string) error {
	m.hub.mu.Lock()
	defer m.hub.mu.Unlock()
	if m.closed {
		return errors.New("loopnet: not in the room")
	}
	for o := range m.hub.rooms[m.room] {
		if o != m {
			select {
			case o.lines <- Line{From: m.Nick, Text: text}:
			default: // a member that does not read loses lines
			}
		}
	}
	return nil
}

// Lines are the lines the member sees.
func (m *Member) Lines() <-chan Line { return m.lines }

// Done is closed when the member leaves.
func (m *Member) Done() <-chan struct{} { return m.done }

// Leave disconnects the member.
func (m *Member) Leave() {
	m.hub.mu.Lock()
	defer m.hub.mu.Unlock()
	m.closeLocked()
}

func (m *Member) closeLocked() {
	if m.closed {
		return
	}
	m.closed = true
	delete(m.hub.rooms[m.room], m)
	close(m.done)
}

// WaitFor waits for a line the member sees that matches.
func (m *Member) WaitFor(ctx context.Context, match func(Line) bool) (Line, error) {
	for {
		select {
		case l := <-m.lines:
			if match(l) {
				return l, nil
			}
		case <-ctx.Done():
			return Line{}, ctx.Err()
		}
	}
}

// Adapter is a loopnet network: the bot is a member of each joined room
// and relays foreign senders as "<name> text".
type Adapter struct {
	name string
	cfg  Config
	mu   sync.Mutex
	hub  *Hub
	in   bridge.Inbound
	ctx  context.Context
	// rooms holds the bot's membership of each joined room.
	rooms map[string]*Member
}

var (
	_ adapters.Leaver  = (*Adapter)(nil)
	_ bridge.BotSender = (*Adapter)(nil)
)

func (a *Adapter) Network() string { return a.name }

func (a *Adapter) Start(ctx context.Context, in bridge.Inbound) error {
	hubsMu.Lock()
	h := hubs[a.cfg.Hub]
	hubsMu.Unlock()
	if h == nil {
		return fmt.Errorf("networks.%s.hub: no hub %q", a.name, a.cfg.Hub)
	}
	if h.token != "" && h.token != a.cfg.Token {
		return fmt.Errorf("networks.%s.token: refused by hub %q", a.name, a.cfg.Hub)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.hub, a.in = h, in
	// Events are accepted after Start returns, on a context of their own.
	a.ctx = context.WithoutCancel(ctx)
	in.Online(a.name)
	return nil
}

func (a *Adapter) Join(_ context.Context, room string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.hub == nil {
		return errors.New("loopnet: not started")
	}
	if a.rooms[room] != nil {
		return nil
	}
	m := a.hub.Join(room, a.cfg.Nick)
	a.rooms[room] = m
	go a.read(room, m)
	return nil
}

// read hands what the room says to the bridge, in order.
func (a *Adapter) read(room string, m *Member) {
	for {
		select {
		case l := <-m.Lines():
			ev := &bridge.Message{
				Header: bridge.Header{
					ID:     bridge.NewEventID(),
					Origin: bridge.Origin{Network: a.name, Room: room},
					Sender: bridge.Sender{Network: a.name, ID: l.From, Name: l.From},
					Time:   time.Now().UTC(),
				},
				Text: l.Text,
			}
			if err := a.in.Accept(a.ctx, ev); err != nil {
				slog.Warn("loopnet: accept", "network", a.name, "err", err)
			}
		case <-m.Done():
			return
		}
	}
}

func (a *Adapter) Leave(_ context.Context, room string) error {
	a.mu.Lock()
	m := a.rooms[room]
	delete(a.rooms, room)
	a.mu.Unlock()
	if m != nil {
		m.Leave()
	}
	return nil
}

func (a *Adapter) Stop(context.Context) error {
	a.mu.Lock()
	rooms := a.rooms
	a.rooms = map[string]*Member{}
	a.mu.Unlock()
	for _, m := range rooms {
		m.Leave()
	}
	return nil
}

// clean keeps a line one line: no NUL, line breaks as spaces.
var clean = strings.NewReplacer("\x00", "", "\r\n", " ", "\r", " ", "\n", " ")

func (a *Adapter) Send(_ context.Context, d *bridge.Delivery) (string, error) {
	m, ok := d.Event.(*bridge.Message)
	if !ok {
		return "", fmt.Errorf("%w: loopnet carries messages only", bridge.ErrPermanent)
	}
	return "", a.say(d.Room, "<"+m.Sender.Name+"> "+m.Text) // the hub gives lines no ids
}

// SendAsBot says text in room; the hub has no private messages.
func (a *Adapter) SendAsBot(_ context.Context, room, _, text string) error {
	if room == "" {
		return fmt.Errorf("%w: loopnet has no private messages", bridge.ErrPermanent)
	}
	return a.say(room, text)
}

func (a *Adapter) say(room, text string) error {
	a.mu.Lock()
	member := a.rooms[room]
	a.mu.Unlock()
	if member == nil {
		return fmt.Errorf("loopnet: room %s not joined", room)
	}
	return member.Say(clean.Replace(text))
}
