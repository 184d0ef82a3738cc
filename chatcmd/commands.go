// Package chatcmd answers the !sb chat commands: admins' anywhere, room
// operators' (blocks, relay mode) in their own room. It sits between the
// adapters and the router; commands and the bot's replies are never
// bridged.
package chatcmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/mapping"
	"github.com/switchboard-chat/switchboard/status"
)

// Links is how the chat commands change links. The service
// implements it.
type Links interface {
	// LinkOf returns the link a room belongs to and every room of it.
	LinkOf(room bridge.RoomAddr) (link string, rooms []bridge.RoomAddr, ok bool)
	// LinkRooms puts room into anchor's link, creating a link for anchor
	// if it has none, and returns the link's name. Errors are for people.
	LinkRooms(ctx context.Context, anchor, room bridge.RoomAddr) (string, error)
	// UnlinkRoom takes room out of its link.
	UnlinkRoom(ctx context.Context, room bridge.RoomAddr) error
	// SetRelay turns relay mode for deliveries into room on or off.
	SetRelay(ctx context.Context, room bridge.RoomAddr, on bool) error
	Relayed(room bridge.RoomAddr) bool
}

// commandTimeout bounds one command with its replies: Accept runs in an
// adapter's read loop, which a stuck network must not hold up for long.
const commandTimeout = 30 * time.Second

// Commands sits between the adapters and the router and answers the !sb
// chat commands of admins, and those of room operators in their own room
// (operatorCommands). Commands and their replies never reach the
// router, so they are never bridged; everything else passes through.
type Commands struct {
	next   bridge.Inbound
	links  Links
	status func(context.Context) status.Status // what /api/status shows
	log    *slog.Logger

	admins atomic.Pointer[mapping.Admins] // swapped whole on reload
	// ignore, when set (before the adapters start), names the senders
	// whose events go straight on to the router, which drops them: an
	// ignored bot is neither obeyed nor answered, so two bots never talk
	// to each other through the hint.
	ignore bridge.Ignorer

	mu   sync.RWMutex // adapters are added while earlier ones already run
	nets map[string]commandNet
}

// commandNet is what the commands know of one network.
type commandNet struct {
	typ     string
	bot     bridge.BotSender      // nil: the adapter cannot speak as the bot
	puppets bridge.PuppetResolver // nil: the adapter has no puppets to name
}

// New makes the commands, passing on to next what is not for them.
func New(next bridge.Inbound, links Links, status func(context.Context) status.Status, admins *mapping.Admins, log *slog.Logger) *Commands {
	c := &Commands{next: next, links: links, status: status, log: log, nets: map[string]commandNet{}}
	c.admins.Store(admins)
	return c
}

// AddNetwork makes a network's senders known (by its type, for the admin
// rules) and its bot, if the adapter has one, the way replies go there.
func (c *Commands) AddNetwork(name, typ string, adapter any) {
	bot, _ := adapter.(bridge.BotSender)
	puppets, _ := adapter.(bridge.PuppetResolver)
	c.mu.Lock()
	c.nets[name] = commandNet{typ: typ, bot: bot, puppets: puppets}
	c.mu.Unlock()
}

// Reload takes the admins of a re-read config. A list that does not parse
// keeps the old one: the config was validated, so this should not happen.
func (c *Commands) Reload(cfg *config.Config) {
	admins, err := mapping.ParseAdmins(cfg.Admins)
	if err != nil {
		c.log.Error("chat commands: admins not reloaded", "err", err)
		return
	}
	c.admins.Store(admins)
}

// IgnoreBy makes the events of the senders ig ignores go straight on to
// the router (see Commands.ignore); before the adapters start.
func (c *Commands) IgnoreBy(ig bridge.Ignorer) { c.ignore = ig }

func (c *Commands) network(name string) (commandNet, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n, ok := c.nets[name]
	return n, ok
}

// Online implements bridge.Inbound.
func (c *Commands) Online(network string) { c.next.Online(network) }

// errNoBlocks: what the commands pass adapters' reports to keeps no blocks.
var errNoBlocks = errors.New("blocks are not kept here")

// Block implements bridge.Blocker, for the router behind.
func (c *Commands) Block(ctx context.Context, b bridge.Block) error {
	if bl, ok := c.next.(bridge.Blocker); ok {
		return bl.Block(ctx, b)
	}
	return errNoBlocks
}

