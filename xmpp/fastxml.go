package xmpp

import (
	"bytes"
	"cmp"
	"encoding/xml"
	"strings"
	"unicode/utf8"
)

// parseFast parses raw, the bytes of one stanza as the stream filter cut
// them, into the element readElement makes of the decoder's tokens for
// them, where space is the stream's default namespace. Decoding with
// encoding/xml, and mellium's layers over it, was the largest part of
// handling a message; servers write stanzas in a small part of XML, which
// this reads at a fraction of the cost.
//
// ok is false for anything outside that part, which the decoder is left
// to read as before: comments, CDATA, processing instructions, character
// references, namespace prefixes but xml:, a carriage return, duplicate
// attributes, a tab or newline within an attribute value, anything
// encoding/xml could read differently or reject, and a stanza over limit
// (by readElement's count) or deeper than maxDepth. FuzzParseFast holds
// it to readElement's result for every input it accepts.
func parseFast(raw []byte, space string, limit int) (e *element, ok bool) {
	p := fastParser{b: raw}
	e, ok = p.element(space, 1)
	if !ok || p.i != len(raw) || p.size > limit {
		return nil, false
	}
	return e, true
}

type fastParser struct {
	b    []byte
	i    int
	size int // what readElement counts (tokenSize) for the tokens so far
	// attr is the scratch for a start tag's attributes, the namespace
	// declarations among them, as the decoder hands them to readElement.
	attr []xml.Attr
}

func (p *fastParser) element(space string, depth int) (*element, bool) {
	if depth >= maxDepth || !p.skipByte('<') {
		return nil, false
	}
	name, ok := p.name()
	if !ok {
		return nil, false
	}
	p.attr = p.attr[:0]
	empty := false
	for {
		ws := p.spaces()
		if p.i >= len(p.b) {
			return nil, false
		}
		if c := p.b[p.i]; c == '>' || c == '/' {
			p.i++
			empty = c == '/'
			if empty && !p.skipByte('>') {
				return nil, false
			}
			break
		}
		if !ws {
			return nil, false
		}
		at, ok := p.attribute()
		if !ok {
			return nil, false
		}
		for _, seen := range p.attr {
			if seen.Name == at.Name {
				return nil, false
			}
		}
		if at.Name == (xml.Name{Local: "xmlns"}) {
			space = at.Value
		}
		p.attr = append(p.attr, at)
	}
	p.size += 2 + len(name)
	for _, at := range p.attr {
		p.size += 4 + len(at.Name.Local) + len(at.Name.Space) + len(at.Value)
	}
	e := &element{name: xml.Name{Space: space, Local: name}, attr: copyAttrs(p.attr)}
	if empty {
		p.size += 3 + len(name)
		return e, true
	}
	var text []string
	for {
		lt := bytes.IndexByte(p.b[p.i:], '<')
		if lt < 0 {
			return nil, false
		}
		if lt > 0 {
			t, ok := unescapeText(p.b[p.i:p.i+lt], false)
			if !ok {
				return nil, false
			}
			text = append(text, t)
			p.size += len(t)
			p.i += lt
		}
		if p.i+1 >= len(p.b) {
			return nil, false
		}
		switch p.b[p.i+1] {
		case '/':
			p.i += 2
			end, ok := p.name()
			p.spaces()
			if !ok || end != name || !p.skipByte('>') {
				return nil, false
			}
			p.size += 3 + len(name)
			e.text = strings.Join(text, "")
			return e, true
		case '!', '?':
			return nil, false
		}
		kid, ok := p.element(space, depth+1)
		if !ok {
			return nil, false
		}
		e.kids = append(e.kids, kid)
	}
}

// attribute reads name='value', with the name as the decoder hands it on:
// xml:lang in the XML namespace, an unprefixed name in none.
func (p *fastParser) attribute() (xml.Attr, bool) {
	local, ok := p.name()
	if !ok {
		return xml.Attr{}, false
	}
	var at xml.Attr
	if local == "xml" && p.skipByte(':') {
		if local, ok = p.name(); !ok {
			return xml.Attr{}, false
		}
		at.Name.Space = nsXML
	}
	at.Name.Local = local
	p.spaces()
	if !p.skipByte('=') {
		return xml.Attr{}, false
	}
	p.spaces()
	if p.i >= len(p.b) || p.b[p.i] != '\'' && p.b[p.i] != '"' {
		return xml.Attr{}, false
	}
	quote := p.b[p.i]
	end := bytes.IndexByte(p.b[p.i+1:], quote)
	if end < 0 {
		return xml.Attr{}, false
	}
	at.Value, ok = unescapeText(p.b[p.i+1:p.i+1+end], true)
	p.i += end + 2
	return at, ok
}

