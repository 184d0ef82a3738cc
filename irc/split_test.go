package irc

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestLineBudget(t *testing.T) {
	// :nick!user@host PRIVMSG #chan :text\r\n within 512 bytes.
	got := lineBudget(512, "nick", "user@host", 10, "PRIVMSG", "#chan", false)
	want := 512 - 2 - len(":nick!user@host ") - len("PRIVMSG #chan :")
	if got != want {
		t.Errorf("known host: got %d, want %d", got, want)
	}
	if got := lineBudget(512, "nick", "user@host", 10, "PRIVMSG", "#chan", true); got != want-len("\x01ACTION \x01") {
		t.Errorf("action: got %d, want %d", got, want-9)
	}
	// Unknown user@host: "~" plus USERLEN for the user, a 63-byte host.
	got = lineBudget(512, "nick", "", 10, "PRIVMSG", "#chan", false)
	want = 512 - 2 - len(":nick!") - 11 - 1 - 63 - 1 - len("PRIVMSG #chan :")
	if got != want {
		t.Errorf("unknown host: got %d, want %d", got, want)
	}
	if got := lineBudget(0, "nick", "u@h", 10, "NOTICE", "#c", false); got != 512-2-len(":nick!u@h ")-len("NOTICE #c :") {
		t.Errorf("default line length: got %d", got)
	}
	if got := lineBudget(100, strings.Repeat("n", 90), "", 10, "PRIVMSG", "#c", false); got != minBudget {
		t.Errorf("tiny line: got %d, want the floor %d", got, minBudget)
	}
}

func TestSplitShort(t *testing.T) {
	got := splitText("hello world", "<a> ", 100)
	if len(got) != 1 || got[0] != "<a> hello world" {
		t.Fatalf("got %q", got)
	}
}

