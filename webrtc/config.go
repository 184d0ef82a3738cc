package webrtc

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/switchboard-chat/switchboard/config"
)

const (
	defaultMaxMessage = 16384
	defaultRate       = 5
	defaultBurst      = 10
	defaultMaxPeers   = 100
	defaultHistory    = 50
	// maxHistory is as many messages as the page keeps.
	maxHistory = 500
	// defaultTemplate: peers read names in a page, where anything
	// can be shown plainly.
	defaultTemplate = "{name} ({network})"
	// minMaxMessage leaves room for a frame's JSON envelope.
	minMaxMessage = 1024
	// maxMaxMessage is what browsers send in one data-channel
	// message without trouble.
	maxMaxMessage = 256 * 1024
	// maxRoom bounds a room name: it appears in URL paths.
	maxRoom = 64
	// DefaultFilesMaxSize is files.max_size when not set: 10 MiB.
	DefaultFilesMaxSize = 10 << 20
	// maxFilesMaxSize bounds files.max_size: a file is held in memory
	// and kept in the store.
	maxFilesMaxSize = 100 << 20
)

// Config is a WebRTC network's keys (type: webrtc): it serves browsers (and other WebRTC peers) over data channels:
// signaling on Switchboard's HTTP listener, a chat page at "/". At most
// one webrtc network is allowed, as it owns those HTTP paths.
type Config struct {
	// ICEServers are STUN/TURN servers offered to ICE.
	ICEServers []ICEServer `yaml:"ice_servers,omitempty"`
	// UDPPort serves every peer on this one UDP port (per local address);
	// 0 picks a free port.
	UDPPort int `yaml:"udp_port"`
	// LoopbackCandidates offers 127.0.0.1 and ::1 candidates, for peers on
	// the same host.
	LoopbackCandidates bool `yaml:"loopback_candidates"`
	// Interfaces restricts ICE to these network interfaces; empty: all.
	Interfaces []string `yaml:"interfaces,omitempty"`
	// Tokens maps a room to the bearer token its peers must present.
	Tokens map[string]string `yaml:"tokens,omitempty" secret:"true"`
	// History is how many of the link's last messages a peer joining a
	// room gets first; 0: none.
	History int `yaml:"history"`
	// MaxMessage is the largest data-channel frame accepted, in bytes.
	MaxMessage int `yaml:"max_message"`
	// Rate limits the frames each peer sends.
	Rate Rate `yaml:"rate"`
	// MaxPeers is how many peers a room holds at once.
	MaxPeers int `yaml:"max_peers"`
	// Files is what peers may send as files.
	Files Files `yaml:"files"`
}

// Files is the files peers send from the page: uploaded over HTTP, kept
// in the store, offered to the other networks as signed links under
// http.public_url.
type Files struct {
	// MaxSize is the largest file a peer may send, in bytes; 0 turns
	// sending files off.
	MaxSize int64 `yaml:"max_size"`
}

// ICEServer is a STUN or TURN server.
type ICEServer struct {
	URLs       []string `yaml:"urls"`
	Username   string   `yaml:"username"`
	Credential string   `yaml:"credential" secret:"true"`
}

// Rate is a token bucket per peer.
type Rate struct {
	PerSecond int `yaml:"per_second"`
	Burst     int `yaml:"burst"`
}

var _ config.Section = (*Config)(nil)

func (c Config) String() string          { return config.Redacted(&c) }
func (c Config) LogValue() slog.Value    { return slog.StringValue(c.String()) }
func (s ICEServer) String() string       { return config.Redacted(&s) }
func (s ICEServer) LogValue() slog.Value { return slog.StringValue(s.String()) }

func (c *Config) SetDefaults(_ string, n *config.Network, given func(string) bool) {
	config.SetDefault(&n.Puppets.Template, defaultTemplate)
	config.SetDefault(&c.MaxMessage, defaultMaxMessage, given("max_message"))
	config.SetDefault(&c.Rate.PerSecond, defaultRate, given("rate.per_second"))
	config.SetDefault(&c.Rate.Burst, defaultBurst, given("rate.burst"))
	config.SetDefault(&c.MaxPeers, defaultMaxPeers, given("max_peers"))
	config.SetDefault(&c.Files.MaxSize, DefaultFilesMaxSize, given("files.max_size"))
	config.SetDefault(&c.History, defaultHistory, given("history"))
}

