package xmpp

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"mellium.im/xmpp/jid"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/mapping"
)

// outMsg is a groupchat message we sent, until the room reflects it:
// retries of the same event find it here instead of sending it again.
type outMsg struct {
	gen      uint64
	from     string // the sending JID
	done     chan struct{}
	remoteID string
	err      error
	at       time.Time
	sentAt   time.Time // the first attempt to send it, on any session
}

func (o *outMsg) finished() bool {
	select {
	case <-o.done:
		return true
	default:
		return false
	}
}

// finish records the outcome; callers hold a.mu.
func (o *outMsg) finish(remote string, err error) {
	if o.finished() {
		return
	}
	o.remoteID, o.err = remote, err
	close(o.done)
}

// msgID is the message id (and origin-id) of what the bridge event ev
// becomes here: the same on every retry.
func msgID(ev bridge.EventID) string { return msgIDPrefix + string(ev) }

const msgIDPrefix = "sb-"

func attr(name, value string) xml.Attr { return xml.Attr{Name: xml.Name{Local: name}, Value: value} }

func setAttr(e *element, name, value string) {
	for i, at := range e.attr {
		if at.Name.Local == name && at.Name.Space == "" {
			e.attr[i].Value = value
			return
		}
	}
	e.attr = append(e.attr, attr(name, value))
}

func delAttr(e *element, name string) {
	e.attr = slices.DeleteFunc(e.attr, func(at xml.Attr) bool { return at.Name.Local == name && at.Name.Space == "" })
}

// speaker is who says something in a room: a puppet, or the bot relaying.
type speaker struct {
	jid    jid.JID
	puppet *puppet
	relay  bool
	via    *session // a person's own session, which sends as them; nil: the bot's stream
}

// speakerFor picks the sender's puppet (joining it to the room) in
// puppet mode, and the bot when puppets are off (for the network, or for
// this room: relay is Delivery.Relay), all taken, or the puppet cannot
// join.
func (a *Adapter) speakerFor(ctx context.Context, c *session, r *room, s bridge.Sender, relay bool) (speaker, error) {
	bot := speaker{jid: c.me, relay: true}
	if sp, ok, err := a.personalSpeaker(ctx, r, s); ok || err != nil {
		return sp, err
	}
	if a.relay || relay {
		return bot, nil
	}
	p, err := a.puppetFor(s)
	if err != nil {
		a.log.Warn("xmpp: no puppet JID for sender; relaying", "sender", s.ID, "network", s.Network, "err", err)
		return bot, nil
	}
	if p == nil {
		return bot, nil // puppets.max reached
	}
	if _, err := a.joinPuppet(ctx, c, r, p); err != nil {
		if ctx.Err() != nil || errors.Is(err, errDisconnected) || errors.Is(err, errTimeout) || errors.Is(err, errNotConnected) {
			return speaker{}, err
		}
		if errors.Is(err, errLeft) {
			return speaker{}, bridge.Permanent(fmt.Errorf("xmpp: %s: %w", r.addr, err))
		}
		if ban := a.puppetRefused(ctx, r, p, err); ban != nil {
			// Never the bot instead: that would bypass the ban.
			return speaker{}, ban
		}
		a.log.Warn("xmpp: puppet cannot join; relaying", "room", r.addr, "puppet", p.jid.String(), "err", err)
		return bot, nil
	}
	a.refreshPhoto(ctx, c, r, p)
	return speaker{jid: p.jid, puppet: p}, nil
}

// speakerOf is who sent one of our earlier messages (corrections and
// retractions must come from the same occupant), or else the sender's
// usual speaker.
func (a *Adapter) speakerOf(ctx context.Context, c *session, r *room, target string, s bridge.Sender, relay bool) (speaker, sentInfo, bool, error) {
	a.mu.Lock()
	info, known := r.ids.sent.get(target)
	a.mu.Unlock()
	if known && info.from == c.me.String() {
		return speaker{jid: c.me, relay: true}, info, true, nil
	}
	sp, err := a.speakerFor(ctx, c, r, s, relay)
	return sp, info, known, err
}

