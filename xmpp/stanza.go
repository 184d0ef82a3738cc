package xmpp

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"mellium.im/xmpp/jid"

	"github.com/switchboard-chat/switchboard/bridge"
)

// Namespaces of the extensions the adapter reads and writes.
const (
	nsMUC        = "http://jabber.org/protocol/muc"
	nsMUCUser    = "http://jabber.org/protocol/muc#user"
	nsDelay      = "urn:xmpp:delay"
	nsSID        = "urn:xmpp:sid:0"
	nsCorrect    = "urn:xmpp:message-correct:0"
	nsReply      = "urn:xmpp:reply:0"
	nsFallback   = "urn:xmpp:fallback:0"
	nsReactions  = "urn:xmpp:reactions:0"
	nsRetract    = "urn:xmpp:message-retract:1"
	nsRetract0   = "urn:xmpp:message-retract:0"
	nsFasten     = "urn:xmpp:fasten:0"
	nsModerate   = "urn:xmpp:message-moderate:1"
	nsModerate0  = "urn:xmpp:message-moderate:0"
	nsChatStates = "http://jabber.org/protocol/chatstates"
	nsOOB        = "jabber:x:oob"
	nsHints      = "urn:xmpp:hints"
	nsStanzas    = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsPing       = "urn:xmpp:ping"
	nsDiscoInfo  = "http://jabber.org/protocol/disco#info"
	nsDiscoItems = "http://jabber.org/protocol/disco#items"
	nsVersion    = "jabber:iq:version"
	nsOccupantID = "urn:xmpp:occupant-id:0"
	nsReceipts   = "urn:xmpp:receipts"
	nsStyling    = "urn:xmpp:styling:0"
	nsXML        = "http://www.w3.org/XML/1998/namespace"
)

// element is a parsed XML element, and what outbound stanzas are built
// from.
type element struct {
	name xml.Name
	attr []xml.Attr
	kids []*element
	text string
}

// el builds an element with attributes given as name, value pairs (empty
// values are left out).
func el(space, local string, attrs ...string) *element {
	e := &element{name: xml.Name{Space: space, Local: local}}
	for i := 0; i+1 < len(attrs); i += 2 {
		if attrs[i+1] != "" {
			e.attr = append(e.attr, xml.Attr{Name: xml.Name{Local: attrs[i]}, Value: attrs[i+1]})
		}
	}
	return e
}

// add appends children and returns e.
func (e *element) add(kids ...*element) *element {
	for _, k := range kids {
		if k != nil {
			e.kids = append(e.kids, k)
		}
	}
	return e
}

// withText sets e's text and returns e.
func (e *element) withText(s string) *element { e.text = s; return e }

