package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// RoomAddr names a room on one network: "libera:#lobby" is
// RoomAddr{Network: "libera", Room: "#lobby"}.
type RoomAddr struct {
	Network string `json:"network"`
	Room    string `json:"room"`
}

func (a RoomAddr) String() string { return a.Network + ":" + a.Room }

// Addr returns the room an event came from.
func Addr(ev Event) RoomAddr {
	o := ev.Head().Origin
	return RoomAddr{Network: o.Network, Room: o.Room}
}

// Inbound is what adapters hand their network's traffic to.
type Inbound interface {
	// Accept returns once the event is durably committed for every room it
	// goes to, or was deliberately dropped (unlinked room, loop, forged
	// edit). Only then may the adapter acknowledge it to its network; on an
	// error it must not.
	Accept(ctx context.Context, ev Event) error
	// Online tells the router that a network (re)connected, so deliveries
	// waiting for it are retried at once instead of after their backoff.
	Online(network string)
}

// Committer is an Inbound that can also return before the event is on
// disk. Commit returns once the event is committed (its deliveries go out
// once it is on disk, see EarlyStore); durable returns once the commit is on disk too (or with
// the error of a sync that failed: calling it again tries again). An
// adapter that acknowledges its source in order (an MQTT PUBACK) can take
// its next event meanwhile and acknowledge this one when durable returns;
// one with nothing to acknowledge (IRC) need not call durable at all, and
// the store makes the commit durable within its sync window. Either way
// one disk sync then serves many events. With now, durable has the disk
// synced at once, for a caller that holds its source until then (a Matrix
// transaction); without, the store may wait for the end of its sync
// window for more commits to share the sync.
type Committer interface {
	Commit(ctx context.Context, ev Event) (durable func(now bool) error, err error)
}

// Committed is what Commit returns as durable when there is nothing to
// wait for.
func Committed(bool) error { return nil }

// Commit hands ev to in: through Commit where in is a Committer, else
// through Accept, which returns once the event is on disk (durable is
// then Committed).
func Commit(ctx context.Context, in Inbound, ev Event) (durable func(now bool) error, err error) {
	if c, ok := in.(Committer); ok {
		return c.Commit(ctx, ev)
	}
	return Committed, in.Accept(ctx, ev)
}

// Delivery is one event on its way to one room, or, for a direct event
// (Event.Head().To set), to one person.
type Delivery struct {
	Link string // DirectLink for direct events
	Room string // on the receiving adapter's network; "" for direct events
	// Event is the event to deliver. The router only hands an adapter the
	// kinds it implements a capability for; everything else arrives as a
	// *Message fallback.
	Event Event
	// Target is the receiving room's remote id of the event an edit, delete
	// or reaction refers to ("" when the room never saw it).
	Target string
	// Reply describes the message a *Message replies to, when it has one,
	// and the message a *Reaction is on.
	Reply *Quote
	// Thread is the receiving room's remote id of the first message of
	// the thread a *Message belongs to ("" when it is in none, or the
	// room never saw that message).
	Thread string
	// Relay asks for relay mode in the receiving room (an admin said
	// "!sb relay on" there): the adapter posts through its bot with the
	// sender's name in the text instead of through a puppet. Adapters
	// without puppets ignore it.
	Relay bool
}

// BotSender is implemented by adapters that can speak as Switchboard
// itself: the IRC bot, the Matrix appservice bot, the XMPP component or
// relay account, an MQTT topic, the web page. Replies to chat commands go
// this way; they are never bridged.
type BotSender interface {
	// SendAsBot posts text to room or, when room is "", privately to user
	// (a remote id on the adapter's network).
	SendAsBot(ctx context.Context, room, user, text string) error
}

// ToBot reports whether ev is a direct message to Switchboard itself (its
// IRC bot, its Matrix bot, ...) rather than to a puppet. Adapters mark
// those with To.Network equal to their own network: a puppet always stands
// for someone of another network, but for a person's, which may be of
// their home network (see Sender.Puppet).
func ToBot(ev Event) bool {
	h := ev.Head()
	return h.To != nil && h.To.Network == h.Origin.Network && !strings.HasPrefix(h.To.ID, PersonPrefix)
}

// Quote is what a reply refers to, as seen in the receiving room.
type Quote struct {
	RemoteID   string // "" when the receiving room never saw the original
	SenderName string // Sender.Shown(nil): put it into text with ShownName and the format's delimiters
	Text       string // shortened
}

// DirectLink is the link name of direct events in the outbox.
const DirectLink = "direct"

// DirectRoom is the outbox's room address for direct events to a person:
// each person's direct messages are delivered in order, like a room's.
func DirectRoom(to Sender) RoomAddr {
	return RoomAddr{Network: to.Network, Room: "direct:" + to.ID}
}

