// Package wire is the JSON in which bridged events leave Switchboard for
// MQTT devices and the web chat page alike: one format, so a dashboard
// and a browser read the same thing.
package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
)

// Via marks what Switchboard publishes. An inbound payload carrying it is
// another bridge's (or our own) output looping back.
const Via = "switchboard"

// Event is the JSON of a bridged event as MQTT devices (on
// R/out/<origin network>/<sender id>) and the web chat page read it. Its encoding depends only on the event, so a retried
// delivery publishes the same bytes and consumers can dedupe by ID.
type Event struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Network string `json:"network"`
	Room    string `json:"room"`
	Sender  Sender `json:"sender"`
	Text    string `json:"text,omitempty"`
	HTML    string `json:"html,omitempty"`
	Emote   bool   `json:"emote,omitempty"`
	Notice  bool   `json:"notice,omitempty"`
	ReplyTo string `json:"reply_to,omitempty"`
	EditOf  string `json:"edit_of,omitempty"` // edits
	Target  string `json:"target,omitempty"`  // deletes and reactions
	Key     string `json:"key,omitempty"`
	Remove  bool   `json:"remove,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Previous is the old name of a rename.
	Previous string `json:"previous,omitempty"`
	// Topic and Active are pointers because their zero values mean
	// something ("topic cleared", "stopped typing") for their kinds.
	Topic       *string             `json:"topic,omitempty"`
	Active      *bool               `json:"active,omitempty"`
	Status      string              `json:"status,omitempty"`
	Message     string              `json:"message,omitempty"`
	Attachments []bridge.Attachment `json:"attachments,omitempty"`
	Via         string              `json:"via"`
	TS          string              `json:"ts,omitempty"`
}

// Sender is the sender of an Event as its own network knows them. For
// one of the configured people, Person is their id, the same whichever
// of their accounts (ID) they wrote from, and Name their configured name.
type Sender struct {
	ID     string `json:"id"`
	Name   string `json:"name,omitempty"`
	Person string `json:"person,omitempty"`
}

const tsLayout = "2006-01-02T15:04:05.000Z07:00"

// Encode is the JSON of ev.
func Encode(ev bridge.Event) ([]byte, error) {
	h := ev.Head()
	o := Event{
		ID:      string(h.ID),
		Type:    string(ev.Kind()),
		Network: h.Origin.Network,
		Room:    h.Origin.Room,
		// Dashboards and the web chat put the name into text: it comes
		// as text shows it (bridge.ShownName), the id stays exact.
		Sender: Sender{ID: h.Sender.ID, Name: h.Sender.Shown(nil), Person: h.Sender.Person},
		Via:    Via,
	}
	if !h.Time.IsZero() {
		o.TS = h.Time.UTC().Format(tsLayout)
	}
	switch e := ev.(type) {
	case *bridge.Message:
		o.Text, o.HTML, o.Emote, o.Notice = e.Text, e.HTML, e.Emote, e.Notice
		o.ReplyTo = string(e.ReplyTo.Event)
		o.Attachments = e.Attachments
	case *bridge.Edit:
		o.Text, o.HTML = e.Text, e.HTML
		o.EditOf = string(e.Target.Event)
	case *bridge.Delete:
		o.Target = string(e.Target.Event)
	case *bridge.Reaction:
		o.Target, o.Key, o.Remove = string(e.Target.Event), e.Key, e.Remove
	case *bridge.Join:
	case *bridge.Leave:
		o.Reason = e.Reason
	case *bridge.Rename:
		o.Previous = bridge.ShownName(e.Previous, nil)
	case *bridge.Topic:
		o.Topic = &e.Topic
	case *bridge.Typing:
		o.Active = &e.Active
	case *bridge.Presence:
		o.Status, o.Message = e.Status, e.Message
	default:
		return nil, fmt.Errorf("unknown event type %T", ev)
	}
	// The router cleans what it accepts; this keeps a direct caller from
	// putting NUL or stray CR into a dashboard.
	o.Text, o.HTML = bridge.CleanText(o.Text), bridge.CleanText(o.HTML)
	return marshal(o)
}

// Switchboard's own messages (answers to chat commands) are Events of
// type "notice" from this sender, published to R/out/switchboard/switchboard.
const (
	NoticeType = "notice"
	BotID      = "switchboard"
	BotName    = "Switchboard"
)

// EncodeNotice is the JSON of a message from Switchboard itself to room.
// It is no bridged event: its id is fresh, and devices and pages show it
// apart from the chat.
func EncodeNotice(room, text string, now time.Time) ([]byte, error) {
	o := Event{
		ID:      string(bridge.NewEventID()),
		Type:    NoticeType,
		Network: BotID,
		Room:    room,
		Sender:  Sender{ID: BotID, Name: BotName},
		Text:    bridge.CleanText(text),
		Notice:  true,
		Via:     Via,
		TS:      now.UTC().Format(tsLayout),
	}
	return marshal(o)
}

// marshal is JSON as consumers read it raw: HTML in "html" stays legible.
func marshal(o Event) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(o); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
