// Package config reads, defaults and validates Switchboard's YAML
// configuration. Every key is documented in switchboard.example.yaml.
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
	Log    Log      `yaml:"log"`
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
	Type string `yaml:"type"` // irc, mqtt, xmpp, matrix, webrtc
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

	IRC    *IRC    `yaml:"-"`
	MQTT   *MQTT   `yaml:"-"`
	XMPP   *XMPP   `yaml:"-"`
	Matrix *Matrix `yaml:"-"`
	WebRTC *WebRTC `yaml:"-"`
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

type IRC struct {
	Server                string `yaml:"server"` // host:port
	TLS                   bool   `yaml:"tls"`
	TLSInsecureSkipVerify bool   `yaml:"tls_insecure_skip_verify"`
	Nick                  string `yaml:"nick"`     // the relay bot / control connection
	Username              string `yaml:"username"` // ident; default: nick
	Realname              string `yaml:"realname"`
	Password              string `yaml:"password" secret:"true"` // server password (PASS)
	SASL                  *SASL  `yaml:"sasl"`                   // SASL PLAIN when the server offers it
	Flood                 Flood  `yaml:"flood"`
	// MaxLineBytes caps a line's length when the server does not say (512).
	MaxLineBytes int `yaml:"max_line_bytes"`
	// MaxMessageLines is how many lines one message may take in a
	// channel (5): a longer one is sent as its first lines and a line
	// with the link to the whole text, so it holds up the room no longer
	// than flood control needs for a few lines.
	MaxMessageLines int `yaml:"max_message_lines"`
	// ReconnectMax caps the reconnect backoff.
	ReconnectMax time.Duration `yaml:"reconnect_max"`
	// IgnoreServices ignores the usual services' nicks
	// (mapping.IRCServices) besides the network's ignore list; on unless
	// set to false.
	IgnoreServices bool `yaml:"ignore_services"`
	// Rate limits each sender per room (see Rate).
	Rate Rate `yaml:"rate"`
}

type SASL struct {
	User     string `yaml:"user"`
	Password string `yaml:"password" secret:"true"`
}

// Flood is a token bucket per IRC connection.
type Flood struct {
	Burst    int           `yaml:"burst"`    // lines sent at once; default 5
	Interval time.Duration `yaml:"interval"` // then one line per interval; default 1s
}

type MQTT struct {
	Broker   string `yaml:"broker" secret:"url"` // tcp://host:port, ssl://host:port
	ClientID string `yaml:"client_id"`
	Username string `yaml:"username"`
	Password string `yaml:"password" secret:"true"`
	// MaxPayload drops inbound payloads larger than this many bytes.
	MaxPayload int `yaml:"max_payload"`
	// Rate limits each sender per room (see Rate).
	Rate Rate `yaml:"rate"`
}

// XMPP is a connection to an XMPP server: as an external component
// (XEP-0114), where every foreign sender gets a JID of their own, or as an
// ordinary account that relays.
type XMPP struct {
	Server string `yaml:"server"` // host:port: the component port, or the c2s port with jid
	// Component connects as an external component; it is what puppets need.
	Component *XMPPComponent `yaml:"component"`
	// JID and Password log in as a client account instead (relay mode).
	JID      string `yaml:"jid"`
	Password string `yaml:"password" secret:"true"`
	// InsecurePlaintext allows a client login without StartTLS.
	InsecurePlaintext bool `yaml:"insecure_plaintext"`
	// Nick is the bot's nick in every MUC.
	Nick string `yaml:"nick"`
	// MaxStanza drops inbound stanzas larger than this many bytes and
	// bounds the ones sent.
	MaxStanza int `yaml:"max_stanza"`
	// MaxMessageBytes, when set, cuts a message's text longer than this
	// many bytes to its beginning and a link to the whole (0: no limit
	// but max_stanza).
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// Rate limits each sender per room (see Rate).
	Rate Rate `yaml:"rate"`
}

// XMPPComponent is the external component's address and shared secret.
type XMPPComponent struct {
	Domain string `yaml:"domain"`
	Secret string `yaml:"secret" secret:"true"`
}

// Matrix is a Matrix homeserver, reached as an application service: every
// foreign sender is a ghost user of its own (@sb_libera_alice:example.org).
type Matrix struct {
	// Homeserver is the client-server API's base URL.
	Homeserver string `yaml:"homeserver"`
	// Domain is the homeserver's server name, the part after ":" in ids.
	Domain string `yaml:"domain"`
	// ASToken authenticates Switchboard to the homeserver, HSToken the
	// homeserver to Switchboard (as in the registration file).
	ASToken string `yaml:"as_token" secret:"true"`
	HSToken string `yaml:"hs_token" secret:"true"`
	// Bot is the localpart of the appservice's own user (sender_localpart).
	Bot string `yaml:"bot"`
	// GhostLocalpart renders a ghost's localpart from {network} and {id}.
	GhostLocalpart string `yaml:"ghost_localpart"`
	// Listen, when set, serves the appservice API on a listener of its own
	// instead of Switchboard's HTTP listener.
	Listen string `yaml:"listen"`
	// ID is the registration's id.
	ID string `yaml:"id"`
	// URL is how the homeserver reaches the appservice API.
	URL string `yaml:"url"`
	// Media says what becomes of attachments bridged into Matrix.
	Media MatrixMedia `yaml:"media"`
	// Rate limits each sender per room (see Rate).
	Rate Rate `yaml:"rate"`
}

// MatrixMedia is how attachments from other networks (files offered by
// URL) reach Matrix.
type MatrixMedia struct {
	// Upload fetches each attachment and posts it as Matrix media (an
	// image, video, audio or file event); off, or when the fetch fails,
	// the attachment is a link in the text.
	Upload bool `yaml:"upload"`
	// MaxSize is the largest file fetched, in bytes; a larger one stays a
	// link. It is held in memory while it is uploaded.
	MaxSize int64 `yaml:"max_size"`
	// PrivateAddresses lets fetches reach loopback, private, link-local
	// and other internal addresses. Off, such URLs stay links: they come
	// from remote users, and the bridge must not fetch its own network's
	// insides for them.
	PrivateAddresses bool `yaml:"private_addresses"`
}
