package bridge

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// CutMarker ends a message that was cut short: how much was left out (n
// of unit, "lines" or "characters"), then link to the whole text when
// there is one. The link comes last, after a space: clients that link
// URLs would take a closing parenthesis after it for part of it.
func CutMarker(n int, unit, link string) string {
	m := "… (message cut: " + strconv.Itoa(n) + " more " + unit + ")"
	if link != "" {
		m += " " + link
	}
	return m
}

// CutText keeps text within max bytes, for a network configured with a
// size limit: a longer text becomes its beginning and a CutMarker
// counting the characters left out, the whole within max unless the
// marker alone is longer. The beginning ends at the last white space in
// its second half, else at a rune boundary, and never inside a rune.
func CutText(text string, max int, link string) string {
	if max <= 0 || len(text) <= max {
		return text
	}
	// The marker's longest form: no more characters are left out than
	// the text has bytes.
	room := max - len(CutMarker(len(text), "characters", link)) - 1
	end := 0
	for i := range text {
		if i > room {
			break
		}
		end = i
	}
	head := text[:end]
	if sp := strings.LastIndexFunc(head, unicode.IsSpace); sp > end/2 {
		head = head[:sp]
	}
	rest := strings.TrimLeftFunc(text[len(head):], unicode.IsSpace)
	head = strings.TrimRightFunc(head, unicode.IsSpace)
	sep := " "
	if head == "" {
		sep = ""
	}
	return head + sep + CutMarker(utf8.RuneCountInString(rest), "characters", link)
}