// Unblock implements bridge.Blocker, for the router behind.
func (c *Commands) Unblock(ctx context.Context, key bridge.BlockKey) (bool, error) {
	if bl, ok := c.next.(bridge.Blocker); ok {
		return bl.Unblock(ctx, key)
	}
	return false, errNoBlocks
}

// Members implements bridge.MemberLister, for the router behind.
func (c *Commands) Members(ctx context.Context, room bridge.RoomAddr, accounts []string) error {
	if ml, ok := c.next.(bridge.MemberLister); ok {
		return ml.Members(ctx, room, accounts)
	}
	return nil
}

// Accept implements bridge.Inbound. A command is handled here and never
// passed on; a failed reply is logged, not returned, since the adapter
// would then deliver the command again.
func (c *Commands) Accept(ctx context.Context, ev bridge.Event) error {
	if c.handled(ctx, ev) {
		return nil
	}
	return c.next.Accept(ctx, ev)
}

// Commit implements bridge.Committer, as Accept does bridge.Inbound.
func (c *Commands) Commit(ctx context.Context, ev bridge.Event) (func(now bool) error, error) {
	if c.handled(ctx, ev) {
		return bridge.Committed, nil
	}
	return bridge.Commit(ctx, c.next, ev)
}

// handled runs ev if it is a command, answers it if it is for the bot,
// and tells whether it was either: then it goes no further.
func (c *Commands) handled(ctx context.Context, ev bridge.Event) bool {
	if c.ignored(ev) {
		return false
	}
	m, ok := ev.(*bridge.Message)
	if !ok {
		// A reaction to, edit of or typing at the bot: there is no one to
		// bridge it to.
		return bridge.ToBot(ev)
	}
	args, isCommand := commandArgs(m)
	if !isCommand && !bridge.ToBot(ev) {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	switch {
	case isCommand:
		c.run(ctx, m, args)
	case !m.Notice: // never answer a notice: two bots would answer each other
		c.reply(ctx, m, botHint)
	}
	return true
}

// ignored reports whether ev's sender is on an ignore list that applies
// to it, as the router will find.
func (c *Commands) ignored(ev bridge.Event) bool {
	if c.ignore == nil {
		return false
	}
	link := ""
	if ev.Head().To == nil {
		link, _, _ = c.links.LinkOf(bridge.Addr(ev))
	}
	_, ok := c.ignore.Ignored(link, ev.Head().Sender)
	return ok
}

const botHint = `I am the Switchboard bridge bot and do not relay direct messages. Admins: say "!sb help".`

// commandArgs reports whether m is a chat command, and what follows
// "!sb". Emotes and notices are not commands: a notice is automated (a
// bot's), and an emote is someone speaking. Nor is a direct message to a
// puppet: it is for the person behind it. Whitespace after "!sb" may be
// any, so a multi-line "!sb\nlink ..." is caught (and refused) rather
// than bridged.
func commandArgs(m *bridge.Message) (string, bool) {
	if m.Emote || m.Notice || (m.To != nil && !bridge.ToBot(m)) {
		return "", false
	}
	text := strings.TrimSpace(m.Text)
	rest, ok := strings.CutPrefix(text, "!sb")
	if !ok || (rest != "" && !unicode.IsSpace(rune(rest[0]))) {
		return "", false // "!sbx" is not ours
	}
	return rest, true // control characters in it are refused by run
}

// request is one command being handled.
type request struct {
	msg    *bridge.Message
	direct bool            // by direct message to the bot
	here   bridge.RoomAddr // the room it was given in; zero when direct
	admin  bool            // else a room operator of here
}

// operatorCommands are the commands a room's operators may give in that
// room; admins may give every command, in any room.
var operatorCommands = map[string]bool{"help": true, "block": true, "unblock": true, "blocks": true, "relay": true}

// run checks the sender and dispatches.
func (c *Commands) run(ctx context.Context, m *bridge.Message, rest string) {
	req := request{msg: m, direct: bridge.ToBot(m)}
	if !req.direct {
		req.here = bridge.Addr(m)
	}
	req.admin = c.isAdmin(m.Head())
	if !req.admin && !isOperator(m.Head()) {
		c.log.Info("chat command refused: neither an admin nor an operator of the room", "network", m.Sender.Network, "room", m.Origin.Room, "sender", m.Sender.ID, "mask", m.Sender.Mask)
		if req.direct {
			c.reply(ctx, m, "Sorry, only Switchboard admins may use !sb commands by direct message; a room's operators may use some in their room.")
		} else {
			c.reply(ctx, m, "Sorry, only Switchboard admins and this room's operators may use !sb commands.")
		}
		return
	}
	if strings.IndexFunc(rest, isControl) >= 0 {
		c.reply(ctx, m, `A command is one line, without control characters. Say "!sb help" for the commands.`)
		return
	}
	args := strings.Fields(rest)
	if len(args) == 0 {
		c.reply(ctx, m, helpLines(req)...)
		return
	}
	word, args := strings.ToLower(args[0]), args[1:]
	if !req.admin && !operatorCommands[word] {
		c.log.Info("chat command refused: for admins only", "network", m.Sender.Network, "room", m.Origin.Room, "sender", m.Sender.ID, "command", word)
		c.reply(ctx, m, `Sorry, room operators may use only "!sb block", "!sb unblock", "!sb blocks", "!sb relay" and "!sb help"; the rest is for Switchboard admins.`)
		return
	}
	c.log.Info("chat command", "network", m.Sender.Network, "room", m.Origin.Room, "sender", m.Sender.ID, "command", word, "direct", req.direct, "admin", req.admin)
	var lines []string
	switch word {
	case "help":
		lines = helpLines(req)
	case "block":
		lines = c.cmdBlock(ctx, req, args)
	case "unblock":
		lines = c.cmdUnblock(ctx, req, args)
	case "blocks":
		lines = c.cmdBlocks(req, args)
	case "status":
		lines = c.cmdStatus(ctx, req, args)
	case "link":
		lines = c.cmdLink(ctx, req, args)
	case "unlink":
		lines = c.cmdUnlink(ctx, req, args)
	case "relay":
		lines = c.cmdRelay(ctx, req, args)
	default:
		lines = []string{fmt.Sprintf(`Unknown command %q. Say "!sb help" for the commands.`, word)}
	}
	c.reply(ctx, m, lines...)
}

// isControl is what a command may not contain: line breaks would end an
// IRC line early, NUL would cut a C string short.
func isControl(r rune) bool { return r != '\t' && unicode.IsControl(r) }

// isAdmin checks the sender against the admin rules of their network's
// type. The sender must be of the network the event came from: a sender
// of another network there can only be one of our own puppets.
func (c *Commands) isAdmin(h *bridge.Header) bool {
	if h.Sender.Network != h.Origin.Network {
		return false
	}
	n, ok := c.network(h.Sender.Network)
	return ok && c.admins.Load().IsAdmin(h.Sender, n.typ)
}

// isOperator reports whether the sender of h operates the room h was said
// in, as its adapter reported (Header.Operator): never by direct message,
// and, as for admins, only someone of the room's own network.
func isOperator(h *bridge.Header) bool {
	return h.Operator && h.To == nil && h.Origin.Room != "" && h.Sender.Network == h.Origin.Network
}

const (
	helpOperator = `Room operators' commands, in their room: "!sb block <sender>" keeps a sender of another network out of this room (name them as network:id, e.g. devices:sensor-1, or by their puppet's name here); "!sb unblock <sender>" lets them in again; "!sb blocks" lists who is kept out of this room and why; "!sb relay on|off" makes the bot post "<name> text" here instead of puppets; "!sb help".`
	helpAdmin    = `Switchboard admins' commands, in any linked room, besides the room operators' ones: "!sb status" shows this room's link and the networks; "!sb link <network:room>" adds that room to this room's link; "!sb unlink <network:room>" takes a room out of it.`
	helpDirect   = `By direct message to the bot (admins only), name the room first: "!sb status [<network:room>]", "!sb link <network:room> <network:room>", "!sb unlink <network:room> <network:room>", "!sb relay <network:room> on|off", "!sb block <network:room> <sender>", "!sb unblock <network:room> <sender>", "!sb blocks <network:room>".`
)

// helpLines are the commands the sender of req may use.
func helpLines(req request) []string {
	if !req.admin {
		return []string{helpOperator}
	}
	return []string{helpOperator, helpAdmin, helpDirect}
}

// target picks the room a command is about: the room it was said in, or,
// by direct message, the first argument. It returns the remaining
// arguments, or a reply explaining what is wrong.
func (c *Commands) target(req request, args []string, usage string) (bridge.RoomAddr, []string, string) {
	if !req.direct {
		return req.here, args, ""
	}
	if len(args) == 0 {
		return bridge.RoomAddr{}, nil, fmt.Sprintf(`By direct message, name the room first: "%s". Say "!sb help" for the commands.`, usage)
	}
	room, msg := c.parseRoom(args[0])
	return room, args[1:], msg
}

// parseRoom parses a room address of a configured network, or explains
// why it is not one.
func (c *Commands) parseRoom(s string) (bridge.RoomAddr, string) {
	room, err := mapping.ParseRoom(s)
	if err != nil {
		return room, fmt.Sprintf(`Bad %v. Say "!sb help" for the commands.`, err)
	}
	if _, ok := c.network(room.Network); !ok {
		return room, fmt.Sprintf(`No network is named %q (networks: %s).`, room.Network, strings.Join(c.networkNames(), ", "))
	}
	return room, ""
}

func (c *Commands) networkNames() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Sorted(maps.Keys(c.nets))
}

