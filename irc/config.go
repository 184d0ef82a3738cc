package irc

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/mapping"
)

// Config is an IRC network's keys (type: irc): the bot's connection, and
// the settings every puppet connection shares.
type Config struct {
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
	// Rate limits each sender per room (see config.Rate); config
	// validates it.
	Rate config.Rate `yaml:"rate"`
	// TagsOnly sends replies and reactions in their IRCv3 client tags
	// alone where the server has message-tags: no quote line before a
	// reply, no action line for a reaction (see tags.go). For channels
	// whose clients all show the tags.
	TagsOnly bool `yaml:"tags_only"`
	// CatchUp bounds what is bridged from a channel's join playback
	// after the bot was away (see catchup.go).
	CatchUp config.CatchUp `yaml:"catch_up"`
	// Shards splits the puppets (and people's own connections) into this
	// many shards, each held like a network by one instance of a cluster
	// (adapters.Sharded); 1, the default, is no split.
	Shards int `yaml:"shards"`
	// SourceAddress is the local IP every connection of the network binds
	// to (bot, puppets, people's): IRC networks cap connections per
	// address, so each instance of a cluster sets its own
	// (${SWITCHBOARD_SOURCE_ADDRESS}). Empty: the system's choice.
	SourceAddress string `yaml:"source_address"`
}

// SASL is a SASL PLAIN login.
type SASL struct {
	User     string `yaml:"user"`
	Password string `yaml:"password" secret:"true"`
}

// Flood is a token bucket per IRC connection.
type Flood struct {
	Burst    int           `yaml:"burst"`    // lines sent at once; default 5
	Interval time.Duration `yaml:"interval"` // then one line per interval; default 1s
}

const (
	defaultBurst         = 5
	defaultFloodInterval = time.Second
	defaultRealname      = "Switchboard bridge"
	defaultReconnectMax  = 2 * time.Minute
	// defaultMaxMessageLines is max_message_lines when not given.
	defaultMaxMessageLines = 5
	// maxShards bounds shards: each is a lease, and 64 instances of
	// 1000 puppets each is more than any network allows one bridge.
	maxShards = 64
	// maxChannelBytes is RFC 2812's limit; servers may allow more, but
	// a longer name would not be portable across networks.
	maxChannelBytes = 50
)

var (
	_ config.Section        = (*Config)(nil)
	_ config.RateLimited    = (*Config)(nil)
	_ config.DefaultIgnorer = (*Config)(nil)
)

func (c Config) String() string       { return config.Redacted(&c) }
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }
func (s SASL) String() string         { return config.Redacted(&s) }
func (s SASL) LogValue() slog.Value   { return slog.StringValue(s.String()) }

func (c *Config) SenderRate() *config.Rate { return &c.Rate }

// DefaultIgnore is the services' nicks, unless ignore_services is false.
func (c *Config) DefaultIgnore() []string {
	if !c.IgnoreServices {
		return nil
	}
	return mapping.IRCServices
}

func (c *Config) SetDefaults(_ string, n *config.Network, given func(string) bool) {
	config.SetDefault(&n.Puppets.Template, mapping.DefaultTemplate)
	config.SetDefault(&c.Username, c.Nick)
	config.SetDefault(&c.Realname, defaultRealname)
	config.SetDefault(&c.MaxLineBytes, defaultLineLen, given("max_line_bytes"))
	config.SetDefault(&c.ReconnectMax, defaultReconnectMax, given("reconnect_max"))
	config.SetDefault(&c.MaxMessageLines, defaultMaxMessageLines, given("max_message_lines"))
	config.SetDefault(&c.Flood.Burst, defaultBurst, given("flood.burst"))
	config.SetDefault(&c.Flood.Interval, defaultFloodInterval, given("flood.interval"))
	config.SetDefault(&c.IgnoreServices, true, given("ignore_services"))
	c.Rate.SetDefaults(given, true)
	c.CatchUp.SetDefaults(given)
	config.SetDefault(&c.Shards, 1, given("shards"))
}