// get is the value of the attribute with this local name and no
// namespace.
func (e *element) get(local string) string {
	if e == nil {
		return ""
	}
	for _, a := range e.attr {
		if a.Name.Local == local && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

// child is the first child with this namespace and local name.
func (e *element) child(space, local string) *element {
	if e == nil {
		return nil
	}
	for _, k := range e.kids {
		if k.name.Local == local && k.name.Space == space {
			return k
		}
	}
	return nil
}

func (e *element) children(space, local string) []*element {
	if e == nil {
		return nil
	}
	var out []*element
	for _, k := range e.kids {
		if k.name.Local == local && k.name.Space == space {
			out = append(out, k)
		}
	}
	return out
}

// tokens lists e as XML tokens: an encoder escapes text and attribute
// values, so nothing from a message can become markup.
func (e *element) tokens() []xml.Token {
	var out []xml.Token
	var walk func(*element)
	walk = func(e *element) {
		start := xml.StartElement{Name: e.name, Attr: e.attr}
		out = append(out, start)
		if e.text != "" {
			out = append(out, xml.CharData(e.text))
		}
		for _, k := range e.kids {
			walk(k)
		}
		out = append(out, start.End())
	}
	walk(e)
	return out
}

// tokenReader serves a fixed list of tokens.
type tokenReader struct {
	toks []xml.Token
	i    int
}

func (r *tokenReader) Token() (xml.Token, error) {
	if r.i >= len(r.toks) {
		return nil, io.EOF
	}
	t := r.toks[r.i]
	r.i++
	return t, nil
}

func (e *element) reader() xml.TokenReader { return &tokenReader{toks: e.tokens()} }

// encodedSize is the size of e written as XML.
func (e *element) encodedSize() int {
	var n countWriter
	enc := xml.NewEncoder(&n)
	for _, t := range e.tokens() {
		if err := enc.EncodeToken(t); err != nil {
			return int(^uint(0) >> 1)
		}
	}
	enc.Flush()
	return int(n)
}

// sizeBound is at least encodedSize, without encoding: a character
// escapes to at most six bytes (&quot;), and a name in a namespace costs
// at most its namespace escaped in a declaration and once more as a
// prefix. Nearly every stanza is far below the limit, and encoding
// one only to measure it was a fifth of sending it.
func (e *element) sizeBound() int {
	name := func(n xml.Name) int { return len(n.Local) + 8*len(n.Space) + 32 }
	n := 2*name(e.name) + 6*len(e.text) + 8
	for _, a := range e.attr {
		n += name(a.Name) + 6*len(a.Value) + 8
	}
	for _, k := range e.kids {
		n += k.sizeBound()
	}
	return n
}

type countWriter int

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

// String renders e as XML, for logs and tests.
func (e *element) String() string {
	var b strings.Builder
	enc := xml.NewEncoder(&b)
	for _, t := range e.tokens() {
		if err := enc.EncodeToken(t); err != nil {
			return "<" + err.Error() + ">"
		}
	}
	enc.Flush()
	return b.String()
}

var (
	errTooLarge = errors.New("stanza too large")
	errTooDeep  = errors.New("stanza nested too deeply")
)

// maxDepth bounds how deeply a stanza nests: no extension goes near it.
const maxDepth = 32

// readElement reads the element start opens from r, counting its size
// (as the XML it came from, roughly) and giving up with errTooLarge once
// it is over limit. It keeps no more than limit bytes of it.
func readElement(r xml.TokenReader, start xml.StartElement, limit int) (*element, error) {
	size := tokenSize(start)
	root := &element{name: start.Name, attr: copyAttrs(start.Attr)}
	stack := []*element{root}
	for len(stack) > 0 {
		if size > limit {
			return nil, errTooLarge
		}
		tok, err := r.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		size += tokenSize(tok)
		top := stack[len(stack)-1]
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= maxDepth {
				return nil, errTooDeep
			}
			k := &element{name: t.Name, attr: copyAttrs(t.Attr)}
			top.kids = append(top.kids, k)
			stack = append(stack, k)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if size <= limit {
				top.text += string(t)
			}
		}
	}
	return root, nil
}

func copyAttrs(as []xml.Attr) []xml.Attr {
	if len(as) == 0 {
		return nil
	}
	out := make([]xml.Attr, 0, len(as))
	for _, a := range as {
		// Namespace declarations are resolved into names already.
		if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
			continue
		}
		out = append(out, a)
	}
	return out
}

// tokenSize estimates a token's size as XML.
func tokenSize(tok xml.Token) int {
	switch t := tok.(type) {
	case xml.StartElement:
		n := 2 + len(t.Name.Local)
		for _, a := range t.Attr {
			n += 4 + len(a.Name.Local) + len(a.Name.Space) + len(a.Value)
		}
		return n
	case xml.EndElement:
		return 3 + len(t.Name.Local)
	case xml.CharData:
		return len(t)
	case xml.Comment:
		return 7 + len(t)
	case xml.ProcInst:
		return 4 + len(t.Target) + len(t.Inst)
	case xml.Directive:
		return 3 + len(t)
	}
	return 0
}

