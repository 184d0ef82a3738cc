package xmpp

import (
	"bytes"
	"encoding/xml"
	"net"
	"strconv"
	"strings"
)

// stanzaFilter drops, from the bytes of a component's stream, the
// stanzas skip would drop, before the session's XML decoder reads them.
// In a room with n of our puppets every message reaches the component
// n+1 times; decoding a copy only to drop it cost more than everything
// else done with the one kept.
//
// It scans bytes, tracking tags, quotes, CDATA sections, comments and
// processing instructions only as far as to find where each top-level
// element ends; a stanza's start tag it parses in full, to decide. It
// decides on a stanza only once the decoder has read all it passed
// before, and so the handler has dispatched those stanzas: skip decides
// on the state they leave (a puppet's nick, say), as it would have from
// the handler. What it cannot follow (a DTD, a start tag past
// maxStartTag) turns it off: from there everything passes, for the
// decoder to judge as before. A stanza it cannot parse the start of
// passes too.
type stanzaFilter struct {
	net.Conn
	drop func(*xml.StartElement) bool

	in    []byte // read from the connection
	rest  []byte // of in, not scanned yet
	err   error  // the connection's, once rest is scanned
	out   []byte // passed on; out[read:] is not yet returned by Read
	read  int
	tag   []byte // a top-level start tag so far, from its '<'
	st    scanState
	quote byte   // the quote an attribute value in a tag is in
	prev  byte   // the byte before, within a tag or a delimiter match
	match int    // bytes of a closing delimiter ("-->", "]]>", "?>") seen
	bang  []byte // the bytes after "<!", until known to open a comment or CDATA
	depth int    // open elements, the stream's root included
	skip  bool   // the top-level element being scanned is dropped
	asked bool   // drop was asked about the last top-level element passed
	start xml.StartElement
	off   bool

	// handle, if set, is offered each message and presence kept, whole,
	// in place of the decoder (parseFast), in stream order; it tells
	// whether it took it. held is such a stanza so far.
	handle  func(raw []byte) bool
	held    []byte
	holding bool
}

// maxHeld bounds a stanza held for handle; a longer one goes on to the
// decoder as it comes.
const maxHeld = 64 << 10

type scanState uint8

const (
	scanText     scanState = iota
	scanLT                 // after '<'
	scanStartTag           // in a start tag, outside quotes
	scanQuoted             // in an attribute value
	scanEndTag
	scanBang // after "<!"
	scanComment
	scanCDATA
	scanPI
)

// maxStartTag bounds a top-level start tag held back to be parsed.
const maxStartTag = 16 << 10

func newStanzaFilter(conn net.Conn, drop func(*xml.StartElement) bool) *stanzaFilter {
	return &stanzaFilter{Conn: conn, drop: drop, in: make([]byte, 4096)}
}

func (f *stanzaFilter) Read(p []byte) (int, error) {
	for f.read == len(f.out) {
		f.out, f.read = f.out[:0], 0
		if len(f.rest) == 0 {
			if err := f.err; err != nil {
				f.err = nil // a timeout ends nothing: reading may go on
				return 0, err
			}
			n, err := f.Conn.Read(f.in)
			f.rest, f.err = f.in[:n], err
		}
		f.rest = f.scan(f.rest)
	}
	n := copy(p, f.out[f.read:])
	f.read += n
	return n, nil
}

