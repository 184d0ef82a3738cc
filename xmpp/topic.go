package xmpp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
)

// Native topics: a topic change from another network becomes the MUC's
// subject (XEP-0045 §8.1), set by the sender's occupant where it may
// (their puppet, or their own session), else by the bot. A room lets a
// moderator change the subject, and any participant where it allows
// that (muc#roomconfig_changesubject, which it shows in its disco#info
// form). Where neither may, or the room refuses, SendTopic answers
// bridge.ErrFallback and the router sends the action line instead; a
// refusal is remembered for the occupant until its role changes.
//
// The subject a room sends on joining is its current one, not a change:
// it is not bridged. Nor is the reflection of a subject we set.

// roomTopic is what the bot knows of a room's subject.
type roomTopic struct {
	subject string // the current subject, as last seen
	known   bool

	// open: the room lets participants change the subject; asked once
	// per session (openGen).
	open    bool
	openGen uint64

	// refused are the occupants (by nick) whose subject the room refused,
	// with the role they had then.
	refused map[string]string

	// waiting is the subject change we sent and wait to see reflected:
	// the room sends it anew, without our id.
	waiting                  *outMsg
	waitingNick, waitingText string
}

// onSubject handles a message with a subject and no body: the room's
// subject, on joining or changed. The bot's copy is the one bridged; a
// puppet's own copy confirms the subject it set (the component's stream
// filter drops the bot's copy of a puppet's message, see skip).
func (a *Adapter) onSubject(c *session, r *room, st *stanza) {
	nick := st.from.Resourcepart()
	toBot := a.isBot(c, st.to)
	a.mu.Lock()
	if w := r.topic.waiting; w != nil && nick != "" && nick == r.topic.waitingNick && st.subject == r.topic.waitingText {
		w.finish("", nil)
		r.topic.waiting = nil
		r.topic.subject, r.topic.known = st.subject, true
	}
	if !toBot {
		a.mu.Unlock()
		return
	}
	// The first subject after joining is the current one (XEP-0045
	// §7.2.15), stamped with when it was set where the room keeps that.
	onJoin := !r.joined || !r.subjectSeen || !st.delay.IsZero() && st.delay.Before(r.joinedAt.Add(clockSkew))
	r.subjectSeen = r.joined
	prev, prevKnown := r.topic.subject, r.topic.known
	r.topic.subject, r.topic.known = st.subject, true
	own := nick != "" && (a.ownOccupantLocked(r, nick, st) || a.personalEchoLocked(r, nick, st))
	if own || onJoin || nick == "" || prevKnown && prev == st.subject {
		a.mu.Unlock()
		return
	}
	o := a.occupantLocked(r, nick)
	a.mu.Unlock()
	a.emit(&bridge.Topic{Header: a.roomHeader(r, a.occupantSender(r, o), ""), Topic: bridge.CleanText(st.subject)})
}

// SendTopic implements bridge.TopicSetter.
func (a *Adapter) SendTopic(ctx context.Context, d *bridge.Delivery) error {
	t, ok := d.Event.(*bridge.Topic)
	if !ok || d.Room == "" {
		return nil // a topic is a room's
	}
	c, err := a.current()
	if err != nil {
		return err
	}
	r, err := a.readyRoom(ctx, c, d.Room)
	if err != nil {
		return err
	}
	text := bridge.CleanText(t.Topic)
	a.mu.Lock()
	same := r.topic.known && r.topic.subject == text
	a.mu.Unlock()
	if same {
		return nil // the rooms agree already
	}
	sp, ok, err := a.subjectSpeaker(ctx, c, r, t.Sender, d.Relay)
	if err != nil {
		return err
	}
	if !ok {
		return bridge.ErrFallback
	}
	nick, err := a.setSubject(ctx, c, r, sp, msgID(t.ID), text)
	var se *stanzaError
	if errors.As(err, &se) && se.typ != "wait" {
		a.mu.Lock()
		if r.topic.refused == nil {
			r.topic.refused = map[string]string{}
		}
		r.topic.refused[nick] = a.occupantLocked(r, nick).role
		a.mu.Unlock()
		a.log.Info("xmpp: the room refused our subject; announcing the topic instead", "room", r.addr, "nick", nick, "err", err)
		return bridge.ErrFallback
	}
	if err != nil {
		return err
	}
	a.log.Info("xmpp: set the room's subject", "room", r.addr, "nick", nick, "by", t.Sender.ID, "network", t.Origin.Network)
	return nil
}

