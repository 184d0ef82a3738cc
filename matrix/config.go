package matrix

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"regexp/syntax"
	"strings"

	"github.com/switchboard-chat/switchboard/config"
)

// Config is a Matrix network's keys (type: matrix): a homeserver, reached
// as an application service, where every foreign sender is a ghost user
// of its own (@sb_libera_alice:example.org).
type Config struct {
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
	// DoublePuppetNamespace, when set, is a regular expression of the
	// user ids the appservice may double-puppet, written into the
	// registration as one non-exclusive user namespace (anchored), so
	// that a person added later (through the API) speaks as their own
	// user at once. Empty, each double_puppet person gets an exact
	// namespace of their own (see withPeople for the privacy cost of a
	// broad one).
	DoublePuppetNamespace string `yaml:"double_puppet_namespace"`
	// Media says what becomes of attachments bridged into Matrix.
	Media Media `yaml:"media"`
	// Rate limits each sender per room (see config.Rate); config
	// validates it.
	Rate config.Rate `yaml:"rate"`
}

// Media is how attachments from other networks (files offered by URL)
// reach Matrix.
type Media struct {
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

const (
	defaultBot   = "switchboard"
	defaultGhost = "sb_{network}_{id}"
	defaultID    = "switchboard"
	// defaultTemplate is a ghost's display name: Matrix display names
	// hold anything, so the network can be shown plainly.
	defaultTemplate = "{name} ({network})"
	// DefaultMediaMaxSize is media.max_size when not set: 50 MiB.
	DefaultMediaMaxSize = 50 << 20
	// maxMediaMaxSize bounds media.max_size: a file is held in memory
	// while it is uploaded.
	maxMediaMaxSize = 1 << 30
)

var (
	_ config.Section     = (*Config)(nil)
	_ config.RateLimited = (*Config)(nil)
)

func (c Config) String() string       { return config.Redacted(&c) }
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

func (c *Config) SenderRate() *config.Rate { return &c.Rate }

func (c *Config) SetDefaults(_ string, n *config.Network, given func(string) bool) {
	config.SetDefault(&n.Puppets.Template, defaultTemplate)
	config.SetDefault(&c.Media.Upload, true, given("media.upload"))
	config.SetDefault(&c.Media.MaxSize, DefaultMediaMaxSize, given("media.max_size"))
	config.SetDefault(&c.Bot, defaultBot)
	config.SetDefault(&c.GhostLocalpart, defaultGhost)
	config.SetDefault(&c.ID, defaultID)
	c.Rate.SetDefaults(given, true)
}

func (c *Config) Validate(p *config.Problems, _ *config.Network) {
	if err := config.CheckHTTPURL(c.Homeserver, "http://127.0.0.1:8008"); err != nil {
		p.Add("homeserver", "%v", err)
	}
	if err := checkMatrixServerName(c.Domain); err != nil {
		p.Add("domain", "%v", err)
	}
	for key, tok := range map[string]string{"as_token": c.ASToken, "hs_token": c.HSToken} {
		switch {
		case tok == "":
			p.Add(key, "required (a long random string, the same as in the registration)")
		case strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f }):
			p.Add(key, "contains a space or control character")
		}
	}
	if err := CheckLocalpart(c.Bot); err != nil {
		p.Add("bot", "%v", err)
	}
	if err := CheckGhostLocalpart(c.GhostLocalpart); err != nil {
		p.Add("ghost_localpart", "%v", err)
	} else if strings.HasPrefix(c.Bot, ghostPrefix(c.GhostLocalpart)) {
		p.Add("bot", "%q is inside the ghost namespace %q", c.Bot, c.GhostLocalpart)
	}
	if c.Listen != "" {
		if err := config.CheckHostPort(c.Listen, false, true); err != nil {
			p.Add("listen", "%v", err)
		}
	}
	if strings.TrimSpace(c.ID) == "" {
		p.Add("id", "required")
	}
	if c.URL != "" {
		if err := config.CheckHTTPURL(c.URL, "http://127.0.0.1:8080"); err != nil {
			p.Add("url", "%v", err)
		}
	}
	if c.DoublePuppetNamespace != "" {
		if err := checkPeopleNamespace(c.DoublePuppetNamespace, c.Domain); err != nil {
			p.Add("double_puppet_namespace", "%v", err)
		}
	}
	if c.Media.MaxSize <= 0 || c.Media.MaxSize > maxMediaMaxSize {
		p.Add("media.max_size", "want 1-%d bytes, got %d", maxMediaMaxSize, c.Media.MaxSize)
	}
}

// checkPeopleNamespace checks double_puppet_namespace: a regular
// expression (Go's syntax, which Dendrite uses; Synapse reads it as
// Python's) that can match users of domain only, because it ends with
// ":domain" literally. A homeserver pushes the appservice the events of
// every room where a user of its namespaces is joined, remote users
// included: a pattern that also matched users of other servers would
// bring Switchboard rooms none of its people is in.
func checkPeopleNamespace(pattern, domain string) error {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return fmt.Errorf("not a regular expression: %v", err)
	}
	if domain == "" || !endsWithLiteral(re, ":"+domain) {
		return fmt.Errorf("%q must end with :%s (users of this homeserver only), e.g. @[^:]+:%s", pattern, regexp.QuoteMeta(domain), regexp.QuoteMeta(domain))
	}
	return nil
}