func TestSplitLinesAndEmpty(t *testing.T) {
	got := splitText("one\r\ntwo\n\n  \nthree\rfour\n", "", 100)
	want := []string{"one", "two", "three", "four"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got := splitText("\x02\x02\n\n", "", 100); len(got) != 0 {
		t.Fatalf("formatting-only text gave lines: %q", got)
	}
}

func TestSplitWordBoundaries(t *testing.T) {
	var words []string
	for i := 0; i < 200; i++ {
		words = append(words, strings.Repeat("w", 1+i%9))
	}
	text := strings.Join(words, " ")
	for _, budget := range []int{10, 17, 64, 400} {
		lines := splitText(text, "", budget)
		for _, l := range lines {
			if len(l) > budget {
				t.Fatalf("budget %d: line of %d bytes: %q", budget, len(l), l)
			}
			if strings.HasPrefix(l, " ") || strings.HasSuffix(l, " ") {
				t.Fatalf("budget %d: line not cut at a word boundary: %q", budget, l)
			}
		}
		if got := strings.Join(lines, " "); got != text {
			t.Fatalf("budget %d: reassembled text differs", budget)
		}
	}
}

func TestSplitPrefixCountsInBudget(t *testing.T) {
	text := strings.Repeat("abcd ", 100)
	prefix := "<sensor-1> "
	lines := splitText(text, prefix, 60)
	if len(lines) < 5 {
		t.Fatalf("expected several lines, got %d", len(lines))
	}
	var parts []string
	for _, l := range lines {
		if len(l) > 60 || !strings.HasPrefix(l, prefix) {
			t.Fatalf("bad line %q (%d bytes)", l, len(l))
		}
		parts = append(parts, strings.TrimPrefix(l, prefix))
	}
	if got := strings.Join(parts, " "); got != strings.TrimSpace(text) {
		t.Fatalf("reassembled: %q", got)
	}
}

func TestSplitUTF8(t *testing.T) {
	for _, unit := range []string{"é", "日本語", "🎉", "a🎉", "Ωx"} {
		text := strings.Repeat(unit, 300) // no spaces: only hard cuts
		for _, budget := range []int{9, 10, 11, 13, 100} {
			lines := splitText(text, "", budget)
			for _, l := range lines {
				if len(l) > budget {
					t.Fatalf("%q/%d: %d bytes", unit, budget, len(l))
				}
				if !utf8.ValidString(l) {
					t.Fatalf("%q/%d: cut inside a rune: %q", unit, budget, l)
				}
			}
			if got := strings.Join(lines, ""); got != text {
				t.Fatalf("%q/%d: reassembled text differs", unit, budget)
			}
		}
	}
}

func TestSplitLongWordAmongShortOnes(t *testing.T) {
	long := strings.Repeat("x", 50)
	text := "a b " + long + " c"
	lines := splitText(text, "", 20)
	joined := strings.Join(lines, "")
	if strings.ReplaceAll(joined, " ", "") != strings.ReplaceAll(text, " ", "") {
		t.Fatalf("lost text: %q", lines)
	}
	for _, l := range lines {
		if len(l) > 20 {
			t.Fatalf("line too long: %q", l)
		}
	}
}

// styled is one visible rune with the formatting it is shown with.
type styled struct {
	r  rune
	st fmtState
}

func styledRunes(line string) []styled {
	var out []styled
	var st fmtState
	for i := 0; i < len(line); {
		if isFormatCode(line[i]) {
			i += st.apply(line, i)
			continue
		}
		r, n := utf8.DecodeRuneInString(line[i:])
		out = append(out, styled{r, st})
		i += n
	}
	return out
}

// checkSplitRendering verifies that the lines show exactly what the
// original line shows, with the same formatting on every non-space rune.
func checkSplitRendering(t *testing.T, orig string, lines []string, budget int) {
	t.Helper()
	var want, got []styled
	for _, s := range styledRunes(orig) {
		if s.r != ' ' {
			want = append(want, s)
		}
	}
	for _, l := range lines {
		if len(l) > budget {
			t.Fatalf("line over budget %d: %d bytes %q", budget, len(l), l)
		}
		if !utf8.ValidString(l) {
			t.Fatalf("invalid UTF-8: %q", l)
		}
		for _, s := range styledRunes(l) {
			if s.r != ' ' {
				got = append(got, s)
			}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d visible runes, want %d\norig %q\nlines %q", len(got), len(want), orig, lines)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("rune %d %q: formatting %+v, want %+v\norig %q\nlines %q", i, got[i].r, got[i].st, want[i].st, orig, lines)
		}
	}
}

func TestSplitKeepsFormatting(t *testing.T) {
	cases := []string{
		"\x02bold words that go on and on and on\x02 then plain words after the bold part",
		"\x0304red text \x0312,01blue on black text that is long enough to split\x03 plain",
		"\x034" + strings.Repeat("1234 ", 20),   // digits after a one-digit color
		"\x0304" + strings.Repeat(",12 x ", 20), // a comma after a color
		"\x04FF8800orange hex " + strings.Repeat("text ", 20) + "\x04 done",
		"\x1d\x1f\x1e\x11\x16" + strings.Repeat("all on ", 20) + "\x0f reset " + strings.Repeat("z", 40),
		"\x02" + strings.Repeat("\x0305é", 60), // codes between runes, no spaces
		strings.Repeat("\x02b\x02", 80),        // codes everywhere
	}
	for _, c := range cases {
		for _, budget := range []int{12, 20, 33, 64} {
			lines := splitText(c, "", budget)
			checkSplitRendering(t, c, lines, budget)
		}
	}
}

func TestSplitNeverCutsCodes(t *testing.T) {
	// A color code straddling every possible budget position.
	text := "abc\x0304,12def ghi"
	for budget := 4; budget < len(text)+2; budget++ {
		lines := splitLine(nil, text, "", max(budget, 8))
		checkSplitRendering(t, text, lines, max(budget, 8)+len("\x0304,12"))
	}
}

func TestSplitRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	atoms := []string{"a", "b", " ", " ", "é", "日", "🎉", "1", ",", "\x02", "\x1d", "\x0304", "\x034", "\x0312,05", "\x03", "\x0f", "\x04FF00FF", "\x16", "\x11"}
	for n := 0; n < 2000; n++ {
		var b strings.Builder
		for i := r.IntN(200); i > 0; i-- {
			b.WriteString(atoms[r.IntN(len(atoms))])
		}
		text := b.String()
		// Reopening all formatting costs up to 26 bytes, plus a rune.
		budget := 30 + r.IntN(80)
		lines := splitText(text, "", budget)
		checkSplitRendering(t, text, lines, budget)
	}
}

func BenchmarkSplit(b *testing.B) {
	var words []string
	for i := 0; i < 400; i++ {
		w := strings.Repeat("word", 1+i%3)
		if i%17 == 0 {
			w = "\x02" + w + "\x02"
		}
		if i%23 == 0 {
			w = "\x0304" + w + "\x03"
		}
		if i%7 == 0 {
			w += "é日"
		}
		words = append(words, w)
	}
	text := strings.Join(words, " ") // ~3 KB
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		splitText(text, "<someone[network]> ", 400)
	}
}
