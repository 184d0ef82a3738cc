package xmpp

import (
	"html"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"mellium.im/xmpp/jid"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/mapping"
)

// Mentions in a MUC are occupant nicks in the text, which clients
// highlight, and XEP-0372 references of type mention to the occupant
// (xmpp:room@muc/nick), whose begin and end count code points of the
// body, end excluded.

const nsReference = "urn:xmpp:reference:0"

// referenceJID reads the JID of an xmpp: URI.
func referenceJID(uri string) (jid.JID, bool) {
	rest, ok := strings.CutPrefix(uri, "xmpp:")
	if !ok {
		return jid.JID{}, false
	}
	rest, _, _ = strings.Cut(rest, "?")
	if u, err := url.PathUnescape(rest); err == nil {
		rest = u
	}
	j, err := jid.Parse(rest)
	return j, err == nil
}

// referenceURI is the xmpp: URI of an occupant.
func referenceURI(r *room, nick string) string {
	return "xmpp:" + r.jid.String() + "/" + url.PathEscape(nick)
}

// runeSlice is s[begin:end] in code points ("" when out of range).
func runeSlice(s string, begin, end int) string {
	if begin < 0 || end <= begin {
		return ""
	}
	start, n := -1, 0
	for i := range s {
		if n == begin {
			start = i
		}
		if n == end {
			if start < 0 {
				return ""
			}
			return s[start:i]
		}
		n++
	}
	if n == end && start >= 0 {
		return s[start:]
	}
	return ""
}

// occupantMentionLocked is who an occupant of r is, mentioned: the
// sender a puppet of ours speaks for, a person's account for their own
// session, the occupant otherwise; false for the bot. a.mu is held.
func (a *Adapter) occupantMentionLocked(r *room, nick string) (bridge.Sender, bool) {
	if p := r.puppetNicks[nick]; p != nil {
		return p.sender, true
	}
	if p := r.personalNicks[nick]; p != nil {
		return bridge.Sender{Network: a.name, ID: p.jid.String(), Name: nick, Authenticated: true}, true
	}
	o := r.occupants[nick]
	if o == nil || o.own || nick == r.nick {
		return bridge.Sender{}, false
	}
	return a.occupantSender(r, o), true
}

// mentionsLocked are the people a room message mentions: those its
// mention references point at, then the occupants whose nick stands in
// the text as a word (any case), each once; the speaker is not one.
// a.mu is held.
func (a *Adapter) mentionsLocked(r *room, st *stanza, text, speaker string) []bridge.Mention {
	var out []bridge.Mention
	seen := []string{speaker} // few: no map for each message
	add := func(nick, said string) {
		if slices.Contains(seen, nick) {
			return
		}
		if s, ok := a.occupantMentionLocked(r, nick); ok {
			seen = append(seen, nick)
			if !strings.Contains(text, said) {
				said = ""
			}
			out = append(out, bridge.Mention{Sender: s, Text: said})
		}
	}
	for _, ref := range st.el.children(nsReference, "reference") {
		if ref.get("type") != "mention" {
			continue
		}
		j, ok := referenceJID(ref.get("uri"))
		if !ok || !j.Bare().Equal(r.jid) || j.Resourcepart() == "" {
			continue
		}
		begin, err1 := strconv.Atoi(ref.get("begin"))
		end, err2 := strconv.Atoi(ref.get("end"))
		said := ""
		if err1 == nil && err2 == nil {
			said = runeSlice(st.body, begin, end)
		}
		add(j.Resourcepart(), said)
	}
	lower := strings.ToLower(text)
	var nicks []string // the occupants whose nick the text may hold
	for nick := range r.occupants {
		if nick != "" && !slices.Contains(seen, nick) && strings.Contains(lower, strings.ToLower(nick)) {
			nicks = append(nicks, nick)
		}
	}
	// Longer nicks first: "bob smith" is named, not "bob" within it.
	sort.Slice(nicks, func(i, j int) bool {
		return len(nicks[i]) > len(nicks[j]) || len(nicks[i]) == len(nicks[j]) && nicks[i] < nicks[j]
	})
	var taken [][2]int
	for _, nick := range nicks {
		if slices.Contains(seen, nick) {
			continue
		}
		if start, end, ok := findFold(text, lower, nick, taken); ok {
			taken = append(taken, [2]int{start, end})
			add(nick, text[start:end])
		}
	}
	return out
}

