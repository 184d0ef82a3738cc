// Package adapters holds the contract every protocol adapter implements,
// the registry that builds adapters from config, and (in adapterstest) the
// conformance suite every adapter passes against its real server.
package adapters

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
)

// Adapter connects Switchboard to one network. Beyond this, an adapter
// implements the bridge capability interfaces its network supports
// (bridge.Editor, bridge.Reactor, ...).
type Adapter interface {
	// Network is the network's name in the config ("libera").
	Network() string
	// Start connects in the background, reconnecting with backoff until
	// Stop, and hands inbound traffic of joined rooms to in. It fails only
	// when the adapter cannot run at all.
	Start(ctx context.Context, in bridge.Inbound) error
	// Join starts bridging a room; it is remembered across reconnects.
	Join(ctx context.Context, room string) error
	// Stop disconnects and releases everything the adapter holds.
	Stop(ctx context.Context) error
	bridge.MessageSender
}

// Leaver is implemented by adapters that can stop bridging a room (part
// the channel, unsubscribe, leave the MUC or Matrix room) when a link
// drops it at runtime. An adapter without it keeps the room joined, but
// the router no longer accepts its traffic.
type Leaver interface {
	Leave(ctx context.Context, room string) error
}

// DropCounter is implemented by adapters that drop inbound traffic on
// purpose (malformed, oversize, rate-limited, ...): counts by reason since
// start, for metrics.
type DropCounter interface {
	Dropped() map[string]uint64
}

// BrokerDropCounter is implemented by adapters whose server reports the
// messages it dropped itself (an MQTT broker whose queue for a client was
// full): the server's own count, and whether it has reported one yet.
type BrokerDropCounter interface {
	BrokerDropped() (n uint64, ok bool)
}

// PuppetCounter is implemented by adapters with puppets: how many are
// connected (IRC) or joined (XMPP) now, for metrics.
type PuppetCounter interface {
	Puppets() int
}

// RoomFlagger is implemented by adapters that know something of their
// rooms an operator should see beside them on /status: a flag per
// linked room, such as FlagEncrypted.
type RoomFlagger interface {
	RoomFlags() map[string][]string
}

// FlagEncrypted marks a room Switchboard cannot read: a Matrix room with
// encryption on.
const FlagEncrypted = "encrypted"

// CatchUpper is implemented by adapters that, back in a room after a
// restart or a reconnect, fetch what was said there meanwhile (XMPP MAM,
// IRC join playback) and bridge it: per room, its latest catch-up, for
// /status.
type CatchUpper interface {
	CatchUps() map[string]CatchUp
}

// CatchUp is one room's latest catch-up: when, and how many lines it
// recovered (bridged, not seen before).
type CatchUp struct {
	At        time.Time
	Recovered int
}

// Connected is implemented by adapters that can tell whether their network
// connection is up.
type Connected interface {
	Connected() bool
}

// Factory builds an adapter for a configured network.
type Factory func(name string, n *config.Network, log *slog.Logger) (Adapter, error)

// Type is everything a protocol package contributes: its network type's
// configuration (name, config struct with its defaults, validation and
// secrets, example block), the adapter, and any setup subcommands.
// Adding a network type is a package that registers its Type from init
// and one import line (in adapters/all).
type Type struct {
	config.NetworkType
	// New builds the adapter for a network of the type.
	New Factory
	// Commands are the subcommands the type offers the switchboard
	// command ("switchboard matrix-registration ...").
	Commands []Command
}

// Command is a subcommand of the switchboard command, for setting a
// network type up.
type Command struct {
	// Name is the word after "switchboard".
	Name string
	// Usage is its line in the usage text, after the name: "--config
	// FILE [--network NAME]", then lines of explanation, indented.
	Usage string
	// Run runs it with the arguments after the name and returns the exit
	// status.
	Run func(args []string, stdout, stderr io.Writer) int
}

var (
	mu        sync.Mutex
	factories = map[string]Factory{}
	commands  = map[string]Command{}
)

// Register makes a network type available to the configuration, the
// service and the command line. Protocol packages call it from init.
func Register(t Type) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := factories[t.Name]; dup {
		panic("adapters: type registered twice: " + t.Name)
	}
	for _, c := range t.Commands {
		if _, dup := commands[c.Name]; dup {
			panic("adapters: command registered twice: " + c.Name)
		}
	}
	config.RegisterType(t.NetworkType)
	factories[t.Name] = t.New
	for _, c := range t.Commands {
		commands[c.Name] = c
	}
}

// Commands lists the registered subcommands, sorted by name.
func Commands() []Command {
	mu.Lock()
	defer mu.Unlock()
	cs := make([]Command, 0, len(commands))
	for _, c := range commands {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	return cs
}

// LookupCommand returns the registered subcommand called name.
func LookupCommand(name string) (Command, bool) {
	mu.Lock()
	defer mu.Unlock()
	c, ok := commands[name]
	return c, ok
}

// New builds the adapter for a configured network.
func New(name string, n *config.Network, log *slog.Logger) (Adapter, error) {
	mu.Lock()
	f, ok := factories[n.Type]
	mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("networks.%s.type: no adapter for %q (have %v)", name, n.Type, Types())
	}
	return f(name, n, log.With("network", name))
}

// Types lists the registered network types.
func Types() []string {
	mu.Lock()
	defer mu.Unlock()
	var ts []string
	for t := range factories {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}

// State is durable key-value state an adapter keeps across restarts, in
// Switchboard's store, separate for each network.
type State interface {
	Get(ctx context.Context, key string) (value string, ok bool, err error)
	Put(ctx context.Context, key, value string) error
	// PutIfAbsent sets key unless it is set; true the first time.
	PutIfAbsent(ctx context.Context, key, value string) (bool, error)
	Delete(ctx context.Context, key string) error
	// Scan calls fn with every key starting with prefix and its value, in
	// key order, until fn returns false. fn may change the state, the
	// keys shown included.
	Scan(ctx context.Context, prefix string, fn func(key, value string) bool) error
}

// Stateful is implemented by adapters that keep State. The service hands
// it over before Start.
type Stateful interface {
	UseState(State)
}

// HTTPServer is implemented by adapters that serve HTTP (a Matrix
// appservice, WebRTC signaling) on Switchboard's listener. The service
// calls it before Start.
type HTTPServer interface {
	RegisterHTTP(mux *http.ServeMux)
}

// PublicURLUser is implemented by adapters that offer files to other
// networks as links through Switchboard's HTTP listener (Matrix media the
// homeserver would not serve to strangers), or that fetch such links
// (XMPP uploads, which trust Switchboard's own links whatever their
// address). The service hands over
// http.public_url, without a trailing slash, before Start, only when it
// is set; the adapter needs nothing else of the config for it.
type PublicURLUser interface {
	UsePublicURL(base string)
}

// FileUser is implemented by adapters that take files from their users
// and keep them in the store for links to them (the web page). The
// service hands over the store before Start.
type FileUser interface {
	UseFiles(bridge.FileStore)
}

// TextLinks makes links to the whole text of a message, served by
// Switchboard under http.public_url.
type TextLinks interface {
	// TextLink returns the link to the text of event id (a message or an
	// edit).
	TextLink(id bridge.EventID) string
}

// TextLinkUser is implemented by adapters that send a long message as
// its beginning and a link to the whole text. The service hands the links
// over before Start, only when http.public_url is set; without them the
// adapter cuts the message with a marker.
type TextLinkUser interface {
	UseTextLinks(TextLinks)
}
