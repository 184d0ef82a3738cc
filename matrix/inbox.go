package matrix

import (
	"context"
	"fmt"

	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/bridge"
)

// The one inbox, for a person's own Matrix user: when it is
// double-puppeted (the homeserver pushes every event of the rooms where
// it is joined) and their home is another network, a direct chat that
// another Matrix user opens with them (an invite marked is_direct) is
// joined as them, and what the other writes there reaches their home as
// a direct message from that user's puppet; their answer from home goes
// out from their own user, in that same room. Only rooms of two members
// are forwarded: a group chat stays on Matrix, whatever its invite said.

// inboxUser is the personal account of u when the one inbox reads its
// direct chats: double-puppeted, with a home on another network.
func (a *Adapter) inboxUser(u id.UserID) *personal {
	p := a.personOf(u)
	if p == nil || !p.acct.DoublePuppet || p.acct.Home == "" || p.acct.Home == a.name {
		return nil
	}
	return p
}

// acceptPersonalDM joins p's user to the direct chat that inviter opened
// with them, and remembers it: they cannot accept an invite from a home
// elsewhere, and someone who writes to them privately expects to be
// read, as their DMs from the other networks are.
func (a *Adapter) acceptPersonalDM(ctx context.Context, p *personal, evt *event.Event) error {
	intent := a.personalIntent(ctx, p.acct.Person)
	if intent == nil {
		a.log.Warn("matrix: a direct chat to a person's own user not joined: their user cannot be used", "person", p.acct.Person, "room", evt.RoomID)
		return nil
	}
	a.joiningAsPerson(ctx, intent, evt.RoomID)
	if _, err := retry(ctx, func() (struct{}, error) {
		_, err := intent.JoinRoomByID(ctx, evt.RoomID)
		return struct{}{}, err
	}); err != nil {
		a.log.Warn("matrix: a person's own user cannot join a direct chat", "person", p.acct.Person, "room", evt.RoomID, "err", err)
		return nil
	}
	a.log.Info("matrix: a direct chat to a person's own user joined for their inbox", "person", p.acct.Person, "room", evt.RoomID, "with", evt.Sender)
	return a.rememberRoom(ctx, evt.RoomID, dmRoom{Own: p.user, User: evt.Sender}, p.user)
}

// personalRecipient is who an event of p's direct chat dm is for: p at
// home, as their puppet identity there (the router turns it into their
// home account). Not forwarded (errNotForwarded): what their own user
// says there (from a Matrix client of theirs: not news to them), and
// anything of a room with more than two members, joined or invited: a
// group chat is not a direct message, whatever its invite said.
func (a *Adapter) personalRecipient(ctx context.Context, rid id.RoomID, dm *dmRoom, ev bridge.Event) (bridge.Sender, error) {
	p := a.inboxUser(dm.Own)
	if p == nil || ev.Head().Sender.ID == string(dm.Own) {
		return bridge.Sender{}, errNotForwarded
	}
	intent := a.personalIntent(ctx, p.acct.Person)
	if intent == nil {
		return bridge.Sender{}, errNotForwarded
	}
	members, err := intent.Members(ctx, rid)
	if err != nil {
		return bridge.Sender{}, fmt.Errorf("matrix: members of %s: %w", rid, err)
	}
	n := 0
	for _, m := range members.Chunk {
		if ms := m.Content.AsMember().Membership; ms == event.MembershipJoin || ms == event.MembershipInvite {
			n++
		}
	}
	if n > 2 {
		a.log.Debug("matrix: a group chat of a person's own user is not forwarded", "person", p.acct.Person, "room", rid, "members", n)
		return bridge.Sender{}, errNotForwarded
	}
	ref := bridge.PersonRef(p.acct.Person, p.acct.Home)
	return bridge.Sender{Network: ref.Network, ID: ref.ID, Name: p.acct.Name, Person: p.acct.Person, Home: p.acct.Home}, nil
}

// personalDMIntent is the person's own user for a direct delivery from
// them to a Matrix user they have a direct chat with (see
// acceptPersonalDM): their answer goes there, from them. nil: the
// sender's ghost speaks, in its own DM room.
func (a *Adapter) personalDMIntent(ctx context.Context, d *bridge.Delivery, s bridge.Sender) *appservice.IntentAPI {
	h := d.Event.Head()
	if h.To == nil || s.Person == "" {
		return nil
	}
	acct, ok := a.personalAccount(s.Person)
	if !ok || a.inboxUser(acct) == nil {
		return nil
	}
	rid, ok, err := a.state.Get(ctx, "dmroom:"+string(acct)+"|"+h.To.ID)
	if err != nil || !ok || !a.stillTwo(ctx, id.RoomID(rid), acct, id.UserID(h.To.ID)) {
		return nil
	}
	return a.personalIntent(ctx, s.Person)
}

// stillTwo reports whether both own and other are still in the direct
// chat rid, as far as the pushed memberships tell: once either left (or
// was banned), an answer goes through their ghost in a room of its own,
// rather than to a room nobody reads or that refuses them.
func (a *Adapter) stillTwo(ctx context.Context, rid id.RoomID, own, other id.UserID) bool {
	if !a.as.StateStore.IsInRoom(ctx, rid, own) {
		return false
	}
	m, err := a.as.StateStore.TryGetMember(ctx, rid, other)
	return err == nil && (m == nil || m.Membership != event.MembershipLeave && m.Membership != event.MembershipBan)
}

// personalAccount is person's own Matrix user, if they have one.
func (a *Adapter) personalAccount(person string) (id.UserID, bool) {
	a.peopleMu.Lock()
	defer a.peopleMu.Unlock()
	if p := a.people.byPerson[person]; p != nil {
		return p.user, true
	}
	return "", false
}