// findFold finds nick in text as a word, in any case, outside taken;
// lower is strings.ToLower(text), whose offsets match text's where the
// case mapping keeps lengths (and the match is checked against text).
func findFold(text, lower, nick string, taken [][2]int) (int, int, bool) {
	ln := strings.ToLower(nick)
	for from := 0; from < len(lower); {
		j := strings.Index(lower[from:], ln)
		if j < 0 {
			return 0, 0, false
		}
		start, end := from+j, from+j+len(ln)
		free := true
		for _, t := range taken {
			if start < t[1] && t[0] < end {
				free = false
			}
		}
		if free && end <= len(text) && strings.EqualFold(text[start:end], nick) && bridge.IsWordAt(text, start, end) {
			return start, end, true
		}
		_, size := utf8.DecodeRuneInString(lower[start:])
		from = start + size
	}
	return 0, 0, false
}

// mentionNick is the nick a mention has in r: the occupant with that
// real JID or occupant JID, or the nick of the puppet of anyone else;
// without one, the name relaying shows, or the nick a puppet would ask
// for.
func (a *Adapter) mentionNick(r *room, s bridge.Sender, relay bool) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s.Network == a.name {
		if j, err := jid.Parse(s.ID); err == nil && j.Bare().Equal(r.jid) {
			return j.Resourcepart()
		}
		for nick, p := range r.personalNicks {
			if p.jid.String() == s.ID {
				return nick
			}
		}
		for nick, o := range r.occupants {
			if o.jid != "" && o.jid == s.ID {
				return nick
			}
		}
		if s.Name != "" {
			return s.Name
		}
		return s.ID
	}
	s = s.Puppet()
	if p := a.puppets[senderKey(s)]; p != nil {
		if m := p.rooms[r.key]; m != nil && m.joined && m.nick != "" {
			return m.nick
		}
	}
	if relay || a.relay {
		return s.Shown(bridge.RelayDelims)
	}
	return puppetNick(mapping.Render(a.template, s), s)
}

// withMentions is m with each mention's name replaced by its nick in r,
// and the nicks (by mention).
func (a *Adapter) withMentions(r *room, m *bridge.Message, relay bool) (*bridge.Message, []string) {
	if len(m.Mentions) == 0 {
		return m, nil
	}
	nicks := make([]string, len(m.Mentions))
	for i, mn := range m.Mentions {
		nicks[i] = bridge.CleanText(a.mentionNick(r, mn.Sender, relay))
	}
	out := *m
	out.Text, _ = bridge.RenameMentions(m.Text, m.Mentions, nicks)
	out.HTML = bridge.RenameMentionsHTML(m.HTML, m.Mentions, func(i int) string { return html.EscapeString(nicks[i]) })
	return &out, nicks
}

// references are the mention references of nicks in body: where each
// first stands as a word from byte from on (past a reply's quote).
func references(r *room, body string, from int, nicks []string) []*element {
	ms := make([]bridge.Mention, len(nicks))
	for i, n := range nicks {
		ms[i].Text = n
	}
	var out []*element
	for _, sp := range bridge.FindMentions(body[from:], ms) {
		begin := utf8.RuneCountInString(body[:from+sp.Start])
		end := begin + utf8.RuneCountInString(body[from+sp.Start:from+sp.End])
		out = append(out, el(nsReference, "reference", "type", "mention", "uri", referenceURI(r, nicks[sp.Index]),
			"begin", strconv.Itoa(begin), "end", strconv.Itoa(end)))
	}
	return out
}
