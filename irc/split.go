package irc

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Line budgets. The server relays our PRIVMSG as
//
//	:nick!user@host PRIVMSG #chan :text\r\n
//
// and cuts (or refuses) anything over its line length, so the text gets
// what is left of it once the prefix it will add is accounted for. Tags
// have their own budget (IRCv3 message-tags) and are not counted here.
const (
	defaultLineLen = 512
	worstHostLen   = 63 // longest host we assume the server might show
	minBudget      = 64 // below this something is misconfigured; keep going anyway
	actionOverhead = len("\x01ACTION \x01")
)

// lineBudget is how many bytes of text fit in one command to target.
// userHost is our user@host as the server shows it, "" when unknown.
func lineBudget(lineLen int, nick, userHost string, userLen int, command, target string, action bool) int {
	if lineLen <= 0 {
		lineLen = defaultLineLen
	}
	if userHost == "" {
		if userLen <= 0 {
			userLen = 10
		}
		// "~" for a missing ident, then the worst host.
		userHost = strings.Repeat("u", userLen+1) + "@" + strings.Repeat("h", worstHostLen)
	}
	b := lineLen - len("\r\n") -
		len(":"+nick+"!"+userHost+" ") -
		len(command+" "+target+" :")
	if action {
		b -= actionOverhead
	}
	if b < minBudget {
		b = minBudget
	}
	return b
}

// splitText turns bridged text into IRC lines of at most budget bytes,
// each starting with prefix: line breaks in the text start new lines,
// empty lines are dropped, and long lines are split (see splitLine).
func splitText(text, prefix string, budget int) []string {
	var out []string
	for _, l := range textLines(text) {
		out = splitLine(out, l, prefix, budget)
	}
	return out
}

// splitLine appends line to out, cut into pieces of at most budget bytes
// including prefix. It cuts at the last space that fits (dropping that
// space), else at the last rune boundary that fits; never inside a UTF-8
// sequence or a formatting code. Each piece reopens the formatting in
// effect where it starts, so every line renders as the whole would.
func splitLine(out []string, line, prefix string, budget int) []string {
	var st fmtState // formatting at line[pos]
	pos := 0
	for pos < len(line) {
		// Codes at the start of a piece only change what the piece opens
		// with: fold them into the state so they are not paid twice.
		for pos < len(line) && isFormatCode(line[pos]) {
			pos += st.apply(line, pos)
		}
		if pos == len(line) {
			break
		}
		head := prefix + st.codes(line[pos:])
		// When prefix and codes eat the budget, still take a rune per line
		// rather than loop forever.
		room := max(budget-len(head), 1)
		end, next := cut(line, pos, room)
		piece := line[pos:end]
		if visible(piece) {
			out = append(out, head+piece)
		}
		for i := pos; i < next; {
			if isFormatCode(line[i]) {
				i += st.apply(line, i)
			} else {
				i++
			}
		}
		pos = next
	}
	return out
}

// cut finds where a piece starting at pos with room bytes ends: end is
// the end of the piece, next where the following piece starts (past a
// dropped space).
func cut(line string, pos, room int) (end, next int) {
	if len(line)-pos <= room {
		return len(line), len(line)
	}
	limit := pos + room // the piece is line[pos:end] with end <= limit
	lastSpace, lastAtom := -1, pos
	var st fmtState
	for i := pos; i <= limit && i < len(line); {
		lastAtom = i
		if line[i] == ' ' {
			lastSpace = i
		}
		var n int
		if isFormatCode(line[i]) {
			n = st.apply(line, i)
		} else {
			_, n = utf8.DecodeRuneInString(line[i:])
		}
		if i+n > limit {
			break
		}
		i += n
		lastAtom = i
	}
	if lastAtom < len(line) && line[lastAtom] == ' ' {
		// The piece ends right before a space: cut there.
		return lastAtom, lastAtom + 1
	}
	if lastSpace > pos {
		return lastSpace, lastSpace + 1
	}
	if lastAtom == pos {
		// Not even one rune fits (line[pos] is never a code here): take
		// one anyway.
		_, n := utf8.DecodeRuneInString(line[pos:])
		return pos + n, pos + n
	}
	return lastAtom, lastAtom
}

// visible reports whether a piece shows anything but spaces.
func visible(s string) bool {
	var st fmtState
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case isFormatCode(c):
			i += st.apply(s, i)
		case c == ' ':
			i++
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if !unicode.IsSpace(r) {
				return true
			}
			i += n
		}
	}
	return false
}
