package bridge

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestShownName(t *testing.T) {
	long := strings.Repeat("abcdefghij", 6)
	for _, c := range []struct {
		name, in string
		delims   Delims
		want     string
	}{
		{"plain", "alice", RelayDelims, "alice"},
		{"impersonation", "watcher> hi all, I am the op <x", RelayDelims, "watcher_ hi all, I am the op _x"},
		{"quote delimiters", "bob: yes <3", QuoteDelims, "bob_ yes _3"},
		{"quote delimiter after collapsing", "bob:\n\tyes", QuoteDelims, "bob_ yes"},
		{"a Matrix id is no quote delimiter", "@bob:example.org", QuoteDelims, "@bob:example.org"},
		{"delimiters only where asked", "a<b>: c", nil, "a<b>: c"},
		{"RLO reverses nothing", "evil\u202Egnp.exe", RelayDelims, "evilgnp.exe"},
		{"bidi isolates and marks", "\u2066a\u2069\u200Fb\u200E\u061Cc\u202A\u202B\u202C\u202D", RelayDelims, "abc"},
		{"zero-width space", "ad\u200Bmin", RelayDelims, "admin"},
		{"BOM and soft hyphen", "\uFEFFbo\u00ADb", RelayDelims, "bob"},
		{"tags", "x\U000E0041\U000E007Fy", RelayDelims, "xy"},
		{"CR LF NUL", "line1\r\nline2\x00\rline3\n", RelayDelims, "line1 line2 line3"},
		{"IRC codes and C1", "\x02bold\x03\x1d\u0085next\u009b", RelayDelims, "bold next"},
		{"line and paragraph separators", "a\u2028b\u2029c", RelayDelims, "a b c"},
		{"spaces collapse", " \t a \u00A0\u3000 b  ", RelayDelims, "a b"},
		{"invisible only", "\u202E\u200B\u3164\u115F\u1160\uFFA0 \u200D", RelayDelims, ""},
		{"hangul filler hides nothing", "a\u3164b", RelayDelims, "ab"},
		{"invalid UTF-8", "a\xffb", RelayDelims, "a\uFFFDb"},
		{"CJK", "山田太郎", RelayDelims, "山田太郎"},
		{"emoji ZWJ sequence", "👩\u200D💻 dev 🏳️\u200D🌈", RelayDelims, "👩\u200D💻 dev 🏳️\u200D🌈"},
		{"Persian ZWNJ", "می\u200Cخواهم", RelayDelims, "می\u200Cخواهم"},
		{"dangling joiners", "\u200Da \u200Db\u200D", RelayDelims, "a b"},
		{"joiner next to a removed character", "a\u200D\u202Eb", RelayDelims, "ab"},
		{"combining marks kept", "Zoë café", RelayDelims, "Zoë café"},
		{"exactly the bound", long[:MaxNameRunes], RelayDelims, long[:MaxNameRunes]},
		{"over the bound", long, RelayDelims, long[:MaxNameRunes-1] + "…"},
		{"cut before a space", strings.Repeat("a", MaxNameRunes-2) + " bcdef", RelayDelims, strings.Repeat("a", MaxNameRunes-2) + "…"},
		{"cut counts runes", strings.Repeat("界", 50), RelayDelims, strings.Repeat("界", MaxNameRunes-1) + "…"},
		{"bound after cleaning", strings.Repeat("\u202E", 100) + "bob", RelayDelims, "bob"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := ShownName(c.in, c.delims)
			if got != c.want {
				t.Errorf("ShownName(%+q, %q) = %+q, want %+q", c.in, c.delims, got, c.want)
			}
			if again := ShownName(got, c.delims); again != got {
				t.Errorf("not idempotent: %+q then %+q", got, again)
			}
		})
	}
}

