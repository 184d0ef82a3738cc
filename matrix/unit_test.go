package matrix

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"

	"github.com/switchboard-chat/switchboard/bridge"
)

func TestGhostLocalpartRoundTrip(t *testing.T) {
	g := newGhosts("sb_{network}_{id}", "example.org")
	seen := map[string]bridge.Sender{}
	for _, s := range []bridge.Sender{
		{Network: "libera", ID: "alice"},
		{Network: "libera", ID: "Alice"},
		{Network: "libera_x", ID: "alice"},
		{Network: "libera", ID: "x_alice"},
		{Network: "jabber", ID: "bob@example.org/phone"},
		{Network: "devices", ID: "ünïcode = 😀"},
		{Network: "a", ID: "_x"},
		{Network: "a_", ID: "x"},
		// A person's puppet identity (bridge.Sender.Puppet).
		{Network: "libera", ID: "person/alice"},
	} {
		local := g.localpart(s)
		if err := CheckLocalpart(local); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
		if other, dup := seen[local]; dup {
			t.Errorf("%+v and %+v share %s", s, other, local)
		}
		seen[local] = s
		if !g.isGhost("@" + local + ":example.org") {
			t.Errorf("%s not in the ghost namespace", local)
		}
		net, id, ok := g.parse(local)
		if !ok || net != s.Network || id != s.ID {
			t.Errorf("parse(%s) = %q %q %v, want %+v", local, net, id, ok, s)
		}
		if g.localpart(s) != local {
			t.Errorf("%+v: not stable", s)
		}
	}
	if got := g.localpart(bridge.Sender{Network: "libera", ID: "alice"}); got != "sb_libera_alice" {
		t.Errorf("plain id: %s", got)
	}
	long := bridge.Sender{Network: "x", ID: strings.Repeat("Ä", 300)}
	local := g.localpart(long)
	if len("@"+local+":example.org") > maxUserID || strings.Trim(local, "abcdefghijklmnopqrstuvwxyz0123456789._=/-") != "" {
		t.Errorf("long id: %d bytes, %s", len(local), local)
	}
	if g.localpart(bridge.Sender{Network: "x", ID: strings.Repeat("Ä", 300) + "b"}) == local {
		t.Error("long ids collide")
	}
	if g.isGhost("@switchboard:example.org") || g.isGhost("@sb_x_y:other.org") {
		t.Error("namespace too wide")
	}
}

func TestSanitizeHTML(t *testing.T) {
	for in, want := range map[string]string{
		`<b>x</b>`:                                              `<b>x</b>`,
		`<script>alert(1)</script>y`:                            `y`,
		`<img src=x onerror=alert(1)>z`:                         `z`,
		`<a href="javascript:alert(1)">l</a>`:                   `<a>l</a>`,
		`<a href="https://e.org/?a=1&b=2" onclick="x">l</a>`:    `<a href="https://e.org/?a=1&amp;b=2">l</a>`,
		`<font color="#ff0000" style="x">r</font>`:              `<font color="#ff0000">r</font>`,
		`<font color="red;x">r</font>`:                          `<font>r</font>`,
		`<code class="language-go">c</code>`:                    `<code class="language-go">c</code>`,
		`<mx-reply><blockquote>q</blockquote></mx-reply>answer`: `answer`,
		`1 < 2 & <div>block</div>`:                              `1 &lt; 2 &amp; block`,
		`<p>a<br/>b</p>`:                                        `<p>a<br>b</p>`,
		`<b onmouseover="x">`:                                   `<b></b>`,
	} {
		if got := sanitizeHTML(in); got != want {
			t.Errorf("sanitizeHTML(%q) = %q, want %q", in, got, want)
		}
	}
	if got := textToHTML("<b>&\nx"); got != "&lt;b&gt;&amp;<br>x" {
		t.Errorf("textToHTML: %q", got)
	}
	if got := stripReplyFallback("> <@a:b> quoted\n> more\n\nanswer"); got != "answer" {
		t.Errorf("stripReplyFallback: %q", got)
	}
}

