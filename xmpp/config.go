package xmpp

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode"
	"unicode/utf8"

	"mellium.im/xmpp/jid"

	"github.com/switchboard-chat/switchboard/config"
)

// Config is an XMPP network's keys (type: xmpp): a connection to an XMPP
// server as an external component (XEP-0114), where every foreign sender
// gets a JID of their own, or as an ordinary account that relays.
type Config struct {
	Server string `yaml:"server"` // host:port: the component port, or the c2s port with jid
	// Component connects as an external component; it is what puppets need.
	Component *Component `yaml:"component"`
	// JID and Password log in as a client account instead (relay mode).
	JID      string `yaml:"jid"`
	Password string `yaml:"password" secret:"true"`
	// ClientServer is the client (c2s) port people's own sessions log in
	// through (host:port); with jid it defaults to server.
	ClientServer string `yaml:"client_server"`
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
	// Upload is how attachments reach XMPP (see upload.go).
	Upload Upload `yaml:"upload"`
	// Rate limits each sender per room (see config.Rate); config
	// validates it.
	Rate config.Rate `yaml:"rate"`
	// CatchUp bounds what a room's archive gives back when the bot is in
	// it again (see catchup.go).
	CatchUp config.CatchUp `yaml:"catch_up"`
}

// Component is the external component's address and shared secret.
type Component struct {
	Domain string `yaml:"domain"`
	Secret string `yaml:"secret" secret:"true"`
}

const (
	// minMaxStanza leaves room for a stanza's envelope and some text.
	minMaxStanza = 4096
	// minMaxMessage leaves room for the cut marker, a link and some
	// text.
	minMaxMessage = 256
)

var (
	_ config.Section     = (*Config)(nil)
	_ config.RateLimited = (*Config)(nil)
)

func (c Config) String() string          { return config.Redacted(&c) }
func (c Config) LogValue() slog.Value    { return slog.StringValue(c.String()) }
func (c Component) String() string       { return config.Redacted(&c) }
func (c Component) LogValue() slog.Value { return slog.StringValue(c.String()) }

func (c *Config) SenderRate() *config.Rate { return &c.Rate }

func (c *Config) SetDefaults(_ string, n *config.Network, given func(string) bool) {
	config.SetDefault(&n.Puppets.Template, defaultTemplate)
	// A client account cannot have puppets: without a component, relay is
	// the only mode that works, so it is the default there.
	if c.Component == nil && c.JID != "" && !given("mode") {
		n.Mode = "relay"
	}
	config.SetDefault(&c.Nick, defaultNick)
	config.SetDefault(&c.MaxStanza, defaultMaxStanza, given("max_stanza"))
	c.Rate.SetDefaults(given, true)
	c.CatchUp.SetDefaults(given)
}

func (c *Config) Validate(p *config.Problems, n *config.Network) {
	if err := config.CheckHostPort(c.Server, true, false); err != nil {
		p.Add("server", "%v", err)
	}
	switch {
	case c.Component != nil && c.JID != "":
		p.Add("jid", "set together with component: use component (puppets) or jid and password (a relay bot), not both")
	case c.Component == nil && c.JID == "":
		p.Add("component", "required unless jid is set (component: {domain, secret} for puppets, or jid and password for a relay bot)")
	}
	if c.Component != nil {
		if err := checkXMPPDomain(c.Component.Domain); err != nil {
			p.Add("component.domain", "%v", err)
		}
		if c.Component.Secret == "" {
			p.Add("component.secret", "required")
		} else if strings.ContainsAny(c.Component.Secret, "\x00\r\n") {
			p.Add("component.secret", "contains a line break or NUL")
		}
		if c.InsecurePlaintext && c.ClientServer == "" {
			p.Add("insecure_plaintext", "only applies to jid or client_server (a component connection has no TLS)")
		}
	}
	if c.ClientServer != "" {
		if err := config.CheckHostPort(c.ClientServer, true, false); err != nil {
			p.Add("client_server", "%v", err)
		}
	}
	if c.JID != "" {
		if err := checkBareJID(c.JID, "an account"); err != nil {
			p.Add("jid", "%v", err)
		}
		if c.Password == "" {
			p.Add("password", "required with jid")
		}
		if n.Mode == "puppet" && c.Component == nil {
			p.Add("mode", "puppet needs a component; with jid use mode: relay")
		}
	} else if c.Password != "" && c.Component != nil {
		p.Add("password", "set without jid (the component authenticates with component.secret)")
	}
	if err := checkMUCNick(c.Nick); err != nil {
		p.Add("nick", "%v", err)
	}
	if c.MaxStanza < minMaxStanza {
		p.Add("max_stanza", "must be at least %d, got %d", minMaxStanza, c.MaxStanza)
	}
	if err := c.Upload.check(); err != nil {
		p.Add("upload.service", "%v", err)
	}
	c.CatchUp.Validate(p)
	if c.MaxMessageBytes != 0 && c.MaxMessageBytes < minMaxMessage {
		p.Add("max_message_bytes", "must be 0 (no limit) or at least %d, got %d", minMaxMessage, c.MaxMessageBytes)
	}
}

func (*Config) CheckRoom(room string) error {
	return checkBareJID(room, "a MUC room")
}

// checkBareJID says why s is not a bare JID with a localpart
// (name@domain).
func checkBareJID(s, what string) error {
	j, err := jid.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("%s is a JID name@domain: %v", what, err)
	case j.Localpart() == "":
		return fmt.Errorf("%s is a JID name@domain, this has no name@", what)
	case j.Resourcepart() != "":
		return fmt.Errorf("%s is a bare JID name@domain, without /resource", what)
	}
	return nil
}

func checkXMPPDomain(s string) error {
	if s == "" {
		return errors.New("required (the component's domain, bridge.example.org)")
	}
	j, err := jid.Parse(s)
	if err != nil || j.Localpart() != "" || j.Resourcepart() != "" || strings.ContainsAny(s, "@/") {
		return fmt.Errorf("%q is not a domain name", s)
	}
	return nil
}

// checkMUCNick applies what a MUC nick (a JID resourcepart) allows.
func checkMUCNick(nick string) error {
	switch {
	case strings.TrimSpace(nick) == "":
		return errors.New("required")
	case !utf8.ValidString(nick) || strings.ContainsFunc(nick, unicode.IsControl):
		return fmt.Errorf("%q contains a control character", nick)
	case len(nick) > 1023:
		return errors.New("longer than 1023 bytes")
	}
	if _, err := jid.New("room", "example.org", nick); err != nil {
		return fmt.Errorf("%q is not a valid MUC nick: %v", nick, err)
	}
	return nil
}

// accountKey is a person's account as the adapter gives a sender's real
// JID: bare, and normalized as jid.Parse does (case-folded localpart and
// domain).
func accountKey(id string) string {
	j, err := jid.Parse(id)
	if err != nil {
		return id
	}
	return j.Bare().String()
}

// checkAccount: a person's XMPP account is a bare JID with a localpart.
func checkAccount(p *config.Problems, a config.Account, _ *config.Network) {
	j, err := jid.Parse(a.ID)
	switch {
	case err != nil:
		p.Add("", "%q is not a JID: %v", a.ID, err)
	case j.Localpart() == "" || j.Resourcepart() != "":
		p.Add("", "want a bare JID user@domain, got %q", a.ID)
	}
}
