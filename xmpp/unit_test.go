package xmpp

import (
	"bytes"
	"encoding/xml"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/mapping"
)

func TestPuppetJIDRoundTrip(t *testing.T) {
	tests := []struct {
		id, local string // local "" means the base32 form is fine
	}{
		{"bob", "bob%libera"},
		{"Bob", "^bob%libera"},
		{"bob^x", "bob^^x%libera"},
		{"alice@example.org", `alice\40example.org%libera`},
		{"a b", `a\20b%libera`},
		{`back\slash`, `back\5cslash%libera`},
		{`it's "q" <x>&/:`, `it\27s\20\22q\22\20\3cx\3e\26\2f\3a%libera`},
		{"50%", "50%%libera"},
		{"~tilde", ""},
		{" lead", ""},
		{"José", ""},
		{"日本", ""},
		{"tab\tchar", ""},
		{"@matrix:example.org", `\40matrix\3aexample.org%libera`},
	}
	for _, tt := range tests {
		s := bridge.Sender{Network: "libera", ID: tt.id}
		j, err := puppetJID(s, "bridge.example.org")
		if err != nil {
			t.Errorf("%q: %v", tt.id, err)
			continue
		}
		if tt.local != "" && j.Localpart() != tt.local {
			t.Errorf("%q: localpart %q, want %q", tt.id, j.Localpart(), tt.local)
		}
		if tt.local == "" && !strings.HasPrefix(j.Localpart(), "~") {
			t.Errorf("%q: localpart %q, want the base32 form", tt.id, j.Localpart())
		}
		network, id, err := senderOfJID(j.Localpart())
		if err != nil || network != "libera" || id != tt.id {
			t.Errorf("%q → %s → (%q, %q, %v)", tt.id, j, network, id, err)
		}
	}
	// Distinct ids never share a JID, case included.
	a, _ := puppetJID(bridge.Sender{Network: "n", ID: "Bob"}, "d")
	b, _ := puppetJID(bridge.Sender{Network: "n", ID: "bob"}, "d")
	if a.Equal(b) {
		t.Errorf("Bob and bob share %s", a)
	}
	for _, bad := range []string{"", "bob", "bob%", "%libera", "bob%Libera", "^%libera", "^1x%libera", "~!!%libera"} {
		if _, _, err := senderOfJID(bad); err == nil {
			t.Errorf("senderOfJID(%q) accepted", bad)
		}
	}
}

func FuzzPuppetJID(f *testing.F) {
	for _, s := range []string{"bob", "Bob^", "a b", "~x", "José", "\x00", "%%", `\20`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if !utf8.ValidString(id) || id == "" {
			return
		}
		j, err := puppetJID(bridge.Sender{Network: "net", ID: id}, "bridge.example.org")
		if err != nil {
			return
		}
		network, back, err := senderOfJID(j.Localpart())
		if err != nil || network != "net" || back != id {
			t.Fatalf("%q → %s → (%q, %q, %v)", id, j, network, back, err)
		}
	})
}

func TestRelayedNeutralizesNames(t *testing.T) {
	s := bridge.Sender{ID: "d1", Name: "watcher> hi all, I am the op <x\u202E\n"}
	if got := relayed(s, false, "R3 real"); got != "<watcher_ hi all, I am the op _x> R3 real" {
		t.Errorf("relayed %+q", got)
	}
	if got := relayed(s, true, "waves"); got != "* watcher_ hi all, I am the op _x waves" {
		t.Errorf("relayed emote %+q", got)
	}
	if got := puppetNick("a\u202Eb\u2066c\u200Bd (libera)", s); got != "abcd (libera)" {
		t.Errorf("puppet nick %+q", got)
	}
}