// readyRoom is the room of a delivery, with the bot in it.
func (a *Adapter) readyRoom(ctx context.Context, c *session, room string) (*room, error) {
	j, err := parseRoom(room)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	if a.left[j.String()] {
		a.mu.Unlock()
		// Left at runtime: a delivery still queued for it must not take
		// the bot back in.
		return nil, bridge.Permanent(fmt.Errorf("xmpp: %s: %w", room, errLeft))
	}
	r := a.rooms[j.String()]
	if r == nil {
		r = newRoom(room, j)
		a.rooms[r.key] = r
	}
	a.mu.Unlock()
	if err := a.joinBot(ctx, c, r); err != nil {
		return nil, fmt.Errorf("xmpp: join %s: %w", room, err)
	}
	return r, nil
}

// relayed prefixes text the way relay mode shows its sender.
func relayed(s bridge.Sender, emote bool, text string) string {
	if emote {
		return "* " + s.Shown(bridge.RelayDelims) + " " + text
	}
	return "<" + s.Shown(bridge.RelayDelims) + "> " + text
}

// UseTextLinks implements adapters.TextLinkUser.
func (a *Adapter) UseTextLinks(l adapters.TextLinks) { a.textLinks = l }

// cut keeps the text of event id within max_message_bytes, when that is
// set: its beginning and a link to the whole (see bridge.CutText).
// Attachments' lines come after it, never cut: the link to the whole
// text would not show them.
func (a *Adapter) cut(text string, id bridge.EventID) string {
	if a.cfg.MaxMessageBytes <= 0 || len(text) <= a.cfg.MaxMessageBytes {
		return text
	}
	link := ""
	if a.textLinks != nil {
		link = a.textLinks.TextLink(id)
	}
	return bridge.CutText(text, a.cfg.MaxMessageBytes, link)
}

// bodyText is the text of event id as XMPP text: its HTML as message
// styling when it has any, cut to max_message_bytes, attachments' URLs on
// lines of their own.
func (a *Adapter) bodyText(id bridge.EventID, text, html string, atts []bridge.Attachment) string {
	body := text
	if html != "" {
		if s := htmlToStyling(html); strings.TrimSpace(s) != "" {
			body = s
		}
	}
	return bridge.CleanText(bridge.WithAttachmentLines(a.cut(body, id), atts))
}

func (sp speaker) say(s bridge.Sender, emote bool, text string) string {
	switch {
	case sp.relay:
		return relayed(s, emote, text)
	case emote:
		return "/me " + text
	}
	return text
}

// reflectionReserve is what a room adds to a message it reflects
// (stanza-id, occupant-id, addresses): what we send must still be within
// max_stanza when it comes back.
const reflectionReserve = 2048

// fit shortens a stanza's body until the stanza is within max_stanza
// (less what the room adds to it): the server would end the stream for
// an oversized one, and the reflection would be dropped.
func (a *Adapter) fit(e *element) error {
	limit := a.maxStanza - reflectionReserve
	if e.sizeBound() <= limit {
		return nil
	}
	body := e.child("", "body")
	for range 12 {
		size := e.encodedSize()
		if size <= limit {
			return nil
		}
		if body == nil || body.text == "" {
			break
		}
		over := size - limit
		keep := max(0, len(body.text)-over-len("…")-16)
		if keep >= len(body.text) {
			keep = len(body.text) / 2
		}
		for keep > 0 && !utf8.RuneStart(body.text[keep]) {
			keep--
		}
		body.text = body.text[:keep] + "…"
	}
	if e.encodedSize() > limit {
		return bridge.Permanent(fmt.Errorf("xmpp: stanza larger than max_stanza (%d bytes)", a.maxStanza))
	}
	return nil
}