// name reads an ASCII name without a prefix.
func (p *fastParser) name() (string, bool) {
	start := p.i
	for ; p.i < len(p.b); p.i++ {
		c := p.b[p.i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' ||
			p.i > start && ('0' <= c && c <= '9' || c == '.' || c == '-')) {
			break
		}
	}
	return intern(p.b[start:p.i]), p.i > start
}

// intern returns the names and values that recur in every stanza
// without allocating; a switch, which compares by length first, costs
// less than hashing for a map.
func intern(b []byte) string {
	switch string(b) {
	case "message":
		return "message"
	case "presence":
		return "presence"
	case "body":
		return "body"
	case "x":
		return "x"
	case "item":
		return "item"
	case "status":
		return "status"
	case "id":
		return "id"
	case "to":
		return "to"
	case "from":
		return "from"
	case "type":
		return "type"
	case "by":
		return "by"
	case "xmlns":
		return "xmlns"
	case "lang":
		return "lang"
	case "code":
		return "code"
	case "role":
		return "role"
	case "affiliation":
		return "affiliation"
	case "jid":
		return "jid"
	case "origin-id":
		return "origin-id"
	case "stanza-id":
		return "stanza-id"
	case "occupant-id":
		return "occupant-id"
	case "delay":
		return "delay"
	case "stamp":
		return "stamp"
	case "groupchat":
		return "groupchat"
	case "unavailable":
		return "unavailable"
	case "en":
		return "en"
	case "participant":
		return "participant"
	case "none":
		return "none"
	case nsSID:
		return nsSID
	case nsOccupantID:
		return nsOccupantID
	case nsMUCUser:
		return nsMUCUser
	case nsDelay:
		return nsDelay
	}
	return string(b)
}

// spaces skips spaces, tabs and newlines, and tells whether there were any.
func (p *fastParser) spaces() bool {
	start := p.i
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n') {
		p.i++
	}
	return p.i > start
}

func (p *fastParser) skipByte(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// unescapeText resolves the predefined entities of character data or an
// attribute value (attr), checking every character as the decoder does;
// a character reference it leaves to the decoder.
func unescapeText(raw []byte, attr bool) (string, bool) {
	plain := true
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '&':
			plain = false
			i++
			continue
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && n == 1 || !(r >= 0x80 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000) {
				return "", false
			}
			i += n
			continue
		case c == '<' || c < 0x20 && (attr || c != '\t' && c != '\n'):
			return "", false
		case c == '>' && !attr && i >= 2 && raw[i-1] == ']' && raw[i-2] == ']':
			return "", false
		}
		i++
	}
	if plain {
		return intern(raw), true
	}
	if bytes.Contains(raw, []byte("&#")) {
		return "", false // character references are the decoder's
	}
	return unescapeAttr(string(raw))
}

// appendXML appends e as XML to b, as mellium's encoder writes a stanza
// of a stream in space (a stanza without a namespace is put in it, an
// empty from left out), and
// tells whether it could: e must have an id, and attributes only without
// a namespace or in XML's (xml:lang). Text and attribute values are
// escaped as encoding/xml escapes them, characters XML cannot carry
// replaced, so nothing from a message can become markup.
func (e *element) appendXML(b []byte, space string) ([]byte, bool) {
	if e.get("id") == "" {
		return b, false
	}
	return e.appendXMLIn(b, cmp.Or(e.name.Space, space), true)
}

func (e *element) appendXMLIn(b []byte, space string, top bool) ([]byte, bool) {
	b = append(b, '<')
	b = append(b, e.name.Local...)
	if top || e.name.Space != "" {
		if !top {
			space = e.name.Space
		}
		b = append(b, ` xmlns="`...)
		b = appendEscaped(b, space)
		b = append(b, '"')
	}
	for _, at := range e.attr {
		if top && at.Name == (xml.Name{Local: "from"}) && at.Value == "" {
			continue // as mellium leaves it out
		}
		b = append(b, ' ')
		switch at.Name.Space {
		case "":
		case nsXML:
			b = append(b, "xml:"...)
		default:
			return b, false
		}
		if at.Name.Local == "xmlns" || at.Name.Local == "" {
			return b, false
		}
		b = append(b, at.Name.Local...)
		b = append(b, `="`...)
		b = appendEscaped(b, at.Value)
		b = append(b, '"')
	}
	b = append(b, '>')
	b = appendEscaped(b, e.text)
	for _, k := range e.kids {
		var ok bool
		if b, ok = k.appendXMLIn(b, space, false); !ok {
			return b, false
		}
	}
	b = append(b, "</"...)
	b = append(b, e.name.Local...)
	return append(b, '>'), true
}

// appendEscaped appends s escaped with xml.EscapeText, at once when it
// has nothing to escape.
func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '&' || c == '<' || c == '>' || c == '"' || c == '\'' {
			w := bytes.NewBuffer(b)
			xml.EscapeText(w, []byte(s))
			return w.Bytes()
		}
	}
	return append(b, s...)
}
