package xmpp

import (
	"testing"
	"time"

	"mellium.im/xmpp/jid"
)

// An archived MUC message (a MAM result) becomes the message it forwards,
// known by the archive's id as the room's stanza-id and stamped with the
// time the archive gives it, which becomes its event's Time.
func TestArchivedMessageKeepsItsIDAndTime(t *testing.T) {
	const raw = `<message xmlns="jabber:client" to="bridge.example.org" from="lobby@muc.example.org">` +
		`<result xmlns="urn:xmpp:mam:2" queryid="q1" id="AbC-123">` +
		`<forwarded xmlns="urn:xmpp:forward:0"><delay xmlns="urn:xmpp:delay" stamp="2026-12-05T06:01:02Z"/>` +
		`<message xmlns="jabber:client" type="groupchat" from="lobby@muc.example.org/alice" id="c1"><body>missed 01</body></message>` +
		`</forwarded></result></message>`
	res, ok := parseFast([]byte(raw), "jabber:client", 1<<16)
	if !ok {
		t.Fatal("cannot parse")
	}
	r := newRoom("lobby@muc.example.org", jid.MustParse("lobby@muc.example.org"))
	m := archivedMessage(res.child(nsMAM, "result"), r)
	if m == nil {
		t.Fatal("no message")
	}
	if sid := m.stanzaIDBy(r.jid); sid != "AbC-123" {
		t.Errorf("stanza-id %q, want the archive's id AbC-123", sid)
	}
	if want := time.Date(2026, 12, 5, 6, 1, 2, 0, time.UTC); !m.delay.Equal(want) {
		t.Errorf("time %v, want %v", m.delay, want)
	}
	if m.from.Resourcepart() != "alice" || !m.hasBody {
		t.Errorf("from %v, body %v", m.from, m.hasBody)
	}
	a := &Adapter{name: "jabber", rooms: map[string]*room{r.key: r}}
	evs := a.missedEvents(nil, r, []*stanza{m})
	if len(evs) != 1 || !evs[0].Head().CatchUp || !evs[0].Head().Time.Equal(m.delay) || evs[0].Head().Origin.RemoteID != "AbC-123" {
		t.Fatalf("events %+v, want one caught-up message stamped with its time and known by its stanza-id", evs)
	}
}