// groupchat is a message stanza to a room with our id and origin-id.
func (a *Adapter) groupchat(sp speaker, r *room, id string) *element {
	e := a.stanzaBase("message", sp.jid, r.jid, "groupchat")
	setAttr(e, "id", id)
	return e
}

func originID(id string) *element { return el(nsSID, "origin-id", "id", id) }

// sendGroupchat sends a message to a room and waits until the room
// reflects it, returning the stanza-id the room gave it (the message id
// when the room gives none).
func (a *Adapter) sendGroupchat(ctx context.Context, c *session, r *room, sp speaker, id string, e *element) (string, error) {
	return a.startGroupchat(ctx, c, r, sp, id, e)(ctx)
}

// startGroupchat sends a message to a room and returns the wait for its
// reflection. A retry of a message already sent on this session waits
// for that one instead of sending it again; a retry of one an earlier
// session sent without seeing it come back first looks for it in the
// room's archive (see archived).
func (a *Adapter) startGroupchat(ctx context.Context, c *session, r *room, sp speaker, id string, e *element) bridge.Confirm {
	if err := a.fit(e); err != nil {
		return bridge.Settled("", err)
	}
	key := r.key + "\x00" + id
	now := time.Now()
	w := c // the stream it goes out on
	if sp.via != nil {
		w = sp.via
	}
	om := &outMsg{gen: w.gen, from: sp.jid.String(), done: make(chan struct{}), at: now, sentAt: now}
	await := func(om *outMsg) bridge.Confirm {
		return func(ctx context.Context) (string, error) { return a.awaitOut(ctx, w, om) }
	}
	lookup := false
	a.mu.Lock()
	if prev := a.sent[key]; prev != nil {
		if prev.finished() && prev.err == nil {
			a.mu.Unlock()
			return bridge.Settled(prev.remoteID, nil)
		}
		if !prev.finished() && prev.gen == w.gen {
			a.mu.Unlock()
			return await(prev)
		}
		if lookup = prev.maybeInRoom(); lookup {
			om.sentAt = prev.sentAt
		}
	}
	if len(a.sent) >= maxSent {
		a.pruneSentLocked()
	}
	a.sent[key] = om
	a.mu.Unlock()
	if lookup {
		sid, err := a.archived(ctx, c, r, id, om.sentAt)
		a.mu.Lock()
		switch {
		case err != nil:
			om.finish("", fmt.Errorf("xmpp: cannot search the room archive: %w", err))
		case sid != "":
			om.finish(sid, nil)
			r.ids.sent.put(sid, sentInfo{clientID: id, from: om.from})
		}
		a.mu.Unlock()
		if err != nil {
			return bridge.Settled("", om.err)
		}
		if sid != "" {
			a.log.Info("xmpp: message found in the room archive; not sent again", "room", r.addr, "id", id, "stanza_id", sid)
			return bridge.Settled(sid, nil)
		}
	}
	if err := a.write(w, e); err != nil {
		a.mu.Lock()
		om.finish("", err)
		a.mu.Unlock()
		return bridge.Settled("", err)
	}
	return await(om)
}

func (a *Adapter) awaitOut(ctx context.Context, c *session, om *outMsg) (string, error) {
	t := time.NewTimer(a.t.reflect)
	defer t.Stop()
	select {
	case <-om.done:
		if om.err != nil {
			var se *stanzaError
			if errors.As(om.err, &se) && permanentCondition(se.condition) {
				return "", bridge.Permanent(fmt.Errorf("xmpp: room refused the message: %w", om.err))
			}
			return "", fmt.Errorf("xmpp: room refused the message: %w", om.err)
		}
		return om.remoteID, nil
	case <-t.C:
		return "", fmt.Errorf("xmpp: the room did not confirm the message: %w", errTimeout)
	case <-ctx.Done():
		return "", ctx.Err()
	case <-c.ctx.Done():
		return "", errDisconnected
	}
}

