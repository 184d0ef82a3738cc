package xmpp

import (
	"encoding/base32"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/mapping"
)

// A foreign sender's JID on the component's domain is
// <escaped id>%<network>@domain: the id escaped per XEP-0106, with "^"
// marking an upper-case letter (JID localparts are case-insensitive) and
// "^^" standing for "^". An id that would not survive that (other
// characters a server's nodeprep would change, or a readable form that
// starts with "~") is written as "~" and its lower-case base32 instead.
// Network names are [a-z0-9_-], so the last "%" always separates the two,
// and the mapping can be read back: an XMPP user writing to a puppet JID
// reaches the sender it stands for.

var b32 = base32.HexEncoding.WithPadding(base32.NoPadding)

// maxLocalpart is RFC 7622's limit.
const maxLocalpart = 1023

var errBadPuppetJID = errors.New("not a puppet JID")

// puppetLocal is the localpart of a sender's puppet JID.
func puppetLocal(s bridge.Sender) (string, error) {
	if s.ID == "" || s.Network == "" || !validNetwork(s.Network) {
		return "", errors.New("sender without id or network")
	}
	local := readableLocal(s.ID)
	if local == "" {
		local = "~" + strings.ToLower(b32.EncodeToString([]byte(s.ID)))
	}
	local += "%" + s.Network
	if len(local) > maxLocalpart {
		return "", errors.New("sender id too long for a JID")
	}
	return local, nil
}

// readableLocal is the readable escaped form of id, or "" when id needs
// the base32 form.
func readableLocal(id string) string {
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 0x80 || c < 0x21 && c != ' ' || c == 0x7f:
			return "" // non-ASCII and controls: nodeprep may change them
		case c == '^':
			b.WriteString("^^")
		case 'A' <= c && c <= 'Z':
			b.WriteByte('^')
			b.WriteByte(c + 'a' - 'A')
		default:
			b.WriteByte(c)
		}
	}
	local := escapeLocal(b.String())
	// XEP-0106: an escaped localpart neither starts nor ends with a space.
	if local == "" || strings.HasPrefix(local, "~") || strings.HasPrefix(local, `\20`) || strings.HasSuffix(local, `\20`) {
		return ""
	}
	if dec, err := decodeLocal(local); err != nil || dec != id {
		return ""
	}
	return local
}

// decodeLocal reverses the id part of puppetLocal.
func decodeLocal(local string) (string, error) {
	if strings.HasPrefix(local, "~") {
		raw, err := b32.DecodeString(strings.ToUpper(local[1:]))
		if err != nil || !utf8.Valid(raw) {
			return "", errBadPuppetJID
		}
		return string(raw), nil
	}
	s := unescapeLocal(local)
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '^' {
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(s) {
			return "", errBadPuppetJID
		}
		i++
		switch n := s[i]; {
		case n == '^':
			b.WriteByte('^')
		case 'a' <= n && n <= 'z':
			b.WriteByte(n - 'a' + 'A')
		default:
			return "", errBadPuppetJID
		}
	}
	return b.String(), nil
}

// xep0106 lists the characters XEP-0106 escapes, with their escapes.
// (mellium's jid.Unescape mis-decodes some of them, so this package has
// its own.)
var xep0106 = map[byte]string{
	' ': `\20`, '"': `\22`, '&': `\26`, '\'': `\27`, '/': `\2f`,
	':': `\3a`, '<': `\3c`, '>': `\3e`, '@': `\40`, '\\': `\5c`,
}

// escapeLocal escapes per XEP-0106. A backslash is always escaped, so
// that unescapeLocal reverses it exactly.
func escapeLocal(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if e, ok := xep0106[s[i]]; ok {
			b.WriteString(e)
		} else {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func unescapeLocal(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+2 < len(s) {
			code := strings.ToLower(s[i : i+3])
			found := false
			for c, e := range xep0106 {
				if e == code {
					b.WriteByte(c)
					found = true
					break
				}
			}
			if found {
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// puppetJID is the sender's JID on domain.
func puppetJID(s bridge.Sender, domain string) (jid.JID, error) {
	local, err := puppetLocal(s)
	if err != nil {
		return jid.JID{}, err
	}
	j, err := jid.New(local, domain, "")
	if err != nil {
		return jid.JID{}, err
	}
	if j.Localpart() != local {
		return jid.JID{}, errors.New("sender id changes under JID normalization")
	}
	return j, nil
}

// senderOfJID maps a puppet JID's localpart back to (network, id).
func senderOfJID(local string) (network, id string, err error) {
	i := strings.LastIndexByte(local, '%')
	if i <= 0 || i == len(local)-1 {
		return "", "", errBadPuppetJID
	}
	network = local[i+1:]
	if !validNetwork(network) {
		return "", "", errBadPuppetJID
	}
	id, err = decodeLocal(local[:i])
	if err != nil || id == "" {
		return "", "", errBadPuppetJID
	}
	return network, id, nil
}

func validNetwork(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// maxNickRunes keeps puppet nicks readable in a room's occupant list.
const maxNickRunes = 64

// puppetNick turns a rendered puppet name into a MUC nick: control
// characters and surrounding space removed, NFC, at most maxNickRunes; an
// empty or invalid result becomes "u" and the sender's fingerprint.
func puppetNick(name string, s bridge.Sender) string {
	name = norm.NFC.String(bridge.CleanText(name))
	name = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return ' '
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r) && r != '\u200d':
			return -1
		}
		return r
	}, name)
	name = strings.Join(strings.Fields(name), " ")
	if utf8.RuneCountInString(name) > maxNickRunes {
		name = strings.TrimSpace(string([]rune(name)[:maxNickRunes]))
	}
	if name == "" || !validNick(name) {
		return "u" + mapping.Fingerprint(s)
	}
	return name
}

// nickAlternative is the nick to try when nick is taken: the sender's
// fingerprint appended, then further deterministic variants.
func nickAlternative(nick string, s bridge.Sender, attempt int) string {
	if attempt <= 0 {
		return nick
	}
	suffix := " [" + mapping.Fingerprint(s)
	if attempt > 1 {
		suffix += string(rune('a' + (attempt-2)%26))
	}
	suffix += "]"
	if n := utf8.RuneCountInString(nick); n+utf8.RuneCountInString(suffix) > maxNickRunes {
		keep := max(1, maxNickRunes-utf8.RuneCountInString(suffix))
		nick = strings.TrimSpace(string([]rune(nick)[:min(n, keep)]))
	}
	return nick + suffix
}

func validNick(nick string) bool {
	_, err := jid.New("room", "example.org", nick)
	return err == nil
}
