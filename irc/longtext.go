package irc

import (
	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
)

// Long messages. The router delivers a room's events in order, and flood
// control paces each connection: a 64 KiB text as 170 lines would hold
// every later message to the channel for minutes. So a message that
// would take more than max_message_lines lines goes out as its first
// lines and a last one that says how much is left, with a link to the
// whole text when there is an http.public_url.

// UseTextLinks implements adapters.TextLinkUser.
func (a *Adapter) UseTextLinks(l adapters.TextLinks) { a.textLinks = l }

// cutLines keeps a message's lines (pieces, as splitText cut them: on
// spaces, else on rune boundaries) within max: the first max-1 and a
// marker naming how many lines were left out, then link when there is
// one. Lines within max are returned as they are.
func cutLines(pieces []string, max int, link string) []string {
	if max < 2 {
		max = 2
	}
	if len(pieces) <= max {
		return pieces
	}
	keep := max - 1
	marker := bridge.CutMarker(len(pieces)-keep, "lines", link)
	return append(pieces[:keep:keep], marker)
}

// cutMessage applies cutLines to the text lines of message id, leaving
// room for its attachments' lines (but never less than cutLines needs).
func (a *Adapter) cutMessage(pieces []string, attachments int, id bridge.EventID) []string {
	limit := a.cfg.MaxMessageLines - attachments
	if len(pieces) <= limit {
		return pieces
	}
	link := ""
	if a.textLinks != nil {
		// Cleaned like any text: nothing in it may end the line.
		link = cleanLine(a.textLinks.TextLink(id))
	}
	return cutLines(pieces, limit, link)
}