// permanentCondition: errors no retry fixes.
func permanentCondition(cond string) bool {
	switch cond {
	case "bad-request", "not-allowed", "policy-violation", "forbidden", "jid-malformed", "feature-not-implemented":
		return true
	}
	return false
}

// pruneSentLocked forgets finished sent messages: the older ones first,
// all of them if the map is still full.
func (a *Adapter) pruneSentLocked() {
	oldest := time.Now().Add(-sentTTL / 4)
	for key, om := range a.sent {
		if om.finished() && om.at.Before(oldest) {
			delete(a.sent, key)
		}
	}
	if len(a.sent) < maxSent {
		return
	}
	for key, om := range a.sent {
		if om.finished() {
			delete(a.sent, key)
		}
	}
}

// Send delivers a message: from the sender's puppet in puppet mode, from
// the bot as "<name> text" in relay mode or when the delivery asks for it
// (Delivery.Relay).
func (a *Adapter) Send(ctx context.Context, d *bridge.Delivery) (string, error) {
	m, ok := d.Event.(*bridge.Message)
	if !ok {
		return "", bridge.Permanent(fmt.Errorf("xmpp: cannot send %s events", d.Event.Kind()))
	}
	return a.sendMessage(ctx, d, m, nil)(ctx)
}

// SendPipelined implements bridge.Pipeliner: a groupchat message is
// confirmed by the room's reflection of it, which the inbound stream
// delivers while the next messages go out.
func (a *Adapter) SendPipelined(ctx context.Context, d *bridge.Delivery) (bridge.Confirm, error) {
	m, ok := d.Event.(*bridge.Message)
	if !ok {
		return nil, bridge.Permanent(fmt.Errorf("xmpp: cannot send %s events", d.Event.Kind()))
	}
	return a.sendMessage(ctx, d, m, nil), nil
}

// SendReply delivers a reply as an XEP-0461 reply with an XEP-0428
// fallback quote.
func (a *Adapter) SendReply(ctx context.Context, d *bridge.Delivery) (string, error) {
	m, ok := d.Event.(*bridge.Message)
	if !ok {
		return "", bridge.Permanent(fmt.Errorf("xmpp: cannot reply with %s events", d.Event.Kind()))
	}
	return a.sendMessage(ctx, d, m, d.Reply)(ctx)
}

// sendMessage sends a message and returns the wait for its confirmation.
func (a *Adapter) sendMessage(ctx context.Context, d *bridge.Delivery, m *bridge.Message, q *bridge.Quote) bridge.Confirm {
	c, err := a.current()
	if err != nil {
		return bridge.Settled("", err)
	}
	if d.Room == "" {
		// Uploaded as the bot: a chat's sender is known only as it goes.
		m, _ = a.withUploads(ctx, c, speaker{jid: c.me}, m) // called off: the links
		return bridge.Settled(a.sendDirect(ctx, c, m, func(sp speaker, e *element) {
			a.messagePayload(e, sp, m, q, "")
			e.add(markable())
		}))
	}
	r, err := a.readyRoom(ctx, c, d.Room)
	if err != nil {
		return bridge.Settled("", err)
	}
	sp, err := a.speakerFor(ctx, c, r, m.Sender, d.Relay)
	if err != nil {
		return bridge.Settled("", err)
	}
	if m, err = a.withUploads(ctx, c, sp, m); err != nil {
		return bridge.Settled("", err)
	}
	id := msgID(m.ID)
	e := a.groupchat(sp, r, id)
	replyTo := ""
	if q != nil && q.RemoteID != "" {
		a.mu.Lock()
		if nick, ok := r.ids.authors.get(q.RemoteID); ok {
			replyTo = r.occupantJID(nick).String()
		}
		a.mu.Unlock()
	}
	m, nicks := a.withMentions(r, m, d.Relay)
	a.messagePayload(e, sp, m, q, replyTo)
	if err := a.addThread(ctx, r, d.Thread, e); err != nil {
		return bridge.Settled("", err)
	}
	if len(nicks) > 0 {
		body := e.child("", "body").text
		from := 0
		if q != nil {
			from = strings.IndexByte(body, '\n') + 1 // past the quote
		}
		e.add(references(r, body, from, nicks)...)
	}
	return a.startGroupchat(ctx, c, r, sp, id, e)
}