// oneRoom parses the single room argument of link and unlink.
func (c *Commands) oneRoom(req request, args []string, verb string) (here, room bridge.RoomAddr, msg string) {
	usage := fmt.Sprintf("!sb %s <network:room>", verb)
	if req.direct {
		usage = fmt.Sprintf("!sb %s <network:room> <network:room>", verb)
	}
	here, args, msg = c.target(req, args, usage)
	if msg != "" {
		return here, room, msg
	}
	if len(args) != 1 {
		return here, room, fmt.Sprintf(`Usage: "%s". Say "!sb help" for the commands.`, usage)
	}
	room, msg = c.parseRoom(args[0])
	return here, room, msg
}

func (c *Commands) cmdLink(ctx context.Context, req request, args []string) []string {
	here, room, msg := c.oneRoom(req, args, "link")
	if msg != "" {
		return []string{msg}
	}
	if room == here {
		return []string{fmt.Sprintf("%s cannot be linked to itself.", room)}
	}
	if name, rooms, ok := c.links.LinkOf(here); ok && slices.Contains(rooms, room) {
		return []string{fmt.Sprintf("%s is already in link %q.", room, name)}
	}
	name, err := c.links.LinkRooms(ctx, here, room)
	if err != nil {
		return []string{fmt.Sprintf("Could not link %s: %v", room, err)}
	}
	c.log.Info("chat command: room linked", "link", name, "anchor", here.String(), "room", room.String())
	return []string{fmt.Sprintf("Linked %s into %s.", room, c.describeLink(name, here))}
}

