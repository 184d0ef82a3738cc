package irc

import (
	"strings"
	"testing"
)

func TestStripCodes(t *testing.T) {
	cases := map[string]string{
		"plain":                           "plain",
		"\x02bold\x02 and \x1ditalic\x1d": "bold and italic",
		"\x0304red\x03 \x0312,01blue":     "red blue",
		"\x034" + "5 five":                " five", // "\x0345" is color 45
		"\x03,5 comma":                    ",5 comma",
		"\x04FF0000hex\x04 \x04zz":        "hex zz",
		"\x0f\x16\x11\x1e\x1fx":           "x",
	}
	for in, want := range cases {
		if got := stripCodes(in); got != want {
			t.Errorf("stripCodes(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIRCToHTML(t *testing.T) {
	cases := []struct{ in, want string }{
		{"\x02bold\x02 plain", "<b>bold</b> plain"},
		{"\x02b\x1dbi\x02i\x1d", "<b>b<i>bi</i></b><i>i</i>"},
		{"\x1funder\x1f \x1estrike\x1e \x11mono\x11", "<u>under</u> <del>strike</del> <code>mono</code>"},
		{"\x0304red\x03 x", `<font color="#ff0000">red</font> x`},
		{"\x0304,12red on blue", `<font color="#ff0000">red on blue</font>`},
		{"\x04336699hex", `<font color="#336699">hex</font>`},
		{"\x02<script>&amp;\"'", "<b>&lt;script&gt;&amp;amp;&#34;&#39;</b>"},
		{"\x02bold\x0fplain", "<b>bold</b>plain"},
	}
	for _, c := range cases {
		got, ok := ircToHTML(c.in)
		if !ok || got != c.want {
			t.Errorf("ircToHTML(%q) = %q, %v; want %q", c.in, got, ok, c.want)
		}
	}
	if _, ok := ircToHTML("no codes <b>"); ok {
		t.Error("plain text got HTML")
	}
	if _, ok := ircToHTML("\x16reverse only"); ok {
		t.Error("formatting without an HTML equivalent got HTML")
	}
}

func TestHTMLToIRC(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain", "plain"},
		{"<b>bold</b> and <strong>strong</strong>", "\x02bold\x0f and \x02strong"},
		{"<i>i</i><em>em</em>", "\x1diem"},
		{"<b>bold <i>both</i></b> none", "\x02bold \x1dboth\x0f none"},
		{"<u>u</u> <s>s</s> <del>d</del> <strike>k</strike>", "\x1fu\x0f \x1es\x0f \x1ed\x0f \x1ek"},
		{"<code>x := 1</code>", "\x11x := 1"},
		{"a<br>b<br/>c", "a\nb\nc"},
		{"<p>one</p><p>two</p>", "one\ntwo"},
		{"<pre>line 1\n  line 2</pre>", "\x11line 1\n\x11  line 2"},
		{"<blockquote>quoted\ntext</blockquote>after", "> quoted text\nafter"},
		{`<a href="https://x.org/">site</a>`, "site (https://x.org/)"},
		{`<a href="https://x.org/">https://x.org/</a>`, "https://x.org/"},
		{`<a href="mailto:a@b.c">a@b.c</a>`, "a@b.c"},
		{`<font color="#ff0000">red</font>`, "\x0304red"},
		{`<span data-mx-color="#00007f">navy</span> x`, "\x0302navy\x0f x"},
		{`<span data-mx-color="#0000fc" data-mx-bg-color="#000000">b</span>`, "\x0312,01b"},
		{`<font color="#f00">3</font>`, "\x03043"},
		{"<blink>unknown</blink> <custom-tag>tags</custom-tag>", "unknown tags"},
		{"<script>alert(1)</script><style>p{}</style>text", "text"},
		{"&lt;b&gt; &amp; &quot;", "<b> & \""},
		{"<mx-reply><blockquote>old</blockquote></mx-reply>reply", "reply"},
		{"<ul><li>one</li><li>two</li></ul>", "• one\n• two"},
		{`<ol start="3"><li>c</li><li>d</li></ol>`, "3. c\n4. d"},
		{"<h1>Title</h1>body", "\x02Title\nbody"},
		{`<img src="x.png" alt="a cat">`, "a cat"},
		{"  lots   of\n\n spaces  ", "lots of spaces"},
		{"line\r\nbreak", "line break"},
	}
	for _, c := range cases {
		if got := htmlToIRC(c.in); got != c.want {
			t.Errorf("htmlToIRC(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

// TestFormatRoundTrip renders IRC formatting as HTML and back and checks
// that every rune keeps its formatting (colors snap to the palette, and
// reverse has no HTML form).
func TestFormatRoundTrip(t *testing.T) {
	for _, in := range []string{
		"\x02bold\x02 \x1ditalic \x1funder\x1f\x1d \x1estrike\x1e \x11mono\x11",
		"\x0304red \x02red bold\x03 bold\x02 none",
		"\x0303green, \x0313pink\x0f plain",
	} {
		html, ok := ircToHTML(in)
		if !ok {
			t.Fatalf("no HTML for %q", in)
		}
		back := htmlToIRC(html)
		a, b := styledRunes(in), styledRunes(back)
		if len(a) != len(b) {
			t.Fatalf("round trip %q -> %q -> %q changed the text", in, html, back)
		}
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("round trip %q -> %q -> %q: rune %d %q %+v, want %+v", in, html, back, i, b[i].r, b[i].st, a[i].st)
			}
		}
	}
}

func TestRenderBody(t *testing.T) {
	renderBody := func(m *testMessage) string {
		b := renderBody(&m.Message)
		if b.attachments == "" {
			return b.text
		}
		return b.text + "\n" + b.attachments
	}
	m := &testMessage{}
	m.Text = "plain *fallback*"
	m.HTML = "<b>rich</b>"
	if got := renderBody(m); got != "\x02rich" {
		t.Errorf("HTML preferred: %q", got)
	}
	m.HTML = "<img src=x>"
	if got := renderBody(m); got != "plain *fallback*" {
		t.Errorf("empty HTML falls back to text: %q", got)
	}
	m.HTML = ""
	m.Attachments = append(m.Attachments, attachment("https://f/x.png", "x.png"), attachment("https://f/y", ""))
	if got := renderBody(m); got != "plain *fallback*\nx.png: https://f/x.png\nhttps://f/y" {
		t.Errorf("attachments: %q", got)
	}
	if !strings.Contains(relayPrefix(&m.Message), "<") {
		t.Error("relay prefix")
	}
}
