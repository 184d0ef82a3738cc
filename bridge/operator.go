package bridge

import "context"

// Room operators: the people a room's own network lets run it. Adapters
// tell who they are in two ways, both from state the network
// authenticates, never from a name alone:
//
//   - Header.Operator on each inbound event: the sender's rank in the
//     origin room when they spoke (the IRC channel modes the bot has
//     followed, the XMPP occupant's role and affiliation from the room's
//     presence, the Matrix room's power levels).
//   - PuppetResolver: which bridged sender a puppet's name in a room
//     stands for, so an operator can name whom to block the way the room
//     shows them.

// PuppetResolver is implemented by adapters whose puppets have names of
// their own in a room (an IRC nick, an XMPP occupant nick, a Matrix
// ghost's MXID). Only the adapter that made a puppet knows whom it speaks
// for; a display name alone is never enough.
type PuppetResolver interface {
	// PuppetSender returns the sender whose puppet is named name in room
	// (a room of the adapter's network), and false if no puppet of the
	// adapter's has that name there now.
	PuppetSender(ctx context.Context, room, name string) (SenderRef, bool)
}
