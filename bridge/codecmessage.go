package bridge

import (
	"strconv"
	"unicode/utf8"
)

// appendMessage appends m as json.Marshal encodes it, byte for byte,
// without reflection: encoding each relayed message for the store that
// way was a twentieth of the CPU of relaying it. It reports false where
// json.Marshal would fail (a time RFC 3339 cannot show).
func appendMessage(b []byte, m *Message) ([]byte, bool) {
	b, ok := appendHeader(append(b, '{'), &m.Header)
	if !ok {
		return nil, false
	}
	b = appendString(append(b, `,"text":`...), m.Text)
	if m.HTML != "" {
		b = appendString(append(b, `,"html":`...), m.HTML)
	}
	if m.Emote {
		b = append(b, `,"emote":true`...)
	}
	if m.Notice {
		b = append(b, `,"notice":true`...)
	}
	if !m.ReplyTo.IsZero() {
		b = appendRef(append(b, `,"reply_to":`...), m.ReplyTo)
	}
	if !m.Thread.IsZero() {
		b = appendRef(append(b, `,"thread":`...), m.Thread)
	}
	if len(m.Attachments) > 0 {
		b = append(b, `,"attachments":[`...)
		for i, a := range m.Attachments {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(append(b, `{"url":`...), a.URL)
			if a.Name != "" {
				b = appendString(append(b, `,"name":`...), a.Name)
			}
			if a.Mime != "" {
				b = appendString(append(b, `,"mime":`...), a.Mime)
			}
			if a.Size != 0 {
				b = strconv.AppendInt(append(b, `,"size":`...), a.Size, 10)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(m.Mentions) > 0 {
		b = append(b, `,"mentions":[`...)
		for i, mn := range m.Mentions {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendSender(append(b, `{"sender":`...), &mn.Sender)
			if mn.Text != "" {
				b = appendString(append(b, `,"text":`...), mn.Text)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}'), true
}

func appendHeader(b []byte, h *Header) ([]byte, bool) {
	b = appendString(append(b, `"id":`...), string(h.ID))
	b = appendString(append(b, `,"origin":{"network":`...), h.Origin.Network)
	b = appendString(append(b, `,"room":`...), h.Origin.Room)
	if h.Origin.RemoteID != "" {
		b = appendString(append(b, `,"remote_id":`...), h.Origin.RemoteID)
	}
	b = appendSender(append(b, `},"sender":`...), &h.Sender)
	b, err := h.Time.AppendText(append(b, `,"ts":"`...)) // as MarshalJSON
	if err != nil {
		return nil, false
	}
	b = append(b, '"')
	if h.To != nil {
		b = appendSender(append(b, `,"to":`...), h.To)
	}
	return b, true
}

func appendSender(b []byte, s *Sender) []byte {
	b = appendString(append(b, `{"network":`...), s.Network)
	b = appendString(append(b, `,"id":`...), s.ID)
	b = appendString(append(b, `,"name":`...), s.Name)
	if s.Mask != "" {
		b = appendString(append(b, `,"mask":`...), s.Mask)
	}
	if s.Person != "" {
		b = appendString(append(b, `,"person":`...), s.Person)
	}
	if s.Home != "" {
		b = appendString(append(b, `,"home":`...), s.Home)
	}
	return append(b, '}')
}

func appendRef(b []byte, r Ref) []byte {
	b = append(b, '{')
	if r.Event != "" {
		b = appendString(append(b, `"event":`...), string(r.Event))
	}
	if r.Remote != "" {
		if r.Event != "" {
			b = append(b, ',')
		}
		b = appendString(append(b, `"remote":`...), r.Remote)
	}
	return append(b, '}')
}

// appendString quotes s as encoding/json does by default: <, > and &
// escaped too, invalid UTF-8 as U+FFFD, and U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(append(b, s[start:i]...), `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(append(b, s[start:i]...), '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(append(b, s[start:]...), '"')
}
