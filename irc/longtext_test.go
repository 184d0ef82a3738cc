package irc

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

func TestCutLines(t *testing.T) {
	lines := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("line %d", i+1))
		}
		return out
	}
	for _, c := range []struct {
		name  string
		n     int
		max   int
		link  string
		want  []string
		whole bool
	}{
		{name: "within", n: 5, max: 5, whole: true},
		{name: "empty", n: 0, max: 5, whole: true},
		{name: "one over, no link", n: 6, max: 5,
			want: []string{"line 1", "line 2", "line 3", "line 4", "… (message cut: 2 more lines)"}},
		{name: "link", n: 170, max: 5, link: "https://b.example/text/x/y",
			want: []string{"line 1", "line 2", "line 3", "line 4", "… (message cut: 166 more lines) https://b.example/text/x/y"}},
		{name: "smallest", n: 3, max: 2, link: "L", want: []string{"line 1", "… (message cut: 2 more lines) L"}},
		{name: "below smallest counts as 2", n: 3, max: 0, want: []string{"line 1", "… (message cut: 2 more lines)"}},
	} {
		in := lines(c.n)
		got := cutLines(in, c.max, c.link)
		want := c.want
		if c.whole {
			want = lines(c.n)
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s: %q, want %q", c.name, got, want)
		}
		if len(got) > max(c.max, 2) && len(got) != c.n {
			t.Errorf("%s: %d lines for a limit of %d", c.name, len(got), c.max)
		}
		if strings.Join(in, "|") != strings.Join(lines(c.n), "|") {
			t.Errorf("%s: the input changed: %q", c.name, in)
		}
	}
}

// TestCutOnBoundaries cuts a text whose lines split in the middle of
// words and of multibyte runes: what is kept is exactly the text's
// beginning, cut where splitText cuts, never inside a rune.
func TestCutOnBoundaries(t *testing.T) {
	var b strings.Builder
	for i := 0; b.Len() < 64*1024; i++ {
		b.WriteString([]string{"grüße", "日本語テキスト", "🎉🎉", "word", strings.Repeat("x", 700)}[i%5])
		b.WriteByte(" \n"[min(i%7, 1)])
	}
	text := b.String()
	pieces := cutLines(splitText(text, "", 400), 5, "https://b.example/t")
	if len(pieces) != 5 {
		t.Fatalf("%d lines", len(pieces))
	}
	rest := text
	for _, p := range pieces[:4] {
		if !utf8.ValidString(p) || len(p) > 400 {
			t.Fatalf("line %q: not UTF-8 or longer than its budget", p)
		}
		rest = strings.TrimLeft(rest, " \n")
		if !strings.HasPrefix(rest, p) {
			t.Fatalf("line %q is not where the text goes on: %.40q", p, rest)
		}
		rest = rest[len(p):]
	}
	if !strings.HasPrefix(pieces[4], "… (message cut: ") || !strings.HasSuffix(pieces[4], " more lines) https://b.example/t") {
		t.Errorf("last line %q", pieces[4])
	}
}

// TestLongMessageCut sends a long message to a real server: the channel
// sees max_message_lines lines, the last with the link, and a retry after
// a line was refused resends that line only, not the cut or the link.
func TestLongMessageCut(t *testing.T) {
	srv := testenv.InspIRCdWith(t, testenv.IRCServerConfig{Extra: `<module name="blockcolor">`})
	alice := srv.Client(t, "alice")
	alice.Join("#lobby")
	alice.Send("MODE", "#lobby", "+c")
	n := netConfig(srv, "puppet")
	n.Section.(*Config).MaxMessageLines = 3
	a := startAdapter(t, n, func(a *Adapter) { a.UseTextLinks(fakeLinks{}) }, "#lobby")

	m := message("d", "s", "s", "first line\nsecond \x0304red\x03 line\nthird\nfourth\nfifth")
	if _, err := a.Send(context.Background(), delivery(m, "#lobby")); err == nil {
		t.Fatal("send succeeded with a line refused")
	}
	link := "… (message cut: 3 more lines) https://bridge.example/text/" + string(m.ID)
	alice.WaitText(waitFor, "#lobby", "s[d]", link)
	alice.Send("MODE", "#lobby", "-c")
	alice.Wait(waitFor, func(l testenv.IRCLine) bool { return l.Command == "MODE" && l.Text() == "-c" })
	a.send(t, m, "#lobby") // the router's retry
	alice.WaitText(waitFor, "#lobby", "s[d]", "second \x0304red\x03 line")
	// Without links, the same cut with the marker alone.
	a.textLinks = nil
	m2 := message("d", "s", "s", "1\n2\n3\n4")
	a.send(t, m2, "#lobby")
	alice.WaitText(waitFor, "#lobby", "s[d]", "… (message cut: 2 more lines)")
	// Attachments' lines are never cut: the whole text's link would not
	// show them.
	m3 := message("d", "s", "s", "a\nb\nc\nd")
	m3.Attachments = []bridge.Attachment{attachment("https://f/x.png", "x.png")}
	a.send(t, m3, "#lobby")
	alice.WaitText(waitFor, "#lobby", "s[d]", "x.png: https://f/x.png")
	got := textsFrom(t, a, alice, "s[d]")
	want := []string{"first line", link, "second \x0304red\x03 line", "1", "2", "… (message cut: 2 more lines)",
		"a", "… (message cut: 3 more lines)", "x.png: https://f/x.png"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("alice saw %q, want %q", got, want)
	}
}

type fakeLinks struct{}

func (fakeLinks) TextLink(id bridge.EventID) string {
	return "https://bridge.example/text/" + string(id)
}
