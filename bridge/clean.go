package bridge

import (
	"strings"
	"unicode/utf8"
)

// CleanText repairs text from any network so every other network can carry
// it: invalid UTF-8 is replaced, CRLF and lone CR become LF, and control
// characters other than tab and newline (NUL among them) are removed.
func CleanText(s string) string {
	if isClean(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\r':
			return '\n'
		case r == '\n' || r == '\t':
			return r
		case r < 0x20 || r == 0x7f:
			return -1
		}
		return r
	}, s)
}

func isClean(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return utf8.ValidString(s[i:])
		}
		if (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// Clean applies CleanText to every text field of an event.
func Clean(ev Event) {
	h := ev.Head()
	h.Sender.Name = CleanText(h.Sender.Name)
	switch e := ev.(type) {
	case *Message:
		e.Text, e.HTML = CleanText(e.Text), CleanText(e.HTML)
		for i := range e.Attachments {
			e.Attachments[i].Name = CleanText(e.Attachments[i].Name)
		}
	case *Edit:
		e.Text, e.HTML = CleanText(e.Text), CleanText(e.HTML)
	case *Reaction:
		e.Key = CleanText(e.Key)
	case *Leave:
		e.Reason = CleanText(e.Reason)
	case *Rename:
		e.Previous = CleanText(e.Previous)
	case *Topic:
		e.Topic = CleanText(e.Topic)
	case *Presence:
		e.Message = CleanText(e.Message)
	}
}