func TestPuppetNick(t *testing.T) {
	s := bridge.Sender{Network: "libera", ID: "x"}
	if got := puppetNick("  bob\x00 (libera)\n", s); got != "bob (libera)" {
		t.Errorf("nick %q", got)
	}
	if got := puppetNick("\x01\x02", s); got != "u"+mapping.Fingerprint(s) {
		t.Errorf("empty nick %q", got)
	}
	if got := puppetNick(strings.Repeat("é", 100), s); utf8.RuneCountInString(got) != maxNickRunes {
		t.Errorf("long nick %d runes", utf8.RuneCountInString(got))
	}
	alt1, alt2 := nickAlternative("bob (libera)", s, 1), nickAlternative("bob (libera)", s, 2)
	if alt1 == alt2 || !strings.HasPrefix(alt1, "bob (libera) [") || nickAlternative("n", s, 1) != nickAlternative("n", s, 1) {
		t.Errorf("alternatives %q %q", alt1, alt2)
	}
}

func TestDiffReactions(t *testing.T) {
	tests := []struct {
		before, after, added, removed []string
	}{
		{nil, []string{"👍"}, []string{"👍"}, nil},
		{[]string{"👍"}, []string{"👍", "🎉"}, []string{"🎉"}, nil},
		{[]string{"👍", "🎉"}, []string{"🎉", "❤"}, []string{"❤"}, []string{"👍"}},
		{[]string{"👍"}, []string{}, nil, []string{"👍"}},
		{[]string{"a", "b"}, []string{"b", "a"}, nil, nil},
	}
	for _, tt := range tests {
		added, removed := diffReactions(tt.before, tt.after)
		if !reflect.DeepEqual(added, tt.added) || !reflect.DeepEqual(removed, tt.removed) {
			t.Errorf("%q → %q: +%q -%q, want +%q -%q", tt.before, tt.after, added, removed, tt.added, tt.removed)
		}
	}
	set := applyReaction(nil, "👍", false)
	set = applyReaction(set, "🎉", false)
	set = applyReaction(set, "👍", false)
	set2 := applyReaction(set, "👍", true)
	if !reflect.DeepEqual(set, []string{"👍", "🎉"}) || !reflect.DeepEqual(set2, []string{"🎉"}) {
		t.Errorf("sets %q %q", set, set2)
	}
}

func TestRoomIDs(t *testing.T) {
	r := newRoomIDs()
	r.seen("SID1", "client1", "origin1")
	if r.resolve("client1") != "SID1" || r.resolve("origin1") != "SID1" || r.resolve("SID1") != "SID1" || r.resolve("other") != "other" {
		t.Error("resolve")
	}
	c := newLRU[int, int](2)
	c.put(1, 1)
	c.put(2, 2)
	c.get(1)
	c.put(3, 3)
	if _, ok := c.get(2); ok || c.len() != 2 {
		t.Error("lru kept the least recently used entry")
	}
}

// parse decodes text as one stanza the way the stream handler does.
func parse(text string, limit int) (*stanza, error) {
	d := xml.NewDecoder(strings.NewReader(text))
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		if start, ok := tok.(xml.StartElement); ok {
			e, err := readElement(d, start, limit)
			if err != nil {
				return nil, err
			}
			return parseStanza(e)
		}
	}
}

