package mapping

import (
	"fmt"
	"strings"

	"github.com/switchboard-chat/switchboard/bridge"
)

// Admins is the config's admins list, parsed: who may use the !sb chat
// commands. The zero value and nil admit nobody. It is immutable, so a
// reload swaps in a new one instead of changing it.
type Admins struct {
	entries []adminEntry
}

// adminEntry is one "network:identity" entry. network is a network's name
// or a network type; which of the two is only known against a sender.
type adminEntry struct {
	network, identity string
}

// ParseAdmins parses "network:identity" entries. The config's validation
// has checked them already; one that still fails is an error rather than
// skipped, so that a typo never quietly locks an admin out.
func ParseAdmins(entries []string) (*Admins, error) {
	a := &Admins{}
	for i, e := range entries {
		network, identity, ok := strings.Cut(e, ":")
		if !ok || network == "" || strings.TrimSpace(identity) == "" {
			return nil, fmt.Errorf("admins[%d]: want network:identity, got %q", i, e)
		}
		a.entries = append(a.entries, adminEntry{network: network, identity: identity})
	}
	return a, nil
}

// IsAdmin reports whether sender, from a network of type networkType, is
// one of the admins. An entry applies to the sender when its network part
// is the sender's network name or its type; how the identity compares
// depends on the type (see matchIdentity).
func (a *Admins) IsAdmin(sender bridge.Sender, networkType string) bool {
	if a == nil || sender.Network == "" {
		return false
	}
	for _, e := range a.entries {
		if e.network != sender.Network && e.network != networkType {
			continue
		}
		if matchIdentity(e.identity, sender, networkType) {
			return true
		}
	}
	return false
}

// matchIdentity compares one entry's identity with a sender, by the rules
// of the sender's network type.
func matchIdentity(identity string, s bridge.Sender, networkType string) bool {
	switch networkType {
	case "irc":
		// A nick alone proves nothing on IRC (anyone can take a free one),
		// so only the full nick!user@host is matched, never the id.
		return validMask(s.Mask) && Glob(identity, s.Mask, true)
	case "xmpp":
		// Only a real (bare) JID identifies a person; an occupant JID
		// room@service/nick is just a nick in a room. JIDs compare
		// case-insensitively (their localpart and domain are case-folded).
		return s.ID != "" && !strings.Contains(s.ID, "/") && strings.EqualFold(s.ID, identity)
	default:
		// Matrix user ids, MQTT device ids and WebRTC peer names are
		// case-sensitive.
		return s.ID != "" && s.ID == identity
	}
}

// validMask reports whether m looks like nick!user@host with every part
// set: a mask the adapter could not fill in completely matches nothing.
func validMask(m string) bool {
	nick, rest, ok := strings.Cut(m, "!")
	if !ok || nick == "" {
		return false
	}
	user, host, ok := strings.Cut(rest, "@")
	return ok && user != "" && host != "" && !strings.ContainsAny(m, " \t\r\n\x00*?")
}

// Glob matches s against pattern, where * stands for any run of
// characters and ? for one, ignoring ASCII case if fold (as IRC servers do
// for masks). Nothing else is special: IRC nicks may contain [ ] and \,
// so path.Match's syntax does not fit. It runs in
// O(len(pattern)*len(s)).
func Glob(pattern, s string, fold bool) bool {
	if fold {
		pattern, s = asciiLower(pattern), asciiLower(s)
	}
	p, t := []rune(pattern), []rune(s)
	pi, ti := 0, 0
	star, mark := -1, 0 // the last * seen, and where in t it started matching
	for ti < len(t) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == t[ti]):
			pi++
			ti++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, ti
			pi++
		case star >= 0:
			// Let the last * swallow one more character and retry.
			mark++
			pi, ti = star+1, mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// asciiLower lowers ASCII letters only: Unicode case folding would let
// look-alikes (the Kelvin sign for k) match.
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, s)
}
