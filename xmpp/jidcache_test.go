package xmpp

import (
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
	_, kept := parsedJIDs.get(long)
	parsedJIDs.Unlock()
	if kept {
		t.Error("a JID over maxCachedJIDLen is kept")
	}
	for i := range maxCachedJIDs + 10 {
		parseJID(fmt.Sprintf("u%d@localhost", i))
	}
	parsedJIDs.Lock()
	n := parsedJIDs.len()
	parsedJIDs.Unlock()
	if n > maxCachedJIDs {
		t.Errorf("%d JIDs kept, over the bound of %d", n, maxCachedJIDs)
	}
}
