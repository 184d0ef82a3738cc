package irc

import (
	"testing"

	"github.com/ergochat/irc-go/ircmsg"
)

func TestOperatorPrefixes(t *testing.T) {
	info := defaultServerInfo(512)
	for _, c := range []struct {
		held string
		want bool
	}{{"", false}, {"+", false}, {"%", false}, {"%+", false}, {"@", true}, {"+@", true}, {"&", true}, {"~", true}} {
		if got := info.isOperatorPrefix(c.held); got != c.want {
			t.Errorf("isOperatorPrefix(%q) = %v, want %v", c.held, got, c.want)
		}
	}
}

// onMode follows prefix changes among other modes and their parameters.
func TestModeFollowsPrefixes(t *testing.T) {
	a := &Adapter{info: defaultServerInfo(512)}
	a.info.chanModes = "beI,k,l,imnpst"
	r := &room{name: "#room", members: map[string]*member{
		"alice": {nick: "alice"}, "bob": {nick: "bob", prefixes: "@"}, "carol": {nick: "carol"},
	}}
	a.rooms = map[string]*room{"#room": r}
	mode := func(params ...string) { a.onMode(ircmsg.MakeMessage(nil, "op!o@h", "MODE", params...)) }
	op := func(nick string) bool { return a.operatorLocked(r, nick) }

	// +b and +k take a parameter, +l too when set, +m none: the prefix
	// modes after them still find their nick.
	mode("#room", "+bkmlo", "*!*@x", "key", "10", "alice")
	if !op("alice") || !op("bob") || op("carol") {
		t.Errorf("after +o alice: alice %v bob %v carol %v", op("alice"), op("bob"), op("carol"))
	}
	mode("#room", "-lo+h", "bob", "carol")
	if op("bob") || op("carol") {
		t.Errorf("after -o bob +h carol: bob %v, carol (halfop) %v", op("bob"), op("carol"))
	}
	mode("#room", "+qv", "carol", "carol")
	mode("#room", "-h", "carol")
	if !op("carol") {
		t.Error("a founder (+q) is an operator")
	}
	mode("#OTHER", "+o", "carol") // another channel: nothing here changes
	mode("#room", "+o")           // no parameter: ignored
	if r.members["carol"].prefixes != "~+" {
		t.Errorf("carol's prefixes %q, want ~+", r.members["carol"].prefixes)
	}
}
