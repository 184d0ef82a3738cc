package matrix

import (
	"context"
	"net/url"
	"strings"

	nethtml "golang.org/x/net/html"
	"golang.org/x/net/html/atom"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/mapping"
)

// Mentions on Matrix are pills, links to https://matrix.to/#/<mxid>
// whose text is the user's display name, and the user ids listed in
// m.mentions, which decide whom a client notifies.

const pillPrefix = "https://matrix.to/#/"

// pillUser is the user a matrix.to link points at ("" when it points at
// no user: a room, an event, another site).
func pillUser(href string) id.UserID {
	rest, ok := strings.CutPrefix(strings.TrimSpace(href), pillPrefix)
	if !ok {
		return ""
	}
	rest, _, _ = strings.Cut(rest, "?")
	if u, err := url.PathUnescape(rest); err == nil {
		rest = u
	}
	uid := id.UserID(rest)
	if _, _, err := uid.ParseAndValidateRelaxed(); err != nil {
		return ""
	}
	return uid
}

// pill is one user pill of a formatted body.
type pill struct {
	user id.UserID
	text string
}

// unpill takes the user pills out of sanitized HTML: each becomes its
// text, which other networks show as it is (a link to matrix.to would
// say nothing there); the pills are returned in order.
func unpill(src string) (string, []pill) {
	if !strings.Contains(src, pillPrefix) {
		return src, nil
	}
	nodes, err := nethtml.ParseFragment(strings.NewReader(src), &nethtml.Node{Type: nethtml.ElementNode, DataAtom: atom.Body, Data: "body"})
	if err != nil {
		return src, nil
	}
	var pills []pill
	var walk func(n *nethtml.Node)
	walk = func(n *nethtml.Node) {
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
		if n.Type != nethtml.ElementNode || n.DataAtom != atom.A {
			return
		}
		for _, at := range n.Attr {
			if at.Key != "href" {
				continue
			}
			if u := pillUser(at.Val); u != "" {
				pills = append(pills, pill{user: u, text: nodeText(n)})
				*n = nethtml.Node{Type: nethtml.TextNode, Data: nodeText(n), Parent: n.Parent, PrevSibling: n.PrevSibling, NextSibling: n.NextSibling}
			}
			return
		}
	}
	root := &nethtml.Node{Type: nethtml.ElementNode, DataAtom: atom.Div, Data: "div"}
	for _, n := range nodes {
		root.AppendChild(n)
	}
	walk(root)
	var b strings.Builder
	for c := root.FirstChild; c != nil; c = c.NextSibling {
		writeNode(&b, c, 0)
	}
	return b.String(), pills
}

func nodeText(n *nethtml.Node) string {
	if n.Type == nethtml.TextNode {
		return n.Data
	}
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		b.WriteString(nodeText(c))
	}
	return b.String()
}

// inboundMentions fills m.Mentions from the pills of its HTML and
// m.mentions of c, and takes the pills out of m.HTML. A ghost's mention
// is of the sender it speaks for; the bot is nobody to mention.
func (a *Adapter) inboundMentions(ctx context.Context, rid id.RoomID, c *event.MessageEventContent, m *bridge.Message) {
	var pills []pill
	m.HTML, pills = unpill(m.HTML)
	if c.Mentions != nil {
		for _, u := range c.Mentions.UserIDs {
			pills = append(pills, pill{user: u})
		}
	}
	seen := map[id.UserID]bool{}
	for _, p := range pills {
		if seen[p.user] || p.user == a.botID {
			continue
		}
		seen[p.user] = true
		mn := bridge.Mention{}
		if p.text != "" && strings.Contains(m.Text, p.text) {
			mn.Text = p.text
		}
		if a.ghosts.isGhost(string(p.user)) {
			s, err := a.ghostSender(ctx, p.user)
			if err != nil {
				continue
			}
			mn.Sender = s
		} else {
			mn.Sender = bridge.Sender{Network: a.name, ID: string(p.user), Name: a.displayName(ctx, rid, p.user), Authenticated: true}
		}
		m.Mentions = append(m.Mentions, mn)
	}
}

// mentionTarget is the Matrix user a mention is of, and the name it has
// in the room: a Matrix user themselves, anyone else their ghost (none
// in relay mode, where no ghost speaks: the name alone).
func (a *Adapter) mentionTarget(ctx context.Context, rid id.RoomID, s bridge.Sender, relay bool) (id.UserID, string) {
	if s.Network == a.name {
		u := id.UserID(s.ID)
		if _, _, err := u.ParseAndValidateRelaxed(); err != nil {
			return "", ""
		}
		return u, a.displayName(ctx, rid, u)
	}
	s = s.Puppet()
	name := mapping.Render(a.template, s)
	if relay {
		return "", name
	}
	return id.NewUserID(a.ghosts.localpart(s), a.cfg.Domain), name
}

// outboundMentions renders m's mentions for the room: each name becomes
// the one the room knows them by, as a pill in the HTML (made from the
// text when m has none), and the users to list in m.mentions.
func (a *Adapter) outboundMentions(ctx context.Context, rid id.RoomID, m *bridge.Message, relay bool) (*bridge.Message, []id.UserID) {
	if len(m.Mentions) == 0 {
		return m, nil
	}
	users := make([]id.UserID, len(m.Mentions))
	names := make([]string, len(m.Mentions))
	var listed []id.UserID
	seen := map[id.UserID]bool{}
	for i, mn := range m.Mentions {
		users[i], names[i] = a.mentionTarget(ctx, rid, mn.Sender, relay)
		if u := users[i]; u != "" && !seen[u] {
			seen[u] = true
			listed = append(listed, u)
		}
	}
	out := *m
	var spans []bridge.MentionSpan
	out.Text, spans = bridge.RenameMentions(m.Text, m.Mentions, names)
	src := m.HTML
	if src == "" && len(spans) > 0 {
		src = textToHTML(m.Text)
	}
	out.HTML = bridge.RenameMentionsHTML(src, m.Mentions, func(i int) string {
		if users[i] == "" {
			return escapeText(names[i])
		}
		return `<a href="` + pillPrefix + escapeAttr(string(users[i])) + `">` + escapeText(names[i]) + `</a>`
	})
	return &out, listed
}