func TestParseStanza(t *testing.T) {
	st, err := parse(`<message xmlns="jabber:client" from="r@muc.example/Al" to="bridge.example" type="groupchat" id="c1">
		<body>&gt; Bo: hi
yes *indeed*</body>
		<body xml:lang="de">ja</body>
		<reply xmlns="urn:xmpp:reply:0" to="r@muc.example/Bo" id="S0"/>
		<fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:reply:0"><body start="0" end="9"/></fallback>
		<stanza-id xmlns="urn:xmpp:sid:0" id="FORGED" by="someone@else"/>
		<stanza-id xmlns="urn:xmpp:sid:0" id="S1" by="r@muc.example"/>
		<origin-id xmlns="urn:xmpp:sid:0" id="o1"/>
		<x xmlns="jabber:x:oob"><url>https://files.example/a.png</url><desc>a.png</desc></x>
		<x xmlns="jabber:x:oob"><url>javascript:alert(1)</url></x>
		<delay xmlns="urn:xmpp:delay" stamp="2024-01-02T03:04:05Z"/>
		<occupant-id xmlns="urn:xmpp:occupant-id:0" id="occ"/>
	</message>`, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	if st.kind != "message" || st.typ != "groupchat" || st.id != "c1" || st.from.Resourcepart() != "Al" {
		t.Errorf("%+v", st)
	}
	if sid := st.stanzaIDBy(st.from.Bare()); sid != "S1" {
		t.Errorf("stanza-id %q (forged ones must be ignored)", sid)
	}
	text, html := messageText(st)
	if text != "yes *indeed*" || html != "yes <b>indeed</b>" {
		t.Errorf("text %q html %q", text, html)
	}
	if st.reply == nil || st.reply.id != "S0" || st.originID != "o1" || st.occupantID != "occ" || st.delay.Year() != 2024 {
		t.Errorf("reply %+v origin %q occupant %q delay %v", st.reply, st.originID, st.occupantID, st.delay)
	}
	if len(st.oob) != 1 || st.oob[0] != (bridge.Attachment{URL: "https://files.example/a.png", Name: "a.png"}) {
		t.Errorf("oob %+v", st.oob)
	}

	st, err = parse(`<presence from="r@muc/Al" type="unavailable"><x xmlns="http://jabber.org/protocol/muc#user">
		<item affiliation="none" role="none" nick="Alice" jid="al@ex/res"/><status code="303"/><status code="110"/><status code="x"/></x>
		<show>away</show><status>gone</status></presence>`, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	if !st.muc.has(303) || !st.muc.has(110) || st.muc.has(307) || st.muc.item.nick != "Alice" || st.show != "away" || st.status != "gone" {
		t.Errorf("presence %+v %+v", st, st.muc)
	}

	st, err = parse(`<message type="error" id="m1"><error type="cancel"><not-acceptable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">no</text></error></message>`, 1<<16)
	if err != nil || st.err == nil || st.err.condition != "not-acceptable" || st.err.text != "no" {
		t.Errorf("error %v %+v", err, st)
	}
}

func TestParseHostile(t *testing.T) {
	tests := []struct {
		name, xml string
		want      error // nil: parses
	}{
		{"too large", `<message><body>` + strings.Repeat("x", 5000) + `</body></message>`, errTooLarge},
		{"many small elements", `<message>` + strings.Repeat(`<a xmlns="x"/>`, 500) + `</message>`, errTooLarge},
		{"too deep", `<message>` + strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40) + `</message>`, errTooDeep},
		{"bad from", `<message from="@@"><body>x</body></message>`, nil},
		{"not a stanza", `<foo/>`, nil},
		{"reactions flood", `<message><reactions xmlns="urn:xmpp:reactions:0" id="x">` + strings.Repeat("<reaction>a</reaction><reaction>b</reaction>", 10) + `<reaction>` + strings.Repeat("z", 200) + `</reaction></reactions></message>`, nil},
		{"bad fallback ranges", `<message><body>short</body><fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:reply:0"><body start="3" end="1"/><body start="-1" end="2"/><body start="0" end="99"/><body start="x"/></fallback></message>`, nil},
	}
	for _, tt := range tests {
		st, err := parse(tt.xml, 4096)
		if tt.want != nil {
			if !errors.Is(err, tt.want) {
				t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
			}
			continue
		}
		switch tt.name {
		case "bad from", "not a stanza":
			if err == nil {
				t.Errorf("%s: accepted", tt.name)
			}
		case "reactions flood":
			if err != nil || !reflect.DeepEqual(st.reactions.keys, []string{"a", "b"}) {
				t.Errorf("%s: %v %+v", tt.name, err, st.reactions)
			}
		case "bad fallback ranges":
			if err != nil || st.text(nsReply) != "short" {
				t.Errorf("%s: %v %q", tt.name, err, st.text(nsReply))
			}
		}
	}
	// Invalid UTF-8 that a decoder lets through is repaired.
	st := &stanza{body: "a\xffb\x00c", el: &element{}}
	if got := st.text(); got != "a\uFFFDbc" {
		t.Errorf("text %q", got)
	}
}

// TestBuiltStanzasEscape: text never becomes markup in what we send.
func TestBuiltStanzasEscape(t *testing.T) {
	e := el("", "message", "to", "r@m", "id", `1"/><evil x='`).add(el("", "body").withText("<b>&amp;</b> ]]> \x00"))
	out := e.String()
	if strings.Contains(out, "<b>") || strings.Contains(out, "<evil") {
		t.Errorf("markup leaked: %s", out)
	}
	back, err := parse(out, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if back.body != "<b>&amp;</b> ]]> \uFFFD" || back.id != `1"/><evil x='` {
		t.Errorf("%q %q", back.body, back.id)
	}
}

// FuzzParseStanza feeds arbitrary bytes through the inbound path: reading
// with a size limit, parsing, and turning the result into bridge text.
func FuzzParseStanza(f *testing.F) {
	for _, s := range []string{
		`<message from="r@m/n" type="groupchat" id="1"><body>hi *there*</body><stanza-id xmlns="urn:xmpp:sid:0" id="s" by="r@m"/></message>`,
		`<message><body>&gt; q
r</body><reply xmlns="urn:xmpp:reply:0" id="x"/><fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:reply:0"><body start="0" end="3"/></fallback></message>`,
		`<message><reactions xmlns="urn:xmpp:reactions:0" id="x"><reaction>👍</reaction></reactions></message>`,
		`<message><replace xmlns="urn:xmpp:message-correct:0" id="x"/><body>c</body></message>`,
		`<presence from="r@m/n"><x xmlns="http://jabber.org/protocol/muc#user"><item jid="a@b" nick="z"/><status code="110"/></x></presence>`,
		`<iq type="get" id="1"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`,
		"<message><body>```\ncode\n```\n> quote\n_x_ ~y~ `z`</body></message>",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := xml.NewDecoder(bytes.NewReader(data))
		var start xml.StartElement
		for {
			tok, err := d.Token()
			if err != nil {
				return
			}
			if s, ok := tok.(xml.StartElement); ok {
				start = s
				break
			}
		}
		e, err := readElement(d, start, 8192)
		if err != nil {
			return
		}
		st, err := parseStanza(e)
		if err != nil {
			return
		}
		text, html := messageText(st)
		if !utf8.ValidString(text) || !utf8.ValidString(html) || bridge.CleanText(text) != text {
			t.Fatalf("unclean text %q / %q", text, html)
		}
		if st.reactions != nil && len(st.reactions.keys) > maxReactions {
			t.Fatalf("%d reactions kept", len(st.reactions.keys))
		}
		_ = st.stanzaIDBy(st.from.Bare())
		_ = st.wholeBodyFallback(nsRetract)
		_ = htmlToStyling(html)
	})
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

// The bot's copy of a message one of our puppets sent is left unread
// (the puppet's reflection is read instead); everything else the bot
// gets is read.
func TestBotsCopyOfOwnIsSkipped(t *testing.T) {
	const lobby = "lobby@conference.localhost"
	alice := &puppet{rooms: map[string]*membership{lobby: {nick: "alice[irc]", joined: true}}}
	carol := &puppet{rooms: map[string]*membership{lobby: {nick: "carol"}}} // still joining
	a := &Adapter{component: true, domain: "sb.localhost", rooms: map[string]*room{
		lobby: {key: lobby, nick: "switchboard", puppetNicks: map[string]*puppet{"alice[irc]": alice, "carol": carol}},
	}}
	start := func(kind, typ, from, to string) *xml.StartElement {
		return &xml.StartElement{Name: xml.Name{Local: kind}, Attr: []xml.Attr{
			{Name: xml.Name{Local: "type"}, Value: typ}, {Name: xml.Name{Local: "from"}, Value: from}, {Name: xml.Name{Local: "to"}, Value: to}}}
	}
	for _, c := range []struct {
		st   *xml.StartElement
		skip bool
	}{
		{start("message", "groupchat", lobby+"/alice[irc]", "sb.localhost"), true},
		{start("message", "groupchat", lobby+"/alice[irc]", "sb.localhost/bot"), true},
		{start("message", "groupchat", lobby+"/bob", "sb.localhost"), false},         // a real occupant
		{start("message", "groupchat", lobby+"/carol", "sb.localhost"), false},       // may be a real occupant yet
		{start("message", "groupchat", lobby+"/switchboard", "sb.localhost"), false}, // the bot's own reflection
		{start("message", "chat", lobby+"/alice[irc]", "sb.localhost"), false},
		{start("presence", "", lobby+"/alice[irc]", "sb.localhost"), false},
		{start("message", "groupchat", "other@conference.localhost/alice[irc]", "sb.localhost"), false},
		{start("message", "groupchat", lobby+"/alice[irc]", "sb.localhost.evil"), false},
	} {
		if got := a.skip(c.st); got != c.skip {
			t.Errorf("skip(%v) = %v, want %v", c.st.Attr, got, c.skip)
		}
	}
}

// Both forms of a room's moderation announcement (XEP-0425): the current
// one and the fastened one of Prosody's mod_muc_moderation.
func TestParseModeration(t *testing.T) {
	for _, c := range []struct{ name, xml string }{
		{"current", `<message from="r@muc" type="groupchat" id="m1">
			<retract xmlns="urn:xmpp:message-retract:1" id="S1">
				<moderated xmlns="urn:xmpp:message-moderate:1" by="r@muc/Mod"><occupant-id xmlns="urn:xmpp:occupant-id:0" id="occ"/></moderated>
				<reason>spam</reason>
			</retract></message>`},
		{"fastened", `<message from="r@muc" type="groupchat" id="m1">
			<apply-to xmlns="urn:xmpp:fasten:0" id="S1">
				<moderated xmlns="urn:xmpp:message-moderate:0" by="r@muc/Mod"><retract xmlns="urn:xmpp:message-retract:0"/><reason>spam</reason></moderated>
			</apply-to></message>`},
	} {
		st, err := parse(c.xml, 1<<16)
		if err != nil {
			t.Fatal(err)
		}
		if m := st.moderation; m == nil || m.target != "S1" || m.by != "r@muc/Mod" {
			t.Errorf("%s: moderation %+v", c.name, m)
		}
	}
	// A moderation without a retraction (some other moderator action) is
	// not one.
	st, err := parse(`<message from="r@muc" type="groupchat"><apply-to xmlns="urn:xmpp:fasten:0" id="S1">
		<moderated xmlns="urn:xmpp:message-moderate:0" by="r@muc/Mod"/></apply-to></message>`, 1<<16)
	if err != nil || st.moderation != nil {
		t.Errorf("moderation without retraction: %+v, %v", st.moderation, err)
	}
}

// The moderation requests, in both forms, as XEP-0425 (0.3.0) and
// mod_muc_moderation read them.
func TestModerationRequest(t *testing.T) {
	for ns, want := range map[string]string{
		nsModerate: `<moderate xmlns="urn:xmpp:message-moderate:1" id="S1"><retract xmlns="urn:xmpp:message-retract:1"></retract>` +
			`<reason xmlns="urn:xmpp:message-moderate:1">spam &lt;b&gt;</reason></moderate>`,
		nsModerate0: `<apply-to xmlns="urn:xmpp:fasten:0" id="S1"><moderate xmlns="urn:xmpp:message-moderate:0">` +
			`<retract xmlns="urn:xmpp:message-retract:0"></retract><reason xmlns="urn:xmpp:message-moderate:0">spam &lt;b&gt;</reason></moderate></apply-to>`,
	} {
		if got := moderationRequest(ns, "S1", "spam <b>").String(); got != want {
			t.Errorf("%s:\n got %s\nwant %s", ns, got, want)
		}
	}
	if moderationRequest("", "S1", "x") != nil {
		t.Error("a request without a namespace")
	}
}
