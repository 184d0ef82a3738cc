// Package config reads, defaults and validates Switchboard's YAML
// configuration: the file format, ${ENV} expansion, the service's own
// keys, links, admins and the keys every network has, with errors that
// name key paths. Each network type's own keys belong to its protocol
// package, which registers them (RegisterType, through
// adapters.Register); config knows no protocol. Every key is documented
// in switchboard.example.yaml, generated from the packages' parts.
package config

import "time"

// Config is the whole file.
type Config struct {
	DataDir string `yaml:"data_dir"`
	Store   string `yaml:"store" secret:"url"` // "sqlite" or a postgres:// URL
	// SQLiteSynchronous is the SQLite store's durability: "full" (a
	// commit is synced to disk before the source is acknowledged, and
	// survives power loss) or "normal" (it survives a crash of Switchboard
	// but not of the machine).
	SQLiteSynchronous string              `yaml:"sqlite_synchronous"`
	Retention         Retention           `yaml:"retention"`
	HTTP              HTTP                `yaml:"http"`
	Broker            *Broker             `yaml:"broker"` // the embedded MQTT broker; nil: none
	Cluster           Cluster             `yaml:"cluster"`
	Networks          map[string]*Network `yaml:"networks"`
	// LinkRooms maps a link name to its room addresses ("network:room").
	// It is not called Links because that is the method returning them
	// parsed.
	LinkRooms map[string][]string `yaml:"links"`
	// LinkOptions holds settings of the links named in LinkRooms, kept
	// apart so that a link stays a plain list of rooms.
	LinkOptions map[string]*LinkOptions `yaml:"link_options,omitempty"`
	// Admins may use the !sb chat commands: "network:identity", where
	// network is a network's name or type and identity a sender id (a
	// Matrix user id, a bare JID, an MQTT device id) or, on IRC, a
	// nick!user@host mask with * and ? wildcards.
	Admins []string `yaml:"admins,omitempty"`
	// People are the people with accounts on several networks, by id:
	// each appears as one sender wherever they write from (see Person).
	People map[string]*Person `yaml:"people,omitempty"`
	Log    Log                `yaml:"log"`
}

// LinkOptions are one link's settings.
type LinkOptions struct {
	// Ignore lists senders, of any network, whose events are never
	// bridged in this link; see mapping.Pattern.
	Ignore []string `yaml:"ignore,omitempty"`
}

type HTTP struct {
	Listen string `yaml:"listen"`
	// ReadyGrace is how long a network may be down before /readyz fails.
	ReadyGrace time.Duration `yaml:"ready_grace"`
	// APIToken is the bearer token of the provisioning API (/api/links);
	// empty turns the API off.
	APIToken string `yaml:"api_token" secret:"true"`
	// PublicURL is where people on other networks reach this listener
	// (https://bridge.example.org); set, Matrix media are offered to
	// them as links through it instead of the homeserver's.
	PublicURL string `yaml:"public_url"`
}

// Retention says how long the store keeps what it no longer needs to
// deliver. A zero age keeps that part for ever.
type Retention struct {
	// Messages is the age after which what people said is removed from
	// the store: the text but a short quote, formatting, attachments.
	Messages time.Duration `yaml:"messages"`
	// IDs is the age after which the rest of an event goes too: its ids,
	// the remote-id maps and the quote, which replies, edits and deletions
	// of it need. At least Messages.
	IDs time.Duration `yaml:"ids"`
	// Failed is the age after which a delivery that failed for good is
	// dropped from the failed list.
	Failed time.Duration `yaml:"failed"`
}

type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Broker is the embedded MQTT broker (nats-server's MQTT listener on
// JetStream, its store in data_dir/broker).
type Broker struct {
	Listen string `yaml:"listen"`
}

// Network is one connection to one chat network. Type selects which of the
// type-specific sections applies; their keys sit beside type in the file.
type Network struct {
	Type string `yaml:"type"` // a registered network type: irc, mqtt, ...
	// Mode is "puppet" (every foreign sender appears as their own user) or
	// "relay" (one bot posts "<name> text").
	Mode    string  `yaml:"mode"`
	Puppets Puppets `yaml:"puppets"`
	// Ignore lists the senders of this network whose events are never
	// bridged (other bots, services, bridges): see mapping.Pattern.
	Ignore []string `yaml:"ignore,omitempty"`
	// KickBlocks keeps a sender whose puppet a room kicked out of that
	// room until an operator lets them in ("!sb unblock"); by default a
	// kicked puppet comes back with the sender's next message. Bans
	// always hold. IRC, XMPP and Matrix only.
	KickBlocks bool `yaml:"kick_blocks"`

	// Section holds the keys of the network's type, as its protocol
	// package defines them (*irc.Config for type irc, ...); Parse fills
	// it in, and a network built in code sets it with the type.
	Section Section `yaml:"-"`
}

// Puppets says how foreign senders appear on this network.
type Puppets struct {
	// Template renders a foreign sender's name here: {name} is their display
	// name, {id} their stable id, {network} the name of their network.
	Template string `yaml:"template"`
	// Max is how many puppets may be active at once; further senders are
	// relayed through the bot. 0 means the network's default.
	Max int `yaml:"max"`
	// Idle is how long a puppet stays connected without speaking.
	Idle time.Duration `yaml:"idle"`
}
