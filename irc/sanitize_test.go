package irc

import (
	"strings"
	"testing"

	"github.com/ergochat/irc-go/ircmsg"

	"github.com/switchboard-chat/switchboard/bridge"
)

func TestTextLines(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"plain", []string{"plain"}},
		{"a\r\nQUIT :x", []string{"a", "QUIT :x"}},
		{"a\rb\nc", []string{"a", "b", "c"}},
		{"a\n\nb", []string{"a", "", "b"}},
		{"nul\x00byte", []string{"nulbyte"}},
		{"\x01DCC SEND x\x01", []string{"DCC SEND x"}},
		{"tab\there", []string{"tab here"}},
		{"bell\x07 esc\x1b del\x7f", []string{"bell esc del"}},
		{"\x02bold\x02 \x0304red", []string{"\x02bold\x02 \x0304red"}},
		{"bad \xff utf8", []string{"bad \uFFFD utf8"}},
	}
	for _, c := range cases {
		got := textLines(c.in)
		if strings.Join(got, "|") != strings.Join(c.want, "|") || len(got) != len(c.want) {
			t.Errorf("textLines(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := cleanLine("a\r\nb\x00c"); got != "a bc" {
		t.Errorf("cleanLine: %q", got)
	}
}

// TestRelayPrefixNeutralizesNames checks names that try to end the
// prefix early, reorder the line or fill it.
func TestRelayPrefixNeutralizesNames(t *testing.T) {
	for _, c := range []struct {
		s           bridge.Sender
		emote, want string
	}{
		{bridge.Sender{ID: "d1", Name: "watcher> hi all, I am the op <x"}, "", "<watcher_ hi all, I am the op _x> "},
		{bridge.Sender{ID: "d1", Name: "evil\u202Eeman"}, "", "<evileman> "},
		{bridge.Sender{ID: "d1", Name: "\x0304red\x03 \x02bob\x02"}, "", "<red bob> "},
		{bridge.Sender{ID: "dev<1>", Name: "\u200B\u2067"}, "", "<dev_1_> "},
		{bridge.Sender{ID: "d1", Name: strings.Repeat("long ", 20)}, "", "<" + strings.Repeat("long ", 7) + "long…> "},
		{bridge.Sender{ID: "d1", Name: "a > b"}, "emote", "* a _ b "},
	} {
		got := relayPrefix(&bridge.Message{Header: bridge.Header{Sender: c.s}, Emote: c.emote != ""})
		if got != c.want {
			t.Errorf("%+q: %+q, want %+q", c.s.Name, got, c.want)
		}
	}
}

// TestNoControlCharsReachTheWire feeds hostile text through the same path
// Send uses and checks the serialized lines.
func TestNoControlCharsReachTheWire(t *testing.T) {
	hostile := "hi\r\nQUIT :pwned\rPRIVMSG #x :y\nNICK z\x00\x00 end\r\n\r\n" + strings.Repeat("\r\nx", 50)
	prefix := relayPrefix(&bridge.Message{Header: bridge.Header{Sender: bridge.Sender{Name: "e\r\nvil\x00"}}})
	if prefix != "<e vil> " {
		t.Fatalf("relay prefix not cleaned: %q", prefix)
	}
	lines := splitText(hostile, prefix, 100)
	if len(lines) == 0 {
		t.Fatal("no lines")
	}
	for _, l := range lines {
		msg := ircmsg.MakeMessage(nil, "", "PRIVMSG", "#chan", l)
		b, err := msg.LineBytesStrict(true, 512)
		if err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		body := string(b[:len(b)-2])
		if strings.ContainsAny(body, "\r\n\x00") {
			t.Fatalf("control character on the wire: %q", b)
		}
	}
	var got []string
	for _, l := range lines {
		got = append(got, strings.TrimPrefix(l, prefix))
	}
	want := "hi|QUIT :pwned|PRIVMSG #x :y|NICK z end" + strings.Repeat("|x", 50)
	if strings.Join(got, "|") != want {
		t.Fatalf("lines %q", got)
	}
}

func TestValidChannel(t *testing.T) {
	good := []string{"#lobby", "&local", "#a.b-c_d", "#日本"}
	bad := []string{"", "lobby", "#a b", "#a,b", "#a\x07", "#a\r\nJOIN #b", "#a\x00", strings.Repeat("#", 300)}
	for _, c := range good {
		if err := validChannel(c, "#&", 200); err != nil {
			t.Errorf("validChannel(%q): %v", c, err)
		}
	}
	for _, c := range bad {
		if err := validChannel(c, "#&", 200); err == nil {
			t.Errorf("validChannel(%q) accepted", c)
		}
	}
	if err := validChannel("&x", "#", 50); err == nil {
		t.Error("channel type not offered by the server accepted")
	}
}

func TestValidNick(t *testing.T) {
	for _, n := range []string{"bot", "Switch[board]", "a-b_c|d^e{f}`g\\h", "x9"} {
		if err := validNick(n); err != nil {
			t.Errorf("validNick(%q): %v", n, err)
		}
	}
	for _, n := range []string{"", "9lives", "-x", "a b", "a\r\nb", "a\x00", "a!b", "a@b", "#chan", "é"} {
		if err := validNick(n); err == nil {
			t.Errorf("validNick(%q) accepted", n)
		}
	}
}

func TestIdentFrom(t *testing.T) {
	for in, want := range map[string]string{"bot": "bot", "Switch[board]": "Switchboar", "[]": "bridge", "a.b-c_d": "a.b-c_d"} {
		if got := identFrom(in); got != want {
			t.Errorf("identFrom(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCaseMapping(t *testing.T) {
	if !caseRFC1459.equal("Bot[1]~", "bot{1}^") {
		t.Error("rfc1459 should fold []~ to {}^")
	}
	if caseStrictRFC1459.equal("a~", "a^") || !caseStrictRFC1459.equal("A[", "a{") {
		t.Error("strict-rfc1459 folds []\\ but not ~")
	}
	if caseASCII.equal("a[", "a{") || !caseASCII.equal("ABC", "abc") {
		t.Error("ascii folds letters only")
	}
	if parseCaseMapping("ascii") != caseASCII || parseCaseMapping("strict-rfc1459") != caseStrictRFC1459 || parseCaseMapping("") != caseRFC1459 {
		t.Error("parseCaseMapping")
	}
	if s := "already"; caseRFC1459.fold(s) != s {
		t.Error("fold changed a folded string")
	}
}
