package mqtt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
)

// OutEvent is the JSON published to R/out/<origin network>/<sender id> for
// every bridged event. Its encoding depends only on the event, so a retried
// delivery publishes the same bytes and consumers can dedupe by ID.
type OutEvent struct {
	ID      string    `json:"id"`
	Type    string    `json:"type"`
	Network string    `json:"network"`
	Room    string    `json:"room"`
	Sender  OutSender `json:"sender"`
	Text    string    `json:"text,omitempty"`
	HTML    string    `json:"html,omitempty"`
	Emote   bool      `json:"emote,omitempty"`
	Notice  bool      `json:"notice,omitempty"`
	ReplyTo string    `json:"reply_to,omitempty"`
	EditOf  string    `json:"edit_of,omitempty"` // edits
	Target  string    `json:"target,omitempty"`  // deletes and reactions
	Key     string    `json:"key,omitempty"`
	Remove  bool      `json:"remove,omitempty"`
	Reason  string    `json:"reason,omitempty"`
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

// OutSender is the sender of an OutEvent as its own network knows them.
type OutSender struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

const tsLayout = "2006-01-02T15:04:05.000Z07:00"

// Encode builds the JSON and topic for delivering ev to room.
func Encode(room string, ev bridge.Event) (topic string, payload []byte, err error) {
	h := ev.Head()
	o := OutEvent{
		ID:      string(h.ID),
		Type:    string(ev.Kind()),
		Network: h.Origin.Network,
		Room:    h.Origin.Room,
		// Dashboards and the web chat put the name into text: it comes
		// as text shows it (bridge.ShownName), the id stays exact.
		Sender: OutSender{ID: h.Sender.ID, Name: h.Sender.Shown(nil)},
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
		return "", nil, fmt.Errorf("unknown event type %T", ev)
	}
	// The router cleans what it accepts; this keeps a direct caller from
	// putting NUL or stray CR into a dashboard.
	o.Text, o.HTML = bridge.CleanText(o.Text), bridge.CleanText(o.HTML)
	payload, err = marshal(o)
	if err != nil {
		return "", nil, err
	}
	return outTopic(room, h.Origin.Network, h.Sender.ID), payload, nil
}

// Switchboard's own messages (answers to chat commands) are OutEvents of
// type "notice" from this sender, published to R/out/switchboard/switchboard.
const (
	NoticeType = "notice"
	BotID      = "switchboard"
	BotName    = "Switchboard"
)

// EncodeNotice builds the JSON and topic of a message from Switchboard
// itself to room. It is no bridged event: its id is fresh, and devices
// and pages show it apart from the chat.
func EncodeNotice(room, text string, now time.Time) (topic string, payload []byte, err error) {
	o := OutEvent{
		ID:      string(bridge.NewEventID()),
		Type:    NoticeType,
		Network: BotID,
		Room:    room,
		Sender:  OutSender{ID: BotID, Name: BotName},
		Text:    bridge.CleanText(text),
		Notice:  true,
		Via:     Via,
		TS:      now.UTC().Format(tsLayout),
	}
	payload, err = marshal(o)
	return outTopic(room, BotID, BotID), payload, err
}

// marshal is JSON as consumers read it raw: HTML in "html" stays legible.
func marshal(o OutEvent) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(o); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// SendAsBot publishes a notice from Switchboard to the room's out topic
// at QoS 1. MQTT has no private messages: room "" fails for good.
func (a *Adapter) SendAsBot(ctx context.Context, room, user, text string) error {
	if room == "" {
		return bridge.Permanent(errors.New("mqtt: no direct messages"))
	}
	if err := ValidRoom(room); err != nil {
		return bridge.Permanent(fmt.Errorf("mqtt: room %q: %w", room, err))
	}
	topic, payload, err := EncodeNotice(room, text, time.Now())
	if err != nil {
		return bridge.Permanent(fmt.Errorf("mqtt: encode notice: %w", err))
	}
	return a.publishRaw(ctx, topic, payload)
}

// Send publishes any event; the router hands us messages here and, as we
// implement every capability, nothing else, but a fallback still works.
func (a *Adapter) Send(ctx context.Context, d *bridge.Delivery) (string, error) {
	return a.publish(ctx, d)
}

// SendReply publishes a message with its "reply_to".
func (a *Adapter) SendReply(ctx context.Context, d *bridge.Delivery) (string, error) {
	return a.publish(ctx, d)
}

func (a *Adapter) SendEdit(ctx context.Context, d *bridge.Delivery) (string, error) {
	return a.publish(ctx, d)
}

func (a *Adapter) SendDelete(ctx context.Context, d *bridge.Delivery) error {
	_, err := a.publish(ctx, d)
	return err
}

func (a *Adapter) SendReaction(ctx context.Context, d *bridge.Delivery) (string, error) {
	return a.publish(ctx, d)
}

func (a *Adapter) SendMembership(ctx context.Context, d *bridge.Delivery) error {
	_, err := a.publish(ctx, d)
	return err
}

func (a *Adapter) SendTopic(ctx context.Context, d *bridge.Delivery) error {
	_, err := a.publish(ctx, d)
	return err
}

func (a *Adapter) SendTyping(ctx context.Context, d *bridge.Delivery) error {
	_, err := a.publish(ctx, d)
	return err
}

func (a *Adapter) SendPresence(ctx context.Context, d *bridge.Delivery) error {
	_, err := a.publish(ctx, d)
	return err
}

// ErrNotConnected is returned by deliveries while the broker connection is
// down; the router's outbox retries them.
var ErrNotConnected = errors.New("mqtt: not connected to the broker")

const maxTopicBytes = 65535

// publish sends one event at QoS 1 and returns once the broker has
// acknowledged it. The remote id is the bridge event id: it is what
// consumers see as "id" and what devices put in "reply_to".
func (a *Adapter) publish(ctx context.Context, d *bridge.Delivery) (string, error) {
	if d == nil || d.Event == nil {
		return "", bridge.Permanent(errors.New("mqtt: empty delivery"))
	}
	if err := ValidRoom(d.Room); err != nil {
		return "", bridge.Permanent(fmt.Errorf("mqtt: room %q: %w", d.Room, err))
	}
	topic, payload, err := Encode(d.Room, d.Event)
	if err != nil {
		return "", bridge.Permanent(fmt.Errorf("mqtt: encode %s event: %w", d.Event.Kind(), err))
	}
	if err := a.publishRaw(ctx, topic, payload); err != nil {
		return "", err
	}
	return string(d.Event.Head().ID), nil
}

// publishRaw publishes a payload at QoS 1 and returns once the broker has
// acknowledged it.
func (a *Adapter) publishRaw(ctx context.Context, topic string, payload []byte) error {
	if len(topic) > maxTopicBytes {
		// paho would truncate the length prefix and corrupt the stream.
		return bridge.Permanent(fmt.Errorf("mqtt: topic of %d bytes exceeds the MQTT limit", len(topic)))
	}
	// Publishing while paho is reconnecting would only park the message in
	// paho's memory store; the outbox is the durable queue, so refuse and
	// let it retry.
	c := a.liveConn()
	if c == nil {
		return ErrNotConnected
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.timeouts.publish)
		defer cancel()
	}
	tok := c.client.Publish(topic, qos, false, payload)
	select {
	case <-tok.Done():
	case <-c.lost:
		// A PUBACK that arrived just before the loss still counts.
		select {
		case <-tok.Done():
		default:
			return fmt.Errorf("mqtt: publish to %s: %w", topic, ErrNotConnected)
		}
	case <-ctx.Done():
		return fmt.Errorf("mqtt: publish to %s: no acknowledgement: %w", topic, ctx.Err())
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("mqtt: publish to %s: %w", topic, err)
	}
	return nil
}

// timeouts are fields so tests can shorten them.
type timeouts struct {
	connect, publish, write, subscribe time.Duration
	accept                             time.Duration
	keepAlive, pingTimeout             time.Duration
	acceptRetryMin, acceptRetryMax     time.Duration
	connectRetryMin, connectRetryMax   time.Duration
}

var defaultTimeouts = timeouts{
	connect:         10 * time.Second,
	publish:         30 * time.Second,
	write:           10 * time.Second,
	subscribe:       30 * time.Second,
	accept:          30 * time.Second,
	keepAlive:       30 * time.Second,
	pingTimeout:     10 * time.Second,
	acceptRetryMin:  100 * time.Millisecond,
	acceptRetryMax:  5 * time.Second,
	connectRetryMin: 500 * time.Millisecond,
	connectRetryMax: 30 * time.Second,
}
