package xmpp

// The members of a MUC, for the bridge (bridge.MemberLister): when the
// bot's join completes (its self-presence, which the room sends after
// every other occupant's), the real JIDs of the occupants tell who is in
// the room, so that people there since before Switchboard looked take
// part in its link, and people who left while it was not looking no
// longer do. Only real JIDs count, never nicks: in a room that does not
// show them to the bot nothing is known, and no list is given.

// showsRealJIDs reports whether the bot's self-presence in a room says
// that it sees the occupants' real JIDs: the room is non-anonymous
// (status 100), or its own item carries its JID, as a moderator's does
// in a semi-anonymous room.
func showsRealJIDs(self *stanza) bool {
	return self.muc != nil && (self.muc.has(statusRealJIDs) || self.muc.item.jid != "")
}

// roomMembersLocked lists the bare real JIDs of r's occupants, leaving
// out Switchboard's own (the bot, puppets, people's sessions: a session
// is in the room because its person takes part, not the other way
// round). a.mu is held.
func (a *Adapter) roomMembersLocked(r *room) []string {
	var out []string
	for nick, o := range r.occupants {
		if o.jid == "" || o.own || a.personalOccupantLocked(r, nick, o) {
			continue
		}
		out = append(out, o.jid)
	}
	return out
}
