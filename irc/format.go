package irc

import (
	"fmt"
	stdhtml "html"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// color is an IRC color: one of the 99 palette entries (\x03NN) or an RGB
// value (\x04RRGGBB).
type color struct {
	kind uint8 // colorNone, colorPalette, colorHex
	n    uint8
	rgb  uint32
}

const (
	colorNone uint8 = iota
	colorPalette
	colorHex
)

// fmtState is the formatting in effect at some point of an IRC line.
type fmtState struct {
	bold, italic, underline, strike, mono, reverse bool
	fg, bg                                         color
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func hex6(s string, i int) (uint32, bool) {
	if i+6 > len(s) {
		return 0, false
	}
	for j := i; j < i+6; j++ {
		if !isHex(s[j]) {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(s[i:i+6], 16, 32)
	return uint32(v), err == nil
}

// digits2 reads one or two digits at s[i] the way clients do: two
// whenever two are there.
func digits2(s string, i int) (n, width int) {
	for width < 2 && i+width < len(s) && isDigit(s[i+width]) {
		n = n*10 + int(s[i+width]-'0')
		width++
	}
	return n, width
}

func paletteColor(n int) color {
	if n >= 99 {
		return color{} // 99 is "default"
	}
	return color{kind: colorPalette, n: uint8(n)}
}

// apply reads the formatting code at s[i], updates st and returns the
// code's length in bytes. Color codes are read greedily, as clients read
// them, so the length tells where the visible text starts again.
func (st *fmtState) apply(s string, i int) int {
	switch s[i] {
	case codeBold:
		st.bold = !st.bold
	case codeItalic:
		st.italic = !st.italic
	case codeUnderline:
		st.underline = !st.underline
	case codeStrike:
		st.strike = !st.strike
	case codeMonospace:
		st.mono = !st.mono
	case codeReverse:
		st.reverse = !st.reverse
	case codeReset:
		*st = fmtState{}
	case codeColor:
		fg, w := digits2(s, i+1)
		if w == 0 {
			st.fg, st.bg = color{}, color{}
			return 1
		}
		st.fg = paletteColor(fg)
		j := i + 1 + w
		if j+1 < len(s) && s[j] == ',' && isDigit(s[j+1]) {
			bg, w2 := digits2(s, j+1)
			st.bg = paletteColor(bg)
			j += 1 + w2
		}
		return j - i
	case codeHexColor:
		fg, ok := hex6(s, i+1)
		if !ok {
			st.fg, st.bg = color{}, color{}
			return 1
		}
		st.fg = color{kind: colorHex, rgb: fg}
		j := i + 7
		if j < len(s) && s[j] == ',' {
			if bg, ok := hex6(s, j+1); ok {
				st.bg = color{kind: colorHex, rgb: bg}
				j += 7
			}
		}
		return j - i
	default:
		return 0
	}
	return 1
}

// codes returns the formatting codes that turn a fresh line's formatting
// into st, for text starting with next. Two-digit colors keep a following
// digit from being read as part of the code; an explicit default
// background keeps a following ",5" from being read as one.
func (st fmtState) codes(next string) string {
	var b strings.Builder
	if st.bold {
		b.WriteByte(codeBold)
	}
	if st.italic {
		b.WriteByte(codeItalic)
	}
	if st.underline {
		b.WriteByte(codeUnderline)
	}
	if st.strike {
		b.WriteByte(codeStrike)
	}
	if st.mono {
		b.WriteByte(codeMonospace)
	}
	if st.reverse {
		b.WriteByte(codeReverse)
	}
	commaNext := len(next) > 1 && next[0] == ',' && (isDigit(next[1]) || isHex(next[1]))
	if st.fg.kind == colorPalette || st.bg.kind == colorPalette {
		fg := 99
		if st.fg.kind == colorPalette {
			fg = int(st.fg.n)
		}
		fmt.Fprintf(&b, "\x03%02d", fg)
		if st.bg.kind == colorPalette {
			fmt.Fprintf(&b, ",%02d", st.bg.n)
		} else if commaNext && st.fg.kind != colorHex {
			b.WriteString(",99")
		}
	}
	if st.fg.kind == colorHex {
		fmt.Fprintf(&b, "\x04%06X", st.fg.rgb)
		if st.bg.kind == colorHex {
			fmt.Fprintf(&b, ",%06X", st.bg.rgb)
		} else if commaNext {
			// No "default" hex background exists; a bold toggle pair
			// separates the code from the text instead.
			b.WriteString("\x02\x02")
		}
	}
	return b.String()
}

// stripCodes removes IRC formatting codes.
func stripCodes(s string) string {
	i := strings.IndexFunc(s, func(r rune) bool { return r < 0x20 && isFormatCode(byte(r)) })
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	var st fmtState
	for i < len(s) {
		if isFormatCode(s[i]) {
			i += st.apply(s, i)
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// ircPalette holds the usual RGB values of the 16 standard IRC colors
// followed by the 83 extended ones (16-98), the latter approximated by
// their xterm-256 equivalents.
var ircPalette = func() [99]uint32 {
	var p [99]uint32
	copy(p[:], []uint32{
		0xFFFFFF, 0x000000, 0x00007F, 0x009300, 0xFF0000, 0x7F0000, 0x9C009C, 0xFC7F00,
		0xFFFF00, 0x00FC00, 0x009393, 0x00FFFF, 0x0000FC, 0xFF00FF, 0x7F7F7F, 0xD2D2D2,
	})
	xterm := []int{
		52, 94, 100, 58, 22, 29, 23, 24, 17, 54, 53, 89,
		88, 130, 142, 64, 28, 35, 30, 25, 18, 91, 90, 125,
		124, 166, 184, 106, 34, 49, 37, 33, 19, 129, 127, 161,
		196, 208, 226, 154, 46, 86, 51, 75, 21, 171, 201, 198,
		203, 215, 227, 191, 83, 122, 87, 111, 63, 177, 207, 205,
		217, 223, 229, 193, 157, 158, 159, 153, 147, 183, 219, 212,
		16, 233, 235, 237, 239, 241, 244, 247, 250, 254, 231,
	}
	level := [6]uint32{0, 95, 135, 175, 215, 255}
	for i, x := range xterm {
		var rgb uint32
		if x >= 232 {
			g := uint32(8 + 10*(x-232))
			rgb = g<<16 | g<<8 | g
		} else {
			x -= 16
			rgb = level[x/36]<<16 | level[x/6%6]<<8 | level[x%6]
		}
		p[16+i] = rgb
	}
	return p
}()

func (c color) rgbValue() (uint32, bool) {
	switch c.kind {
	case colorPalette:
		return ircPalette[c.n], true
	case colorHex:
		return c.rgb, true
	}
	return 0, false
}

// htmlTags lists the HTML elements that express st, outermost first, in
// a fixed order so that nesting can be kept minimal.
func (st fmtState) htmlTags() []string {
	var tags []string
	if st.bold {
		tags = append(tags, "b")
	}
	if st.italic {
		tags = append(tags, "i")
	}
	if st.underline {
		tags = append(tags, "u")
	}
	if st.strike {
		tags = append(tags, "del")
	}
	if st.mono {
		tags = append(tags, "code")
	}
	if rgb, ok := st.fg.rgbValue(); ok {
		tags = append(tags, fmt.Sprintf("font color=\"#%06x\"", rgb))
	}
	return tags
}

// ircToHTML renders IRC formatting as the event model's HTML subset.
// ok is false when the line has no formatting worth a HTML version.
func ircToHTML(s string) (out string, ok bool) {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 && isFormatCode(byte(r)) }) {
		return "", false
	}
	var b strings.Builder
	var st fmtState
	var open []string
	tagged := false
	closeTo := func(n int) {
		for len(open) > n {
			t := open[len(open)-1]
			if sp := strings.IndexByte(t, ' '); sp >= 0 {
				t = t[:sp]
			}
			b.WriteString("</" + t + ">")
			open = open[:len(open)-1]
		}
	}
	for i := 0; i < len(s); {
		if isFormatCode(s[i]) {
			i += st.apply(s, i)
			continue
		}
		j := i
		for j < len(s) && !isFormatCode(s[j]) {
			j++
		}
		want := st.htmlTags()
		k := 0
		for k < len(open) && k < len(want) && open[k] == want[k] {
			k++
		}
		closeTo(k)
		for _, t := range want[k:] {
			b.WriteString("<" + t + ">")
			open = append(open, t)
			tagged = true
		}
		b.WriteString(stdhtml.EscapeString(s[i:j]))
		i = j
	}
	closeTo(0)
	return b.String(), tagged
}

// htmlToIRC renders the event model's HTML subset as IRC text: formatting
// codes, with line breaks as "\n". Unknown elements give their text.
func htmlToIRC(src string) string {
	ctx := &html.Node{Type: html.ElementNode, Data: "div", DataAtom: atom.Div}
	nodes, err := html.ParseFragment(strings.NewReader(src), ctx)
	if err != nil {
		return stdhtml.UnescapeString(src)
	}
	w := &ircWriter{lineEmpty: true}
	for _, n := range nodes {
		w.node(n, fmtState{})
	}
	return w.finish()
}

type ircWriter struct {
	b         strings.Builder
	cur       fmtState // formatting emitted so far on this line
	lineEmpty bool     // nothing visible on this line yet
	space     bool     // a collapsed space is due before the next text
	spaceSt   fmtState // the formatting of the text the space came from
	pre       int      // inside <pre>: keep white space and line breaks
	quote     int      // blockquote depth: lines start with "> "
	list      []int    // per open list: 0 for <ul>, else the next number of an <ol>
	linePfx   string   // what the next line starts with (list bullet)
}

func (w *ircWriter) newline() {
	w.b.WriteByte('\n')
	w.cur = fmtState{}
	w.lineEmpty = true
	w.space = false
}

// block ends the current line, if it has anything on it, so that a block
// element starts on a line of its own.
func (w *ircWriter) block() {
	if !w.lineEmpty {
		w.newline()
	}
}

func (w *ircWriter) startLine(next string) {
	if !w.lineEmpty {
		return
	}
	if w.quote > 0 {
		w.b.WriteString(strings.Repeat("> ", w.quote))
	}
	if w.linePfx != "" {
		w.b.WriteString(w.linePfx)
		w.linePfx = ""
	}
	w.lineEmpty = false
}

// to switches the emitted formatting to want just before text.
func (w *ircWriter) to(want fmtState, next string) {
	if want == w.cur {
		return
	}
	c := w.cur
	off := c.bold && !want.bold || c.italic && !want.italic || c.underline && !want.underline ||
		c.strike && !want.strike || c.mono && !want.mono || c.reverse && !want.reverse ||
		c.fg != want.fg && want.fg.kind == colorNone || c.bg != want.bg && want.bg.kind == colorNone
	if off {
		w.b.WriteByte(codeReset)
		w.b.WriteString(want.codes(next))
		w.cur = want
		return
	}
	diff := fmtState{
		bold: want.bold && !c.bold, italic: want.italic && !c.italic, underline: want.underline && !c.underline,
		strike: want.strike && !c.strike, mono: want.mono && !c.mono, reverse: want.reverse && !c.reverse,
	}
	if want.fg != c.fg || want.bg != c.bg {
		diff.fg, diff.bg = want.fg, want.bg
	}
	w.b.WriteString(diff.codes(next))
	w.cur = want
}

func (w *ircWriter) text(s string, st fmtState) {
	if w.pre > 0 {
		for i, part := range strings.Split(s, "\n") {
			if i > 0 {
				w.startLine("")
				w.newline()
			}
			if part != "" {
				w.startLine(part)
				w.to(st, part)
				w.b.WriteString(part)
			}
		}
		return
	}
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if unicode.IsSpace(r) {
			if !w.lineEmpty && !w.space {
				w.space, w.spaceSt = true, st
			}
			s = s[n:]
			continue
		}
		end := strings.IndexFunc(s, unicode.IsSpace)
		if end < 0 {
			end = len(s)
		}
		word := s[:end]
		w.startLine(word)
		if w.space {
			// In the formatting of where the space was: "<u>a</u> b"
			// must not underline the space.
			w.to(w.spaceSt, " ")
			w.b.WriteByte(' ')
			w.space = false
		}
		w.to(st, word)
		w.b.WriteString(word)
		s = s[end:]
	}
}

func parseCSSColor(v string) (color, bool) {
	v = strings.TrimSpace(strings.ToLower(v))
	if !strings.HasPrefix(v, "#") {
		return color{}, false
	}
	v = v[1:]
	if len(v) == 3 {
		v = string([]byte{v[0], v[0], v[1], v[1], v[2], v[2]})
	}
	rgb, ok := hex6(v, 0)
	if !ok || len(v) != 6 {
		return color{}, false
	}
	return nearestColor(rgb), true
}

// nearestColor picks the closest of the 16 standard colors: every client
// shows those, while hex colors (\x04) are rarely supported.
func nearestColor(rgb uint32) color {
	best, bestD := 0, -1
	for i := 0; i < 16; i++ {
		p := ircPalette[i]
		dr := int(rgb>>16&0xff) - int(p>>16&0xff)
		dg := int(rgb>>8&0xff) - int(p>>8&0xff)
		db := int(rgb&0xff) - int(p&0xff)
		d := 3*dr*dr + 4*dg*dg + 2*db*db
		if bestD < 0 || d < bestD {
			best, bestD = i, d
		}
	}
	return color{kind: colorPalette, n: uint8(best)}
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Namespace == "" && strings.EqualFold(a.Key, key) {
			return a.Val, true
		}
	}
	return "", false
}

func textOf(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

func (w *ircWriter) children(n *html.Node, st fmtState) {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		w.node(c, st)
	}
}

func (w *ircWriter) node(n *html.Node, st fmtState) {
	switch n.Type {
	case html.TextNode:
		w.text(n.Data, st)
		return
	case html.ElementNode:
	default:
		w.children(n, st)
		return
	}
	switch n.DataAtom {
	case atom.Script, atom.Style, atom.Head, atom.Title, atom.Template:
		return
	case atom.B, atom.Strong:
		st.bold = true
	case atom.I, atom.Em, atom.Cite, atom.Var:
		st.italic = true
	case atom.U, atom.Ins:
		st.underline = true
	case atom.S, atom.Del, atom.Strike:
		st.strike = true
	case atom.Code, atom.Kbd, atom.Samp, atom.Tt:
		st.mono = true
	case atom.Br:
		w.startLine("")
		w.newline()
		return
	case atom.Hr:
		w.block()
		w.text("---", fmtState{})
		w.block()
		return
	case atom.Img:
		if alt, ok := attr(n, "alt"); ok {
			w.text(alt, st)
		}
		return
	case atom.Pre:
		w.block()
		st.mono = true
		w.pre++
		w.children(n, st)
		w.pre--
		w.block()
		return
	case atom.Blockquote:
		w.block()
		w.quote++
		w.children(n, st)
		w.block()
		w.quote--
		return
	case atom.Ul, atom.Ol:
		w.block()
		num := 0
		if n.DataAtom == atom.Ol {
			num = 1
			if s, ok := attr(n, "start"); ok {
				if v, err := strconv.Atoi(s); err == nil {
					num = v
				}
			}
		}
		w.list = append(w.list, num)
		w.children(n, st)
		w.list = w.list[:len(w.list)-1]
		w.block()
		return
	case atom.Li:
		w.block()
		w.linePfx = "• "
		if k := len(w.list) - 1; k >= 0 && w.list[k] > 0 {
			w.linePfx = strconv.Itoa(w.list[k]) + ". "
			w.list[k]++
		}
		w.children(n, st)
		w.linePfx = ""
		w.block()
		return
	case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
		w.block()
		st.bold = true
		w.children(n, st)
		w.block()
		return
	case atom.P, atom.Div, atom.Tr, atom.Table, atom.Section, atom.Article, atom.Header, atom.Footer, atom.Details, atom.Summary:
		w.block()
		w.children(n, st)
		w.block()
		return
	case atom.Font:
		if v, ok := attr(n, "color"); ok {
			if c, ok := parseCSSColor(v); ok {
				st.fg = c
			}
		}
		if v, ok := attr(n, "data-mx-color"); ok {
			if c, ok := parseCSSColor(v); ok {
				st.fg = c
			}
		}
	case atom.Span:
		if v, ok := attr(n, "data-mx-color"); ok {
			if c, ok := parseCSSColor(v); ok {
				st.fg = c
			}
		}
		if v, ok := attr(n, "data-mx-bg-color"); ok {
			if c, ok := parseCSSColor(v); ok {
				st.bg = c
			}
		}
	case atom.A:
		href, _ := attr(n, "href")
		href = strings.TrimSpace(cleanLine(href))
		w.children(n, st)
		text := textOf(n)
		if href != "" && text != href && text != strings.TrimPrefix(href, "mailto:") {
			if text == "" {
				w.text(href, st)
			} else {
				w.text(" ("+href+")", fmtState{})
			}
		}
		return
	default:
		if n.Data == "mx-reply" {
			// Matrix reply fallback: the router renders replies itself.
			return
		}
	}
	w.children(n, st)
}

func (w *ircWriter) finish() string {
	lines := strings.Split(w.b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	for len(lines) > 0 && strings.TrimSpace(stripCodes(lines[0])) == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && strings.TrimSpace(stripCodes(lines[len(lines)-1])) == "" {
		lines = lines[:len(lines)-1]
	}
	return strings.Join(lines, "\n")
}