// endsWithLiteral reports whether every string re matches ends with
// suffix: re is suffix itself or ends with it, in a concatenation
// whose last element (anchors aside) is that literal text.
func endsWithLiteral(re *syntax.Regexp, suffix string) bool {
	switch re.Op {
	case syntax.OpCapture:
		return endsWithLiteral(re.Sub[0], suffix)
	case syntax.OpConcat:
		subs := re.Sub
		for len(subs) > 0 && (subs[len(subs)-1].Op == syntax.OpEndText || subs[len(subs)-1].Op == syntax.OpEndLine) {
			subs = subs[:len(subs)-1]
		}
		return len(subs) > 0 && endsWithLiteral(subs[len(subs)-1], suffix)
	case syntax.OpLiteral:
		lit := string(re.Rune)
		if re.Flags&syntax.FoldCase != 0 {
			lit, suffix = strings.ToLower(lit), strings.ToLower(suffix)
		}
		return strings.HasSuffix(lit, suffix)
	}
	return false
}

// peopleNamespace is double_puppet_namespace as the registration writes
// it and the adapter matches it: the whole user id must match (Dendrite
// matches a namespace anywhere in the id). nil when not set.
func peopleNamespace(c *Config) *regexp.Regexp {
	if c.DoublePuppetNamespace == "" {
		return nil
	}
	re, err := regexp.Compile(anchored(c.DoublePuppetNamespace))
	if err != nil {
		return nil // Validate refuses it
	}
	return re
}

func anchored(pattern string) string { return "^(?:" + pattern + ")$" }

// checkRoom accepts a room id (!opaque:server) or alias (#name:server).
func (*Config) CheckRoom(room string) error {
	if room == "" || (room[0] != '!' && room[0] != '#') {
		return errors.New("a Matrix room is a room id !id:server or an alias #name:server")
	}
	local, server, ok := strings.Cut(room[1:], ":")
	switch {
	case !ok || local == "":
		return errors.New("a Matrix room is a room id !id:server or an alias #name:server")
	case strings.ContainsAny(room, " \t\r\n\x00"):
		return errors.New("a Matrix room contains no whitespace")
	case len(room) > 255:
		return errors.New("longer than 255 bytes")
	}
	return checkMatrixServerName(server)
}

// checkMatrixServerName checks a server name: a host, optionally :port.
func checkMatrixServerName(s string) error {
	if s == "" {
		return errors.New("required (the homeserver's server name, example.org)")
	}
	host := s
	if h, p, err := net.SplitHostPort(s); err == nil {
		if err := config.CheckPort(p, false); err != nil {
			return err
		}
		host = h
	}
	if host == "" || strings.ContainsFunc(host, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-[]:", r))
	}) {
		return fmt.Errorf("%q is not a server name (host or host:port)", s)
	}
	return nil
}

// matrixLocalpartChar is the grammar of a user id's localpart.
func matrixLocalpartChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("._=/-", r)
}

// CheckLocalpart says why s is not a user id localpart.
func CheckLocalpart(s string) error {
	switch {
	case s == "":
		return errors.New("required")
	case strings.ContainsFunc(s, func(r rune) bool { return !matrixLocalpartChar(r) }):
		return fmt.Errorf("%q is not a Matrix localpart (a-z, 0-9 and ._=/-)", s)
	case len(s) > 200:
		return errors.New("longer than 200 bytes")
	}
	return nil
}

// CheckGhostLocalpart checks a ghost localpart template: it holds
// {network} before {id}, each once, and literal localpart characters; the
// text between them holds "_" or "/" (which an encoded value never
// holds), so that a ghost's id can be read back.
func CheckGhostLocalpart(t string) error {
	ni, ii := strings.Index(t, "{network}"), strings.Index(t, "{id}")
	switch {
	case ni < 0 || ii < 0:
		return errors.New("must contain {network} and {id}")
	case strings.Count(t, "{network}") != 1 || strings.Count(t, "{id}") != 1:
		return errors.New("must contain {network} and {id} once each")
	case ii < ni:
		return errors.New("must have {network} before {id}")
	case ni == 0:
		return errors.New("must start with a literal prefix (sb_{network}_{id})")
	}
	between := t[ni+len("{network}") : ii]
	if !strings.ContainsAny(between, "_/") {
		return errors.New("must have _ or / between {network} and {id}")
	}
	lit := strings.NewReplacer("{network}", "", "{id}", "").Replace(t)
	if strings.ContainsFunc(lit, func(r rune) bool { return !matrixLocalpartChar(r) }) {
		return fmt.Errorf("%q: the text around the placeholders must be a-z, 0-9 and ._=/-", t)
	}
	if strings.ContainsRune(t[:ni], '=') {
		return errors.New("the prefix must not contain =")
	}
	return nil
}

func ghostPrefix(t string) string {
	prefix, _, _ := strings.Cut(t, "{")
	return prefix
}

// checkAccount: a person's Matrix account is a user id; the appservice
// can double-puppet only the users of its own homeserver, and a personal
// token makes double_puppet pointless.
func checkAccount(p *config.Problems, a config.Account, n *config.Network) {
	local, server, ok := strings.Cut(strings.TrimPrefix(a.ID, "@"), ":")
	if !strings.HasPrefix(a.ID, "@") || !ok || local == "" || checkMatrixServerName(server) != nil {
		p.Add("", "want a Matrix user id @name:server, got %q", a.ID)
		return
	}
	if a.Token != "" && a.DoublePuppet {
		p.Add("double_puppet", "either a token or double_puppet, not both")
	}
	if c, _ := n.Section.(*Config); a.DoublePuppet && c != nil && c.Domain != "" && server != c.Domain {
		p.Add("double_puppet", "only users of %s can be double-puppeted through the appservice; give a token for %s", c.Domain, a.ID)
	}
}