// DirectMessenger is implemented by adapters whose network has direct
// messages. Their Send (and the capability methods) then also receive
// direct events, with Delivery.Room "". Direct events to a network
// without it fail for good.
type DirectMessenger interface {
	DirectMessages()
}

// MessageSender delivers messages; every adapter implements it. It returns
// the id the network gave the message, or "" if it has none.
type MessageSender interface {
	Send(ctx context.Context, d *Delivery) (remoteID string, err error)
}

// Pipeliner is implemented by adapters whose network confirms a message
// some time after it was written: an IRC server's echo or labeled
// response, an XMPP room's reflection, an MQTT PUBACK. The router then
// writes a sender's next messages while the earlier ones await their
// confirmation, instead of waiting a round trip for each (see
// deliverPipelined).
type Pipeliner interface {
	// SendPipelined is Send in two steps: it returns once the message is
	// written (or queued for writing in the order of the calls), and
	// confirm waits for the network's confirmation and returns what Send
	// would have. An error from either is handled as Send's. The router
	// calls it for room messages that are not replies, for one room from
	// one goroutine at a time in delivery order, and calls each confirm
	// once, in the same order.
	SendPipelined(ctx context.Context, d *Delivery) (confirm Confirm, err error)
}

// Confirm waits for the network's confirmation of a delivery.
type Confirm func(ctx context.Context) (remoteID string, err error)

// Settled is the Confirm of a delivery whose outcome is known already.
func Settled(remoteID string, err error) Confirm {
	return func(context.Context) (string, error) { return remoteID, err }
}

// The optional capabilities. An adapter implements the ones its network can
// express natively; for the rest the router sends a fallback message, or
// nothing where no fallback makes sense (deletes, typing, presence).
type (
	// Replier sends messages with Delivery.Reply as native replies.
	Replier interface {
		SendReply(ctx context.Context, d *Delivery) (string, error)
	}
	Editor interface {
		SendEdit(ctx context.Context, d *Delivery) (string, error)
	}
	Deleter interface {
		SendDelete(ctx context.Context, d *Delivery) error
	}
	Reactor interface {
		SendReaction(ctx context.Context, d *Delivery) (string, error)
	}
	// MemberRelayer mirrors joins, leaves and renames (puppets entering and
	// leaving, or a structured event).
	MemberRelayer interface {
		SendMembership(ctx context.Context, d *Delivery) error
	}
	// TopicSetter sets the room's topic. It returns ErrFallback when it
	// may not (no IRC channel operator, no MUC subject right, no Matrix
	// power): the router then sends the fallback line instead.
	TopicSetter interface {
		SendTopic(ctx context.Context, d *Delivery) error
	}
	// ReadMarker shows that the sender has read up to Delivery.Target.
	ReadMarker interface {
		SendRead(ctx context.Context, d *Delivery) error
	}
	TypingRelayer interface {
		SendTyping(ctx context.Context, d *Delivery) error
	}
	PresenceRelayer interface {
		SendPresence(ctx context.Context, d *Delivery) error
	}
)

// ErrFallback is returned by a capability that cannot express this event
// natively in this room right now: the router sends the fallback instead.
var ErrFallback = errors.New("no native form here: send the fallback")

// ErrPermanent marks a delivery error that no retry can fix (the target
// refuses this event for good). Such a delivery is moved out of the outbox
// to the failed list instead of being retried.
var ErrPermanent = errors.New("permanent delivery failure")

// Permanent wraps err so that errors.Is(err, ErrPermanent) holds.
func Permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }

// ErrNotConnected marks a delivery error that says only that the target
// network's connection is down, or not up yet: at start the outbox is
// read before the adapters have connected, and at a stop events still
// come in after some have disconnected. The outbox retries such a
// delivery like any other, and at once when the network is back (Online),
// but the router logs it at debug level: the adapter reports its
// connection itself (its log, /readyz, /status), and a warning for each
// waiting event would only repeat that, or alarm at a normal start.
var ErrNotConnected = errors.New("not connected")

// Links tells which rooms are linked. mapping.Links implements it.
type Links interface {
	// LinkOf returns the link a room belongs to and every room of that link.
	LinkOf(room RoomAddr) (link string, rooms []RoomAddr, ok bool)
}

// RelayRooms is implemented by Links that know which rooms are in relay
// mode; the router sets Delivery.Relay for them.
type RelayRooms interface {
	Relayed(room RoomAddr) bool
}

// Queued is one delivery waiting in the outbox.
type Queued struct {
	Seq    int64
	Link   string
	Target RoomAddr
	Event  Event
}