// subjectSpeaker picks who sets the subject: the sender's occupant (in
// a room that lets participants, whoever speaks for them; else their
// puppet if it is in the room already and a moderator), or the bot. ok
// is false when none of ours may.
func (a *Adapter) subjectSpeaker(ctx context.Context, c *session, r *room, s bridge.Sender, relay bool) (sp speaker, ok bool, err error) {
	open, err := a.subjectOpen(ctx, c, r)
	if err != nil {
		return speaker{}, false, err
	}
	if open {
		sp, err := a.speakerFor(ctx, c, r, s, relay)
		if err != nil {
			return speaker{}, false, err
		}
		a.mu.Lock()
		ok := a.maySubjectLocked(r, sp, true)
		a.mu.Unlock()
		if ok {
			return sp, true, nil
		}
	} else if !relay && !a.relay {
		a.mu.Lock()
		if p := a.puppets[senderKey(s.Puppet())]; p != nil {
			if m := p.rooms[r.key]; m != nil && m.joined {
				sp = speaker{jid: p.jid, puppet: p}
				ok = a.maySubjectLocked(r, sp, false)
			}
		}
		a.mu.Unlock()
		if ok {
			return sp, true, nil
		}
	}
	bot := speaker{jid: c.me, relay: true}
	a.mu.Lock()
	ok = a.maySubjectLocked(r, bot, open)
	a.mu.Unlock()
	return bot, ok, nil
}

// maySubjectLocked reports whether sp may set r's subject, as far as
// its role shows; a.mu is held.
func (a *Adapter) maySubjectLocked(r *room, sp speaker, open bool) bool {
	nick := a.speakerNickLocked(r, sp)
	if nick == "" {
		return false
	}
	role := a.occupantLocked(r, nick).role
	if refused, ok := r.topic.refused[nick]; ok && refused == role {
		return false
	}
	switch role {
	case "moderator":
		return true
	case "participant", "":
		// An unknown role is tried where participants may: a refusal
		// is remembered.
		return open
	}
	return false
}

// speakerNickLocked is sp's nick in r ("" when not in it); a.mu is held.
func (a *Adapter) speakerNickLocked(r *room, sp speaker) string {
	switch {
	case sp.puppet != nil:
		if m := sp.puppet.rooms[r.key]; m != nil && m.joined {
			return m.nick
		}
		return ""
	case sp.via != nil:
		for nick, p := range r.personalNicks {
			if p == sp.via.person {
				return nick
			}
		}
		return ""
	}
	return r.nick
}

// subjectOpen reports whether r lets participants change its subject,
// from its disco#info form (asked once per session).
func (a *Adapter) subjectOpen(ctx context.Context, c *session, r *room) (bool, error) {
	a.mu.Lock()
	open, gen := r.topic.open, r.topic.openGen
	a.mu.Unlock()
	if gen == c.gen {
		return open, nil
	}
	st, err := a.iq(ctx, c, c.me, r.jid, "get", el(nsDiscoInfo, "query"), a.t.join)
	if err != nil {
		return false, err
	}
	open = false
	if st.typ != "error" {
		for _, x := range st.payload.children(nsData, "x") {
			for _, f := range x.children(nsData, "field") {
				switch f.get("var") {
				case "muc#roomconfig_changesubject", "muc#roominfo_changesubject":
					v := f.child(nsData, "value").textOr("")
					open = v == "1" || v == "true"
				}
			}
		}
	}
	a.mu.Lock()
	r.topic.open, r.topic.openGen = open, c.gen
	a.mu.Unlock()
	return open, nil
}

// setSubject sends the subject from sp and waits for the room to reflect
// it, or to refuse it (a *stanzaError); it returns sp's nick.
func (a *Adapter) setSubject(ctx context.Context, c *session, r *room, sp speaker, id, text string) (string, error) {
	w := c
	if sp.via != nil {
		w = sp.via
	}
	e := a.groupchat(sp, r, id)
	e.add(el("", "subject").withText(text))
	if err := a.fit(e); err != nil {
		return "", err
	}
	om := &outMsg{gen: w.gen, from: sp.jid.String(), done: make(chan struct{}), at: time.Now(), sentAt: time.Now()}
	key := r.key + "\x00" + id
	a.mu.Lock()
	nick := a.speakerNickLocked(r, sp)
	if len(a.sent) >= maxSent {
		a.pruneSentLocked()
	}
	a.sent[key] = om // onMessageError finishes it with the room's refusal
	r.topic.waiting, r.topic.waitingNick, r.topic.waitingText = om, nick, text
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		if r.topic.waiting == om {
			r.topic.waiting = nil
		}
		if a.sent[key] == om {
			delete(a.sent, key)
		}
		a.mu.Unlock()
	}()
	if err := a.write(w, e); err != nil {
		return nick, err
	}
	t := time.NewTimer(a.t.reflect)
	defer t.Stop()
	select {
	case <-om.done:
		return nick, om.err
	case <-t.C:
		return nick, fmt.Errorf("xmpp: the room did not confirm the subject: %w", errTimeout)
	case <-ctx.Done():
		return nick, ctx.Err()
	case <-w.ctx.Done():
		return nick, errDisconnected
	}
}

var _ bridge.TopicSetter = (*Adapter)(nil)