// TestShownNameDropsEveryCf checks every format character Unicode has,
// alone and between two visible characters (letters, delimiters, CJK and
// emoji): none survives, except a joiner between two visible characters.
func TestShownNameDropsEveryCf(t *testing.T) {
	n := 0
	for _, rng := range unicode.Cf.R16 {
		for r := rune(rng.Lo); r <= rune(rng.Hi); r += rune(rng.Stride) {
			checkDropped(t, r)
			n++
		}
	}
	for _, rng := range unicode.Cf.R32 {
		for r := rune(rng.Lo); r <= rune(rng.Hi); r += rune(rng.Stride) {
			checkDropped(t, r)
			n++
		}
	}
	for r := rune(0); r < 0x20; r++ {
		checkDropped(t, r)
	}
	for r := rune(0x7f); r < 0xa0; r++ {
		checkDropped(t, r)
	}
	if n < 150 {
		t.Fatalf("only %d Cf characters checked", n)
	}
}

func checkDropped(t *testing.T, r rune) {
	t.Helper()
	s := string(r)
	if got := ShownName(s, RelayDelims); got != "" {
		t.Errorf("U+%04X alone: %+q", r, got)
	}
	for _, around := range []string{"ab", "<>", "界👍"} {
		b, a := []rune(around)[0], []rune(around)[1]
		in := string(b) + s + string(a)
		sb, sa := ShownName(string(b), RelayDelims), ShownName(string(a), RelayDelims)
		want := sb + sa
		if joiner(r) {
			want = sb + s + sa
		} else if unicode.IsSpace(r) {
			want = sb + " " + sa
		}
		if got := ShownName(in, RelayDelims); got != want {
			t.Errorf("U+%04X in %+q: %+q, want %+q", r, in, got, want)
		}
	}
}

func TestSenderShown(t *testing.T) {
	for _, c := range []struct {
		s    Sender
		want string
	}{
		{Sender{ID: "dev1", Name: "Kitchen <sensor>"}, "Kitchen _sensor_"},
		{Sender{ID: "dev1"}, "dev1"},
		{Sender{ID: "dev>1", Name: "\u202E\u200B"}, "dev_1"},
	} {
		if got := c.s.Shown(RelayDelims); got != c.want {
			t.Errorf("%+v: %+q, want %+q", c.s, got, c.want)
		}
	}
}

func FuzzShownName(f *testing.F) {
	for _, s := range []string{"", "alice", "watcher> hi <x", "a\u202Eb", "👩\u200D💻", "\xff", strings.Repeat("界", 60), "a\u200D\u200Db"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := ShownName(s, QuoteDelims)
		if !utf8.ValidString(got) || utf8.RuneCountInString(got) > MaxNameRunes {
			t.Fatalf("%+q: %+q is invalid or too long", s, got)
		}
		if strings.ContainsAny(got, "<>\r\n\t\x00") || strings.Contains(got, ": ") || strings.TrimSpace(got) != got || strings.Contains(got, "  ") {
			t.Fatalf("%+q: %+q has a delimiter, a line break or stray spaces", s, got)
		}
		rs := []rune(got)
		for i, r := range rs {
			if unicode.Is(unicode.Cf, r) && !(joiner(r) && i > 0 && i < len(rs)-1 && visible(rs[i-1]) && visible(rs[i+1])) {
				t.Fatalf("%+q: %+q keeps U+%04X", s, got, r)
			}
			if unicode.IsControl(r) {
				t.Fatalf("%+q: %+q keeps control U+%04X", s, got, r)
			}
		}
		if again := ShownName(got, QuoteDelims); again != got {
			t.Fatalf("%+q: not idempotent: %+q then %+q", s, got, again)
		}
	})
}

func TestReplyFallbackQuotesNeutralizedName(t *testing.T) {
	m := ReplyFallback(&Message{Text: "I agree", HTML: "<i>I agree</i>"}, &Quote{SenderName: "mallory\n> alice: I quit\u202E", Text: "first words"})
	if want := "> mallory _ alice_ I quit: first words\nI agree"; m.Text != want {
		t.Errorf("text %+q, want %+q", m.Text, want)
	}
	if want := "<blockquote>mallory _ alice_ I quit: first words</blockquote><i>I agree</i>"; m.HTML != want {
		t.Errorf("html %+q, want %+q", m.HTML, want)
	}
}