// stanza is an inbound stanza with what the adapter uses of it parsed.
type stanza struct {
	kind     string // message, presence, iq
	typ, id  string
	from, to jid.JID
	el       *element

	// message
	body        string
	hasBody     bool
	subject     string
	hasSubject  bool
	delay       time.Time
	stanzaIDs   []stanzaID
	originID    string
	replace     string // XEP-0308: the id of the corrected message
	reply       *replyRef
	reactions   *reactionSet
	retract     string // XEP-0424 v1: the id of the retracted message
	retractOld  string // XEP-0424 v0 (through XEP-0422 fastening)
	moderation  *moderation
	fallbacks   []fallback
	chatState   string
	oob         []bridge.Attachment
	wantReceipt bool
	occupantID  string
	err         *stanzaError

	// presence
	show, status string
	muc          *mucUser
	photo        string // XEP-0153 avatar hash ("" for none), when hasPhoto
	hasPhoto     bool

	// iq
	payload *element
}

type stanzaID struct{ id, by string }

// moderation is a room's announcement that a moderator retracted a
// message (XEP-0425): the current form (a retraction carrying
// <moderated/>) or the older one, fastened, that Prosody's
// mod_muc_moderation sends.
type moderation struct {
	target     string // the stanza-id of the retracted message
	by         string // the moderator's occupant JID, when the room says
	occupantID string // the moderator's XEP-0421 id, when the room says
}

type replyRef struct{ to, id string }

type reactionSet struct {
	id   string
	keys []string
}

// fallback marks part of the body (or all of it, with no ranges) as a
// fallback for an extension the receiver may not support.
type fallback struct {
	forNS  string
	ranges [][2]int // rune offsets [start, end) in the body
}

type stanzaError struct {
	typ, condition, text string
}

func (e *stanzaError) Error() string {
	if e.text != "" {
		return e.condition + ": " + e.text
	}
	return e.condition
}

// mucUser is the <x xmlns='...muc#user'/> of a room presence.
type mucUser struct {
	codes   []int
	item    mucItem
	destroy bool
}

type mucItem struct {
	affiliation, role, jid, nick, reason string
	actor                                string // the nick of who made the change
}

func (m *mucUser) has(code int) bool {
	if m == nil {
		return false
	}
	for _, c := range m.codes {
		if c == code {
			return true
		}
	}
	return false
}

// Limits on what a parsed stanza keeps.
const (
	maxReactions   = 32
	maxReactionLen = 64
	maxAttachments = 8
)

// parseStanza reads what the adapter needs from a stanza. It fails only
// when the stanza cannot be acted on at all (unknown kind, bad
// addresses); unknown or malformed extensions are ignored.
func parseStanza(e *element) (*stanza, error) {
	s := &stanza{kind: e.name.Local, typ: e.get("type"), id: e.get("id"), el: e}
	switch s.kind {
	case "message", "presence", "iq":
	default:
		return nil, fmt.Errorf("not a stanza: <%s>", s.kind)
	}
	var err error
	if f := e.get("from"); f != "" {
		if s.from, err = parseJID(f); err != nil {
			return nil, fmt.Errorf("bad from: %w", err)
		}
	}
	if t := e.get("to"); t != "" {
		if s.to, err = parseJID(t); err != nil {
			return nil, fmt.Errorf("bad to: %w", err)
		}
	}
	ns := e.name.Space
	if x := e.child(ns, "error"); x != nil {
		s.err = parseError(x)
	}
	if x := e.child(nsOccupantID, "occupant-id"); x != nil {
		s.occupantID = x.get("id")
	}
	switch s.kind {
	case "message":
		parseMessage(s, ns)
	case "presence":
		parsePresence(s, ns)
	case "iq":
		for _, k := range e.kids {
			if k.name.Local != "error" {
				s.payload = k
				break
			}
		}
	}
	return s, nil
}

