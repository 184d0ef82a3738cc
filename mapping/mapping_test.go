package mapping

import (
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/bridge"
)

func TestParseRoom(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    bridge.RoomAddr
		wantErr string
	}{
		{in: "libera:#lobby", want: bridge.RoomAddr{Network: "libera", Room: "#lobby"}},
		{in: "matrix:!abc:example.org", want: bridge.RoomAddr{Network: "matrix", Room: "!abc:example.org"}},
		{in: "devices:chat/lobby", want: bridge.RoomAddr{Network: "devices", Room: "chat/lobby"}},
		{in: "no-colon", wantErr: "want network:room"},
		{in: ":#x", wantErr: "empty network"},
		{in: "libera:", wantErr: "empty room"},
		{in: "libera:#a b", wantErr: "whitespace"},
		{in: "libera:#a\r\nQUIT", wantErr: "control"},
	} {
		got, err := ParseRoom(c.in)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("ParseRoom(%q) error = %v, want one mentioning %q", c.in, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseRoom(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestLinks(t *testing.T) {
	irc := bridge.RoomAddr{Network: "libera", Room: "#lobby"}
	mq := bridge.RoomAddr{Network: "devices", Room: "chat/lobby"}
	mx := bridge.RoomAddr{Network: "matrix", Room: "!lobby:hs"}
	l, err := NewLinks(map[string][]bridge.RoomAddr{"lobby": {irc, mq, mx}, "solo": {{Network: "devices", Room: "solo"}}})
	if err != nil {
		t.Fatal(err)
	}
	name, rooms, ok := l.LinkOf(mq)
	if !ok || name != "lobby" || len(rooms) != 3 {
		t.Errorf("LinkOf(%v) = %q, %v, %v", mq, name, rooms, ok)
	}
	if _, _, ok := l.LinkOf(bridge.RoomAddr{Network: "libera", Room: "#other"}); ok {
		t.Error("an unlinked room has a link")
	}
	if got := l.Rooms("devices"); strings.Join(got, ",") != "chat/lobby,solo" {
		t.Errorf("Rooms(devices) = %q", got)
	}
	if got := l.Names(); strings.Join(got, ",") != "lobby,solo" {
		t.Errorf("Names() = %q", got)
	}

	if _, err := NewLinks(map[string][]bridge.RoomAddr{"a": {irc, mq}, "b": {irc, mx}}); err == nil ||
		!strings.Contains(err.Error(), `links.b[0]: room libera:#lobby is already in link "a"`) {
		t.Errorf("a room in two links: %v", err)
	}
	if _, err := NewLinks(map[string][]bridge.RoomAddr{"a": {irc, irc}}); err == nil || !strings.Contains(err.Error(), "links.a[1]") {
		t.Errorf("a room twice in one link: %v", err)
	}
	if _, err := NewLinks(map[string][]bridge.RoomAddr{"a": nil}); err == nil {
		t.Error("an empty link was accepted")
	}
}

func TestRender(t *testing.T) {
	s := bridge.Sender{Network: "xmpp", ID: "alice@example.org", Name: "Alice"}
	for _, c := range []struct{ tmpl, want string }{
		{"", "Alice[xmpp]"},
		{"{name}[{network}]", "Alice[xmpp]"},
		{"{name}|{id}", "Alice|alice@example.org"},
	} {
		if got := Render(c.tmpl, s); got != c.want {
			t.Errorf("Render(%q) = %q, want %q", c.tmpl, got, c.want)
		}
	}
	if got := Render("", bridge.Sender{Network: "devices", ID: "sensor-1"}); got != "sensor-1[devices]" {
		t.Errorf("a sender without a name renders as %q, want its id", got)
	}
	// A puppet's nick or display name is shown in text too: no bidi
	// controls, no line breaks, bounded; a name that shows nothing gives
	// way to the id.
	hostile := bridge.Sender{Network: "devices", ID: "d\u202E1", Name: "eve\u202E\u200B\nop " + strings.Repeat("x", 50)}
	if got, want := Render("{name}[{network}]|{id}", hostile), "eve op "+strings.Repeat("x", bridge.MaxNameRunes-8)+"…[devices]|d1"; got != want {
		t.Errorf("Render(hostile) = %+q, want %+q", got, want)
	}
	if got := Render("", bridge.Sender{Network: "devices", ID: "sensor-1", Name: "\u2066\u3164"}); got != "sensor-1[devices]" {
		t.Errorf("an invisible name renders as %+q, want the id", got)
	}
	if got := IRCNick(Render("", hostile), 30, hostile); got != "eve_op_"+strings.Repeat("x", 23) {
		t.Errorf("IRC nick %+q", got)
	}
}

func TestIRCNick(t *testing.T) {
	s := bridge.Sender{Network: "matrix", ID: "@zoe:hs"}
	for _, c := range []struct {
		name   string
		maxLen int
		want   string
	}{
		{"sensor-1[devices]", 30, "sensor-1[devices]"},
		{"Zoë Ünïcode[matrix]", 30, "Zoe_Unicode[matrix]"},
		{"1st-place", 30, "st-place"}, // no leading digit
		{"-dash", 30, "dash"},         // no leading dash
		{"a very long display name indeed", 9, "a_very_lo"},
		{"名前", 30, "u" + Fingerprint(s)}, // nothing left
		{"bad\r\nQUIT :x\x00", 30, "bad__QUIT_x"},
	} {
		got := IRCNick(c.name, c.maxLen, s)
		if got != c.want {
			t.Errorf("IRCNick(%q, %d) = %q, want %q", c.name, c.maxLen, got, c.want)
		}
		if len(got) > c.maxLen {
			t.Errorf("IRCNick(%q, %d) = %q is longer than %d", c.name, c.maxLen, got, c.maxLen)
		}
	}
}

func TestIRCNickAlternativeIsDeterministicAndDistinct(t *testing.T) {
	a := bridge.Sender{Network: "xmpp", ID: "bob@a.example"}
	b := bridge.Sender{Network: "xmpp", ID: "bob@b.example"}
	na, nb := IRCNickAlternative("bob[xmpp]", 16, a, 0), IRCNickAlternative("bob[xmpp]", 16, b, 0)
	if na == nb {
		t.Errorf("two senders got the same alternative %q", na)
	}
	if again := IRCNickAlternative("bob[xmpp]", 16, a, 0); again != na {
		t.Errorf("alternative changed between calls: %q, %q", na, again)
	}
	seen := map[string]bool{}
	for attempt := range 5 {
		n := IRCNickAlternative("averyveryverylongnick", 16, a, attempt)
		if len(n) > 16 {
			t.Errorf("attempt %d: %q longer than 16", attempt, n)
		}
		if seen[n] {
			t.Errorf("attempt %d repeats %q", attempt, n)
		}
		seen[n] = true
	}
}

func TestLinksReplaceKeepsOldSetOnError(t *testing.T) {
	a := bridge.RoomAddr{Network: "libera", Room: "#a"}
	b := bridge.RoomAddr{Network: "devices", Room: "b"}
	l, err := NewLinks(map[string][]bridge.RoomAddr{"one": {a, b}})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Replace(map[string][]bridge.RoomAddr{"x": {a}, "y": {a}}); err == nil {
		t.Fatal("a room in two links was accepted")
	}
	if name, _, ok := l.LinkOf(b); !ok || name != "one" {
		t.Errorf("a refused Replace changed the links: %q %v", name, ok)
	}
	if err := l.Replace(map[string][]bridge.RoomAddr{"two": {b}}); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := l.LinkOf(a); ok {
		t.Error("a room dropped by Replace is still linked")
	}
	if all := l.All(); len(all) != 1 || len(all["two"]) != 1 {
		t.Errorf("All() = %v", all)
	}
	l.SetRelayed([]bridge.RoomAddr{b})
	if !l.Relayed(b) || l.Relayed(a) {
		t.Error("relay rooms wrong")
	}
	l.SetRelayed(nil)
	if l.Relayed(b) {
		t.Error("relay not turned off")
	}
}
