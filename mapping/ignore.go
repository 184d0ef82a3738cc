package mapping

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"

	"github.com/switchboard-chat/switchboard/bridge"
)

// IRCServices are the nicks of the usual IRC services (Atheme's and
// Anope's), ignored on every IRC network unless its ignore_services is
// off: their notices and replies are network housekeeping, not chat.
var IRCServices = []string{"ChanServ", "NickServ", "MemoServ", "OperServ", "BotServ", "HostServ", "Global"}

// Pattern is one entry of an ignore list: "/re/" is a regular expression,
// text with * or ? a glob (as the admins' masks), anything else an exact
// identity. See Pattern.Match for what it is compared with.
type Pattern struct {
	src   string
	lower string         // src with ASCII letters lowered, for identities compared without case
	re    *regexp.Regexp // for "/re/"
	glob  bool
	part  ircPart // on IRC, what a glob or exact pattern is compared with
}

// ircPart is a part of an IRC sender's nick!user@host.
type ircPart int

const (
	ircMask ircPart = iota
	ircUserHost
	ircNick
)

// ParsePattern parses one ignore pattern. Its errors are for people and
// do not repeat the pattern.
func ParsePattern(s string) (Pattern, error) {
	switch {
	case strings.TrimSpace(s) == "":
		return Pattern{}, errors.New("empty pattern")
	case strings.ContainsAny(s, "\r\n\x00"):
		return Pattern{}, errors.New("contains a line break or NUL")
	case len(s) >= 2 && strings.HasPrefix(s, "/") && strings.HasSuffix(s, "/"):
		expr := s[1 : len(s)-1]
		if expr == "" {
			// It would match everyone.
			return Pattern{}, errors.New("empty regular expression")
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return Pattern{}, fmt.Errorf("bad regular expression: %w", err)
		}
		return Pattern{src: s, re: re}, nil
	}
	p := Pattern{src: s, lower: asciiLower(s), glob: strings.ContainsAny(s, "*?"), part: ircNick}
	switch {
	case strings.Contains(s, "!"):
		p.part = ircMask
	case strings.Contains(s, "@"):
		p.part = ircUserHost
	}
	return p, nil
}

// String returns the pattern as written.
func (p Pattern) String() string { return p.src }

// Match reports whether sender, from a network of type networkType, is
// the one the pattern names. The identity compared is, by type:
//
//   - irc: the nick!user@host. A glob or exact pattern without "!" is
//     matched against the nick alone, one with "@" but no "!" against
//     user@host, as IRC ban masks are read; a regular expression always
//     against the whole nick!user@host. ASCII case is ignored except in
//     regular expressions (write (?i) for that).
//   - xmpp: the JID the sender is known by: their bare JID where the room
//     shows it, else their occupant JID room@service/nick. ASCII case is
//     ignored.
//   - anything else (Matrix user ids, MQTT device ids, WebRTC names): the
//     sender id, case-sensitively.
func (p Pattern) Match(sender bridge.Sender, networkType string) bool {
	return p.match(identityOf(sender, networkType))
}

// identity is a sender as patterns see it, worked out once for a list.
type identity struct {
	raw  string // for regular expressions
	cmp  string // raw, lowered when fold: for globs and exact patterns
	fold bool
	// On IRC, the parts of cmp.
	irc            bool
	nick, userHost string
}

func identityOf(s bridge.Sender, networkType string) identity {
	id := identity{raw: s.ID}
	switch networkType {
	case "irc":
		id.raw, id.fold, id.irc = ircSubject(s), true, true
	case "xmpp":
		id.fold = true
	}
	id.cmp = id.raw
	if id.fold {
		id.cmp = asciiLower(id.raw)
	}
	if id.irc {
		id.nick, id.userHost, _ = strings.Cut(id.cmp, "!")
	}
	return id
}

