package matrix

import (
	"context"
	"errors"
	"fmt"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/bridge"
)

// Native topics: a topic change from another network becomes the room's
// m.room.topic, sent by the sender's ghost (or their own Matrix user)
// where its power level reaches the room's level for m.room.topic, else
// by the bot where its level does, else neither: SendTopic answers
// bridge.ErrFallback and the router sends the action line instead. What
// our users send is never bridged back (isOurs, and the transaction
// marker for a person's own user).

// SendTopic implements bridge.TopicSetter.
func (a *Adapter) SendTopic(ctx context.Context, d *bridge.Delivery) error {
	t, ok := d.Event.(*bridge.Topic)
	if !ok || d.Room == "" {
		return nil // a topic is a room's
	}
	rid, err := a.linkedRoom(d.Room)
	if err != nil {
		return err
	}
	text := bridge.CleanText(t.Topic)
	bot := a.as.BotIntent()
	var cur event.TopicEventContent
	if err := bot.Client.StateEvent(ctx, rid, event.StateTopic, "", &cur); err == nil && cur.Topic == text {
		return nil // the rooms agree already
	}
	intent, err := a.topicIntent(ctx, d, t.Sender, rid)
	if err != nil || intent == nil {
		return err
	}
	if err := a.joined(ctx, intent, rid); err != nil {
		return fmt.Errorf("matrix: %s joins %s: %w", intent.UserID, rid, err)
	}
	txn := txnID(t, rid, "topic")
	_, err = retry(ctx, func() (*mautrix.RespSendEvent, error) {
		return intent.SendStateEvent(ctx, rid, event.StateTopic, "", marked(&event.TopicEventContent{Topic: text}, txn))
	})
	if isForbidden(err) {
		// The power levels changed before we saw them.
		a.log.Info("matrix: the room refused our topic; announcing it instead", "room", rid, "user", intent.UserID, "err", err)
		return bridge.ErrFallback
	}
	if err != nil {
		return fmt.Errorf("matrix: set the topic of %s: %w", rid, err)
	}
	a.log.Info("matrix: set the room's topic", "room", rid, "user", intent.UserID, "by", t.Sender.ID, "network", t.Origin.Network)
	return nil
}

// topicIntent is who may set rid's topic for sender s: the user that
// speaks for them, else the bot; bridge.ErrFallback when neither.
func (a *Adapter) topicIntent(ctx context.Context, d *bridge.Delivery, s bridge.Sender, rid id.RoomID) (*appservice.IntentAPI, error) {
	pl, err := a.powerLevels(ctx, rid)
	if err != nil {
		return nil, err
	}
	need := pl.GetEventLevel(event.StateTopic)
	if !a.relay && !d.Relay {
		u := id.NewUserID(a.ghosts.localpart(s.Puppet()), a.cfg.Domain)
		if own := a.personalIntent(ctx, s.Person); own != nil {
			u = own.UserID
		}
		if pl.GetUserLevel(u) >= need {
			return a.speaker(ctx, d, s)
		}
	}
	if pl.GetUserLevel(a.botID) >= need {
		bot := a.as.BotIntent()
		return bot, ensureRegistered(ctx, bot)
	}
	return nil, bridge.ErrFallback
}

// topicChange reports whether a pushed m.room.topic changes the topic:
// not when the homeserver says the one before was the same.
func topicChange(evt *event.Event) bool {
	if evt.Unsigned.PrevContent == nil {
		return true
	}
	if err := evt.Unsigned.PrevContent.ParseRaw(event.StateTopic); err != nil && !errors.Is(err, event.ErrContentAlreadyParsed) {
		return true
	}
	prev, ok := evt.Unsigned.PrevContent.Parsed.(*event.TopicEventContent)
	return !ok || prev.Topic != evt.Content.AsTopic().Topic
}

var _ bridge.TopicSetter = (*Adapter)(nil)