// scan runs the bytes read through the filter, appending what passes to
// f.out, up to the next stanza when something passes before it; it
// returns the bytes it did not scan.
func (f *stanzaFilter) scan(b []byte) []byte {
	if f.off {
		f.out = append(f.out, b...)
		return nil
	}
	start := 0 // b[start:i] passes, unless in a dropped element
	flush := func(i int) {
		f.pass(b[start:i])
		start = i
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if f.st == scanStartTag || f.st == scanQuoted {
			// On to the next byte that matters in a tag, at once.
			var next int
			if f.st == scanQuoted {
				next = bytes.IndexByte(b[i:], f.quote)
			} else {
				next = bytes.IndexAny(b[i:], `"'>`)
			}
			end := len(b)
			if next >= 0 {
				end = i + next + 1
			}
			if f.depth == 1 { // a stanza's start tag, held until it ends
				if len(f.tag)+end-i > maxStartTag {
					f.turnOff(b[i:])
					return nil
				}
				f.tag = append(f.tag, b[i:end]...)
				start = end
			}
			if next < 0 {
				if f.st == scanStartTag {
					f.prev = b[len(b)-1]
				}
				break
			}
			if next > 0 && f.st == scanStartTag {
				f.prev = b[i+next-1]
			}
			i += next
			c = b[i]
		}
		switch f.st {
		case scanText:
			if c != '<' {
				next := bytes.IndexByte(b[i:], '<')
				if next < 0 {
					next = len(b) - i
				}
				i += next - 1 // text passes, or goes, with its element
				continue
			}
			if f.depth == 1 { // a stanza, or the stream's end
				flush(i)
				if len(f.out) > 0 {
					return b[i:] // for after the decoder has read what passed
				}
				start = i + 1
				f.tag = append(f.tag[:0], '<')
			}
			f.st = scanLT
		case scanLT:
			switch c {
			case '/':
				f.st = scanEndTag
			case '!':
				f.st, f.bang = scanBang, f.bang[:0]
			case '?':
				f.st, f.match = scanPI, 0
			default:
				f.st, f.prev = scanStartTag, 0
			}
			if f.depth == 1 {
				if c == '/' || c == '!' || c == '?' {
					// Not a stanza: pass it on as it comes.
					f.out = append(f.out, f.tag...)
					f.tag = f.tag[:0]
					start = i
				} else {
					f.tag = append(f.tag, c)
					start = i + 1
				}
			}
		case scanStartTag:
			switch {
			case c == '"' || c == '\'':
				f.st, f.quote = scanQuoted, c
			case c == '>':
				selfClosing := f.prev == '/'
				if f.depth == 1 {
					f.skip, f.asked = false, false
					if start, ok := f.parseStartTag(f.tag); ok && f.drop != nil {
						f.skip, f.asked = f.drop(start), true
					}
					name := f.start.Name.Local
					f.holding = f.asked && !f.skip && f.handle != nil && (name == "message" || name == "presence")
					f.pass(f.tag)
					f.tag = f.tag[:0]
					if selfClosing {
						f.skip = false
						f.offer()
					}
				}
				if !selfClosing {
					f.depth++
				}
				f.st = scanText
			}
			f.prev = c
		case scanQuoted:
			if c == f.quote {
				f.st, f.prev = scanStartTag, c
			}
		case scanEndTag:
			if c == '>' {
				f.depth--
				f.st = scanText
				if f.depth == 1 {
					flush(i + 1)
					f.skip = false
					f.offer()
				}
			}
		case scanBang:
			f.bang = append(f.bang, c)
			switch {
			case string(f.bang) == "--":
				f.st, f.match = scanComment, 0
			case string(f.bang) == "[CDATA[":
				f.st, f.match = scanCDATA, 0
			case !strings.HasPrefix("--", string(f.bang)) && !strings.HasPrefix("[CDATA[", string(f.bang)):
				// A DTD, which no XMPP stream has: leave it to the decoder.
				flush(i + 1)
				f.turnOff(b[i+1:])
				return nil
			}
		case scanComment:
			f.match = delimiter(f.match, c, "-->")
			if f.match == 3 {
				f.st = scanText
			}
		case scanCDATA:
			f.match = delimiter(f.match, c, "]]>")
			if f.match == 3 {
				f.st = scanText
			}
		case scanPI:
			f.match = delimiter(f.match, c, "?>")
			if f.match == 2 {
				f.st = scanText
			}
		}
	}
	flush(len(b)) // a top-level start tag not yet ended waits in f.tag
	return nil
}

// delimiter advances the count of the bytes of d matched so far by c.
func delimiter(matched int, c byte, d string) int {
	if c == d[matched] {
		return matched + 1
	}
	// Only "]]]>" and "--->" can restart a match within itself.
	if matched > 0 && c == d[0] {
		if d[0] == d[1] && matched == 2 {
			return 2
		}
		return 1
	}
	return 0
}

// turnOff passes everything from here on: held bytes first, then rest.
func (f *stanzaFilter) turnOff(rest []byte) {
	f.off = true
	f.pass(f.tag)
	f.release()
	f.tag = nil
	f.out = append(f.out, rest...)
}

