package matrix

import (
	"html"
	"net/url"
	"regexp"
	"strings"

	nethtml "golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// allowedTags is the HTML both directions keep: the event model's subset
// and the common Matrix formatting. Other elements are unwrapped (their
// text stays); dropTags are removed with their content.
var allowedTags = map[string]bool{
	"b": true, "strong": true, "i": true, "em": true, "u": true, "s": true, "del": true,
	"strike": true, "code": true, "pre": true, "blockquote": true, "a": true, "br": true,
	"p": true, "ul": true, "ol": true, "li": true, "h1": true, "h2": true, "h3": true,
	"h4": true, "h5": true, "h6": true, "sup": true, "sub": true, "hr": true, "font": true,
	"span": true,
}

var dropTags = map[string]bool{
	"script": true, "style": true, "head": true, "title": true, "iframe": true, "object": true,
	"embed": true, "template": true, "mx-reply": true, "textarea": true, "select": true,
	"noscript": true, "svg": true, "math": true,
}

var voidTags = map[string]bool{"br": true, "hr": true}

var (
	colorRE    = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)
	languageRE = regexp.MustCompile(`^language-[a-zA-Z0-9_+-]{1,32}$`)
)

// sanitizeHTML keeps the safe subset of an HTML fragment: allowed tags
// with their allowed attributes (a href with http, https, mailto or
// matrix.to links; colors as #rrggbb; code's language class), everything
// else as escaped text. Reply fallbacks (mx-reply) are dropped.
func sanitizeHTML(src string) string {
	if src == "" {
		return ""
	}
	nodes, err := nethtml.ParseFragment(strings.NewReader(src), &nethtml.Node{Type: nethtml.ElementNode, DataAtom: atom.Body, Data: "body"})
	if err != nil {
		return html.EscapeString(src)
	}
	var b strings.Builder
	for _, n := range nodes {
		writeNode(&b, n, 0)
	}
	return b.String()
}

func writeNode(b *strings.Builder, n *nethtml.Node, depth int) {
	if depth > 64 {
		return
	}
	switch n.Type {
	case nethtml.TextNode:
		b.WriteString(html.EscapeString(n.Data))
		return
	case nethtml.ElementNode:
	default:
		return // comments, doctypes
	}
	tag := strings.ToLower(n.Data)
	if dropTags[tag] {
		return
	}
	if !allowedTags[tag] {
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			writeNode(b, c, depth+1)
		}
		return
	}
	b.WriteString("<" + tag)
	for _, a := range n.Attr {
		if v, ok := allowedAttr(tag, strings.ToLower(a.Key), a.Val); ok {
			b.WriteString(" " + strings.ToLower(a.Key) + `="` + html.EscapeString(v) + `"`)
		}
	}
	b.WriteString(">")
	if voidTags[tag] {
		return
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		writeNode(b, c, depth+1)
	}
	b.WriteString("</" + tag + ">")
}

func allowedAttr(tag, key, val string) (string, bool) {
	switch {
	case tag == "a" && key == "href":
		u, err := url.Parse(strings.TrimSpace(val))
		if err != nil {
			return "", false
		}
		switch strings.ToLower(u.Scheme) {
		case "http", "https", "mailto", "matrix":
			return u.String(), true
		}
	case (tag == "font" || tag == "span") && (key == "color" || key == "data-mx-color" || key == "data-mx-bg-color"):
		return val, colorRE.MatchString(val)
	case tag == "code" && key == "class":
		return val, languageRE.MatchString(val)
	case tag == "ol" && key == "start":
		for _, r := range val {
			if r < '0' || r > '9' {
				return "", false
			}
		}
		return val, val != "" && len(val) < 10
	}
	return "", false
}

// textToHTML escapes plain text for formatted_body, with line breaks.
func textToHTML(s string) string {
	return strings.ReplaceAll(html.EscapeString(s), "\n", "<br>")
}

// stripReplyFallback removes the "> <@user> quoted" lines a reply's body
// starts with in older clients.
func stripReplyFallback(body string) string {
	if !strings.HasPrefix(body, "> <") {
		return body
	}
	lines := strings.Split(body, "\n")
	i := 0
	for i < len(lines) && strings.HasPrefix(lines[i], "> ") {
		i++
	}
	if i < len(lines) && lines[i] == "" {
		i++
	}
	return strings.Join(lines[i:], "\n")
}