func TestTokenCheck(t *testing.T) {
	a := &Adapter{cfg: Config{HSToken: "right"}}
	mux := http.NewServeMux()
	register(mux, a, true)
	defer unregister(a)
	for _, c := range []struct {
		header, query string
		want          int
	}{
		{"", "", http.StatusUnauthorized},
		{"Basic right", "", http.StatusUnauthorized},
		{"Bearer wrong", "", http.StatusForbidden},
		{"Bearer righ", "", http.StatusForbidden},
		{"Bearer ", "", http.StatusForbidden},
		{"", "access_token=wrong", http.StatusForbidden},
		{"Bearer right", "", http.StatusOK},
		{"", "access_token=right", http.StatusOK},
	} {
		req := httptest.NewRequest(http.MethodPost, "/_matrix/app/v1/ping?"+c.query, strings.NewReader("{}"))
		if c.header != "" {
			req.Header.Set("Authorization", c.header)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		if w.Code != c.want {
			t.Errorf("%q %q: %d, want %d", c.header, c.query, w.Code, c.want)
		}
	}
	if tokenMatches("", "") {
		t.Error("an empty token matches an empty configured one")
	}
}

func TestRegistration(t *testing.T) {
	c := &Config{Domain: "example.org", ASToken: "a", HSToken: "h", Bot: "switchboard", GhostLocalpart: "sb_{network}_{id}", ID: "switchboard"}
	reg := Registration(c, "0.0.0.0:8080")
	if reg.URL != "http://127.0.0.1:8080" || reg.SenderLocalpart != "switchboard" || reg.RateLimited == nil || *reg.RateLimited {
		t.Errorf("%+v", reg)
	}
	c.Listen = "127.0.0.1:9000"
	if u := Registration(c, "127.0.0.1:8080").URL; u != "http://127.0.0.1:9000" {
		t.Errorf("with listen: %s", u)
	}
	c.URL = "https://bridge.example.org"
	if u := Registration(c, "127.0.0.1:8080").URL; u != "https://bridge.example.org" {
		t.Errorf("with url: %s", u)
	}
	g := newGhosts(c.GhostLocalpart, c.Domain)
	if !g.isGhost("@sb_libera_alice:example.org") || g.isGhost("@sb_libera_alice:example.org.evil") {
		t.Error("ghost regex")
	}
}

// TestRelayNamesNeutralized checks what a Matrix user reads from a relay
// prefix and a quote of a sender whose name tries to pass for text.
func TestRelayNamesNeutralized(t *testing.T) {
	a := &Adapter{relay: true, template: "{name} ({network})"}
	s := bridge.Sender{Network: "mqtt", ID: "dev1", Name: "watcher> hi all, I am the op <x\u202E"}
	c := a.content(&bridge.Message{Text: "R3 real", HTML: "<b>R3</b> real"}, s, false)
	if want := "<watcher_ hi all, I am the op _x (mqtt)> R3 real"; c.Body != want {
		t.Errorf("body %+q, want %+q", c.Body, want)
	}
	if want := "&lt;watcher_ hi all, I am the op _x (mqtt)&gt; <b>R3</b> real"; c.FormattedBody != want {
		t.Errorf("formatted body %+q, want %+q", c.FormattedBody, want)
	}
	addReply(c, &bridge.Quote{SenderName: "bob> no <", Text: "earlier"})
	if !strings.HasPrefix(c.Body, "> <bob_ no _> earlier\n\n") {
		t.Errorf("quote %+q", c.Body)
	}
}

// directInvite lets through, of a person's memberships, only an invite
// to a direct chat: not a group invite, not a join marked is_direct.
func TestDirectInvite(t *testing.T) {
	for raw, want := range map[string]bool{
		`{"membership":"invite","is_direct":true}`:  true,
		`{"membership":"invite"}`:                   false,
		`{"membership":"invite","is_direct":false}`: false,
		`{"membership":"join","is_direct":true}`:    false,
		`not json`:                                  false,
	} {
		evt := &event.Event{Content: event.Content{VeryRaw: json.RawMessage(raw)}}
		if got := directInvite(evt); got != want {
			t.Errorf("directInvite(%s) = %v, want %v", raw, got, want)
		}
	}
}
