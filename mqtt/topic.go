package mqtt

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Topic layout of a room R:
//
//	R/in/<device>                     devices publish here; we subscribe R/in/+
//	R/out/<origin network>/<sender>   we publish every bridged event here
//
// We never publish under R/in/, so our own traffic cannot come back to us.
const (
	inSegment  = "/in/"
	outSegment = "/out/"
)

// EscapeLevel turns s into a single topic level that is safe to publish to
// and that no two distinct strings share: '%', '/', '+', '#', control
// characters, Unicode noncharacters and invalid UTF-8 bytes are
// percent-encoded byte by byte, and the empty string becomes "%" (which no
// non-empty input produces, since a literal '%' is always followed by two
// hex digits). Brokers such as Mosquitto disconnect a client that publishes
// to a topic containing control characters or noncharacters, which would
// turn one odd IRC nick into a reconnect loop; hence the wide escaping.
// UnescapeLevel reverses it.
func EscapeLevel(s string) string {
	if s == "" {
		return "%"
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r == '%' || !topicRune(r) {
			for _, c := range []byte(s[i : i+size]) {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// UnescapeLevel is the inverse of EscapeLevel.
func UnescapeLevel(s string) (string, error) {
	if s == "%" {
		return "", nil
	}
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) || unhex(s[i+1]) < 0 || unhex(s[i+2]) < 0 {
			return "", fmt.Errorf("bad escape at byte %d of topic level", i)
		}
		b.WriteByte(byte(unhex(s[i+1])<<4 | unhex(s[i+2])))
		i += 2
	}
	return b.String(), nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// topicRune reports whether r may appear unescaped in a topic level. It
// follows what Mosquitto accepts (MQTT 3.1.1 §1.5.3 plus its refusal of
// control characters and noncharacters), minus the level separator and the
// wildcards.
func topicRune(r rune) bool {
	switch {
	case r == '/' || r == '+' || r == '#':
		return false
	case r < 0x20 || (0x7f <= r && r <= 0x9f):
		return false
	case 0xfdd0 <= r && r <= 0xfdef, r&0xfffe == 0xfffe:
		return false
	case 0xd800 <= r && r <= 0xdfff, r > utf8.MaxRune:
		return false
	}
	return true
}

// ValidRoom checks that room can serve as a topic root: publishing under
// it and subscribing to R/in/+ must be legal and must not reach the
// broker's $SYS tree.
func ValidRoom(room string) error {
	switch {
	case room == "":
		return errors.New("empty topic root")
	case !utf8.ValidString(room):
		return errors.New("topic root is not valid UTF-8")
	case strings.HasPrefix(room, "$"):
		return errors.New("topic root starts with '$' (reserved for the broker)")
	case len(room) > 32*1024:
		return errors.New("topic root too long")
	}
	for _, r := range room {
		if r != '/' && !topicRune(r) {
			return fmt.Errorf("topic root contains %q", r)
		}
	}
	return nil
}

// splitInTopic takes "R/in/<device>" apart. R may itself contain "/in/";
// the device level never contains '/', so the last "/in/" is the one.
func splitInTopic(topic string) (room, device string, ok bool) {
	i := strings.LastIndex(topic, inSegment)
	if i <= 0 {
		return "", "", false
	}
	room, device = topic[:i], topic[i+len(inSegment):]
	if strings.Contains(device, "/") {
		return "", "", false
	}
	return room, device, true
}

func inFilter(room string) string { return room + inSegment + "+" }

func outTopic(room, network, sender string) string {
	return room + outSegment + EscapeLevel(network) + "/" + EscapeLevel(sender)
}
