package mapping

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/switchboard-chat/switchboard/bridge"
)

// DefaultTemplate is how a foreign sender appears when a network sets no
// template of its own.
const DefaultTemplate = "{name}[{network}]"

// Render fills a puppet template for a sender: {name} is the display name
// (or the id when there is none), {id} the stable id, {network} the
// sender's network. Name and id are shown as bridge.ShownName shows them:
// a puppet's nick or display name is put into text too, and must not
// carry bidi controls or run on for a paragraph.
func Render(template string, s bridge.Sender) string {
	if template == "" {
		template = DefaultTemplate
	}
	return strings.NewReplacer("{name}", s.Shown(nil), "{id}", bridge.ShownName(s.ID, nil), "{network}", s.Network).Replace(template)
}

// Fingerprint is a short, stable, case-insensitive-safe tag for a sender,
// used to tell apart two senders whose names collide.
func Fingerprint(s bridge.Sender) string {
	sum := sha256.Sum256([]byte(s.Network + "\x00" + s.ID))
	return strings.ToLower(base32.StdEncoding.EncodeToString(sum[:])[:4])
}

// IRC nicks: RFC 2812 letters, digits and "[]\`_^{|}-", not starting with a
// digit or "-".
func ircSpecial(r rune) bool { return strings.ContainsRune("[]\\`_^{|}", r) }

func ircNickRune(r rune, first bool) bool {
	switch {
	case r < utf8.RuneSelf && unicode.IsLetter(r), ircSpecial(r):
		return true
	case r < utf8.RuneSelf && (unicode.IsDigit(r) || r == '-'):
		return !first
	}
	return false
}

// IRCNick turns a rendered puppet name into a valid IRC nick of at most
// maxLen bytes: accents are stripped, other characters outside the nick
// charset dropped (spaces become "_"), and a name left empty becomes
// "u" plus the sender's fingerprint.
func IRCNick(name string, maxLen int, s bridge.Sender) string {
	if maxLen <= 0 {
		maxLen = 9 // RFC 1459's minimum
	}
	var b strings.Builder
	for _, r := range norm.NFKD.String(name) {
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		if unicode.IsSpace(r) {
			r = '_'
		}
		if ircNickRune(r, b.Len() == 0) {
			b.WriteRune(r)
		}
	}
	nick := b.String()
	if nick == "" {
		nick = "u" + Fingerprint(s)
	}
	if len(nick) > maxLen {
		nick = nick[:maxLen]
	}
	return nick
}

// IRCNickAlternative is the nick to use when IRCNick's answer is taken by
// someone else: the same nick, shortened as needed, with "|" and the
// sender's fingerprint. attempt > 0 yields further deterministic variants.
func IRCNickAlternative(nick string, maxLen int, s bridge.Sender, attempt int) string {
	if maxLen <= 0 {
		maxLen = 9
	}
	suffix := "|" + Fingerprint(s)
	if attempt > 0 {
		suffix += string(rune('a' + (attempt-1)%26))
	}
	if len(suffix) >= maxLen {
		suffix = suffix[1:]
	}
	keep := maxLen - len(suffix)
	if keep < 1 {
		keep = 1
	}
	if len(nick) > keep {
		nick = nick[:keep]
	}
	return nick + suffix
}