func (c *Commands) cmdUnlink(ctx context.Context, req request, args []string) []string {
	here, room, msg := c.oneRoom(req, args, "unlink")
	if msg != "" {
		return []string{msg}
	}
	name, rooms, ok := c.links.LinkOf(here)
	switch {
	case !ok:
		return []string{fmt.Sprintf("%s is not linked.", here)}
	case !slices.Contains(rooms, room):
		return []string{fmt.Sprintf("%s is not in link %q of %s.", room, name, here)}
	}
	if room == req.here {
		// Once out of the link, the bot may leave this room, so the answer
		// has to come first.
		c.reply(ctx, req.msg, fmt.Sprintf("Unlinking this room from link %q: it will no longer be bridged.", name))
		if err := c.links.UnlinkRoom(ctx, room); err != nil {
			return []string{fmt.Sprintf("Could not unlink %s: %v", room, err)}
		}
		c.log.Info("chat command: room unlinked", "link", name, "room", room.String())
		return nil
	}
	if err := c.links.UnlinkRoom(ctx, room); err != nil {
		return []string{fmt.Sprintf("Could not unlink %s: %v", room, err)}
	}
	c.log.Info("chat command: room unlinked", "link", name, "room", room.String())
	return []string{fmt.Sprintf("Unlinked %s from link %q.", room, name)}
}

func (c *Commands) cmdRelay(ctx context.Context, req request, args []string) []string {
	usage := "!sb relay on|off"
	if req.direct {
		usage = "!sb relay <network:room> on|off"
	}
	here, args, msg := c.target(req, args, usage)
	if msg != "" {
		return []string{msg}
	}
	if len(args) == 0 {
		return []string{fmt.Sprintf("Relay mode is %s for %s. Usage: %q.", onOff(c.links.Relayed(here)), here, usage)}
	}
	var on bool
	switch arg := strings.ToLower(args[0]); {
	case len(args) != 1:
		return []string{fmt.Sprintf(`Usage: "%s". Say "!sb help" for the commands.`, usage)}
	case arg == "on":
		on = true
	case arg == "off":
	default:
		return []string{fmt.Sprintf(`Relay mode is "on" or "off", not %q. Usage: "%s".`, args[0], usage)}
	}
	if err := c.links.SetRelay(ctx, here, on); err != nil {
		return []string{fmt.Sprintf("Could not turn relay mode %s for %s: %v", onOff(on), here, err)}
	}
	c.log.Info("chat command: relay mode", "room", here.String(), "on", on)
	if on {
		return []string{fmt.Sprintf(`Relay mode on for %s: the bot posts "<name> text" there instead of puppets.`, here)}
	}
	return []string{fmt.Sprintf("Relay mode off for %s: puppets speak there again where the network has them.", here)}
}