func parseError(x *element) *stanzaError {
	se := &stanzaError{typ: x.get("type")}
	for _, k := range x.kids {
		if k.name.Space != nsStanzas {
			continue
		}
		if k.name.Local == "text" {
			se.text = k.text
		} else if se.condition == "" {
			se.condition = k.name.Local
		}
	}
	if se.condition == "" {
		se.condition = "undefined-condition"
	}
	return se
}

func parseMessage(s *stanza, ns string) {
	e := s.el
	// One body per language is allowed; prefer the one without xml:lang.
	for i, b := range e.children(ns, "body") {
		if i == 0 || attrNS(b, nsXML, "lang") == "" {
			s.body, s.hasBody = b.text, true
			if attrNS(b, nsXML, "lang") == "" {
				break
			}
		}
	}
	if sub := e.child(ns, "subject"); sub != nil {
		s.subject, s.hasSubject = sub.text, true
	}
	for _, k := range e.kids {
		switch k.name.Space {
		case nsDelay:
			if k.name.Local == "delay" {
				if t, err := time.Parse(time.RFC3339Nano, k.get("stamp")); err == nil {
					s.delay = t
				}
			}
		case nsSID:
			switch k.name.Local {
			case "stanza-id":
				if id := k.get("id"); id != "" {
					s.stanzaIDs = append(s.stanzaIDs, stanzaID{id: id, by: k.get("by")})
				}
			case "origin-id":
				s.originID = k.get("id")
			}
		case nsCorrect:
			if k.name.Local == "replace" {
				s.replace = k.get("id")
			}
		case nsReply:
			if k.name.Local == "reply" && k.get("id") != "" {
				s.reply = &replyRef{to: k.get("to"), id: k.get("id")}
			}
		case nsReactions:
			if k.name.Local == "reactions" && k.get("id") != "" {
				rs := &reactionSet{id: k.get("id"), keys: []string{}}
				for _, r := range k.children(nsReactions, "reaction") {
					key := strings.TrimSpace(bridge.CleanText(r.text))
					if key == "" || len(key) > maxReactionLen || contains(rs.keys, key) {
						continue
					}
					if len(rs.keys) < maxReactions {
						rs.keys = append(rs.keys, key)
					}
				}
				s.reactions = rs
			}
		case nsRetract:
			if k.name.Local == "retract" {
				s.retract = k.get("id")
				if m := k.child(nsModerate, "moderated"); m != nil {
					s.moderation = moderatedBy(s.retract, m)
				}
			}
		case nsFasten:
			if k.name.Local == "apply-to" && k.child(nsRetract0, "retract") != nil {
				s.retractOld = k.get("id")
			}
			if m := k.child(nsModerate0, "moderated"); k.name.Local == "apply-to" && m != nil && m.child(nsRetract0, "retract") != nil {
				s.moderation = moderatedBy(k.get("id"), m)
			}
		case nsFallback:
			if k.name.Local == "fallback" {
				s.fallbacks = append(s.fallbacks, parseFallback(k))
			}
		case nsChatStates:
			switch k.name.Local {
			case "active", "composing", "paused", "inactive", "gone":
				s.chatState = k.name.Local
			}
		case nsOOB:
			if k.name.Local == "x" && len(s.oob) < maxAttachments {
				if u := strings.TrimSpace(k.child(nsOOB, "url").textOr("")); isWebURL(u) {
					s.oob = append(s.oob, bridge.Attachment{URL: u, Name: strings.TrimSpace(k.child(nsOOB, "desc").textOr(""))})
				}
			}
		case nsReceipts:
			if k.name.Local == "request" {
				s.wantReceipt = true
			}
		}
	}
}

func moderatedBy(target string, m *element) *moderation {
	if target == "" {
		return nil
	}
	mod := &moderation{target: target, by: m.get("by")}
	if o := m.child(nsOccupantID, "occupant-id"); o != nil {
		mod.occupantID = o.get("id")
	}
	return mod
}

