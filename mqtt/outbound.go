package mqtt

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/wire"
)

// OutEvent is the JSON published to R/out/<origin network>/<sender id>
// for every bridged event (wire.Event, shared with the web chat page).
// Its encoding depends only on the event, so a retried delivery
// publishes the same bytes and consumers can dedupe by ID.
type (
	OutEvent  = wire.Event
	OutSender = wire.Sender
)

// Switchboard's own messages go to R/out/switchboard/switchboard.
const (
	NoticeType = wire.NoticeType
	BotID      = wire.BotID
	BotName    = wire.BotName
)

// Encode builds the JSON and topic for delivering ev to room.
func Encode(room string, ev bridge.Event) (topic string, payload []byte, err error) {
	payload, err = wire.Encode(ev)
	if err != nil {
		return "", nil, err
	}
	h := ev.Head()
	return outTopic(room, h.Origin.Network, h.Sender.ID), payload, nil
}

// EncodeNotice builds the JSON and topic of a message from Switchboard
// itself to room.
func EncodeNotice(room, text string, now time.Time) (topic string, payload []byte, err error) {
	payload, err = wire.EncodeNotice(room, text, now)
	return outTopic(room, BotID, BotID), payload, err
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
// down; the router's outbox retries them (and, as it is a
// bridge.ErrNotConnected, without a warning each time).
var ErrNotConnected = fmt.Errorf("mqtt: %w to the broker", bridge.ErrNotConnected)

const maxTopicBytes = 65535

// publish sends one event at QoS 1 and returns once the broker has
// acknowledged it.
func (a *Adapter) publish(ctx context.Context, d *bridge.Delivery) (string, error) {
	return a.startPublish(ctx, d)(ctx)
}

// SendPipelined implements bridge.Pipeliner: the broker's PUBACK confirms
// a message, while the next ones go out.
func (a *Adapter) SendPipelined(ctx context.Context, d *bridge.Delivery) (bridge.Confirm, error) {
	return a.startPublish(ctx, d), nil
}

// startPublish sends one event at QoS 1 and returns the wait for the
// broker's acknowledgement. The remote id is the bridge event id: it is
// what consumers see as "id" and what devices put in "reply_to".
func (a *Adapter) startPublish(ctx context.Context, d *bridge.Delivery) bridge.Confirm {
	if d == nil || d.Event == nil {
		return bridge.Settled("", bridge.Permanent(errors.New("mqtt: empty delivery")))
	}
	if err := ValidRoom(d.Room); err != nil {
		return bridge.Settled("", bridge.Permanent(fmt.Errorf("mqtt: room %q: %w", d.Room, err)))
	}
	topic, payload, err := Encode(d.Room, d.Event)
	if err != nil {
		return bridge.Settled("", bridge.Permanent(fmt.Errorf("mqtt: encode %s event: %w", d.Event.Kind(), err)))
	}
	acked := a.startRaw(topic, payload)
	id := string(d.Event.Head().ID)
	return func(ctx context.Context) (string, error) {
		if err := acked(ctx); err != nil {
			return "", err
		}
		return id, nil
	}
}

// publishRaw publishes a payload at QoS 1 and returns once the broker has
// acknowledged it.
func (a *Adapter) publishRaw(ctx context.Context, topic string, payload []byte) error {
	return a.startRaw(topic, payload)(ctx)
}

// startRaw publishes a payload at QoS 1 and returns the wait for the
// broker's acknowledgement, bounded by the publish timeout when ctx has
// no deadline.
func (a *Adapter) startRaw(topic string, payload []byte) func(ctx context.Context) error {
	if len(topic) > maxTopicBytes {
		// paho would truncate the length prefix and corrupt the stream.
		err := bridge.Permanent(fmt.Errorf("mqtt: topic of %d bytes exceeds the MQTT limit", len(topic)))
		return func(context.Context) error { return err }
	}
	// Publishing while paho is reconnecting would only park the message in
	// paho's memory store; the outbox is the durable queue, so refuse and
	// let it retry.
	c := a.liveConn()
	if c == nil {
		return func(context.Context) error { return ErrNotConnected }
	}
	tok := c.client.Publish(topic, qos, false, payload)
	return func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, a.timeouts.publish)
			defer cancel()
		}
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
