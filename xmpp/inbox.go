package xmpp

import (
	"github.com/switchboard-chat/switchboard/bridge"
)

// The one inbox: a chat to a person's JID that their session here
// receives reaches them on their home network as a direct message from
// the writer's ghost or puppet there (To is their puppet identity, which
// the router turns into their home account). Their answer, a direct
// message to the writer, goes out from their session (sendDirect), from
// their own JID.

// Priorities of a person's session (RFC 6121 4.7.2.3): the server hands
// a chat to the bare JID to the available resources of the highest
// priority, and never to one whose priority is negative.
const (
	// inboxPriority, over the usual 0 of clients, makes the session the
	// one that gets the chats to their bare JID while their home is
	// another network: Switchboard forwards them there. Their other
	// clients that enabled carbons (XEP-0280) still get a copy.
	inboxPriority = "1"
	// homePriority keeps the session from getting any while their home
	// is this network: their own client reads them.
	homePriority = "-1"
)

// personalAvailable makes p's session c available, as any client is
// after login, at its priority.
func (a *Adapter) personalAvailable(p *personal, c *session) error {
	return a.write(c, el("", "presence").add(p.priority(a.name)))
}

// priority is the <priority/> of p's session, whose home may be network:
// every presence the session broadcasts carries it (one without says 0),
// since it says whether chats to their bare JID are the session's (see
// inboxPriority).
func (p *personal) priority(network string) *element {
	prio := inboxPriority
	if !p.inbox(network) {
		prio = homePriority
	}
	return el("", "priority").withText(prio)
}

// inbox reports whether what p's session receives goes to their home:
// their home is another network.
func (p *personal) inbox(network string) bool {
	return p.Acct.Home != "" && p.Acct.Home != network
}

// personalDirect reads a one-to-one message to c's person, not through a
// room. What is bridged: chats (and normal messages) from a user's JID,
// as the server stamps it. What is not: a person whose home is this
// network (their own client reads it), headlines, what servers and
// services send (no localpart: server announcements, pubsub), their own
// other clients, Switchboard's own addresses (the bot, the component's
// puppets).
func (a *Adapter) personalDirect(c *session, st *stanza) {
	p := c.person
	if !p.inbox(a.name) || st.typ != "chat" && st.typ != "normal" && st.typ != "" {
		return
	}
	from := st.from.Bare()
	if from.Localpart() == "" || from.Equal(p.jid) || a.component && from.Domainpart() == a.domain || !a.component && from.Equal(a.account) {
		return
	}
	sender := bridge.Sender{Network: a.name, ID: from.String(), Name: bridge.CleanText(from.Localpart()), Authenticated: true}
	ref := bridge.PersonRef(p.Acct.Person, p.Acct.Home)
	to := bridge.Sender{Network: ref.Network, ID: ref.ID, Name: p.Acct.Name, Person: p.Acct.Person, Home: p.Acct.Home}
	a.emitDirect(c, st, sender, to)
}