// pass passes b on, unless it is part of an element dropped or held.
func (f *stanzaFilter) pass(b []byte) {
	switch {
	case f.skip:
	case f.holding:
		f.held = append(f.held, b...)
		if len(f.held) > maxHeld {
			f.release()
		}
	default:
		f.out = append(f.out, b...)
	}
}

// release passes on the stanza held so far, and what follows of it.
func (f *stanzaFilter) release() {
	if f.holding {
		f.out = append(f.out, f.held...)
		f.held, f.holding = f.held[:0], false
	}
}

// offer hands the stanza just held whole to handle, or passes it on if
// handle does not take it.
func (f *stanzaFilter) offer() {
	if f.holding && f.handle(f.held) {
		f.held, f.holding = f.held[:0], false
	}
	f.release()
}

// checked tells whether the stanza the decoder is reading, the last one
// passed, was looked at by drop, and so need not be again.
func (f *stanzaFilter) checked() bool {
	return f != nil && f.asked && !f.off
}

// parseStartTag parses `<name attr='value' ...>` or `.../>`, keeping the
// attributes without a prefix, into f.start; ok is false for anything
// else.
func (f *stanzaFilter) parseStartTag(tag []byte) (*xml.StartElement, bool) {
	s := string(tag[1 : len(tag)-1])
	s = strings.TrimSuffix(s, "/")
	name, rest, _ := strings.Cut(s, " ")
	if i := strings.IndexAny(name, "\t\r\n"); i >= 0 {
		name, rest = name[:i], name[i:]+" "+rest
	}
	if name == "" || strings.ContainsRune(name, ':') {
		return nil, false
	}
	start := &f.start
	start.Name.Local, start.Attr = name, start.Attr[:0]
	for {
		rest = strings.TrimLeft(rest, " \t\r\n")
		if rest == "" {
			return start, true
		}
		attr, after, ok := strings.Cut(rest, "=")
		if !ok {
			return nil, false
		}
		attr = strings.TrimRight(attr, " \t\r\n")
		after = strings.TrimLeft(after, " \t\r\n")
		if after == "" || after[0] != '"' && after[0] != '\'' {
			return nil, false
		}
		end := strings.IndexByte(after[1:], after[0])
		if end < 0 || attr == "" || strings.ContainsAny(attr, " \t\r\n<>'\"") {
			return nil, false
		}
		value, ok := unescapeAttr(after[1 : 1+end])
		rest = after[2+end:]
		if !ok {
			return nil, false
		}
		if !strings.ContainsRune(attr, ':') && attr != "xmlns" {
			start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: attr}, Value: value})
		}
	}
}

// unescapeAttr resolves the entity and character references of an
// attribute value; ok is false for a bare '&' or '<', or an entity XML
// does not predefine.
func unescapeAttr(v string) (string, bool) {
	if strings.IndexByte(v, '<') >= 0 {
		return "", false
	}
	if strings.IndexByte(v, '&') < 0 {
		return v, true
	}
	var b strings.Builder
	for v != "" {
		amp := strings.IndexByte(v, '&')
		if amp < 0 {
			b.WriteString(v)
			break
		}
		b.WriteString(v[:amp])
		semi := strings.IndexByte(v[amp:], ';')
		if semi < 0 {
			return "", false
		}
		ref := v[amp+1 : amp+semi]
		switch ref {
		case "amp":
			b.WriteByte('&')
		case "lt":
			b.WriteByte('<')
		case "gt":
			b.WriteByte('>')
		case "apos":
			b.WriteByte('\'')
		case "quot":
			b.WriteByte('"')
		default:
			if !strings.HasPrefix(ref, "#") {
				return "", false
			}
			base, digits := 10, ref[1:]
			if strings.HasPrefix(digits, "x") {
				base, digits = 16, digits[1:]
			}
			r, err := strconv.ParseUint(digits, base, 32)
			if err != nil || digits == "" || digits[0] == '+' || digits[0] == '-' {
				return "", false
			}
			b.WriteRune(rune(r))
		}
		v = v[amp+semi+1:]
	}
	return b.String(), true
}
