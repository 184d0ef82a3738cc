package bridge

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// MentionSpan is where a mention stands in a text: Mentions[Index] is
// named by text[Start:End] (byte offsets).
type MentionSpan struct {
	Index, Start, End int
}

// wordRune is a rune a mention may not run into: "bob" is no mention of
// bob in "bobby" or "bob_2".
func wordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

// IsWordAt reports whether s[start:end] stands as a whole word: no
// letter, digit or "_" touches it on either side.
func IsWordAt(s string, start, end int) bool {
	if start > 0 {
		if r, _ := utf8.DecodeLastRuneInString(s[:start]); wordRune(r) {
			return false
		}
	}
	if end < len(s) {
		if r, _ := utf8.DecodeRuneInString(s[end:]); wordRune(r) {
			return false
		}
	}
	return true
}

// FindMentions is where each mention's Text first stands in text as a
// whole word, no two overlapping, in text order; a mention without Text,
// or whose Text is not there, has no span.
func FindMentions(text string, ms []Mention) []MentionSpan {
	var spans []MentionSpan
	taken := func(start, end int) bool {
		for _, s := range spans {
			if start < s.End && s.Start < end {
				return true
			}
		}
		return false
	}
	for i, m := range ms {
		if m.Text == "" {
			continue
		}
		for from := 0; from < len(text); {
			j := strings.Index(text[from:], m.Text)
			if j < 0 {
				break
			}
			start, end := from+j, from+j+len(m.Text)
			if IsWordAt(text, start, end) && !taken(start, end) {
				spans = append(spans, MentionSpan{Index: i, Start: start, End: end})
				break
			}
			_, size := utf8.DecodeRuneInString(text[start:])
			from = start + size
		}
	}
	sort.Slice(spans, func(a, b int) bool { return spans[a].Start < spans[b].Start })
	return spans
}

// RenameMentions puts names[i] in place of where mention i stands in
// text (see FindMentions), for every names[i] that is not "": the name
// the receiving network knows them by. It returns the new text and the
// spans of the names in it, in text order.
func RenameMentions(text string, ms []Mention, names []string) (string, []MentionSpan) {
	var b strings.Builder
	var out []MentionSpan
	last := 0
	for _, s := range FindMentions(text, ms) {
		name := names[s.Index]
		if name == "" {
			name = text[s.Start:s.End]
		}
		b.WriteString(text[last:s.Start])
		start := b.Len()
		b.WriteString(name)
		out = append(out, MentionSpan{Index: s.Index, Start: start, End: b.Len()})
		last = s.End
	}
	if last == 0 && len(out) == 0 {
		return text, nil
	}
	b.WriteString(text[last:])
	return b.String(), out
}

// RenameMentionsHTML is RenameMentions for a fragment in this package's
// HTML subset: where mention i stands in its text (outside tags, and
// outside links, which already point somewhere), render(i) takes its
// place; render returns HTML, or "" to leave that mention as it is.
func RenameMentionsHTML(src string, ms []Mention, render func(i int) string) string {
	if len(ms) == 0 || src == "" {
		return src
	}
	done := make([]bool, len(ms))
	var b strings.Builder
	z := html.NewTokenizerFragment(strings.NewReader(src), "div")
	inLink, changed := 0, false
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		raw := string(z.Raw())
		switch tt {
		case html.StartTagToken, html.EndTagToken:
			if name, _ := z.TagName(); atom.Lookup(name) == atom.A {
				if tt == html.StartTagToken {
					inLink++
				} else if inLink > 0 {
					inLink--
				}
			}
		case html.TextToken:
			if inLink > 0 {
				break
			}
			text := html.UnescapeString(raw)
			var left []Mention
			var index []int
			for i, m := range ms {
				if !done[i] {
					left = append(left, m)
					index = append(index, i)
				}
			}
			spans := FindMentions(text, left)
			if len(spans) == 0 {
				break
			}
			var t strings.Builder
			last := 0
			for _, s := range spans {
				i := index[s.Index]
				r := render(i)
				if r == "" {
					continue
				}
				t.WriteString(html.EscapeString(text[last:s.Start]))
				t.WriteString(r)
				last, done[i], changed = s.End, true, true
			}
			if last > 0 {
				t.WriteString(html.EscapeString(text[last:]))
				raw = t.String()
			}
		}
		b.WriteString(raw)
	}
	if !changed {
		return src
	}
	return b.String()
}
