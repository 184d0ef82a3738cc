package bridge

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCutMarker(t *testing.T) {
	if got := CutMarker(3, "lines", ""); got != "… (message cut: 3 more lines)" {
		t.Errorf("without link: %q", got)
	}
	if got := CutMarker(1200, "characters", "https://b.example/text/s/i"); got != "… (message cut: 1200 more characters) https://b.example/text/s/i" {
		t.Errorf("with link: %q", got)
	}
}

func TestCutText(t *testing.T) {
	const link = "https://b.example/text/sig/id"
	if got := CutText("short enough", 12, link); got != "short enough" {
		t.Errorf("within the limit: %q", got)
	}
	if got := CutText(strings.Repeat("x", 5000), 0, link); len(got) != 5000 {
		t.Errorf("no limit: cut to %d bytes", len(got))
	}
	words := strings.Repeat("grüße 日本語 🎉 word\n", 500)
	for _, c := range []struct {
		name, text string
		max        int
		head       string
		more       int
	}{
		{"at a space", "aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm nnnn oooo pppp qqqq", 80,
			"aaaa bbbb cccc dddd eeee ffff gggg hhhh", 44},
		{"one long word, on a rune", strings.Repeat("ü", 100), 80, strings.Repeat("ü", 20), 80},
		{"marker alone", strings.Repeat("x", 200), 38, "", 200},
	} {
		got := CutText(c.text, c.max, "")
		want := CutMarker(c.more, "characters", "")
		if c.head != "" {
			want = c.head + " " + want
		}
		if got != want {
			t.Errorf("%s: %q, want %q", c.name, got, want)
		}
	}
	for limit := 70; limit < 2000; limit += 37 {
		got := CutText(words, limit, link)
		if len(got) > limit || !utf8.ValidString(got) {
			t.Fatalf("limit %d: %d bytes, valid UTF-8 %v: %q", limit, len(got), utf8.ValidString(got), got)
		}
		head, marker, ok := strings.Cut(got, "… (message cut: ")
		if !ok || !strings.HasSuffix(marker, " more characters) "+link) {
			t.Fatalf("limit %d: no marker with the link: %q", limit, got)
		}
		head = strings.TrimRight(head, " ")
		if !strings.HasPrefix(words, head) {
			t.Fatalf("limit %d: %q is not the text's beginning", limit, head)
		}
		// Cut where a word ends.
		if next := words[len(head)]; head != "" && next != ' ' && next != '\n' {
			t.Errorf("limit %d: cut inside a word: %q|%q", limit, head[max(0, len(head)-10):], words[len(head):len(head)+10])
		}
		if n := utf8.RuneCountInString(strings.TrimLeft(words[len(head):], " \n")); !strings.HasPrefix(marker, strconv.Itoa(n)+" more") {
			t.Errorf("limit %d: marker %q, want %d more characters", limit, marker, n)
		}
	}
}