func (p Pattern) match(id identity) bool {
	if id.raw == "" {
		return false
	}
	if p.re != nil {
		return p.re.MatchString(id.raw)
	}
	subject, pattern := id.cmp, p.src
	if id.fold {
		pattern = p.lower
	}
	if id.irc {
		switch p.part {
		case ircNick:
			subject = id.nick
		case ircUserHost:
			subject = id.userHost
		}
	}
	if p.glob {
		return Glob(pattern, subject, false) // both lowered already if folding
	}
	return pattern == subject
}

// ircSubject is an IRC sender's nick!user@host. Where the server left
// user and host out, the nick with wildcards stands in, so that nick
// patterns still apply and host patterns cannot (no host has a *).
func ircSubject(s bridge.Sender) string {
	if validMask(s.Mask) {
		return s.Mask
	}
	if s.Name == "" {
		return ""
	}
	return s.Name + "!*@*"
}

// IgnoreList is a parsed ignore list.
type IgnoreList []Pattern

// ParseIgnore parses a list of patterns. An error names the index of the
// first bad one, "[2]: bad regular expression: ...", for the caller to
// prefix with the key (the config's validation reports every one).
func ParseIgnore(patterns []string) (IgnoreList, error) {
	l := make(IgnoreList, 0, len(patterns))
	for i, s := range patterns {
		p, err := ParsePattern(s)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		l = append(l, p)
	}
	return l, nil
}

// Match returns the first pattern that matches sender.
func (l IgnoreList) Match(sender bridge.Sender, networkType string) (Pattern, bool) {
	if len(l) == 0 {
		return Pattern{}, false
	}
	id := identityOf(sender, networkType)
	for _, p := range l {
		if p.match(id) {
			return p, true
		}
	}
	return Pattern{}, false
}

// NetworkIgnore is one network's ignore list and type, which says how its
// senders are matched.
type NetworkIgnore struct {
	Type     string
	Patterns []string
}

// Ignores holds the ignore lists of every network and link, and tells the
// router which senders it must not bridge (bridge.Ignorer). It is safe
// for concurrent use; Replace swaps every list at once.
type Ignores struct {
	set atomic.Pointer[ignoreSet]
}

type ignoreSet struct {
	types    map[string]string // network name: type
	networks map[string]IgnoreList
	links    map[string]IgnoreList
}

// NewIgnores parses the lists; see Replace.
func NewIgnores(networks map[string]NetworkIgnore, links map[string][]string) (*Ignores, error) {
	i := &Ignores{}
	if err := i.Replace(networks, links); err != nil {
		return nil, err
	}
	return i, nil
}

// Replace parses new lists and, only if all parse, puts them in place.
// Errors name "networks.<name>.ignore[i]" or "link_options.<name>.ignore[i]",
// as the config does.
func (i *Ignores) Replace(networks map[string]NetworkIgnore, links map[string][]string) error {
	next := &ignoreSet{types: map[string]string{}, networks: map[string]IgnoreList{}, links: map[string]IgnoreList{}}
	for name, n := range networks {
		l, err := ParseIgnore(n.Patterns)
		if err != nil {
			return fmt.Errorf("networks.%s.ignore%w", name, err)
		}
		next.types[name], next.networks[name] = n.Type, l
	}
	for name, patterns := range links {
		l, err := ParseIgnore(patterns)
		if err != nil {
			return fmt.Errorf("link_options.%s.ignore%w", name, err)
		}
		next.links[name] = l
	}
	i.set.Store(next)
	return nil
}

// Ignored implements bridge.Ignorer: the sender's network's list, then
// the link's.
func (i *Ignores) Ignored(link string, sender bridge.Sender) (string, bool) {
	set := i.set.Load()
	if set == nil || sender.Network == "" {
		return "", false
	}
	typ := set.types[sender.Network]
	if p, ok := set.networks[sender.Network].Match(sender, typ); ok {
		return p.String(), true
	}
	if p, ok := set.links[link].Match(sender, typ); ok {
		return p.String(), true
	}
	return "", false
}