func (c *Config) Validate(p *config.Problems, _ *config.Network) {
	if err := config.CheckHostPort(c.Server, true, false); err != nil {
		p.Add("server", "%v", err)
	}
	if c.TLSInsecureSkipVerify && !c.TLS {
		// Likely a belief that TLS is on; say so rather than connect in
		// plain text.
		p.Add("tls_insecure_skip_verify", "set without tls: true")
	}
	if err := checkNick(c.Nick); err != nil {
		p.Add("nick", "%v", err)
	}
	if strings.ContainsAny(c.Username, " @\x00\r\n") {
		p.Add("username", "%q contains a space, @ or a control character", c.Username)
	}
	if strings.ContainsAny(c.Realname, "\x00\r\n") {
		p.Add("realname", "contains a line break or NUL")
	}
	if strings.ContainsAny(c.Password, "\x00\r\n") {
		p.Add("password", "contains a line break or NUL")
	}
	if c.SASL != nil {
		if c.SASL.User == "" {
			p.Add("sasl.user", "required when sasl is set")
		}
		if c.SASL.Password == "" {
			p.Add("sasl.password", "required when sasl is set")
		}
	}
	if c.Flood.Burst < 1 {
		p.Add("flood.burst", "must be at least 1, got %d", c.Flood.Burst)
	}
	if c.Flood.Interval < 0 {
		p.Add("flood.interval", "must not be negative, got %v", c.Flood.Interval)
	}
	if c.MaxLineBytes < 64 {
		// Below this the prefix and command leave no room for text.
		p.Add("max_line_bytes", "must be at least 64, got %d", c.MaxLineBytes)
	}
	if c.MaxMessageLines < 2 {
		// One line for the text, one for the link to the whole.
		p.Add("max_message_lines", "must be at least 2, got %d", c.MaxMessageLines)
	}
	if c.ReconnectMax <= 0 {
		p.Add("reconnect_max", "must be positive, got %v", c.ReconnectMax)
	}
	c.CatchUp.Validate(p)
	if c.Shards < 1 || c.Shards > maxShards {
		p.Add("shards", "must be between 1 and %d, got %d", maxShards, c.Shards)
	}
	if err := checkSourceAddress(c.SourceAddress); err != nil {
		p.Add("source_address", "%v", err)
	}
}

// checkSourceAddress accepts "" or an IP address (no port, no host name:
// a connection binds to it, so a name could resolve to an address this
// machine does not have).
func checkSourceAddress(s string) error {
	if s == "" {
		return nil
	}
	if net.ParseIP(s) == nil {
		return fmt.Errorf("%q is not an IP address", s)
	}
	return nil
}

func (*Config) CheckRoom(room string) error {
	switch {
	case room[0] != '#' && room[0] != '&':
		return errors.New("an IRC channel starts with # or &")
	case strings.ContainsAny(room, " ,\a"):
		return errors.New("an IRC channel contains no space, comma or BEL")
	case len(room) > maxChannelBytes:
		return fmt.Errorf("an IRC channel is at most %d bytes, this is %d", maxChannelBytes, len(room))
	}
	return nil
}

// checkNick applies RFC 2812 to the configured nick: letters, digits and
// []\`_^{|}-, not starting with a digit or "-".
func checkNick(nick string) error {
	if nick == "" {
		return errors.New("required")
	}
	for i, r := range nick {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', strings.ContainsRune("[]\\`_^{|}", r):
		case r >= '0' && r <= '9', r == '-':
			if i == 0 {
				return fmt.Errorf("invalid IRC nick %q: must not start with a digit or -", nick)
			}
		default:
			return fmt.Errorf("invalid IRC nick %q: %q is not allowed (letters, digits and []\\`_^{|}- are)", nick, r)
		}
	}
	return nil
}
