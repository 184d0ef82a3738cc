package bridge

import "time"

// Observer is told what the router does, for metrics. Its methods are
// called on the router's delivery paths and must be cheap and must not
// block. The router calls them concurrently, also for one target room
// (its sender lanes deliver at once).
type Observer interface {
	// Accepted: an event from room from was committed with its outbox
	// entries (duplicates and dropped events are not reported).
	Accepted(from RoomAddr, kind Kind)
	// Delivered: an entry reached its target room; accepted is the event's
	// Header.Time.
	Delivered(to RoomAddr, kind Kind, accepted time.Time)
	// Retried: a delivery attempt failed and will be retried.
	Retried(to RoomAddr, kind Kind)
	// Failed: a delivery failed for good and left the outbox.
	Failed(to RoomAddr, kind Kind)
	// Stored: a store write the router made ("accept": an event with its
	// outbox entries; "delivered"; "failed") took this long.
	Stored(op string, took time.Duration, err error)
}

// RefusalObserver is an Observer that is also told of the events the
// router refused: an edit or delete of someone else's message, by a
// sender who is not a moderator of the room (a moderator's delete
// passes). The event is not committed; its room and sender are logged.
type RefusalObserver interface {
	Refused(from RoomAddr, kind Kind)
}
