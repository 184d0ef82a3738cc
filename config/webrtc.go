package config

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	defaultWebRTCMaxMessage = 16384
	defaultWebRTCRate       = 5
	defaultWebRTCBurst      = 10
	defaultWebRTCMaxPeers   = 100
	// defaultWebRTCTemplate: peers read names in a page, where anything
	// can be shown plainly.
	defaultWebRTCTemplate = "{name} ({network})"
	// minWebRTCMaxMessage leaves room for a frame's JSON envelope.
	minWebRTCMaxMessage = 1024
	// maxWebRTCMaxMessage is what browsers send in one data-channel
	// message without trouble.
	maxWebRTCMaxMessage = 256 * 1024
	// maxWebRTCRoom bounds a room name: it appears in URL paths.
	maxWebRTCRoom = 64
)

// WebRTC serves browsers (and other WebRTC peers) over data channels:
// signaling on Switchboard's HTTP listener, a chat page at "/". At most
// one webrtc network is allowed, as it owns those HTTP paths.
type WebRTC struct {
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
	// MaxMessage is the largest data-channel frame accepted, in bytes.
	MaxMessage int `yaml:"max_message"`
	// Rate limits the frames each peer sends.
	Rate WebRTCRate `yaml:"rate"`
	// MaxPeers is how many peers a room holds at once.
	MaxPeers int `yaml:"max_peers"`
}

// ICEServer is a STUN or TURN server.
type ICEServer struct {
	URLs       []string `yaml:"urls"`
	Username   string   `yaml:"username"`
	Credential string   `yaml:"credential" secret:"true"`
}

// WebRTCRate is a token bucket per peer.
type WebRTCRate struct {
	PerSecond int `yaml:"per_second"`
	Burst     int `yaml:"burst"`
}

func (c WebRTC) String() string          { return flowYAML(redactedCopy(&c)) }
func (c WebRTC) LogValue() slog.Value    { return slog.StringValue(c.String()) }
func (s ICEServer) String() string       { return flowYAML(redactedCopy(&s)) }
func (s ICEServer) LogValue() slog.Value { return slog.StringValue(s.String()) }

func (c *WebRTC) setDefaults(_ string, n *Network, given func(string) bool) {
	setDefault(&n.Puppets.Template, defaultWebRTCTemplate)
	setDefault(&c.MaxMessage, defaultWebRTCMaxMessage, given("max_message"))
	setDefault(&c.Rate.PerSecond, defaultWebRTCRate, given("rate.per_second"))
	setDefault(&c.Rate.Burst, defaultWebRTCBurst, given("rate.burst"))
	setDefault(&c.MaxPeers, defaultWebRTCMaxPeers, given("max_peers"))
}

func (c *WebRTC) validate(errs *errorList, path string, _ *Network) {
	for i, s := range c.ICEServers {
		p := fmt.Sprintf("%s.ice_servers[%d]", path, i)
		if len(s.URLs) == 0 {
			errs.add(join(p, "urls"), "required (stun:host:port or turn:host:port)")
		}
		turn := false
		for j, u := range s.URLs {
			scheme, rest, _ := strings.Cut(u, ":")
			switch scheme {
			case "stun", "stuns":
			case "turn", "turns":
				turn = true
			default:
				errs.add(fmt.Sprintf("%s.urls[%d]", p, j), "want a stun:, stuns:, turn: or turns: URL, got %q", u)
				continue
			}
			if rest == "" || strings.ContainsAny(rest, " \t\r\n\x00<>\"") {
				errs.add(fmt.Sprintf("%s.urls[%d]", p, j), "%q has no host, or contains whitespace or <>\"", u)
			}
		}
		if turn && (s.Username == "" || s.Credential == "") {
			errs.add(p, "a TURN server needs username and credential")
		}
		// Both are handed to browsers in quoted Link header parameters.
		if !linkQuotable(s.Username) {
			errs.add(join(p, "username"), "must not contain control characters, \" or \\")
		}
		if !linkQuotable(s.Credential) {
			errs.add(join(p, "credential"), "must not contain control characters, \" or \\")
		}
	}
	if c.UDPPort < 0 || c.UDPPort > 65535 {
		errs.add(join(path, "udp_port"), "want 0-65535, got %d", c.UDPPort)
	}
	for room, tok := range c.Tokens {
		if err := checkWebRTCRoom(room); err != nil {
			errs.add(join(path, "tokens."+room), "invalid room: %v", err)
		}
		if tok == "" || strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			errs.add(join(path, "tokens."+room), "empty, or contains a space or control character")
		}
	}
	if c.MaxMessage < minWebRTCMaxMessage || c.MaxMessage > maxWebRTCMaxMessage {
		errs.add(join(path, "max_message"), "want %d-%d, got %d", minWebRTCMaxMessage, maxWebRTCMaxMessage, c.MaxMessage)
	}
	if c.Rate.PerSecond <= 0 {
		errs.add(join(path, "rate.per_second"), "must be positive, got %d", c.Rate.PerSecond)
	}
	if c.Rate.Burst <= 0 {
		errs.add(join(path, "rate.burst"), "must be positive, got %d", c.Rate.Burst)
	}
	if c.MaxPeers <= 0 {
		errs.add(join(path, "max_peers"), "must be positive, got %d", c.MaxPeers)
	}
}

func (*WebRTC) checkRoom(room string) error { return checkWebRTCRoom(room) }

// CheckWebRTCRoom says why room is not a WebRTC room name: letters,
// digits, and . _ - (it is a URL path segment).
func CheckWebRTCRoom(room string) error { return checkWebRTCRoom(room) }

func checkWebRTCRoom(room string) error {
	switch {
	case room == "":
		return errors.New("a WebRTC room is a plain name (lobby)")
	case len(room) > maxWebRTCRoom:
		return fmt.Errorf("a WebRTC room name is at most %d bytes", maxWebRTCRoom)
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

// validateWebRTCCount allows one webrtc network: it owns the HTTP paths
// of the signaling and the chat page.
func (c *Config) validateWebRTCCount(errs *errorList) {
	var names []string
	for _, name := range sortedKeys(c.Networks) {
		if n := c.Networks[name]; n != nil && n.Type == "webrtc" {
			names = append(names, name)
		}
	}
	for _, name := range names[min(1, len(names)):] {
		errs.add(join("networks", name), "a second webrtc network (%s is one): at most one is allowed, as it serves the HTTP paths /webrtc/ and /", names[0])
	}
}

// linkQuotable reports whether s can stand in a quoted string of an HTTP
// header as it is.
func linkQuotable(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '"' || r == '\\' })
}
