package bridge

// Ignorer tells the router whose events are never bridged: other bots,
// services and bridges that share a room.
type Ignorer interface {
	// Ignored reports whether sender is ignored in link ("" for a direct
	// event, which only the sender's network's list applies to), and the
	// pattern that says so.
	Ignored(link string, sender Sender) (pattern string, ok bool)
}

// DropObserver is an Observer that is also told of the events the router
// dropped on purpose, by reason ("ignored").
type DropObserver interface {
	Dropped(network, reason string)
}

// DropIgnored is the reason of events from ignored senders.
const DropIgnored = "ignored"

// ignored reports whether ev's sender is ignored in link, and logs and
// counts it if so. Every kind counts: a bot's joins, typing and edits are
// as unwanted as its messages.
func (r *Router) ignored(link string, from RoomAddr, ev Event) bool {
	if r.Ignore == nil {
		return false
	}
	h := ev.Head()
	if h.To != nil {
		link = ""
	}
	pattern, ok := r.Ignore.Ignored(link, h.Sender)
	if !ok {
		return false
	}
	// The room and the sender only: never what they said.
	r.log.Debug("event from an ignored sender dropped", "room", from.String(), "sender", h.Sender.ID,
		"mask", h.Sender.Mask, "kind", ev.Kind(), "pattern", pattern)
	if d, ok := r.Observer.(DropObserver); ok {
		d.Dropped(h.Sender.Network, DropIgnored)
	}
	return true
}
