package matrix

import (
	"context"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/bridge"
)

func TestInboundMessages(t *testing.T) {
	s := newServer(t)
	alice := s.Client(t, "alice")
	rid, _, rec := roomWithBot(t, s, alice)
	alice.Text(rid, "plain <hello> & bye")
	alice.HTML(rid, "bold and script", `<b>bold</b> and <script>alert(1)</script><a href="javascript:x">link</a>`)
	alice.Emote(rid, "waves")
	alice.Notice(rid, "automated")

	m := rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "plain <hello> & bye" })
	if m.Origin.Network != "matrix" || m.Origin.Room != string(rid) || m.Origin.RemoteID == "" {
		t.Errorf("origin %+v", m.Origin)
	}
	// The homeserver vouches for who pushed it.
	if m.Sender.ID != string(alice.UserID) || m.Sender.Name == "" || m.HTML != "" || !m.Sender.Authenticated {
		t.Errorf("sender %+v html %q", m.Sender, m.HTML)
	}
	h := rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "bold and script" })
	if h.HTML != "<b>bold</b> and <a>link</a>" {
		t.Errorf("html %q", h.HTML)
	}
	e := rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "waves" })
	if !e.Emote {
		t.Errorf("emote %+v", e)
	}
	n := rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "automated" })
	if !n.Notice {
		t.Errorf("notice %+v", n)
	}
}

func TestInboundRelations(t *testing.T) {
	s := newServer(t)
	alice := s.Client(t, "alice")
	rid, _, rec := roomWithBot(t, s, alice)
	orig := alice.Text(rid, "original")
	rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "original" })

	alice.Edit(rid, orig, "edited")
	ed := rec.WaitEvent(t, func(ev bridge.Event) bool { _, ok := ev.(*bridge.Edit); return ok }).(*bridge.Edit)
	if ed.Target.Remote != string(orig) || ed.Text != "edited" {
		t.Errorf("edit %+v", ed)
	}
	alice.Reply(rid, orig, "answer")
	r := rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "answer" })
	if r.ReplyTo.Remote != string(orig) {
		t.Errorf("reply to %+v", r.ReplyTo)
	}
	ann := alice.React(rid, orig, "👍")
	re := rec.WaitEvent(t, func(ev bridge.Event) bool { r, ok := ev.(*bridge.Reaction); return ok && !r.Remove }).(*bridge.Reaction)
	if re.Target.Remote != string(orig) || re.Key != "👍" {
		t.Errorf("reaction %+v", re)
	}
	// Dendrite 0.15 never pushes redactions to appservices (its sync API
	// drops them before the appservice stream): push them as a homeserver
	// that does (Synapse) would.
	putTxn(t, s, s.cfg.HSToken, "redactions-1", redaction(rid, alice.UserID, ann, "$r1"), redaction(rid, alice.UserID, orig, "$r2"))
	un := rec.WaitEvent(t, func(ev bridge.Event) bool { r, ok := ev.(*bridge.Reaction); return ok && r.Remove }).(*bridge.Reaction)
	if un.Target.Remote != string(orig) || un.Key != "👍" {
		t.Errorf("reaction removal %+v", un)
	}
	del := rec.WaitEvent(t, func(ev bridge.Event) bool { _, ok := ev.(*bridge.Delete); return ok }).(*bridge.Delete)
	if del.Target.Remote != string(orig) {
		t.Errorf("delete %+v", del)
	}
}