// delayStamp is XEP-0082's DateTime, in UTC with milliseconds.
const delayStamp = "2006-01-02T15:04:05.000Z"

// messagePayload adds a message's body and extensions to e.
func (a *Adapter) messagePayload(e *element, sp speaker, m *bridge.Message, q *bridge.Quote, replyTo string) {
	body := sp.say(m.Sender, m.Emote, a.bodyText(m.ID, m.Text, m.HTML, m.Attachments))
	var extra []*element
	if q != nil {
		quote := "> " + bridge.ShownName(q.SenderName, bridge.QuoteDelims) + ": " + strings.ReplaceAll(bridge.CleanText(q.Text), "\n", " ") + "\n"
		body = quote + body
		if q.RemoteID != "" {
			extra = append(extra, el(nsReply, "reply", "to", replyTo, "id", q.RemoteID))
		}
		extra = append(extra, el(nsFallback, "fallback", "for", nsReply).add(
			el(nsFallback, "body", "start", "0", "end", fmt.Sprint(utf8.RuneCountInString(quote)))))
	}
	e.add(el("", "body").withText(body))
	e.add(extra...)
	e.add(originID(e.get("id")))
	if at := bridge.LateSince(m, time.Now()); !at.IsZero() {
		// XEP-0203: clients show a late message at the time it was said.
		e.add(el(nsDelay, "delay", "stamp", at.UTC().Format(delayStamp)))
	}
	if len(m.Attachments) > 0 && m.Attachments[0].URL != "" {
		at := m.Attachments[0]
		x := el(nsOOB, "x").add(el(nsOOB, "url").withText(at.URL))
		if at.Name != "" {
			x.add(el(nsOOB, "desc").withText(bridge.CleanText(at.Name)))
		}
		e.add(x)
	}
}

// sendDirect sends a one-to-one message to the XMPP user ev is addressed
// to, from the sender's own session when they are a person with one
// here, else from their puppet (or the bot, relaying, without a
// component). There is no reflection to wait for: the message id is the
// remote id.
func (a *Adapter) sendDirect(ctx context.Context, c *session, ev bridge.Event, payload func(speaker, *element)) (string, error) {
	h := ev.Head()
	if h.To == nil {
		return "", bridge.Permanent(errors.New("xmpp: direct event without a recipient"))
	}
	to, err := jid.Parse(h.To.ID)
	if err != nil || to.Domainpart() == "" {
		return "", bridge.Permanent(fmt.Errorf("xmpp: direct recipient %q is not a JID", h.To.ID))
	}
	sp := speaker{jid: c.me, relay: true}
	if a.component && !a.relay {
		pj, err := puppetJID(h.Sender, a.domain)
		if err != nil {
			return "", bridge.Permanent(fmt.Errorf("xmpp: no puppet JID for %s: %w", h.Sender.ID, err))
		}
		sp = speaker{jid: pj}
		if p := a.existingPuppet(h.Sender); p != nil {
			sp.puppet = p
		}
	}
	if pc := a.personalFor(ctx, h.Sender.Person); pc != nil {
		// A person with a session here writes from their own JID: the
		// answer from their inbox at home comes from them.
		c, sp = pc, speaker{jid: pc.me, via: pc}
	}
	id := msgID(h.ID)
	e := a.stanzaBase("message", sp.jid, to, "chat")
	setAttr(e, "id", id)
	payload(sp, e)
	if err := a.fit(e); err != nil {
		return "", err
	}
	if err := a.write(c, e); err != nil {
		return "", err
	}
	return id, nil
}

