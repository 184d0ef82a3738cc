package irc

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Formatting control codes. They are the only C0 controls bridged text
// may keep: everything else (NUL, CR, LF, and \x01, which would let a
// foreign user forge CTCP requests) is removed or turned into a line break.
const (
	codeBold      = '\x02'
	codeColor     = '\x03'
	codeHexColor  = '\x04'
	codeReset     = '\x0f'
	codeMonospace = '\x11'
	codeReverse   = '\x16'
	codeItalic    = '\x1d'
	codeStrike    = '\x1e'
	codeUnderline = '\x1f'
)

func isFormatCode(c byte) bool {
	switch c {
	case codeBold, codeColor, codeHexColor, codeReset, codeMonospace, codeReverse, codeItalic, codeStrike, codeUnderline:
		return true
	}
	return false
}

// textLines makes bridged text safe for the trailing parameter of a
// PRIVMSG: CR, LF and CRLF end a line, NUL and control characters other
// than formatting codes are dropped, tabs become spaces and invalid UTF-8
// becomes U+FFFD. It returns the lines, empty ones included.
func textLines(s string) []string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var lines []string
	var b strings.Builder
	start := 0 // s[start:i] is clean and not yet copied
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != 0x7f || isFormatCode(c) {
			continue
		}
		b.WriteString(s[start:i])
		start = i + 1
		switch c {
		case '\r':
			if i+1 < len(s) && s[i+1] == '\n' {
				i++
				start++
			}
			lines = append(lines, b.String())
			b.Reset()
		case '\n':
			lines = append(lines, b.String())
			b.Reset()
		case '\t':
			b.WriteByte(' ')
		default:
			// dropped: NUL, \x01 (CTCP), bell, escape, DEL...
		}
	}
	if b.Len() == 0 {
		return append(lines, s[start:]) // the common case: no copy at all
	}
	b.WriteString(s[start:])
	return append(lines, b.String())
}

// cleanLine is textLines for text that must stay on one line (a name in
// a relay prefix, a topic, a part reason): line breaks become spaces.
func cleanLine(s string) string {
	return strings.Join(textLines(s), " ")
}

var errBadChannel = errors.New("invalid channel name")

// validChannel checks a channel name before it goes into a JOIN or
// PRIVMSG: it must start with one of the server's channel prefixes and
// hold no separator or control character that would change the command.
func validChannel(name, chantypes string, maxLen int) error {
	if chantypes == "" {
		chantypes = "#&"
	}
	if maxLen <= 0 {
		maxLen = 200
	}
	if name == "" || strings.IndexByte(chantypes, name[0]) < 0 {
		return fmt.Errorf("%w %q: must start with one of %q", errBadChannel, name, chantypes)
	}
	if len(name) > maxLen {
		return fmt.Errorf("%w %q: longer than %d bytes", errBadChannel, name, maxLen)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w %q: not UTF-8", errBadChannel, name)
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c <= ' ', c == ',', c == ':' && i == 0, c == 0x7f:
			return fmt.Errorf("%w %q: contains %q", errBadChannel, name, c)
		}
	}
	return nil
}

// validNick checks a nick we are about to use (the configured bot nick;
// a direct message's target; puppet nicks come from mapping.IRCNick and
// are valid by construction) by the rule the config applies to the bot's
// nick.
func validNick(nick string) error {
	if nick == "" {
		return errors.New("empty nick")
	}
	return checkNick(nick)
}

// identFrom derives a username (ident) from a nick: servers refuse or
// mangle idents with anything but letters, digits and a few symbols.
func identFrom(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 10; i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' {
			b.WriteByte(c)
		}
	}
	if b.Len() == 0 {
		return "bridge"
	}
	return b.String()
}