func TestInboundMembership(t *testing.T) {
	s := newServer(t)
	alice := s.Client(t, "alice")
	rid, _, rec := roomWithBot(t, s, alice)
	bob := s.Client(t, "bob")
	bob.Join(string(rid))
	j := rec.WaitEvent(t, func(ev bridge.Event) bool {
		_, ok := ev.(*bridge.Join)
		return ok && ev.Head().Sender.ID == string(bob.UserID)
	})
	if j.Head().Origin.Room != string(rid) {
		t.Errorf("join %+v", j.Head())
	}
	bob.Rename("Bobby")
	rn := rec.WaitEvent(t, func(ev bridge.Event) bool { _, ok := ev.(*bridge.Rename); return ok }).(*bridge.Rename)
	if rn.Sender.Name != "Bobby" || rn.Previous != "bob" {
		t.Errorf("rename %+v", rn)
	}
	bob.Text(rid, "as bobby")
	m := rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "as bobby" })
	if m.Sender.Name != "Bobby" {
		t.Errorf("name after rename %q", m.Sender.Name)
	}
	bob.Leave(rid)
	l := rec.WaitEvent(t, func(ev bridge.Event) bool { _, ok := ev.(*bridge.Leave); return ok }).(*bridge.Leave)
	if l.Sender.ID != string(bob.UserID) {
		t.Errorf("leave %+v", l)
	}
}

func TestOutbound(t *testing.T) {
	s := newServer(t)
	alice := s.Client(t, "alice")
	rid, a, _ := roomWithBot(t, s, alice)
	carol := foreign("carol", "Carol")
	m := &bridge.Message{Header: header(carol), Text: "<b>hi</b> & bye", HTML: `<b>hi</b> <img src=x onerror=alert(1)><script>x</script>`}
	evid := deliver(t, func(ctx context.Context) (string, error) {
		return a.Send(ctx, &bridge.Delivery{Room: string(rid), Event: m})
	})
	got := waitEvent(t, alice, "carol's message", bodyIs(rid, "<b>hi</b> & bye"))
	ghost := got.Sender
	if !strings.HasPrefix(string(ghost), "@sb_elsewhere_carol:") || string(got.ID) != evid {
		t.Errorf("sender %s id %s, want a ghost and %s", ghost, got.ID, evid)
	}
	if c := got.Content.AsMessage(); c.FormattedBody != "<b>hi</b> " {
		t.Errorf("formatted_body %q", c.FormattedBody)
	}
	if name := alice.DisplayName(ghost); name != "Carol (elsewhere)" {
		t.Errorf("ghost display name %q", name)
	}
	// A retried delivery is the same transaction: no duplicate.
	again := deliver(t, func(ctx context.Context) (string, error) {
		return a.Send(ctx, &bridge.Delivery{Room: string(rid), Event: m})
	})
	if again != evid {
		t.Errorf("retry gave %s, first %s", again, evid)
	}

	ed := &bridge.Edit{Header: header(carol), Text: "fixed"}
	deliver(t, func(ctx context.Context) (string, error) {
		return a.SendEdit(ctx, &bridge.Delivery{Room: string(rid), Event: ed, Target: evid})
	})
	e := waitEvent(t, alice, "the edit", func(e *event.Event) bool {
		c := e.Content.AsMessage()
		return e.Type == event.EventMessage && c.RelatesTo != nil && c.RelatesTo.Type == event.RelReplace
	})
	if c := e.Content.AsMessage(); c.RelatesTo.EventID != id.EventID(evid) || c.NewContent == nil || c.NewContent.Body != "fixed" || e.Sender != ghost {
		t.Errorf("edit %+v from %s", c, e.Sender)
	}
	rep := &bridge.Message{Header: header(carol), Text: "replying"}
	deliver(t, func(ctx context.Context) (string, error) {
		return a.SendReply(ctx, &bridge.Delivery{Room: string(rid), Event: rep, Reply: &bridge.Quote{RemoteID: evid, SenderName: "Carol", Text: "hi"}})
	})
	r := waitEvent(t, alice, "the reply", bodyIs(rid, "replying"))
	if c := r.Content.AsMessage(); c.RelatesTo == nil || c.RelatesTo.InReplyTo == nil || c.RelatesTo.InReplyTo.EventID != id.EventID(evid) {
		t.Errorf("reply relation %+v", c.RelatesTo)
	}
	react := &bridge.Reaction{Header: header(carol), Key: "🎉"}
	annID := deliver(t, func(ctx context.Context) (string, error) {
		return a.SendReaction(ctx, &bridge.Delivery{Room: string(rid), Event: react, Target: evid})
	})
	waitEvent(t, alice, "the reaction", func(e *event.Event) bool {
		return e.Type == event.EventReaction && e.Content.AsReaction().RelatesTo.Key == "🎉" && e.Sender == ghost
	})
	unreact := &bridge.Reaction{Header: header(carol), Key: "🎉", Remove: true}
	deliver(t, func(ctx context.Context) (string, error) {
		return a.SendReaction(ctx, &bridge.Delivery{Room: string(rid), Event: unreact, Target: evid})
	})
	waitEvent(t, alice, "the reaction's redaction", func(e *event.Event) bool {
		return e.Type == event.EventRedaction && (e.Redacts == id.EventID(annID) || e.Content.AsRedaction().Redacts == id.EventID(annID))
	})
	del := &bridge.Delete{Header: header(carol)}
	deliver(t, func(ctx context.Context) (string, error) {
		return "", a.SendDelete(ctx, &bridge.Delivery{Room: string(rid), Event: del, Target: evid})
	})
	waitEvent(t, alice, "the message's redaction", func(e *event.Event) bool {
		return e.Type == event.EventRedaction && (e.Redacts == id.EventID(evid) || e.Content.AsRedaction().Redacts == id.EventID(evid))
	})
	// Nothing of it came back as inbound traffic: checked by the
	// conformance suite's echo test.
}