func (c *Config) Validate(p *config.Problems, _ *config.Network) {
	for i, s := range c.ICEServers {
		srv := fmt.Sprintf("ice_servers[%d]", i)
		if len(s.URLs) == 0 {
			p.Add(srv+".urls", "required (stun:host:port or turn:host:port)")
		}
		turn := false
		for j, u := range s.URLs {
			scheme, rest, _ := strings.Cut(u, ":")
			switch scheme {
			case "stun", "stuns":
			case "turn", "turns":
				turn = true
			default:
				p.Add(fmt.Sprintf("%s.urls[%d]", srv, j), "want a stun:, stuns:, turn: or turns: URL, got %q", u)
				continue
			}
			if rest == "" || strings.ContainsAny(rest, " \t\r\n\x00<>\"") {
				p.Add(fmt.Sprintf("%s.urls[%d]", srv, j), "%q has no host, or contains whitespace or <>\"", u)
			}
		}
		if turn && (s.Username == "" || s.Credential == "") {
			p.Add(srv, "a TURN server needs username and credential")
		}
		// Both are handed to browsers in quoted Link header parameters.
		if !linkQuotable(s.Username) {
			p.Add(srv+".username", "must not contain control characters, \" or \\")
		}
		if !linkQuotable(s.Credential) {
			p.Add(srv+".credential", "must not contain control characters, \" or \\")
		}
	}
	if c.UDPPort < 0 || c.UDPPort > 65535 {
		p.Add("udp_port", "want 0-65535, got %d", c.UDPPort)
	}
	for room, tok := range c.Tokens {
		if err := CheckRoom(room); err != nil {
			p.Add("tokens."+room, "invalid room: %v", err)
		}
		if tok == "" || strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			p.Add("tokens."+room, "empty, or contains a space or control character")
		}
	}
	if c.MaxMessage < minMaxMessage || c.MaxMessage > maxMaxMessage {
		p.Add("max_message", "want %d-%d, got %d", minMaxMessage, maxMaxMessage, c.MaxMessage)
	}
	if c.Rate.PerSecond <= 0 {
		p.Add("rate.per_second", "must be positive, got %d", c.Rate.PerSecond)
	}
	if c.Rate.Burst <= 0 {
		p.Add("rate.burst", "must be positive, got %d", c.Rate.Burst)
	}
	if c.History < 0 || c.History > maxHistory {
		p.Add("history", "want 0-%d messages, got %d", maxHistory, c.History)
	}
	if c.MaxPeers <= 0 {
		p.Add("max_peers", "must be positive, got %d", c.MaxPeers)
	}
	if c.Files.MaxSize < 0 || c.Files.MaxSize > maxFilesMaxSize {
		p.Add("files.max_size", "want 0 (off) to %d bytes, got %d", maxFilesMaxSize, c.Files.MaxSize)
	}
}

func (*Config) CheckRoom(room string) error { return CheckRoom(room) }

// CheckRoom says why room is not a WebRTC room name: letters, digits,
// and . _ - (it is a URL path segment).
func CheckRoom(room string) error {
	switch {
	case room == "":
		return errors.New("a WebRTC room is a plain name (lobby)")
	case len(room) > maxRoom:
		return fmt.Errorf("a WebRTC room name is at most %d bytes", maxRoom)
	case !utf8.ValidString(room):
		return errors.New("a WebRTC room name is UTF-8")
	case room == "." || room == "..":
		return errors.New("a WebRTC room name is not . or ..")
	}
	for _, r := range room {
		if !(r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)) || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("a WebRTC room name holds letters a-z, digits, . _ and - only, not %q", r)
		}
	}
	return nil
}

// linkQuotable reports whether s can stand in a quoted string of an HTTP
// header as it is.
func linkQuotable(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '"' || r == '\\' })
}

// checkAccount: a person's web page id is a peer id.
func checkAccount(p *config.Problems, a config.Account, _ *config.Network) {
	if err := checkID(a.ID); err != nil {
		p.Add("", "invalid web page id %q: %v", a.ID, err)
	}
}

// homeNote is what to know of the web page as the home of a person whose
// web account is a, when Switchboard holds accounts of theirs elsewhere:
// without a token no page is theirs, so their inbox has nowhere to go.
func homeNote(a config.Account) string {
	if a.Token != "" {
		return ""
	}
	return "their web account has no token, so no page is known to be theirs: the direct messages to their accounts that Switchboard holds elsewhere are not delivered to them (their writers are told); give it a token"
}
