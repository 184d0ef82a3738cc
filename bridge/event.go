// Package bridge holds the event model every adapter speaks, the router that
// carries events between linked rooms, and the durable outbox behind it.
package bridge

import (
	"bufio"
	"crypto/rand"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// EventID is the bridge-wide id of an event. New ids sort by creation time.
type EventID string

// NewEventID returns a fresh, time-ordered event id.
func NewEventID() EventID {
	idRandom.Lock()
	defer idRandom.Unlock()
	return EventID(uuid.Must(uuid.NewV7FromReader(idRandom.r)).String())
}

// idRandom reads crypto/rand 4 KiB at a time: reading it for each id cost
// more than the rest of making one.
var idRandom = struct {
	sync.Mutex
	r *bufio.Reader
}{r: bufio.NewReaderSize(rand.Reader, 4096)}

// Kind names an event type. It is also the event's tag in stored and
// published JSON.
type Kind string

const (
	KindMessage  Kind = "message"
	KindEdit     Kind = "edit"
	KindDelete   Kind = "delete"
	KindReaction Kind = "reaction"
	KindJoin     Kind = "join"
	KindLeave    Kind = "leave"
	KindRename   Kind = "rename"
	KindTopic    Kind = "topic"
	KindTyping   Kind = "typing"
	KindPresence Kind = "presence"
	KindRead     Kind = "read"
)

// Origin says where an event was first seen.
type Origin struct {
	Network  string `json:"network"`
	Room     string `json:"room"`
	RemoteID string `json:"remote_id,omitempty"` // the source network's id for it, if it has one
}

// Sender is who caused an event, as its own network knows them.
type Sender struct {
	Network string `json:"network"`
	ID      string `json:"id"`   // stable remote id (IRC account or nick, MQTT device id, JID, MXID)
	Name    string `json:"name"` // display name
	// Mask is what admin rules match besides ID where the network has
	// more: an IRC sender's nick!user@host.
	Mask string `json:"mask,omitempty"`
	// Person is the id of the person (the config's people) whose account
	// ID is, and Home their home network. The router alone sets them, when
	// the adapter marked ID Authenticated; whatever an adapter or a JSON
	// payload put there is cleared (see person.go).
	Person string `json:"person,omitempty"`
	Home   string `json:"home,omitempty"`
	// Authenticated is set by the adapter alone, when ID is the sender's
	// account as the network authenticates it: an IRC account (from the
	// account tag or the services' word), never a bare nick; an XMPP real
	// JID from the server, never an occupant JID; a Matrix user from the
	// appservice transaction; an MQTT device's topic, which the broker's
	// ACL guards. Only such ids are matched against people's accounts.
	// Never encoded, like Header.Operator.
	Authenticated bool `json:"-"`
}

// Header is what every event carries.
type Header struct {
	ID     EventID   `json:"id"`
	Origin Origin    `json:"origin"`
	Sender Sender    `json:"sender"`
	Time   time.Time `json:"ts"`
	// To, when set, makes the event a direct message to one person on
	// another network, as that network knows them (for instance the IRC
	// user an XMPP user wrote to through bob's puppet JID). The event goes
	// to To alone, not to a link; the router sets Origin.Room to
	// DirectRoom(Sender).Room.
	To *Sender `json:"to,omitempty"`
	// Operator is set by the adapter alone, when the sender is an
	// operator of Origin.Room at the time of the event, as the network
	// authenticates it and the adapter's own state of the room shows (an
	// IRC channel operator, an XMPP MUC moderator or owner, a Matrix user
	// at the room's kick power level). It says nothing about any other
	// room (see operator.go). Never encoded: it is about the moment of
	// the event, for the chat commands, which never reach the router,
	// and no JSON from outside can claim it.
	Operator bool `json:"-"`
	// CatchUp is set by the adapter alone on what it fetched from its
	// network's history after being away (XMPP MAM, IRC join playback):
	// lines said then, not someone typing now, so no sender's rate limit
	// applies. Never encoded, like Operator: no JSON from outside can
	// claim it.
	CatchUp bool `json:"-"`
}

// Head gives access to the common fields of any event.
func (h *Header) Head() *Header { return h }

// Event is one of the concrete event types of this package.
type Event interface {
	Head() *Header
	Kind() Kind
}

// Ref points at an earlier event. Adapters fill Remote with the id their
// network uses; the router resolves it to Event (and the other way round
// on delivery), using the per-room id maps.
type Ref struct {
	Event  EventID `json:"event,omitempty"`
	Remote string  `json:"remote,omitempty"`
}

// IsZero reports whether the ref points nowhere.
func (r Ref) IsZero() bool { return r.Event == "" && r.Remote == "" }

// Attachment is a file offered by URL.
type Attachment struct {
	URL  string `json:"url"`
	Name string `json:"name,omitempty"`
	Mime string `json:"mime,omitempty"`
	Size int64  `json:"size,omitempty"`
}

// Line is the attachment as text for networks without attachments:
// "name: URL", or the URL alone.
func (a Attachment) Line() string {
	if a.Name != "" && a.Name != a.URL {
		return a.Name + ": " + a.URL
	}
	return a.URL
}

// WithAttachmentLines appends to body a line for each attachment whose
// URL it does not show yet. A body that only names such an attachment
// (a Matrix file's body, a file sent from the web page) goes: its line
// names it.
func WithAttachmentLines(body string, atts []Attachment) string {
	if OnlyAttachmentName(body, atts) {
		body = ""
	}
	for _, at := range atts {
		if at.URL == "" || strings.Contains(body, at.URL) {
			continue
		}
		if body != "" {
			body += "\n"
		}
		body += at.Line()
	}
	return body
}

// lateAfter is how old a message must be when delivered to count as
// late: caught up from a room's history, or waited in the outbox while
// its target was down.
const lateAfter = 30 * time.Second

// LateSince is when ev was said if it is delivered late, for networks
// that can show a message's original time (a Matrix appservice's ts, an
// XMPP delay); zero otherwise.
func LateSince(ev Event, now time.Time) time.Time {
	t := ev.Head().Time
	if t.IsZero() || now.Sub(t) < lateAfter {
		return time.Time{}
	}
	return t
}

// OnlyAttachmentName reports whether body says nothing but the name of
// one of atts whose line it does not show yet ("sunset.png" for
// "sunset.png: https://…").
func OnlyAttachmentName(body string, atts []Attachment) bool {
	body = strings.TrimSpace(body)
	for _, at := range atts {
		if body != "" && at.Name == body && at.URL != "" && at.Name != at.URL && !strings.Contains(body, at.URL) {
			return true
		}
	}
	return false
}

// Message is a chat line. Text is always set; HTML, when set, is the same
// text formatted in the HTML subset of this package (see format.go).
type Message struct {
	Header
	Text    string `json:"text"`
	HTML    string `json:"html,omitempty"`
	Emote   bool   `json:"emote,omitempty"`  // /me
	Notice  bool   `json:"notice,omitempty"` // automated; IRC NOTICE, Matrix m.notice
	ReplyTo Ref    `json:"reply_to,omitzero"`
	// Thread is the first message of the thread this one belongs to (a
	// Matrix thread, an XMPP <thread>). Networks without threads see the
	// message as a reply: adapters set ReplyTo too, to the root or to the
	// message it answers within the thread.
	Thread      Ref          `json:"thread,omitzero"`
	Attachments []Attachment `json:"attachments,omitempty"`
	// Mentions are the people the message names in the form their network
	// notifies them of (a Matrix pill or m.mentions entry, an XMPP
	// reference, an IRC nick the channel knows).
	Mentions []Mention `json:"mentions,omitempty"`
}

// Mention is one person a message mentions.
type Mention struct {
	// Sender is who is mentioned, as their own network knows them: the
	// adapter resolves a mention of one of its puppets to the sender the
	// puppet speaks for. Authenticated as in Header.Sender: an id the
	// network vouches for (a Matrix user id, an XMPP real JID, an IRC
	// account), never a bare nick; the router then sets Person and Home
	// for one of the people's accounts. At delivery the router turns a
	// person's mention into their account on the receiving network, or
	// their puppet identity (see Sender.Puppet).
	Sender Sender `json:"sender"`
	// Text is how Text names them ("bob[m]", "Alice"), for the receiving
	// adapter to put the name it shows them by in its place; "" when the
	// text does not name them (a bare m.mentions entry).
	Text string `json:"text,omitempty"`
}

// Edit replaces the text of an earlier message by the same sender.
type Edit struct {
	Header
	Target Ref    `json:"target"`
	Text   string `json:"text"`
	HTML   string `json:"html,omitempty"`
}

// Delete retracts an earlier message: the sender's own, or, with
// Moderator, anyone's.
type Delete struct {
	Header
	Target Ref `json:"target"`
	// Moderator says the sender deleted it as a moderator of the origin
	// room. Only the adapter of that room can know, and sets it once it
	// has checked the sender's power there (a Matrix power level, the
	// MUC's own word for a XEP-0425 moderation); the router then lets the
	// delete through whoever wrote the message, and clears the flag when
	// the sender deleted their own. Receiving adapters remove someone
	// else's message as a moderator would where they can.
	Moderator bool `json:"moderator,omitempty"`
}

// Reaction adds (or, with Remove, takes back) an emoji or short key on an
// earlier message.
type Reaction struct {
	Header
	Target Ref    `json:"target"`
	Key    string `json:"key"`
	Remove bool   `json:"remove,omitempty"`
}

// Join says the sender entered the room.
type Join struct{ Header }

// Leave says the sender left the room.
type Leave struct {
	Header
	Reason string `json:"reason,omitempty"`
}

// Rename says the sender's display name changed from Previous to
// Sender.Name.
type Rename struct {
	Header
	Previous string `json:"previous"`
}

// Topic says the sender set the room's topic.
type Topic struct {
	Header
	Topic string `json:"topic"`
}

// Typing says the sender started (Active) or stopped typing.
type Typing struct {
	Header
	Active bool `json:"active"`
}

// Read says the sender has read everything up to Target: an XMPP chat
// marker, a Matrix read receipt.
type Read struct {
	Header
	Target Ref `json:"target"`
}

// Presence is the sender's availability: "online", "away", "dnd", "xa"
// or "offline", with an optional status message.
type Presence struct {
	Header
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

func (*Message) Kind() Kind  { return KindMessage }
func (*Edit) Kind() Kind     { return KindEdit }
func (*Delete) Kind() Kind   { return KindDelete }
func (*Reaction) Kind() Kind { return KindReaction }
func (*Join) Kind() Kind     { return KindJoin }
func (*Leave) Kind() Kind    { return KindLeave }
func (*Rename) Kind() Kind   { return KindRename }
func (*Topic) Kind() Kind    { return KindTopic }
func (*Typing) Kind() Kind   { return KindTyping }
func (*Presence) Kind() Kind { return KindPresence }
func (*Read) Kind() Kind     { return KindRead }

// Target returns the event an edit, delete or reaction refers to.
func Target(ev Event) (Ref, bool) {
	switch e := ev.(type) {
	case *Edit:
		return e.Target, true
	case *Delete:
		return e.Target, true
	case *Reaction:
		return e.Target, true
	case *Read:
		return e.Target, true
	}
	return Ref{}, false
}

// SetTarget updates the reference of an edit, delete or reaction.
func SetTarget(ev Event, r Ref) {
	switch e := ev.(type) {
	case *Edit:
		e.Target = r
	case *Delete:
		e.Target = r
	case *Reaction:
		e.Target = r
	case *Read:
		e.Target = r
	}
}
