package bridge

import (
	"html"
	"strings"
	"unicode"
	"unicode/utf8"
)

// excerptRunes is how much of a message a quote shows.
const excerptRunes = 40

// Excerpt shortens text to its first line and about n characters, cut at
// a word boundary, with "…" when anything was cut. An excerpt is its own
// excerpt: retention keeps a message's quote as its text (RemoveContent),
// and the quote of it must still read the same.
func Excerpt(text string, n int) string {
	text = strings.TrimSpace(text)
	if short, ok := strings.CutSuffix(text, "…"); ok && !strings.ContainsAny(short, "\r\n") && utf8.RuneCountInString(short) <= n {
		return text
	}
	cut := false
	if i := strings.IndexAny(text, "\r\n"); i >= 0 {
		text, cut = strings.TrimSpace(text[:i]), true
	}
	if utf8.RuneCountInString(text) > n {
		end, count := len(text), 0
		for i := range text {
			if count == n {
				end = i
				break
			}
			count++
		}
		short := text[:end]
		if sp := strings.LastIndexFunc(short, unicode.IsSpace); sp > end/2 {
			short = short[:sp]
		}
		text, cut = strings.TrimRightFunc(short, unicode.IsSpace), true
	}
	if cut {
		text += "…"
	}
	return text
}

// ReplyFallback is a reply for a network without native replies: the
// quoted message on a line of its own (QuoteLine), then the reply.
func ReplyFallback(m *Message, q *Quote) *Message {
	out := *m
	name := ShownName(q.SenderName, QuoteDelims)
	out.Text = QuoteLine(q) + "\n" + m.Text
	if m.HTML != "" {
		out.HTML = "<blockquote>" + html.EscapeString(name+": "+q.Text) + "</blockquote>" + m.HTML
	}
	return &out
}

// QuoteLine is the line ReplyFallback puts before the reply: "> name:
// first words…". An adapter that carries the reply natively and sends
// this line along, for clients that cannot show it (IRC's +draft/reply),
// sends the same line.
func QuoteLine(q *Quote) string {
	return "> " + ShownName(q.SenderName, QuoteDelims) + ": " + q.Text
}

// editFallback is a correction for a network without edits, in the
// "* corrected text" convention.
func editFallback(e *Edit) *Message {
	m := &Message{Header: e.Header, Text: "* " + e.Text}
	if e.HTML != "" {
		m.HTML = "* " + e.HTML
	}
	return m
}

// ReactionFallback is an action line: "* name reacted 👍 to "first
// words…"", for networks without reactions, and for clients of a network
// that cannot show the native one (see the IRC adapter's tags_only).
func ReactionFallback(r *Reaction, q *Quote) *Message {
	text := "reacted " + r.Key
	if q != nil && q.Text != "" {
		text += ` to "` + q.Text + `"`
	}
	return &Message{Header: r.Header, Text: text, Emote: true}
}

// topicFallback announces a topic change as an action line.
func topicFallback(t *Topic) *Message {
	return &Message{Header: t.Header, Text: "changed the topic to: " + t.Topic, Emote: true}
}
