package irc

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ergochat/irc-go/ircevent"
	"github.com/ergochat/irc-go/ircmsg"
)

func TestTopicTextIsOneLineThatFits(t *testing.T) {
	for _, c := range []struct {
		in             string
		topicLen, room int
		want           string
	}{
		{"plans\r\nQUIT :bye\x00", 0, 400, "plans QUIT :bye"},
		{"  spaced  ", 0, 400, "spaced"},
		{"one two three", 9, 400, "one two"},
		{"one two three", 0, 9, "one two"},
		{"ééééé", 5, 400, "éé"}, // never half a rune
	} {
		got := topicText(c.in, c.topicLen, c.room)
		if got != c.want {
			t.Errorf("topicText(%q, %d, %d) = %q, want %q", c.in, c.topicLen, c.room, got, c.want)
		}
		if !utf8.ValidString(got) || strings.ContainsAny(got, "\r\n\x00") {
			t.Errorf("topicText(%q) = %q: not one clean line", c.in, got)
		}
	}
}

func TestTopicRankIsHalfopOrAbove(t *testing.T) {
	info := defaultServerInfo(512)
	for _, c := range []struct {
		held string
		want bool
	}{{"", false}, {"+", false}, {"%", true}, {"+%", true}, {"@", true}, {"~", true}} {
		if got := info.mayTopicPrefix(c.held); got != c.want {
			t.Errorf("mayTopicPrefix(%q) = %v, want %v", c.held, got, c.want)
		}
	}
	info.prefixes, info.prefixModes = "@+", "ov" // no halfops
	if info.mayTopicPrefix("+") || !info.mayTopicPrefix("@") {
		t.Errorf("without halfops, only operators may set a +t topic")
	}
}

func TestTopicLockFollowsChannelModes(t *testing.T) {
	a := &Adapter{rooms: map[string]*room{}, info: defaultServerInfo(512)}
	r := &room{name: "#lobby", members: map[string]*member{"bot": {nick: "bot"}}}
	a.rooms["#lobby"] = r
	may := func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.mayTopicLocked(r, "bot")
	}
	if may() {
		t.Errorf("modes unknown: taken for +t, but the bot may set the topic")
	}
	a.onChannelModes(ircmsg.MakeMessage(nil, "irc.test", "324", "bot", "#lobby", "+nlk", "10", "key"))
	if !may() {
		t.Errorf("channel not +t, but the bot may not set the topic")
	}
	a.followTopicLock("#LOBBY", []string{"+bt", "*!*@evil"}, false)
	if may() {
		t.Errorf("channel +t again, but the bot may set the topic")
	}
	r.members["bot"].prefixes = "%"
	if !may() {
		t.Errorf("a halfop may not set the topic of a +t channel")
	}
}

func TestTopicLabeledAnswer(t *testing.T) {
	line := func(cmd string, params ...string) *ircevent.Batch {
		return &ircevent.Batch{Message: ircmsg.MakeMessage(nil, "irc.test", cmd, params...)}
	}
	if res := topicResult(line("TOPIC", "#lobby", "plans")); res.err != nil {
		t.Errorf("TOPIC echo: %v", res.err)
	}
	if res := topicResult(line("482", "bot", "#lobby", "You must be a channel operator")); !errors.Is(res.err, errTopicRefused) {
		t.Errorf("482: %v, want a refusal", res.err)
	}
	if res := topicResult(line("442", "bot", "#lobby", "You're not on that channel")); res.err == nil {
		t.Errorf("442 taken for success")
	}
	if res := topicResult(nil); res.err == nil {
		t.Errorf("no answer taken for success")
	}
}