func TestOutboundMembership(t *testing.T) {
	s := newServer(t)
	alice := s.Client(t, "alice")
	rid, a, _ := roomWithBot(t, s, alice)
	dave := foreign("dave", "Dave")
	deliver(t, func(ctx context.Context) (string, error) {
		return "", a.SendMembership(ctx, &bridge.Delivery{Room: string(rid), Event: &bridge.Join{Header: header(dave)}})
	})
	ghost := s.UserID("sb_elsewhere_dave")
	isMember := func(m event.Membership) func(*event.Event) bool {
		return func(e *event.Event) bool {
			return e.Type == event.StateMember && e.StateKey != nil && *e.StateKey == string(ghost) && e.Content.AsMember().Membership == m
		}
	}
	waitEvent(t, alice, "the ghost joining", isMember(event.MembershipJoin))
	deliver(t, func(ctx context.Context) (string, error) {
		return "", a.SendMembership(ctx, &bridge.Delivery{Room: string(rid), Event: &bridge.Leave{Header: header(dave), Reason: "bye"}})
	})
	waitEvent(t, alice, "the ghost leaving", isMember(event.MembershipLeave))
}

// A person writing from two accounts has one ghost, named after them
// and their home network.
func TestOnePersonOneGhost(t *testing.T) {
	s := newServer(t)
	alice := s.Client(t, "alice")
	rid, a, _ := roomWithBot(t, s, alice)
	fromIRC := bridge.Sender{Network: "libera", ID: "dora", Name: "Dora M", Person: "dora", Home: "elsewhere"}
	fromXMPP := bridge.Sender{Network: "jabber", ID: "dora@example.org", Name: "Dora M", Person: "dora", Home: "elsewhere"}
	var ghosts []id.UserID
	for _, sd := range []bridge.Sender{fromIRC, fromXMPP} {
		text := "from " + sd.Network
		deliver(t, func(ctx context.Context) (string, error) {
			return a.Send(ctx, &bridge.Delivery{Room: string(rid), Event: &bridge.Message{Header: header(sd), Text: text}})
		})
		ghosts = append(ghosts, waitEvent(t, alice, text, bodyIs(rid, text)).Sender)
	}
	if ghosts[0] != ghosts[1] || !strings.HasPrefix(string(ghosts[0]), "@sb_elsewhere_person=2fdora:") {
		t.Errorf("ghosts %v, want one for the person", ghosts)
	}
	if name := alice.DisplayName(ghosts[0]); name != "Dora M (elsewhere)" {
		t.Errorf("ghost display name %q", name)
	}
}
