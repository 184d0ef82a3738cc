package xmpp

import (
	"html"
	"strings"

	nethtml "golang.org/x/net/html"
	"golang.org/x/net/html/atom"
	"mellium.im/xmpp/styling"
)

// stylingToHTML renders an XEP-0393 styled body in the bridge's HTML
// subset (b, i, s, code, pre, blockquote, br), with the styling
// directives themselves left out. It returns "" when the body has no
// styling, so that plain text stays plain.
func stylingToHTML(body string) string {
	if !strings.ContainsAny(body, "*_~`>") {
		return ""
	}
	d := styling.NewDecoder(strings.NewReader(body))
	var b strings.Builder
	var open []string // tags open, outermost first
	styled := false
	want := func(mask styling.Style, quote uint) []string {
		var tags []string
		for range quote {
			tags = append(tags, "blockquote")
		}
		if mask&styling.BlockPre != 0 {
			return append(tags, "pre")
		}
		if mask&styling.SpanStrong != 0 {
			tags = append(tags, "b")
		}
		if mask&styling.SpanEmph != 0 {
			tags = append(tags, "i")
		}
		if mask&styling.SpanStrike != 0 {
			tags = append(tags, "s")
		}
		if mask&styling.SpanPre != 0 {
			tags = append(tags, "code")
		}
		return tags
	}
	setTags := func(tags []string) {
		common := 0
		for common < len(open) && common < len(tags) && open[common] == tags[common] {
			common++
		}
		for i := len(open) - 1; i >= common; i-- {
			b.WriteString("</" + open[i] + ">")
		}
		for _, t := range tags[common:] {
			b.WriteString("<" + t + ">")
		}
		open = append(open[:common], tags[common:]...)
	}
	for d.Next() {
		tok := d.Token()
		mask := d.Style()
		text := string(tok.Data)
		if mask&styling.Directive != 0 {
			styled = true
			switch {
			case mask&styling.BlockQuoteStart != 0:
				// "> " opens a quote line: the marker itself is dropped.
				continue
			case mask&styling.BlockPreStart != 0, mask&styling.BlockPreEnd != 0:
				setTags(want(mask&^styling.BlockPre, d.Quote()))
				if mask&styling.BlockPreStart != 0 {
					setTags(want(mask|styling.BlockPre, d.Quote()))
				}
				continue
			case mask&(styling.SpanStartDirective|styling.SpanEndDirective) != 0:
				continue
			}
		}
		if text == "" {
			continue
		}
		inPre := mask&styling.BlockPre != 0
		setTags(want(mask, d.Quote()))
		if inPre {
			b.WriteString(html.EscapeString(text))
			continue
		}
		lines := strings.Split(text, "\n")
		for i, l := range lines {
			if i > 0 {
				b.WriteString("<br>")
			}
			b.WriteString(html.EscapeString(l))
		}
	}
	setTags(nil)
	if !styled {
		return ""
	}
	out := b.String()
	// A quote or pre block ends its line: no break right before the end.
	for _, t := range []string{"blockquote", "pre"} {
		out = strings.ReplaceAll(out, "<br></"+t+">", "</"+t+">")
		out = strings.ReplaceAll(out, "\n</"+t+">", "</"+t+">")
		out = strings.ReplaceAll(out, "</"+t+"><br>", "</"+t+">")
	}
	return out
}

// htmlToStyling renders the bridge's HTML subset as an XEP-0393 styled
// body: b/strong → *x*, i/em → _x_, s/del/strike → ~x~, code → `x`,
// pre → a ``` block, blockquote → "> " lines, a → its text and address,
// br and blocks → line breaks. Underline has no styling and is dropped.
func htmlToStyling(src string) string {
	nodes, err := nethtml.ParseFragment(strings.NewReader(src), &nethtml.Node{Type: nethtml.ElementNode, DataAtom: atom.Body, Data: "body"})
	if err != nil {
		return ""
	}
	w := &stylingWriter{}
	for _, n := range nodes {
		w.node(n)
	}
	return strings.Trim(w.b.String(), "\n")
}

type stylingWriter struct {
	b strings.Builder
}

func (w *stylingWriter) ensureNewline() {
	s := w.b.String()
	if s != "" && !strings.HasSuffix(s, "\n") {
		w.b.WriteByte('\n')
	}
}

// inner renders n's children on their own.
func (w *stylingWriter) inner(n *nethtml.Node) string {
	sub := &stylingWriter{}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		sub.node(c)
	}
	return sub.b.String()
}

// span wraps text in a styling directive. XEP-0393 only styles spans that
// neither start nor end with space, so surrounding space stays outside.
func (w *stylingWriter) span(text, mark string) {
	trimmed := strings.TrimSpace(text)
	if trimmed == "" || strings.Contains(trimmed, "\n") {
		w.b.WriteString(text)
		return
	}
	lead := text[:strings.Index(text, trimmed)]
	trail := text[len(lead)+len(trimmed):]
	w.b.WriteString(lead + mark + trimmed + mark + trail)
}

func (w *stylingWriter) node(n *nethtml.Node) {
	switch n.Type {
	case nethtml.TextNode:
		w.b.WriteString(n.Data)
		return
	case nethtml.ElementNode:
	default:
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			w.node(c)
		}
		return
	}
	switch n.DataAtom {
	case atom.B, atom.Strong:
		w.span(w.inner(n), "*")
	case atom.I, atom.Em:
		w.span(w.inner(n), "_")
	case atom.S, atom.Del, atom.Strike:
		w.span(w.inner(n), "~")
	case atom.Code:
		w.span(textContent(n), "`")
	case atom.Br:
		w.b.WriteByte('\n')
	case atom.Pre:
		w.ensureNewline()
		w.b.WriteString("```\n" + strings.TrimRight(textContent(n), "\n") + "\n```\n")
	case atom.Blockquote:
		w.ensureNewline()
		text := strings.Trim(w.inner(n), "\n")
		for _, l := range strings.Split(text, "\n") {
			w.b.WriteString("> " + l + "\n")
		}
	case atom.A:
		text := w.inner(n)
		href := ""
		for _, a := range n.Attr {
			if a.Key == "href" {
				href = a.Val
			}
		}
		w.b.WriteString(text)
		if href != "" && strings.TrimSpace(text) != href && !strings.HasPrefix(href, "mailto:"+strings.TrimSpace(text)) {
			w.b.WriteString(" <" + href + ">")
		}
	case atom.P, atom.Div, atom.Li, atom.Ul, atom.Ol:
		w.ensureNewline()
		w.b.WriteString(w.inner(n))
		w.ensureNewline()
	default:
		w.b.WriteString(w.inner(n))
	}
}

func textContent(n *nethtml.Node) string {
	var b strings.Builder
	var walk func(*nethtml.Node)
	walk = func(n *nethtml.Node) {
		switch {
		case n.Type == nethtml.TextNode:
			b.WriteString(n.Data)
		case n.Type == nethtml.ElementNode && n.DataAtom == atom.Br:
			b.WriteByte('\n')
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}