func (e *element) textOr(def string) string {
	if e == nil {
		return def
	}
	return e.text
}

func attrNS(e *element, space, local string) string {
	for _, a := range e.attr {
		if a.Name.Local == local && a.Name.Space == space {
			return a.Value
		}
	}
	return ""
}

func parseFallback(k *element) fallback {
	f := fallback{forNS: k.get("for")}
	for _, b := range k.children(nsFallback, "body") {
		start, err1 := strconv.Atoi(b.get("start"))
		end, err2 := strconv.Atoi(b.get("end"))
		if b.get("start") == "" && b.get("end") == "" {
			f.ranges = append(f.ranges, [2]int{0, -1}) // the whole body
			continue
		}
		if err1 != nil || err2 != nil || start < 0 || end < start {
			continue
		}
		f.ranges = append(f.ranges, [2]int{start, end})
	}
	return f
}

func parsePresence(s *stanza, ns string) {
	e := s.el
	s.show = strings.TrimSpace(e.child(ns, "show").textOr(""))
	s.status = e.child(ns, "status").textOr("")
	if x := e.child(nsMUCUser, "x"); x != nil {
		m := &mucUser{}
		for _, st := range x.children(nsMUCUser, "status") {
			if c, err := strconv.Atoi(st.get("code")); err == nil && len(m.codes) < 16 {
				m.codes = append(m.codes, c)
			}
		}
		if it := x.child(nsMUCUser, "item"); it != nil {
			m.item = mucItem{
				affiliation: it.get("affiliation"),
				role:        it.get("role"),
				jid:         it.get("jid"),
				nick:        it.get("nick"),
				reason:      it.child(nsMUCUser, "reason").textOr(""),
			}
			if ac := it.child(nsMUCUser, "actor"); ac != nil {
				m.item.actor = ac.get("nick")
			}
		}
		m.destroy = x.child(nsMUCUser, "destroy") != nil
		s.muc = m
	}
	s.photo, s.hasPhoto = parsePhoto(e)
}

// stanzaIDBy is the stanza-id that by (a room, or our own server) gave
// the stanza; ids claimed by anyone else are not to be trusted.
func (s *stanza) stanzaIDBy(by jid.JID) string {
	for _, sid := range s.stanzaIDs {
		if j, err := parseJID(sid.by); err == nil && j.Equal(by) {
			return sid.id
		}
	}
	return ""
}

// text is the body without the parts marked as fallbacks for the given
// extensions (a reply's quote), repaired to clean UTF-8.
func (s *stanza) text(strip ...string) string {
	body := bridge.CleanText(s.body)
	runes := []rune(body)
	cut := make([]bool, len(runes))
	any := false
	for _, f := range s.fallbacks {
		if !contains(strip, f.forNS) {
			continue
		}
		for _, r := range f.ranges {
			start, end := r[0], r[1]
			if end < 0 {
				end = len(runes)
			}
			if start > len(runes) || end > len(runes) {
				continue // does not fit this body: not for it
			}
			for i := start; i < end; i++ {
				cut[i], any = true, true
			}
		}
	}
	if !any {
		return body
	}
	var b strings.Builder
	for i, r := range runes {
		if !cut[i] {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// wholeBodyFallback reports whether the whole body is a fallback for ns.
func (s *stanza) wholeBodyFallback(ns string) bool {
	for _, f := range s.fallbacks {
		if f.forNS != ns {
			continue
		}
		if len(f.ranges) == 0 {
			return true
		}
		for _, r := range f.ranges {
			if r[0] == 0 && (r[1] < 0 || r[1] >= utf8.RuneCountInString(s.body)) {
				return true
			}
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func isWebURL(u string) bool {
	return (strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://")) && len(u) < 4096 &&
		!strings.ContainsAny(u, " \t\r\n\x00")
}
