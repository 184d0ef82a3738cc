package xmpp

import (
	"encoding/xml"
	"fmt"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
)

func TestParseJIDRemembers(t *testing.T) {
	for _, s := range []string{"Lobby@Conference.Example.ORG/Ünïcode Nick", "bot@sb.localhost", "localhost"} {
		for range 2 { // parsed, then remembered
			got, err := parseJID(s)
			want := jid.MustParse(s)
			if err != nil || !got.Equal(want) || got.String() != want.String() {
				t.Errorf("parseJID(%q) = %v, %v; want %v", s, got, err, want)
			}
		}
	}
	for range 2 {
		if _, err := parseJID("@no-local"); err == nil {
			t.Error("an invalid JID parses")
		}
	}
	long := strings.Repeat("a", 300) + "@localhost"
	if j, err := parseJID(long); err != nil || j.Localpart() != long[:300] {
		t.Errorf("parseJID(a long JID) = %v, %v", j, err)
	}
	parsedJIDs.Lock()
	_, kept := parsedJIDs.m[long]
	parsedJIDs.Unlock()
	if kept {
		t.Error("a JID over maxCachedJIDLen is kept")
	}
	for i := range maxCachedJIDs + 10 {
		parseJID(fmt.Sprintf("u%d@localhost", i))
	}
	parsedJIDs.Lock()
	n := len(parsedJIDs.m)
	parsedJIDs.Unlock()
	if n > maxCachedJIDs {
		t.Errorf("%d JIDs kept, over the bound of %d", n, maxCachedJIDs)
	}
}

// sizeBound, which lets fit skip encoding a stanza, is never below the
// stanza's encoded size, whatever its text escapes to.
func TestSizeBoundCoversTheEncoding(t *testing.T) {
	hostile := "\"&<>'\t\r\n\x00\xff" + `"'"&&`
	for _, text := range []string{"", "hi", hostile, strings.Repeat(`"`, 500), strings.Repeat("\xff", 300)} {
		e := el("jabber:component:accept", "message", "to", "room@conference.localhost", "from", hostile+"@sb.localhost/"+text, "type", "groupchat", "id", text)
		e.attr = append(e.attr, xml.Attr{Name: xml.Name{Space: "http://www.w3.org/XML/1998/namespace", Local: "lang"}, Value: text},
			xml.Attr{Name: xml.Name{Space: "urn:example:" + text, Local: "x"}, Value: text})
		body := el("", "body")
		body.text = text
		e.add(body, el(nsSID, "origin-id", "id", text), el("urn:example:"+hostile, "deep").add(el("", "deeper", "a", text)))
		for _, e := range append([]*element{e}, e.kids...) {
			if bound, size := e.sizeBound(), e.encodedSize(); bound < size {
				t.Errorf("text %q: bound %d below the encoded size %d:\n%s", text, bound, size, e)
			}
		}
	}
}