// SendEdit sends an XEP-0308 correction of one of our messages.
func (a *Adapter) SendEdit(ctx context.Context, d *bridge.Delivery) (string, error) {
	ed, ok := d.Event.(*bridge.Edit)
	if !ok {
		return "", bridge.Permanent(fmt.Errorf("xmpp: cannot edit with %s events", d.Event.Kind()))
	}
	c, err := a.current()
	if err != nil {
		return "", err
	}
	text := a.bodyText(ed.ID, ed.Text, ed.HTML, nil)
	if d.Room == "" {
		return a.sendDirect(ctx, c, ed, func(sp speaker, e *element) {
			e.add(el("", "body").withText(sp.say(ed.Sender, false, text)),
				el(nsCorrect, "replace", "id", d.Target), originID(e.get("id")))
		})
	}
	r, err := a.readyRoom(ctx, c, d.Room)
	if err != nil {
		return "", err
	}
	sp, info, known, err := a.speakerOf(ctx, c, r, d.Target, ed.Sender, d.Relay)
	if err != nil {
		return "", err
	}
	clientID := info.clientID
	if !known {
		// Sent before a restart: its id is derived from its event.
		clientID = msgID(ed.Target.Event)
	}
	id := msgID(ed.ID)
	e := a.groupchat(sp, r, id)
	e.add(el("", "body").withText(sp.say(ed.Sender, false, text)),
		el(nsCorrect, "replace", "id", clientID), originID(id))
	return a.sendGroupchat(ctx, c, r, sp, id, e)
}

// retractFallback is what clients without XEP-0424 show.
const retractFallback = "This person attempted to retract a previous message, but it's unsupported by your client."

// SendDelete retracts one of our messages (XEP-0424, with the older
// fastening form for clients that only know it), or, for a moderator's
// delete, anyone's, as a moderator (XEP-0425).
func (a *Adapter) SendDelete(ctx context.Context, d *bridge.Delivery) error {
	del, ok := d.Event.(*bridge.Delete)
	if !ok {
		return bridge.Permanent(fmt.Errorf("xmpp: cannot delete with %s events", d.Event.Kind()))
	}
	c, err := a.current()
	if err != nil {
		return err
	}
	payload := func(e *element, clientID string) {
		e.add(el(nsRetract, "retract", "id", d.Target),
			el(nsFasten, "apply-to", "id", clientID).add(el(nsRetract0, "retract")),
			el(nsFallback, "fallback", "for", nsRetract),
			el("", "body").withText(retractFallback),
			el(nsHints, "store"))
	}
	if d.Room == "" {
		_, err := a.sendDirect(ctx, c, del, func(_ speaker, e *element) { payload(e, d.Target) })
		return err
	}
	if del.Moderator {
		if d.Target == "" {
			return nil // the room never saw it
		}
		return a.moderate(ctx, c, d, del)
	}
	r, err := a.readyRoom(ctx, c, d.Room)
	if err != nil {
		return err
	}
	sp, info, known, err := a.speakerOf(ctx, c, r, d.Target, del.Sender, d.Relay)
	if err != nil {
		return err
	}
	clientID := info.clientID
	if !known {
		clientID = msgID(del.Target.Event)
	}
	id := msgID(del.ID)
	e := a.groupchat(sp, r, id)
	payload(e, clientID)
	e.add(originID(id))
	_, err = a.sendGroupchat(ctx, c, r, sp, id, e)
	return err
}

