package irc

import (
	"html"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/mapping"
)

// Mentions on IRC are nicks: a client highlights its user when a line
// holds their nick as a word, "bob: hi" above all. Inbound, a word that
// is the nick of a member of the channel mentions them; outbound, a
// mention becomes the nick its person has in the channel.

// nickRune reports whether r may be part of a nick (RFC 2812 letters,
// digits and specials; servers allow more, but these are what clients
// highlight).
func nickRune(r rune) bool {
	return r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("[]\\`_^{|}-", r))
}

// nickWords are the maximal runs of nick characters in text, with their
// byte offsets.
func nickWords(text string) [][2]int {
	var words [][2]int
	start := -1
	for i, r := range text {
		if nickRune(r) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			words = append(words, [2]int{start, i})
			start = -1
		}
	}
	if start >= 0 {
		words = append(words, [2]int{start, len(text)})
	}
	return words
}

// mentionsLocked are the members of r that text names, each once, in
// text order: a puppet's nick is a mention of the sender it speaks for,
// a member with an account one of that account, anyone else of their
// nick. Neither the bot nor the speaker mentions. a.mu must be held.
func (a *Adapter) mentionsLocked(r *room, text, speaker string) []bridge.Mention {
	var out []bridge.Mention
	var seen map[string]bool // made at the first member named
	self := a.info.cm.fold(speaker)
	for _, w := range nickWords(text) {
		word := text[w[0]:w[1]]
		f := a.info.cm.fold(word)
		mem := r.members[f]
		if mem == nil {
			// "[bob]", "bob-": punctuation around a nick.
			word = strings.Trim(word, "[]{}|\\`^-")
			f = a.info.cm.fold(word)
			mem = r.members[f]
		}
		if mem == nil || f == self || seen[f] || (a.bot != nil && a.bot.isMe(mem.nick)) {
			continue
		}
		if seen == nil {
			seen = map[string]bool{}
		}
		seen[f] = true
		out = append(out, bridge.Mention{Sender: a.memberSenderLocked(mem), Text: word})
	}
	return out
}

// memberSenderLocked is who a member of a channel is: the sender one of
// our puppets speaks for, or the IRC user, by account when the server
// told it. a.mu must be held.
func (a *Adapter) memberSenderLocked(mem *member) bridge.Sender {
	if p := a.puppetByNickLocked(mem.nick); p != nil {
		return p.sender
	}
	if mem.account != "" {
		return bridge.Sender{Network: a.name, ID: mem.account, Name: mem.nick, Authenticated: true}
	}
	return bridge.Sender{Network: a.name, ID: mem.nick, Name: mem.nick}
}

// puppetByNickLocked is the live puppet that has nick; a.mu must be held.
func (a *Adapter) puppetByNickLocked(nick string) *puppet {
	f := a.info.cm.fold(nick)
	for _, p := range a.puppets {
		if p.k != nil && !p.retired && a.info.cm.fold(p.k.nick()) == f {
			return p
		}
	}
	return nil
}

// mentionNick is the nick a mention stands for in channel: an IRC
// user's nick there (by account, which need not be a nick, or by nick),
// or the nick of the puppet of anyone else; without a puppet (relay
// mode, or none connected yet) the name the bot would show them by, or
// the nick a puppet would take.
func (a *Adapter) mentionNick(s bridge.Sender, channel string, relay bool) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	cm := a.info.cm
	if s.Network == a.name {
		// An account the network vouched for names its holder first;
		// an id whose authentication did not travel (only a person's
		// account is vouched for at delivery) may be a nick or an
		// account.
		byAccount := func(rooms ...*room) string {
			for _, r := range rooms {
				for _, m := range r.members {
					if m.account != "" && cm.equal(m.account, s.ID) {
						return m.nick
					}
				}
			}
			return ""
		}
		r := a.roomLocked(channel)
		if r != nil && s.Authenticated {
			if nick := byAccount(r); nick != "" {
				return nick
			}
		}
		if r != nil {
			if m := r.members[cm.fold(s.ID)]; m != nil {
				return m.nick
			}
			if nick := byAccount(r); nick != "" {
				return nick
			}
		}
		if nick := byAccount(slices.Collect(maps.Values(a.rooms))...); nick != "" {
			return nick
		}
		return s.ID
	}
	s = s.Puppet()
	if p := a.puppets[puppetKey(s)]; p != nil && p.k != nil && !p.retired {
		if nick := p.k.nick(); nick != "" {
			return nick
		}
	}
	if relay || a.mode != "puppet" {
		return relayName(s)
	}
	return mapping.IRCNick(mapping.Render(a.template, s), a.info.nickLen, s)
}

// withMentions is m with each mention's name replaced by the nick it has
// in channel; a mention the text does not name (a Matrix reply's
// m.mentions) leads the text as "nick: ", as IRC users address someone,
// unless the text names them already or is an action. quoted says the
// text starts with a reply's fallback quote (see bridge.replyFallback):
// the quote stays as it is, and a lead goes after it.
func (a *Adapter) withMentions(m *bridge.Message, channel string, relay, quoted bool) *bridge.Message {
	if len(m.Mentions) == 0 {
		return m
	}
	nicks := make([]string, len(m.Mentions))
	for i, mn := range m.Mentions {
		nicks[i] = cleanLine(stripCodes(a.mentionNick(mn.Sender, channel, relay)))
	}
	quote, text := splitQuote(m.Text, "\n", quoted)
	htmlQuote, htm := splitQuote(m.HTML, "</blockquote>", quoted)
	text, spans := bridge.RenameMentions(text, m.Mentions, nicks)
	htm = bridge.RenameMentionsHTML(htm, m.Mentions, func(i int) string { return html.EscapeString(nicks[i]) })
	named := make([]bool, len(m.Mentions))
	for _, s := range spans {
		named[s.Index] = true
	}
	var lead []string
	for i, nick := range nicks {
		if named[i] || nick == "" || m.Emote || containsNick(text, nick, a.casemap()) || slices.Contains(lead, nick) {
			continue
		}
		lead = append(lead, nick)
	}
	if len(lead) > 0 {
		prefix := strings.Join(lead, ", ") + ": "
		text = prefix + text
		if htm != "" {
			htm = html.EscapeString(prefix) + htm
		}
	}
	out := *m
	out.Text = quote + text
	if m.HTML != "" {
		out.HTML = htmlQuote + htm
	}
	return &out
}

// splitQuote cuts a reply's fallback quote, up to and with end, off s.
func splitQuote(s, end string, quoted bool) (quote, rest string) {
	if quoted && (strings.HasPrefix(s, "> ") || strings.HasPrefix(s, "<blockquote>")) {
		if i := strings.Index(s, end); i >= 0 {
			return s[:i+len(end)], s[i+len(end):]
		}
	}
	return "", s
}

// containsNick reports whether text holds nick as a word.
func containsNick(text, nick string, cm caseMapping) bool {
	for _, w := range nickWords(text) {
		if cm.equal(text[w[0]:w[1]], nick) {
			return true
		}
	}
	return false
}
