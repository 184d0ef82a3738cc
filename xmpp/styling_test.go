package xmpp

import "testing"

func TestStylingToHTML(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text", ""},
		{"no *closing", ""},
		{"*bold* and _it_ ~gone~ `x<y`", "<b>bold</b> and <i>it</i> <s>gone</s> <code>x&lt;y</code>"},
		{"a & b *c*", "a &amp; b <b>c</b>"},
		{"line one\n*two*", "line one<br><b>two</b>"},
		{"> quoted\nreply", "<blockquote>quoted</blockquote>reply"},
		{"```\ncode *not bold*\n```\nafter", "<pre>code *not bold*</pre>after"},
		{"*_both_*", "<b><i>both</i></b>"},
	}
	for _, tt := range tests {
		if got := stylingToHTML(tt.in); got != tt.want {
			t.Errorf("stylingToHTML(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestHTMLToStyling(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain &amp; simple", "plain & simple"},
		{"<b>bold</b> <i>it</i> <s>x</s> <code>a*b</code> <u>u</u>", "*bold* _it_ ~x~ `a*b` u"},
		{"<b> spaced </b>end", " *spaced* end"},
		{"<a href=\"https://e.org\">site</a>", "site <https://e.org>"},
		{"<a href=\"https://e.org\">https://e.org</a>", "https://e.org"},
		{"one<br>two", "one\ntwo"},
		{"<blockquote>q1<br>q2</blockquote>answer", "> q1\n> q2\nanswer"},
		{"<pre>line1\nline2</pre>", "```\nline1\nline2\n```"},
		{"<b></b>empty", "empty"},
	}
	for _, tt := range tests {
		if got := htmlToStyling(tt.in); got != tt.want {
			t.Errorf("htmlToStyling(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestStylingRoundTrip: what htmlToStyling writes reads back as the same
// formatting.
func TestStylingRoundTrip(t *testing.T) {
	for _, h := range []string{
		"<b>bold</b> text",
		"<i>it</i> and <s>strike</s>",
		"<code>x</code>",
		"<blockquote>quoted</blockquote>reply",
		"<pre>pre *x*</pre>after",
	} {
		if got := stylingToHTML(htmlToStyling(h)); got != h {
			t.Errorf("%q → %q → %q", h, htmlToStyling(h), got)
		}
	}
}