// SendReaction adds or removes a reaction. XEP-0444 sends a sender's
// whole set each time, so the adapter keeps each puppet's set per message.
func (a *Adapter) SendReaction(ctx context.Context, d *bridge.Delivery) (string, error) {
	re, ok := d.Event.(*bridge.Reaction)
	if !ok {
		return "", bridge.Permanent(fmt.Errorf("xmpp: cannot react with %s events", d.Event.Kind()))
	}
	c, err := a.current()
	if err != nil {
		return "", err
	}
	key := bridge.CleanText(re.Key)
	if d.Room == "" {
		if re.Remove || d.Target == "" {
			return "", nil
		}
		return a.sendDirect(ctx, c, re, func(_ speaker, e *element) {
			e.add(el(nsReactions, "reactions", "id", d.Target).add(el(nsReactions, "reaction").withText(key)), el(nsHints, "store"))
		})
	}
	r, err := a.readyRoom(ctx, c, d.Room)
	if err != nil {
		return "", err
	}
	sp, err := a.speakerFor(ctx, c, r, re.Sender, d.Relay)
	if err != nil {
		return "", err
	}
	id := msgID(re.ID)
	e := a.groupchat(sp, r, id)
	if sp.relay || d.Target == "" {
		// No set of our own to express it with (or nothing to attach it
		// to): say it.
		if re.Remove {
			return "", nil
		}
		e.add(el("", "body").withText(sp.say(re.Sender, true, "reacted "+key)), originID(id))
		return a.sendGroupchat(ctx, c, r, sp, id, e)
	}
	setKey := d.Target + "\x00" + sp.jid.String()
	a.mu.Lock()
	before, _ := r.ids.reactions.get(setKey)
	after := applyReaction(before, key, re.Remove)
	r.ids.reactions.put(setKey, after)
	a.mu.Unlock()
	x := el(nsReactions, "reactions", "id", d.Target)
	for _, k := range after {
		x.add(el(nsReactions, "reaction").withText(k))
	}
	e.add(x, el(nsHints, "store"), originID(id))
	return a.sendGroupchat(ctx, c, r, sp, id, e)
}

// SendMembership mirrors a foreign user's joins, leaves and renames with
// their puppet (puppet mode only, and not in a room relaying).
func (a *Adapter) SendMembership(ctx context.Context, d *bridge.Delivery) error {
	if a.relay || d.Relay || d.Room == "" {
		return nil
	}
	c, err := a.current()
	if err != nil {
		return err
	}
	r, err := a.readyRoom(ctx, c, d.Room)
	if err != nil {
		return err
	}
	switch ev := d.Event.(type) {
	case *bridge.Join:
		if a.speaksThemselves(ev.Sender.Person) {
			return nil // their own session joins, when they speak
		}
		p, err := a.puppetFor(ev.Sender)
		if err != nil || p == nil {
			return nil
		}
		if _, err := a.joinPuppet(ctx, c, r, p); err != nil {
			if ctx.Err() != nil || errors.Is(err, errDisconnected) || errors.Is(err, errTimeout) {
				return err
			}
			a.log.Warn("xmpp: puppet cannot join", "room", r.addr, "puppet", p.jid.String(), "err", err)
		}
		return nil
	case *bridge.Leave:
		p := a.existingPuppet(ev.Sender)
		if p == nil {
			return nil
		}
		if err := a.leavePuppet(c, r, p, bridge.CleanText(ev.Reason)); err != nil {
			return err
		}
		a.mu.Lock()
		empty := len(p.rooms) == 0
		a.mu.Unlock()
		if empty {
			a.retirePuppet(c, p)
		}
		return nil
	case *bridge.Rename:
		p := a.existingPuppet(ev.Sender)
		if p == nil {
			return nil
		}
		return a.renamePuppet(ctx, c, r, p, ev.Sender)
	}
	return nil
}

