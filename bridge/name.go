package bridge

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameRunes bounds a name put into text. A relay prefix repeats it on
// every line, and a name as long as a sentence could pass for one.
const MaxNameRunes = 40

// Delims are the strings that would end a name in some format of text.
type Delims []string

// The delimiters ShownName neutralizes, by the format the name goes into.
var (
	// RelayDelims close the name in relay mode's "<name> text" and in
	// the "> <name> text" quotes that follow it.
	RelayDelims = Delims{"<", ">"}
	// QuoteDelims end the name in a fallback quote, "> name: text". A
	// colon alone is no delimiter there: Matrix ids have one.
	QuoteDelims = Delims{"<", ">", ": "}
	// NoticeDelims close the name in a notice's "to name (network)".
	NoticeDelims = Delims{"(", ")"}
)

// nameStandIn takes the place of a delimiter's first character: visible,
// so the name stays recognizable, but it ends nothing.
const nameStandIn = "_"

// ShownName is a sender's name made safe to put into text that other
// people's words follow, so that it cannot pass for them:
//
//   - invalid UTF-8 becomes U+FFFD;
//   - control characters (NUL, IRC formatting codes...) and invisible
//     format characters (Unicode Cf: bidi overrides and isolates, which
//     would reorder the rest of the line, zero-width spaces, BOMs, tags)
//     are removed, as are the Hangul fillers that render as nothing;
//     zero-width joiners and non-joiners stay between two visible
//     characters, where emoji sequences (👩‍💻) and Persian and Indic
//     spelling need them and they can hide nothing;
//   - every kind of space and line break (CR, LF, U+2028, U+2029, NEL...)
//     becomes one space, and the ends are trimmed;
//   - the first character of each of delims becomes "_" ("a: b" with
//     QuoteDelims is "a_ b");
//   - a name longer than MaxNameRunes keeps its beginning and ends in "…".
//
// The result is "" only if the name shows nothing. ShownName is
// idempotent.
func ShownName(name string, delims Delims) string {
	name = strings.ToValidUTF8(name, "\uFFFD")
	rs := []rune(name)
	out := make([]rune, 0, min(len(rs), MaxNameRunes))
	space := false // a space is pending between out and the next rune
	for i, r := range rs {
		switch {
		case unicode.IsSpace(r):
			space = len(out) > 0
			continue
		case joiner(r):
			if space || len(out) == 0 || i+1 >= len(rs) || !visible(out[len(out)-1]) || !visible(rs[i+1]) {
				continue
			}
		case !visible(r):
			continue
		}
		if space {
			out = append(out, ' ')
			space = false
		}
		out = append(out, r)
		if len(out) > MaxNameRunes {
			break
		}
	}
	if len(delims) > 0 {
		// Each replacement keeps the rune count, so the bound holds.
		shown := string(out)
		for _, d := range delims {
			_, size := utf8.DecodeRuneInString(d)
			shown = strings.ReplaceAll(shown, d, nameStandIn+d[size:])
		}
		out = []rune(shown)
	}
	if len(out) > MaxNameRunes {
		out = out[:MaxNameRunes-1]
		for len(out) > 0 && (out[len(out)-1] == ' ' || joiner(out[len(out)-1])) {
			out = out[:len(out)-1]
		}
		out = append(out, '…')
	}
	return string(out)
}

// joiner reports the zero-width joiner and non-joiner.
func joiner(r rune) bool { return r == '\u200d' || r == '\u200c' }

// visible reports whether r shows as something of its own: not a space,
// a control or format character, or a filler.
func visible(r rune) bool {
	switch {
	case r < utf8.RuneSelf:
		return r > ' ' && r != 0x7f
	case unicode.IsSpace(r), unicode.Is(unicode.Cc, r), unicode.Is(unicode.Cf, r):
		return false
	case r == '\u115f', r == '\u1160', r == '\u3164', r == '\uffa0':
		// Hangul fillers: letters that render as nothing, the usual way
		// to an "empty" name.
		return false
	}
	return true
}

// Shown is how text shows the sender (see ShownName): the display name,
// or the id when the name shows nothing.
func (s Sender) Shown(delims Delims) string {
	if n := ShownName(s.Name, delims); n != "" {
		return n
	}
	return ShownName(s.ID, delims)
}
