package irc

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ergochat/irc-go/ircevent"
	"github.com/ergochat/irc-go/ircmsg"

	"github.com/switchboard-chat/switchboard/bridge"
)

// Native topics: a topic change from another network becomes the
// channel's topic, set by the bot with TOPIC, where the bot may set it:
// it holds halfop or more (what InspIRCd, Solanum and most others ask on
// a +t channel), or the channel is not +t. Elsewhere SendTopic answers
// bridge.ErrFallback and the router sends the action line instead. The
// bot sets exactly the text, so that every room of the link shows the
// same topic; who changed it is logged. The bot's own TOPIC is never
// bridged back (onTopic skips our nicks), nor is the topic the server
// shows on joining (RPL_TOPIC is no TOPIC line).

// chanTopic is what the bot knows of a channel's topic and +t.
type chanTopic struct {
	text      string // the topic as last seen
	textKnown bool
	// locked is +t; lockKnown once the channel's modes were read (the
	// bot asks on joining). Until then the channel counts as +t, as
	// most servers create channels.
	locked, lockKnown bool
}

// addTopicCallbacks follows what SendTopic needs to know: the current
// topic (to set it only when it differs) and the channel's +t.
func (a *Adapter) addTopicCallbacks(k *conn) {
	k.irc.AddCallback("JOIN", func(e ircmsg.Message) {
		if len(e.Params) < 1 || !k.isMe(e.Nick()) {
			return
		}
		a.mu.Lock()
		r := a.roomLocked(e.Params[0])
		if r != nil {
			r.topic = chanTopic{}
		}
		a.mu.Unlock()
		if r != nil {
			// RPL_CHANNELMODEIS (324) answers; see onChannelModes. The
			// write loop takes it: the read loop we are in never waits.
			go func() {
				if err := k.irc.Send("MODE", e.Params[0]); err != nil {
					a.log.Debug("cannot ask a channel's modes", "channel", e.Params[0], "err", err)
				}
			}()
		}
	})
	k.irc.AddCallback("324", a.onChannelModes)        // <me> <channel> <modes> [params]
	k.irc.AddCallback("332", func(e ircmsg.Message) { // <me> <channel> :<topic>
		if len(e.Params) >= 3 {
			a.topicSeen(e.Params[1], e.Params[2])
		}
	})
	k.irc.AddCallback("331", func(e ircmsg.Message) { // <me> <channel> :No topic is set
		if len(e.Params) >= 2 {
			a.topicSeen(e.Params[1], "")
		}
	})
	k.irc.AddCallback("TOPIC", func(e ircmsg.Message) { // ours included
		if len(e.Params) >= 2 {
			a.topicSeen(e.Params[0], e.Params[1])
		}
	})
	k.irc.AddCallback("MODE", func(e ircmsg.Message) {
		if len(e.Params) >= 2 {
			a.followTopicLock(e.Params[0], e.Params[1:], false)
		}
	})
}

func (a *Adapter) onChannelModes(e ircmsg.Message) {
	if len(e.Params) >= 3 {
		a.followTopicLock(e.Params[1], e.Params[2:], true)
	}
}

func (a *Adapter) topicSeen(ch, text string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r := a.roomLocked(ch); r != nil {
		r.topic.text, r.topic.textKnown = text, true
	}
}

// followTopicLock reads +t/-t from a MODE change, or from the whole
// mode string of RPL_CHANNELMODEIS (all: a mode not listed is unset).
func (a *Adapter) followTopicLock(ch string, params []string, all bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.roomLocked(ch)
	if r == nil {
		return
	}
	if all {
		r.topic.locked, r.topic.lockKnown = false, true
	}
	for _, c := range parseModes(params, a.info) {
		if c.mode == 't' {
			r.topic.locked = c.add
		}
	}
}

// mayTopicLocked reports whether nick may set r's topic as far as the
// bot can tell; a.mu must be held.
func (a *Adapter) mayTopicLocked(r *room, nick string) bool {
	if r.topic.lockKnown && !r.topic.locked {
		return true
	}
	m := r.members[a.info.cm.fold(nick)]
	return m != nil && a.info.mayTopicPrefix(m.prefixes)
}

// mayTopicPrefix reports whether a member holding the prefixes held may
// set the topic of a +t channel: halfop ("%") or above, or operator
// where the server has no halfops.
func (i serverInfo) mayTopicPrefix(held string) bool {
	rank := strings.IndexByte(i.prefixes, '%')
	if rank < 0 {
		return i.isOperatorPrefix(held)
	}
	for j := 0; j < len(held); j++ {
		if k := strings.IndexByte(i.prefixes, held[j]); k >= 0 && k <= rank {
			return true
		}
	}
	return false
}

