package xmpp

import (
	"context"
	"fmt"

	"github.com/switchboard-chat/switchboard/bridge"
)

// Moderation (XEP-0425): a moderator of a room retracts someone else's
// message. Rooms that speak it announce such a retraction to everyone;
// Switchboard bridges those as moderators' deletes, and retracts a
// message in a room as a moderator when a moderator of a linked room on
// another network deleted it, where the bot is a moderator itself.

// onModerated bridges a room's announcement that a moderator retracted a
// message (XEP-0425) as a moderator's delete: only the room itself sends
// these, and it checked the moderator's role before it did. Those that
// answer Switchboard's own moderations are not bridged back.
func (a *Adapter) onModerated(r *room, st *stanza, remote string) {
	m := st.moderation
	a.mu.Lock()
	if !r.joined || !st.delay.IsZero() && st.delay.Before(r.joinedAt.Add(clockSkew)) {
		a.mu.Unlock()
		return // history
	}
	nick := ""
	if by, err := parseJID(m.by); err == nil && by.Bare().Equal(r.jid) {
		nick = by.Resourcepart()
	}
	if a.ownOccupantLocked(r, nick, &stanza{occupantID: m.occupantID}) {
		a.mu.Unlock()
		return
	}
	sender := bridge.Sender{Network: a.name, ID: r.jid.String(), Name: r.jid.Localpart()}
	if nick != "" {
		sender = a.occupantSender(r, a.occupantLocked(r, nick))
	}
	h := a.roomHeader(r, sender, remote)
	target := r.ids.resolve(m.target)
	a.mu.Unlock()
	a.log.Info("xmpp: a moderator retracted a message", "room", r.addr, "by", sender.ID, "target", target)
	a.emit(&bridge.Delete{Header: h, Target: bridge.Ref{Remote: target}, Moderator: true})
}

// moderate retracts someone else's message in a room as its moderator,
// for a moderator of a linked room. The room decides whether the bot
// may: where it is not a moderator, the delivery fails for good, so that
// the operator sees it on the failed list (and can retry it once the bot
// is one); a room that knows no XEP-0425 gets nothing, as IRC does.
func (a *Adapter) moderate(ctx context.Context, c *session, d *bridge.Delivery, del *bridge.Delete) error {
	r, err := a.readyRoom(ctx, c, d.Room)
	if err != nil {
		return err
	}
	ns, err := a.moderationNS(ctx, c, r)
	if err != nil {
		return err
	}
	req := moderationRequest(ns, d.Target, "deleted by "+del.Sender.Shown(nil)+" on "+del.Origin.Network)
	if req == nil {
		// As on IRC, a room with no way to delete gets nothing: there is
		// nothing an operator could change, and the failed list would
		// fill with every moderator's delete.
		a.log.Info("xmpp: the room knows no moderation (XEP-0425); a moderator's delete is not carried out", "room", r.addr, "by", del.Sender.ID, "network", del.Origin.Network)
		return nil
	}
	st, err := a.iq(ctx, c, c.me, r.jid, "set", req, a.t.join)
	if err != nil {
		return err
	}
	if st.typ != "error" {
		return nil
	}
	serr := st.err
	if serr == nil {
		serr = &stanzaError{condition: "undefined-condition"}
	}
	switch serr.condition {
	case "item-not-found":
		// Gone already, or never archived (a MUC without MAM): nothing
		// to retract.
		a.log.Info("xmpp: the room does not know the message to moderate", "room", r.addr, "target", d.Target, "by", del.Sender.ID)
		return nil
	case "forbidden", "not-allowed":
		return bridge.Permanent(fmt.Errorf("xmpp: not a moderator of %s, so a moderator's delete by %s on %s cannot be carried out: %w", r.addr, del.Sender.ID, del.Origin.Network, serr))
	}
	if serr.typ == "wait" {
		return fmt.Errorf("xmpp: moderate in %s: %w", r.addr, serr)
	}
	return bridge.Permanent(fmt.Errorf("xmpp: moderate in %s: %w", r.addr, serr))
}

// moderationRequest is the payload of the IQ that retracts the message
// with stanza-id target as a moderator, in namespace ns (nil for none).
func moderationRequest(ns, target, reason string) *element {
	r := el(ns, "reason").withText(bridge.CleanText(reason))
	switch ns {
	case nsModerate:
		return el(nsModerate, "moderate", "id", target).add(el(nsRetract, "retract"), r)
	case nsModerate0:
		return el(nsFasten, "apply-to", "id", target).add(el(nsModerate0, "moderate").add(el(nsRetract0, "retract"), r))
	}
	return nil
}

// moderationNS is the XEP-0425 namespace the room announces (the
// current one preferred), "" for none; asked once per room and session.
func (a *Adapter) moderationNS(ctx context.Context, c *session, r *room) (string, error) {
	a.mu.Lock()
	ns, known := r.moderation, r.moderationKnown
	a.mu.Unlock()
	if known {
		return ns, nil
	}
	st, err := a.iq(ctx, c, c.me, r.jid, "get", el(nsDiscoInfo, "query"), a.t.join)
	if err != nil {
		return "", err
	}
	if st.typ == "error" || st.payload == nil {
		// A room that cannot say what it supports is taken to support
		// nothing: asked again next session.
		a.log.Warn("xmpp: no service discovery answer from a room", "room", r.addr, "type", st.typ)
		st.payload = nil
	}
	for _, f := range st.payload.children(nsDiscoInfo, "feature") {
		switch v := f.get("var"); {
		case v == nsModerate:
			ns = nsModerate
		case v == nsModerate0 && ns == "":
			ns = nsModerate0
		}
	}
	a.mu.Lock()
	r.moderation, r.moderationKnown = ns, true
	a.mu.Unlock()
	return ns, nil
}