// EarlyStore is a Store that can return from an accept once its
// transaction is committed, before the commit has reached the disk, so
// that one disk sync serves many commits. The router returns to the
// adapter then (Commit), which acknowledges its source once durable has
// returned, but hands the event's deliveries out only once durable has
// returned too: a delivery sent before a crash that lost its commit would
// be sent again when the source replays the event (IRC playback, an XMPP
// archive, a homeserver's transaction, an MQTT broker's resend), which
// the store would then accept as new. Commits reach the disk in order: a
// sync covers every commit made before it.
type EarlyStore interface {
	Store
	// AcceptCommitted is Accept that returns once the transaction is
	// committed; durable returns once it is on disk (nil: it is already).
	// With now, the store syncs at once, for a caller that holds its
	// source until then; without, it may wait for more commits to share
	// the sync, for a caller that goes on meanwhile.
	AcceptCommitted(ctx context.Context, link string, ev Event, targets []RoomAddr) (queued []Queued, accepted bool, durable func(now bool) error, err error)
}

// Store keeps events, the outbox and the per-room id maps durably.
type Store interface {
	// Accept records an inbound event (and the remote id its origin room
	// gave it) and queues it for each target, in one transaction, returning
	// the queued deliveries. It reports false without changing anything
	// when an event with the same origin room and remote id was accepted
	// before.
	Accept(ctx context.Context, link string, ev Event, targets []RoomAddr) ([]Queued, bool, error)
	// PendingTargets lists the rooms with queued deliveries.
	PendingTargets(ctx context.Context) ([]RoomAddr, error)
	// Pending returns up to limit deliveries queued for one room, oldest
	// first, starting after sequence number after.
	Pending(ctx context.Context, target RoomAddr, after int64, limit int) ([]Queued, error)
	// Delivered removes a delivery from the outbox and records the remote id
	// ("" if none) its target room gave the event. Pending and the lookups
	// reflect it at once; it may become durable with the next write, shortly
	// after (a crash in between delivers the entry again, never loses it).
	Delivered(ctx context.Context, q Queued, remoteID string) error
	// Failed moves a delivery out of the outbox into the failed list.
	Failed(ctx context.Context, q Queued, reason string) error
	// Event returns a stored event, or ErrNotFound.
	Event(ctx context.Context, id EventID) (Event, error)
	// EventByRemote maps a room's remote id to the event id, or ErrNotFound.
	EventByRemote(ctx context.Context, room RoomAddr, remoteID string) (EventID, error)
	// RemoteID maps an event id to the remote id it has in room, or ErrNotFound.
	RemoteID(ctx context.Context, room RoomAddr, id EventID) (string, error)
	// OutboxDepth counts queued deliveries.
	OutboxDepth(ctx context.Context) (int, error)
	Close() error
}

// FailedStore is implemented by stores whose failed list can be read,
// and its entries queued again or discarded, by an operator.
type FailedStore interface {
	// FailedDeliveries returns up to limit failed deliveries, newest first.
	FailedDeliveries(ctx context.Context, limit int) ([]FailedDelivery, error)
	// Requeue moves a failed delivery back into the outbox, behind what
	// waits for its room, and returns it; ErrNotFound if there is none.
	Requeue(ctx context.Context, seq int64) (Queued, error)
	// Discard forgets a failed delivery; ErrNotFound if there is none.
	Discard(ctx context.Context, seq int64) error
}

// FailedDelivery is a delivery that failed for good, and why.
type FailedDelivery struct {
	Queued
	Reason   string
	FailedAt time.Time
}

// ErrNotFound is returned by Store lookups that find nothing.
var ErrNotFound = errors.New("not found")

// ErrContentRemoved is returned by TextStore.FullText for an event whose
// text the store's retention has removed: the event is still known (its
// ids, sender and the short quote that replies need), its words are not.
var ErrContentRemoved = errors.New("content removed by retention")

// ContentRemover is implemented by stores that can forget what a message
// said at once, when its author deletes it (the ids and the short quote
// stay, as after retention).
type ContentRemover interface {
	RemoveContent(ctx context.Context, id EventID) error
}

// TextStore is implemented by stores that can hand back the whole text
// of a message or edit, for the long-text links networks with short
// lines send in place of a long message.
type TextStore interface {
	// FullText returns the text of a message or edit event: ErrNotFound
	// for an unknown event or one that carries no text, and
	// ErrContentRemoved once retention has removed it.
	FullText(ctx context.Context, id EventID) (string, error)
}

// File is a file a user sent through Switchboard itself (the web page),
// kept in the store so that every instance on it can serve the link
// other networks get.
type File struct {
	// ID names the file in its link; random, not a secret (the link is
	// signed).
	ID string
	// Event is the message that carries the file: the file goes when
	// the message's contents go (retention, its author's deletion).
	Event EventID
	Name  string
	// Mime is the type its bytes show, as it is served.
	Mime string
	Data []byte
	Time time.Time
}

// FileStore keeps the files users send through Switchboard.
type FileStore interface {
	PutFile(ctx context.Context, f File) error
	// File returns a file by id: ErrNotFound for an unknown one, or one
	// removed with its message.
	File(ctx context.Context, id string) (File, error)
}