// topicText makes a bridged topic one clean line that fits: the server's
// TOPICLEN (0: none said) and what is left of the line for the TOPIC
// command.
func topicText(topic string, topicLen, budget int) string {
	text := strings.TrimSpace(cleanLine(topic))
	limit := budget
	if topicLen > 0 {
		limit = min(limit, topicLen)
	}
	if len(text) <= limit {
		return text
	}
	end, _ := cut(text, 0, limit)
	return strings.TrimRight(text[:end], " ")
}

// errTopicRefused is the server refusing the bot's TOPIC (482: not a
// channel operator): the bot's rank or the channel's modes changed
// before it saw the change.
var errTopicRefused = errors.New("irc: the server refused the topic")

// SendTopic implements bridge.TopicSetter: the bot sets the channel's
// topic where it may, else bridge.ErrFallback.
func (a *Adapter) SendTopic(ctx context.Context, d *bridge.Delivery) error {
	t, ok := d.Event.(*bridge.Topic)
	if !ok || d.Room == "" {
		return nil // a topic is a channel's
	}
	info := a.serverInfo()
	if err := validChannel(d.Room, info.chanTypes, info.chanLen); err != nil {
		return bridge.Permanent(err)
	}
	bot, err := a.upBot()
	if err != nil {
		return err
	}
	if err := a.Join(ctx, d.Room); err != nil && !bot.inChannel(d.Room) {
		return err
	}
	topicLen, _ := strconv.Atoi(bot.irc.ISupport()["TOPICLEN"])
	nick := bot.nick()
	text := topicText(t.Topic, topicLen, lineBudget(info.lineLen, nick, bot.getUserHost(), info.userLen, "TOPIC", d.Room, false))
	a.mu.Lock()
	r := a.roomLocked(d.Room)
	same := r != nil && r.topic.textKnown && r.topic.text == text
	may := r != nil && a.mayTopicLocked(r, nick)
	a.mu.Unlock()
	switch {
	case same:
		return nil // the rooms agree already
	case !may:
		a.botFallback(t.ID)
		return bridge.ErrFallback
	}
	err = a.setTopic(ctx, bot, d.Room, text)
	if errors.Is(err, errTopicRefused) {
		a.log.Info("channel refused the bot's topic; announcing it instead", "channel", d.Room, "err", err)
		a.botFallback(t.ID)
		return bridge.ErrFallback
	}
	if err != nil {
		return err
	}
	a.log.Info("set the channel topic", "channel", d.Room, "by", t.Sender.ID, "network", t.Origin.Network)
	return nil
}

// setTopic sends TOPIC from k, in turn with its messages, and where the
// server offers labeled-response waits for its answer.
func (a *Adapter) setTopic(ctx context.Context, k *conn, ch, text string) error {
	if err := k.acquire(ctx); err != nil {
		return err
	}
	defer k.release()
	if err := k.bucket.wait(ctx); err != nil {
		return err
	}
	k.mu.Lock()
	labels, dead := k.caps.labels, k.dead
	k.mu.Unlock()
	if !labels {
		return k.irc.Send("TOPIC", ch, text)
	}
	res := make(chan lineResult, 1)
	if err := k.irc.SendWithLabel(func(b *ircevent.Batch) { res <- topicResult(b) }, nil, "TOPIC", ch, text); err != nil {
		return err
	}
	return k.await(ctx, res, dead).err
}

// topicResult reads the server's labeled answer to TOPIC: the TOPIC line
// itself, an ACK (the topic was already that), or an error numeric.
func topicResult(b *ircevent.Batch) lineResult {
	if b == nil {
		return lineResult{err: errNoConfirm}
	}
	var res lineResult
	var walk func(*ircevent.Batch) bool
	walk = func(b *ircevent.Batch) bool {
		switch c := b.Command; {
		case c == "TOPIC":
			return true
		case c == "482":
			res.err = fmt.Errorf("%w: %w", errTopicRefused, &refusal{code: c, text: lastParam(b.Message)})
			return true
		case c == "FAIL" || len(c) == 3 && (c[0] == '4' || c[0] == '5'):
			res.err = &refusal{code: c, text: lastParam(b.Message)}
			return true
		}
		for _, it := range b.Items {
			if walk(it) {
				return true
			}
		}
		return false
	}
	walk(b)
	return res
}

var _ bridge.TopicSetter = (*Adapter)(nil)
