package xmpp

import (
	"context"
	"errors"

	"mellium.im/xmpp/jid"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
)

// A MUC that bans a puppet (makes its JID an outcast) keeps its sender
// out: the puppet's own unavailable presence says so (status 301), a ban
// of a puppet not in the room comes as the room's announcement of the
// affiliation change (XEP-0045 example 195, which Prosody sends to every
// occupant of a non-anonymous room and to moderators otherwise), and a
// join refused as forbidden is a ban too. The announcement that the
// JID's affiliation is none or member again lets the sender in. A
// person's own session (their JID) is followed the same way, and its ban
// keeps the person out (Sender.BlockRef), whichever account they write
// from. The bridge keeps the sender's messages out (the failed list, a
// notice to the sender); the bot never relays them instead, nor does
// their puppet speak for a person.

// puppetRemovedLocked runs on a puppet's own unavailable presence in r:
// a ban keeps its sender out (and the puppet is not taken back in when
// the bot rejoins), a kick does on a network set to. a.mu is held.
func (a *Adapter) puppetRemovedLocked(r *room, p *puppet, st *stanza) {
	banned, kicked := st.muc.has(statusBanned), st.muc.has(statusKicked)
	if !banned && !kicked {
		return
	}
	if banned {
		delete(p.rooms, r.key)
	}
	by, sender := st.muc.item.actor, p.sender.BlockRef()
	a.log.Info("xmpp: room removed a puppet", "room", r.addr, "puppet", p.jid.String(), "sender", sender.String(),
		"banned", banned, "kicked", kicked, "by", by)
	a.postRemoved(r.addr, sender, by, banned)
}

// postRemoved reports that room removed the occupant that spoke for
// sender (a puppet, or a person's own session): a ban keeps sender out,
// a kick does on a network set to. Read loop: it only queues the report.
func (a *Adapter) postRemoved(room string, sender bridge.SenderRef, by string, banned bool) {
	a.mod.Post(func(ctx context.Context) error {
		if banned {
			return a.mod.Banned(ctx, room, sender, by)
		}
		_, err := a.mod.Kicked(ctx, room, sender, by)
		return err
	})
}

// onRoomAffiliation reads a room's announcement of an affiliation change
// of someone not in it: one of our puppet JIDs, or a person's own JID,
// made an outcast, or no longer one. Every occupant gets it; the bot's
// copy is the one read.
func (a *Adapter) onRoomAffiliation(c *session, r *room, st *stanza) {
	if !a.isBot(c, st.to) {
		return
	}
	x := st.el.child(nsMUCUser, "x")
	if x == nil {
		return
	}
	it := x.child(nsMUCUser, "item")
	if it == nil {
		return
	}
	j, err := parseJID(it.get("jid"))
	if err != nil {
		return
	}
	sender, ok := a.affiliatedSender(j)
	if !ok {
		return
	}
	room := r.addr
	by := ""
	if ac := it.child(nsMUCUser, "actor"); ac != nil {
		by = ac.get("nick")
	}
	switch aff := it.get("affiliation"); aff {
	case "outcast":
		a.mu.Lock()
		if p := a.byJID[j.Bare().String()]; p != nil {
			delete(p.rooms, r.key)
		}
		a.mu.Unlock()
		a.log.Info("xmpp: room banned a puppet or a person's own JID", "room", room, "jid", j.Bare().String(), "sender", sender.String(), "by", by)
		a.mod.Post(func(ctx context.Context) error { return a.mod.Banned(ctx, room, sender, by) })
	case "none", "member", "admin", "owner":
		a.mod.Post(func(ctx context.Context) error { return a.mod.Unbanned(ctx, room, sender, by) })
	}
}

// affiliatedSender is who an affiliation of j keeps out or lets in: the
// person whose own JID it is, or the sender one of our puppet JIDs
// stands for (ok false for anyone else).
func (a *Adapter) affiliatedSender(j jid.JID) (bridge.SenderRef, bool) {
	bare := j.Bare()
	a.mu.Lock()
	for _, p := range a.peopleLocked() {
		if p.jid.Equal(bare) {
			a.mu.Unlock()
			return p.Acct.BlockRef(), true
		}
	}
	a.mu.Unlock()
	if !a.component || j.Domainpart() != a.domain {
		return bridge.SenderRef{}, false
	}
	network, id, err := senderOfJID(j.Localpart())
	if err != nil {
		return bridge.SenderRef{}, false
	}
	return bridge.SenderRef{Network: network, ID: id}, true
}

// puppetRefused handles a puppet's join that the room refused: forbidden
// is a ban (XEP-0045 §7.2.8), reported now (the delivery waits for it),
// and the delivery fails for good. It returns nil for other refusals.
func (a *Adapter) puppetRefused(ctx context.Context, r *room, p *puppet, err error) error {
	var se *stanzaError
	if !errors.As(err, &se) || se.condition != "forbidden" {
		return nil
	}
	a.mu.Lock()
	delete(p.rooms, r.key)
	sender := p.sender.BlockRef()
	a.mu.Unlock()
	a.log.Info("xmpp: puppet refused as banned", "room", r.addr, "puppet", p.jid.String(), "sender", sender.String())
	if rerr := a.mod.Banned(ctx, r.addr, sender, ""); rerr != nil {
		a.log.Warn("xmpp: cannot report a ban to the bridge", "room", r.addr, "sender", sender.String(), "err", rerr)
	}
	return adapters.Refusal(a.name, r.addr)
}