// renamePuppet gives a puppet the nick its sender's new name renders to.
func (a *Adapter) renamePuppet(ctx context.Context, c *session, r *room, p *puppet, s bridge.Sender) error {
	a.mu.Lock()
	p.sender = s
	p.nickBase = puppetNick(mapping.Render(a.template, s), s)
	m := p.rooms[r.key]
	joined := m != nil && m.joined && m.joining == nil
	base := p.nickBase
	a.mu.Unlock()
	if !joined {
		return nil
	}
	x, ad := a.photoUpdate(ctx, s)
	for attempt := range maxNickAttempts {
		nick := nickAlternative(base, s, attempt)
		a.mu.Lock()
		if m.nick == nick {
			a.mu.Unlock()
			return nil
		}
		if o := r.occupants[nick]; o != nil && !o.own || r.puppetNicks[nick] != nil {
			a.mu.Unlock()
			continue
		}
		r.puppetNicks[nick] = p
		a.mu.Unlock()
		a.mu.Lock()
		extra := withPhoto(presenceShow(p.show, p.status), x)
		a.mu.Unlock()
		_, err := a.occupy(ctx, c, p.jid, r, nick, extra...)
		if err == nil {
			a.mu.Lock()
			m.photo = ad
			a.mu.Unlock()
			return nil
		}
		a.mu.Lock()
		if r.puppetNicks[nick] == p && m.nick != nick {
			delete(r.puppetNicks, nick)
		}
		a.mu.Unlock()
		if !isConflict(err) {
			return err
		}
	}
	return nil
}

// SendTyping relays chat states (XEP-0085) from puppets in the room.
func (a *Adapter) SendTyping(ctx context.Context, d *bridge.Delivery) error {
	ty, ok := d.Event.(*bridge.Typing)
	if !ok || a.relay || d.Relay {
		return nil
	}
	c, err := a.current()
	if err != nil {
		return err
	}
	state := "active"
	if ty.Active {
		state = "composing"
	}
	if d.Room == "" {
		_, err := a.sendDirect(ctx, c, ty, func(_ speaker, e *element) {
			e.add(el(nsChatStates, state), el(nsHints, "no-store"))
		})
		return err
	}
	p := a.existingPuppet(ty.Sender)
	if p == nil {
		return nil
	}
	j, err := parseRoom(d.Room)
	if err != nil {
		return err
	}
	a.mu.Lock()
	r := a.rooms[j.String()]
	joined := r != nil && p.rooms[r.key] != nil && p.rooms[r.key].joined
	a.mu.Unlock()
	if !joined {
		return nil // typing alone does not bring a puppet in
	}
	e := a.groupchat(speaker{jid: p.jid, puppet: p}, r, newID())
	e.add(el(nsChatStates, state), el(nsHints, "no-store"))
	return a.write(c, e)
}

// SendPresence shows a foreign user's availability on their puppet.
func (a *Adapter) SendPresence(ctx context.Context, d *bridge.Delivery) error {
	pr, ok := d.Event.(*bridge.Presence)
	if !ok || a.relay || d.Relay || d.Room == "" {
		return nil
	}
	c, err := a.current()
	if err != nil {
		return err
	}
	p := a.existingPuppet(pr.Sender)
	if p == nil {
		return nil
	}
	j, err := parseRoom(d.Room)
	if err != nil {
		return err
	}
	a.mu.Lock()
	r := a.rooms[j.String()]
	var m *membership
	if r != nil {
		m = p.rooms[r.key]
	}
	show := ""
	switch pr.Status {
	case "away", "xa", "dnd":
		show = pr.Status
	}
	p.show, p.status = show, bridge.CleanText(pr.Message)
	a.mu.Unlock()
	if m == nil || !m.joined {
		return nil
	}
	if pr.Status == "offline" {
		return a.leavePuppet(c, r, p, p.status)
	}
	x, ad := a.photoUpdate(ctx, pr.Sender)
	a.mu.Lock()
	e := a.presence(p.jid, r.occupantJID(m.nick), "")
	e.add(withPhoto(presenceShow(p.show, p.status), x)...)
	a.mu.Unlock()
	if err := a.write(c, e); err != nil {
		return err
	}
	a.mu.Lock()
	m.photo = ad
	a.mu.Unlock()
	return nil
}