func (c *Commands) cmdStatus(ctx context.Context, req request, args []string) []string {
	var lines []string
	here, known := req.here, !req.direct
	switch {
	case len(args) > 1 || (!req.direct && len(args) > 0):
		usage := "!sb status"
		if req.direct {
			usage = "!sb status [<network:room>]"
		}
		return []string{fmt.Sprintf(`Usage: "%s". Say "!sb help" for the commands.`, usage)}
	case len(args) == 1:
		var msg string
		if here, msg = c.parseRoom(args[0]); msg != "" {
			return []string{msg}
		}
		known = true
	}
	if known {
		if name, _, ok := c.links.LinkOf(here); ok {
			lines = append(lines, fmt.Sprintf("Room %s is in %s.", here, c.describeLink(name, here)))
		} else {
			lines = append(lines, fmt.Sprintf("Room %s is not linked (relay %s).", here, onOff(c.links.Relayed(here))))
		}
	}
	return append(lines, c.serviceStatus(ctx)...)
}

// describeLink names a link and its rooms, each with its relay mode, as
// they are now.
func (c *Commands) describeLink(name string, room bridge.RoomAddr) string {
	_, rooms, ok := c.links.LinkOf(room)
	if !ok {
		return fmt.Sprintf("link %q", name)
	}
	parts := make([]string, len(rooms))
	for i, r := range rooms {
		parts[i] = fmt.Sprintf("%s (relay %s)", r, onOff(c.links.Relayed(r)))
	}
	return fmt.Sprintf("link %q: %s", name, strings.Join(parts, ", "))
}

// serviceStatus is the networks and the outbox, from the data of
// /api/status.
func (c *Commands) serviceStatus(ctx context.Context) []string {
	st := c.status(ctx)
	nets := make([]string, len(st.Networks))
	for i, n := range st.Networks {
		nets[i] = fmt.Sprintf("%s %s for %v", n.Name, n.State, time.Duration(n.For)*time.Second)
	}
	outbox := fmt.Sprintf("Outbox: %d waiting.", st.Outbox.Depth)
	if st.Outbox.Failed > 0 {
		outbox = fmt.Sprintf("Outbox: %d waiting, %d failed (see GET /api/failed).", st.Outbox.Depth, st.Outbox.Failed)
	}
	if st.Outbox.Error != "" {
		outbox = "Outbox: unknown (" + st.Outbox.Error + ")."
	}
	return []string{"Networks: " + strings.Join(nets, ", ") + ".", outbox}
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// reply answers a command through the bot of the network it came from:
// in its room, or privately for a direct message. Failures are logged
// only; see Accept.
func (c *Commands) reply(ctx context.Context, m *bridge.Message, lines ...string) {
	h := m.Head()
	n, ok := c.network(h.Origin.Network)
	if !ok || n.bot == nil {
		c.log.Warn("chat command: cannot reply, the network has no bot", "network", h.Origin.Network)
		return
	}
	room, user := h.Origin.Room, ""
	if bridge.ToBot(m) {
		room, user = "", h.Sender.ID
	}
	// One line per message: networks differ in what a line break in a
	// message does, and IRC has none.
	for _, line := range lines {
		if err := n.bot.SendAsBot(ctx, room, user, line); err != nil {
			c.log.Warn("chat command: reply failed", "network", h.Origin.Network, "room", room, "err", err)
			return
		}
	}
}

// Blocks implements bridge.BlockLister, for the router behind.
func (c *Commands) Blocks(room bridge.RoomAddr) []bridge.Block {
	if bl, ok := c.next.(bridge.BlockLister); ok {
		return bl.Blocks(room)
	}
	return nil
}

var (
	_ bridge.Blocker     = (*Commands)(nil)
	_ bridge.BlockLister = (*Commands)(nil)
)
