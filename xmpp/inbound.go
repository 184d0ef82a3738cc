package xmpp

import (
	"encoding/xml"
	"errors"
	"slices"
	"strings"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-chat/switchboard/bridge"
)

// clockSkew is how far a room's delay stamps may run ahead of our clock
// and still count as history from before we joined.
const clockSkew = 10 * time.Second

// handler reads each stanza of the stream in order. It never returns an
// error: mellium would end the whole stream for it, so bad input is
// logged and dropped instead.
func (a *Adapter) handler(c *session) func(xmlstream.TokenReadEncoder, *xml.StartElement) error {
	return func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		defer a.recoverStanza()
		if !c.filter.checked() && a.skip(start) {
			return nil // the session reads past the rest of it
		}
		limit := a.stanzaLimit(start)
		e, err := readElement(r, *start, limit)
		switch {
		case errors.Is(err, errTooLarge):
			a.drop(DropOversize, "kind", start.Name.Local, "from", attrOf(start, "from"), "limit", limit)
			a.failIQ(start, "policy-violation")
			return nil
		case errors.Is(err, errTooDeep):
			a.drop(DropMalformed, "kind", start.Name.Local, "from", attrOf(start, "from"), "detail", err.Error())
			return nil
		case err != nil:
			return nil // the stream itself failed; Serve reports it
		}
		a.dispatchElement(c, e)
		return nil
	}
}

// dispatchElement handles one stanza read whole.
func (a *Adapter) dispatchElement(c *session, e *element) {
	st, err := parseStanza(e)
	if err != nil {
		a.drop(DropMalformed, "kind", e.name.Local, "detail", err.Error())
		return
	}
	a.dispatch(c, st)
}

// handleRaw is handler for the messages and presences the stream filter
// reads whole, in their place in the stream: those parseFast reads, it
// dispatches, and tells the filter it took them.
func (a *Adapter) handleRaw(c *session) func(raw []byte) bool {
	space, local := c.s.In().XMLNS, c.s.LocalAddr().Bare().String()
	return func(raw []byte) (taken bool) {
		defer a.recoverStanza()
		e, ok := parseFast(raw, space, a.maxStanza)
		if !ok {
			return false
		}
		taken = true
		// As mellium does before the handler sees a stanza.
		if i := slices.IndexFunc(e.attr, func(at xml.Attr) bool { return at.Name.Local == "from" }); i >= 0 &&
			e.attr[i].Value == local && (space == "" || e.name.Space == space) {
			e.attr[i].Value = ""
		}
		a.dispatchElement(c, e)
		return true
	}
}

// stanzaLimit is max_stanza, or more for the answer to an IQ of ours
// that asked for more (see iqLimit).
func (a *Adapter) stanzaLimit(start *xml.StartElement) int {
	if start.Name.Local != "iq" {
		return a.maxStanza
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return max(a.maxStanza, a.iqLimits[attrOf(start, "id")])
}

// failIQ answers whoever waits for an IQ that had to be dropped with an
// error of condition, so that they need not wait for their timeout.
func (a *Adapter) failIQ(start *xml.StartElement, condition string) {
	typ := attrOf(start, "type")
	if start.Name.Local != "iq" || typ != "result" && typ != "error" {
		return
	}
	a.mu.Lock()
	ch := a.iqs[attrOf(start, "id")]
	a.mu.Unlock()
	if ch != nil {
		select {
		case ch <- &stanza{kind: "iq", typ: "error", id: attrOf(start, "id"), err: &stanzaError{typ: "cancel", condition: condition}}:
		default:
		}
	}
}

func attrOf(start *xml.StartElement, local string) string {
	for _, at := range start.Attr {
		if at.Name.Local == local && at.Name.Space == "" {
			return at.Value
		}
	}
	return ""
}

// skip tells from a stanza's start which ones are not worth reading: in
// a room with many puppets, every message and presence reaches each of
// them, and only the bot's copy matters (a puppet's own presences and
// errors aside); and the bot's copy of a message one of our puppets sent
// is not needed either, as the puppet's own copy (its reflection)
// confirms the send. The component's stream filter asks it first, so
// that what it drops is never decoded.
func (a *Adapter) skip(start *xml.StartElement) bool {
	if !a.component {
		return false
	}
	to, typ := attrOf(start, "to"), attrOf(start, "type")
	toBot := to == a.domain || strings.HasPrefix(to, a.domain+"/")
	switch start.Name.Local {
	case "message":
		if typ != "groupchat" {
			return false
		}
	case "presence":
		if typ == "error" || toBot {
			return false
		}
	default:
		return false
	}
	room, nick, ok := strings.Cut(attrOf(start, "from"), "/")
	if !ok || !toBot && !strings.Contains(to, "@") {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.rooms[room]
	if r == nil {
		return false
	}
	if toBot {
		// Only a nick a puppet holds in the room: one it is still
		// joining with may yet turn out to be someone else's.
		if p := r.puppetNicks[nick]; p != nil && nick != r.nick {
			m := p.rooms[r.key]
			return m != nil && m.joined && m.nick == nick
		}
		return false
	}
	p := a.byJID[to]
	if p == nil {
		return false
	}
	m := p.rooms[r.key]
	// A puppet's own presences (and its own reflected messages) are read,
	// under its nick or one it is changing to.
	return (m == nil || m.nick != nick) && r.puppetNicks[nick] != p
}

// dispatch handles one stanza.
func (a *Adapter) dispatch(c *session, st *stanza) {
	switch st.kind {
	case "iq":
		a.onIQ(c, st)
	case "presence":
		a.mu.Lock()
		r := a.rooms[st.from.Bare().String()]
		a.mu.Unlock()
		if r != nil && st.from.Resourcepart() != "" {
			a.onRoomPresence(c, r, st)
			return
		}
		a.onPresence(c, st)
	case "message":
		if res := st.el.child(nsMAM, "result"); res != nil && st.typ != "error" && st.typ != "groupchat" {
			if !a.onCatchUpResult(st, res) {
				a.onArchived(st, res)
			}
			return
		}
		a.mu.Lock()
		r := a.rooms[st.from.Bare().String()]
		a.mu.Unlock()
		switch {
		case st.typ == "error":
			a.onMessageError(c, r, st)
		case r != nil && st.typ == "groupchat":
			a.onGroupchat(c, r, st)
		case r != nil && st.from.Resourcepart() == "":
			// From the room itself (status changes, invitations): nothing
			// to bridge, but an affiliation change may ban or let in one
			// of our puppets.
			a.onRoomAffiliation(c, r, st)
		default:
			a.onDirect(c, r, st)
		}
	}
}

// isBot reports whether to is the bot (or the component itself).
func (a *Adapter) isBot(c *session, to jid.JID) bool {
	if a.component {
		return to.Localpart() == "" && to.Domainpart() == a.domain
	}
	return to.Bare().Equal(a.account) && (to.Resourcepart() == "" || to.Equal(c.me))
}

// onRoomPresence tracks occupants: joins, leaves and nick changes of
// others become bridge events; our own occupants' presences answer joins.
func (a *Adapter) onRoomPresence(c *session, r *room, st *stanza) {
	nick := st.from.Resourcepart()
	toBot := a.isBot(c, st.to)
	var events []bridge.Event
	a.mu.Lock()
	if a.testDropPresence != nil && a.testDropPresence(st) {
		a.mu.Unlock()
		return
	}
	// A join waiting for this answer?
	key := joinKey(st.to, r)
	if !a.component {
		key = joinKey(c.me, r)
	}
	a.answerJoinLocked(key, st)
	if st.typ == "error" {
		a.mu.Unlock()
		return
	}
	if !toBot {
		a.puppetPresenceLocked(c, r, st)
		a.mu.Unlock()
		return
	}
	if st.muc.has(statusSelf) {
		was := r.joined
		rejoin := a.botPresenceLocked(r, st)
		if !was && r.joined {
			a.catchUpLocked(c, r) // catchup.go
		}
		var members []string
		list := !was && r.joined && showsRealJIDs(st)
		if list {
			members = a.roomMembersLocked(r)
		}
		a.mu.Unlock()
		if list && !a.queue.PushMembers(bridge.RoomAddr{Network: a.name, Room: r.addr}, members) {
			a.log.Error("xmpp: inbound queue full; a room's members dropped", "room", r.addr)
		}
		if rejoin {
			a.rejoinLater(c, r)
		}
		return
	}
	unavailable := st.typ == "unavailable"
	o := r.occupants[nick]
	own := a.ownOccupantLocked(r, nick, st)
	if o == nil {
		o = &occupant{nick: nick}
	}
	o.own = o.own || own
	if st.muc != nil && st.muc.item.jid != "" {
		if j, err := parseJID(st.muc.item.jid); err == nil {
			o.jid = j.Bare().String()
		}
	}
	if st.occupantID != "" {
		o.occupantID = st.occupantID
	}
	if st.muc != nil && st.muc.item.role != "" {
		o.role, o.affiliation = st.muc.item.role, st.muc.item.affiliation
	}
	_, known := r.occupants[nick]
	// A person's own session is ours too: its comings and goings are not
	// bridged (their other clients' under the same nick neither).
	quiet := o.own || a.personalOccupantLocked(r, nick, o)
	var photoOf *bridge.Sender // whose avatar to look at
	switch {
	case unavailable && st.muc.has(statusNickChange) && st.muc.item.nick != "":
		newNick := st.muc.item.nick
		delete(r.occupants, nick)
		o.nick = newNick
		r.occupants[newNick] = o
		if !quiet && r.joined {
			ev := &bridge.Rename{Header: a.roomHeader(r, a.occupantSender(r, o), ""), Previous: nick}
			events = append(events, ev)
		}
	case unavailable:
		delete(r.occupants, nick)
		a.personalGoneLocked(r, nick)
		if !quiet && r.joined && known {
			reason := st.status
			switch {
			case st.muc.has(statusKicked):
				reason = strings.TrimSpace("kicked " + st.muc.item.reason)
			case st.muc.has(statusBanned):
				reason = strings.TrimSpace("banned " + st.muc.item.reason)
			case st.muc.has(statusShutdown):
				reason = "room service shut down"
			}
			events = append(events, &bridge.Leave{Header: a.roomHeader(r, a.occupantSender(r, o), ""), Reason: reason})
		}
	default:
		show, status := st.show, st.status
		changed := known && (show != o.show || status != o.status)
		o.show, o.status = show, status
		r.occupants[nick] = o
		if !quiet && st.hasPhoto {
			// Also before the bot's own presence: the occupants already
			// in the room come first.
			s := a.occupantSender(r, o)
			photoOf = &s
		}
		if !quiet && r.joined {
			s := a.occupantSender(r, o)
			if !known {
				events = append(events, &bridge.Join{Header: a.roomHeader(r, s, "")})
			} else if changed {
				events = append(events, &bridge.Presence{Header: a.roomHeader(r, s, ""), Status: presenceStatus(show), Message: bridge.CleanText(status)})
			}
		}
	}
	a.mu.Unlock()
	a.emit(events...)
	if photoOf != nil {
		a.wantAvatar(c, r, nick, *photoOf, st.photo)
	}
}

// answerJoinLocked hands a join waiting under key the room's answer, if
// st is one: an error presence, or the self-presence. a.mu is held.
func (a *Adapter) answerJoinLocked(key string, st *stanza) {
	ch := a.joins[key]
	if ch == nil {
		return
	}
	switch {
	case st.typ == "error":
		err := error(&stanzaError{condition: "undefined-condition"})
		if st.err != nil {
			err = st.err
		}
		select {
		case ch <- joinResult{err: err}:
		default:
		}
	case st.typ == "" && st.muc.has(statusSelf):
		select {
		case ch <- joinResult{nick: st.from.Resourcepart()}:
		default:
		}
	}
}

// botPresenceLocked handles the bot's own presence in a room; it reports
// whether the bot was removed and should go back in.
func (a *Adapter) botPresenceLocked(r *room, st *stanza) (rejoin bool) {
	if st.occupantID != "" {
		r.ownIDs[st.occupantID] = true
	}
	switch {
	case st.typ == "unavailable" && st.muc.has(statusNickChange):
		r.nick = st.muc.item.nick
	case st.typ == "unavailable":
		was := r.joined
		r.reset()
		if a.stopped {
			return false
		}
		a.log.Warn("xmpp: removed from room", "room", r.addr, "kicked", st.muc.has(statusKicked),
			"banned", st.muc.has(statusBanned), "destroyed", st.muc != nil && st.muc.destroy)
		for _, p := range a.puppets {
			if m := p.rooms[r.key]; m != nil {
				m.joined = false
			}
		}
		return was && !st.muc.has(statusBanned)
	default:
		if !r.joined {
			r.joined = true
			r.joinedAt = time.Now()
			r.subjectSeen = false
		}
		r.nick = st.from.Resourcepart()
		o := &occupant{nick: r.nick, own: true, occupantID: st.occupantID}
		if st.muc != nil {
			o.role, o.affiliation = st.muc.item.role, st.muc.item.affiliation
		}
		r.occupants[r.nick] = o
	}
	return false
}

// puppetPresenceLocked handles a room presence addressed to a puppet:
// only its own ones matter.
func (a *Adapter) puppetPresenceLocked(c *session, r *room, st *stanza) {
	p := a.byJID[st.to.Bare().String()]
	if p == nil || !st.muc.has(statusSelf) {
		return
	}
	if st.occupantID != "" {
		r.ownIDs[st.occupantID] = true
	}
	m := p.rooms[r.key]
	nick := st.from.Resourcepart()
	switch {
	case st.typ == "unavailable" && st.muc.has(statusNickChange):
		if m != nil {
			if r.puppetNicks[m.nick] == p {
				delete(r.puppetNicks, m.nick)
			}
			m.nick = st.muc.item.nick
			r.puppetNicks[m.nick] = p
		}
	case st.typ == "unavailable":
		if m != nil && m.joining == nil {
			// Kicked, or the room went away: it rejoins when it next
			// speaks.
			m.joined = false
			if r.puppetNicks[m.nick] == p {
				delete(r.puppetNicks, m.nick)
			}
		}
		a.puppetRemovedLocked(r, p, st)
	default:
		if m == nil {
			m = &membership{}
			p.rooms[r.key] = m
		}
		if m.nick != nick && r.puppetNicks[m.nick] == p {
			delete(r.puppetNicks, m.nick)
		}
		m.nick, m.joined = nick, true
		r.puppetNicks[nick] = p
	}
}

// ownOccupantLocked reports whether an occupant is one of ours: the bot,
// a puppet (by nick, real JID or occupant id).
func (a *Adapter) ownOccupantLocked(r *room, nick string, st *stanza) bool {
	if nick == r.nick || r.puppetNicks[nick] != nil {
		return true
	}
	if o := r.occupants[nick]; o != nil && o.own {
		return true
	}
	if st.occupantID != "" && r.ownIDs[st.occupantID] {
		return true
	}
	if st.muc != nil && st.muc.item.jid != "" {
		if j, err := parseJID(st.muc.item.jid); err == nil {
			if a.component && j.Domainpart() == a.domain {
				return true
			}
			if !a.component && j.Bare().Equal(a.account) {
				return true
			}
		}
	}
	return false
}

func presenceStatus(show string) string {
	switch show {
	case "away", "xa", "dnd":
		return show
	}
	return "online"
}

// occupantSender is who an occupant is to the bridge: their real JID when
// the room shows it, else their occupant JID.
func (a *Adapter) occupantSender(r *room, o *occupant) bridge.Sender {
	id := o.jid
	if id == "" {
		id = r.occupantJID(o.nick).String()
	}
	// A real JID comes from the room's service, an occupant JID is a
	// nick anyone may take.
	return bridge.Sender{Network: a.name, ID: id, Name: o.nick, Authenticated: o.jid != ""}
}

func (a *Adapter) roomHeader(r *room, s bridge.Sender, remoteID string) bridge.Header {
	return bridge.Header{
		ID:     bridge.NewEventID(),
		Origin: bridge.Origin{Network: a.name, Room: r.addr, RemoteID: remoteID},
		Sender: s,
		Time:   time.Now().UTC(),
	}
}

// onGroupchat turns a room message into events, unless it is ours (then
// it confirms what we sent), history, or not meant for the bot.
func (a *Adapter) onGroupchat(c *session, r *room, st *stanza) {
	if st.hasSubject && !st.hasBody {
		a.onSubject(c, r, st) // see topic.go
		return
	}
	nick := st.from.Resourcepart()
	sid := st.stanzaIDBy(r.jid)
	remote := sid
	if remote == "" {
		remote = st.id // a room without stable ids: the client's own
	}
	if nick == "" {
		if st.moderation != nil && a.isBot(c, st.to) {
			a.onModerated(r, st, remote)
		}
		return
	}
	a.mu.Lock()
	toBot := a.isBot(c, st.to)
	own := a.ownOccupantLocked(r, nick, st) || a.personalEchoLocked(r, nick, st)
	if own && a.testDropReflection != nil && a.testDropReflection(st) {
		a.mu.Unlock()
		return
	}
	if own {
		a.reflectedLocked(r, st, remote)
		r.ids.seen(sid, st.id, st.originID)
		if sid != "" {
			r.ids.authors.put(sid, nick)
		}
		a.mu.Unlock()
		return
	}
	if !toBot {
		a.mu.Unlock()
		return
	}
	if !r.joined {
		a.mu.Unlock()
		a.drop(DropHistory, "room", r.addr, "detail", "before the room's self-presence")
		return
	}
	if !st.delay.IsZero() && st.delay.Before(r.joinedAt.Add(clockSkew)) {
		a.mu.Unlock()
		a.log.Debug("xmpp: history message ignored", "room", r.addr, "stamp", st.delay)
		return
	}
	o := a.occupantLocked(r, nick)
	if st.occupantID != "" && o.occupantID == "" {
		o.occupantID = st.occupantID
	}
	events := a.roomEventsLocked(r, st, o, sid, remote)
	a.mu.Unlock()
	a.readThread(r, st, events)
	a.emitRoom(r, events)
}

// roomEventsLocked turns a room message from occupant o (live, or from
// the archive when catching up) into events; sid is its stanza-id, remote
// its remote id.
func (a *Adapter) roomEventsLocked(r *room, st *stanza, o *occupant, sid, remote string) []bridge.Event {
	nick := o.nick
	sender := a.occupantSender(r, o)
	r.ids.seen(sid, st.id, st.originID)
	if sid != "" {
		r.ids.authors.put(sid, nick)
	}
	var events []bridge.Event
	h := a.roomHeader(r, sender, remote)
	h.Operator = o.operator()
	if !st.delay.IsZero() {
		h.Time = st.delay.UTC()
	}
	switch {
	case st.retract != "" || st.retractOld != "":
		target := st.retract
		if target == "" {
			target = st.retractOld
		}
		events = append(events, &bridge.Delete{Header: h, Target: bridge.Ref{Remote: r.ids.resolve(target)}})
	case st.reactions != nil:
		target := r.ids.resolve(st.reactions.id)
		key := target + "\x00" + sender.ID
		before, _ := r.ids.reactions.get(key)
		r.ids.reactions.put(key, st.reactions.keys)
		added, removed := diffReactions(before, st.reactions.keys)
		h.Origin.RemoteID = "" // one stanza, several events
		for _, k := range added {
			hh := h
			hh.ID = bridge.NewEventID()
			events = append(events, &bridge.Reaction{Header: hh, Target: bridge.Ref{Remote: target}, Key: k})
		}
		for _, k := range removed {
			hh := h
			hh.ID = bridge.NewEventID()
			events = append(events, &bridge.Reaction{Header: hh, Target: bridge.Ref{Remote: target}, Key: k, Remove: true})
		}
	case st.replace != "" && st.hasBody:
		target := r.ids.resolve(st.replace)
		// Later corrections may name this one instead of the original.
		r.ids.seen(target, st.id, st.originID)
		text, html := messageText(st)
		events = append(events, &bridge.Edit{Header: h, Target: bridge.Ref{Remote: target}, Text: text, HTML: html})
	case st.hasBody:
		m := a.messageEvent(h, st, r)
		m.Mentions = a.mentionsLocked(r, st, m.Text, nick)
		events = append(events, m)
	case st.chatState != "":
		typing := st.chatState == "composing"
		if typing != o.typing {
			o.typing = typing
			h.Origin.RemoteID = ""
			events = append(events, &bridge.Typing{Header: h, Active: typing})
		}
	}
	if st.hasBody {
		o.typing = false
	}
	return events
}

// occupantLocked is the occupant with nick, made up if the room never
// told us about them.
func (a *Adapter) occupantLocked(r *room, nick string) *occupant {
	o := r.occupants[nick]
	if o == nil {
		o = &occupant{nick: nick}
		r.occupants[nick] = o
	}
	return o
}

// messageEvent builds a *bridge.Message from a message with a body.
func (a *Adapter) messageEvent(h bridge.Header, st *stanza, r *room) *bridge.Message {
	m := &bridge.Message{Header: h}
	m.Text, m.HTML = messageText(st)
	if st.reply != nil {
		id := st.reply.id
		if r != nil {
			id = r.ids.resolve(id)
		}
		m.ReplyTo = bridge.Ref{Remote: id}
	}
	if rest, ok := strings.CutPrefix(m.Text, "/me "); ok {
		m.Emote, m.Text = true, rest
		if m.HTML != "" {
			m.HTML = stylingToHTML(rest)
		}
	}
	m.Attachments = st.oob
	return m
}

// messageText is a message's text without reply fallbacks, and its
// styling as HTML ("" when unstyled).
func messageText(st *stanza) (text, html string) {
	text = st.text(nsReply)
	if st.reply != nil {
		text = strings.TrimLeft(text, "\n")
	}
	if st.el.child(nsStyling, "unstyled") == nil {
		html = stylingToHTML(text)
	}
	return text, html
}

// reflectedLocked completes a Send waiting for its message to come back
// from the room.
func (a *Adapter) reflectedLocked(r *room, st *stanza, remote string) {
	for _, id := range []string{st.id, st.originID} {
		if id == "" {
			continue
		}
		om := a.sent[r.key+"\x00"+id]
		if om == nil || om.finished() {
			continue
		}
		om.finish(remote, nil)
		if sid := st.stanzaIDBy(r.jid); sid != "" {
			r.ids.sent.put(sid, sentInfo{clientID: id, from: om.from})
		}
		return
	}
}

// onMessageError fails a Send whose message the room refused.
func (a *Adapter) onMessageError(c *session, r *room, st *stanza) {
	if r == nil || st.id == "" {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	om := a.sent[r.key+"\x00"+st.id]
	if om == nil || om.finished() {
		return
	}
	err := error(&stanzaError{condition: "undefined-condition"})
	if st.err != nil {
		err = st.err
		if st.err.condition == "not-acceptable" || st.err.condition == "not-allowed" && strings.Contains(st.err.text, "occupant") {
			// The sender is not in the room (any more): it rejoins on the
			// retry.
			if p := a.byJID[st.to.Bare().String()]; p != nil {
				if m := p.rooms[r.key]; m != nil {
					m.joined = false
				}
			} else if a.isBot(c, st.to) {
				r.joined = false
			}
		}
	}
	om.finish("", err)
}

// directHeader is the header of a one-to-one message from sender to to.
// A chat has no stanza-id from a room: the sender's id is its remote id.
func (a *Adapter) directHeader(st *stanza, sender, to bridge.Sender) bridge.Header {
	remote := st.id
	if remote == "" {
		remote = st.originID
	}
	return bridge.Header{
		ID:     bridge.NewEventID(),
		Origin: bridge.Origin{Network: a.name, RemoteID: remote},
		Sender: sender,
		Time:   time.Now().UTC(),
		To:     &to,
	}
}

// onDirect handles one-to-one messages: to a puppet, they are direct
// messages to the foreign sender it stands for; to the bot, messages to
// Switchboard itself.
func (a *Adapter) onDirect(c *session, r *room, st *stanza) {
	if a.isBot(c, st.to) {
		a.onBotDirect(c, r, st)
		return
	}
	if !a.component || st.to.Localpart() == "" || (st.typ != "chat" && st.typ != "normal" && st.typ != "") {
		return
	}
	network, id, err := senderOfJID(st.to.Localpart())
	if err != nil || network == a.name {
		return
	}
	from := st.from.Bare().String()
	name := st.from.Localpart()
	if r != nil {
		// A private message through a room: the occupant is the sender.
		from, name = st.from.String(), st.from.Resourcepart()
	}
	if name == "" {
		name = from
	}
	// The server stamps a direct message's from; through a room it is
	// an occupant JID, a nick.
	sender := bridge.Sender{Network: a.name, ID: from, Name: bridge.CleanText(name), Authenticated: r == nil}
	a.emitDirect(c, st, sender, bridge.Sender{Network: network, ID: id})
}

// emitDirect emits what st, a one-to-one message from sender to to,
// says (a message, a correction, a retraction, reactions, a chat state)
// and confirms its receipt (XEP-0184) from whom it was for: a puppet, or
// a person's own session (c).
func (a *Adapter) emitDirect(c *session, st *stanza, sender, to bridge.Sender) {
	h := a.directHeader(st, sender, to)
	var ev bridge.Event
	switch {
	case st.retract != "" || st.retractOld != "":
		target := st.retract
		if target == "" {
			target = st.retractOld
		}
		ev = &bridge.Delete{Header: h, Target: bridge.Ref{Remote: target}}
	case st.reactions != nil:
		// One-to-one reactions are rare enough to bridge as added keys
		// only (no per-chat state is kept).
		h.Origin.RemoteID = ""
		for _, k := range st.reactions.keys {
			hh := h
			hh.ID = bridge.NewEventID()
			a.emit(&bridge.Reaction{Header: hh, Target: bridge.Ref{Remote: st.reactions.id}, Key: k})
		}
		return
	case st.replace != "" && st.hasBody:
		text, html := messageText(st)
		ev = &bridge.Edit{Header: h, Target: bridge.Ref{Remote: st.replace}, Text: text, HTML: html}
	case st.hasBody:
		ev = a.messageEvent(h, st, nil)
	case displayed(st) != "":
		h.Origin.RemoteID = "" // the marker's own id means nothing to the bridge
		ev = &bridge.Read{Header: h, Target: bridge.Ref{Remote: displayed(st)}}
	case st.chatState != "":
		h.Origin.RemoteID = ""
		ev = &bridge.Typing{Header: h, Active: st.chatState == "composing"}
	default:
		return
	}
	a.emit(ev)
	if st.wantReceipt && st.id != "" && st.hasBody {
		// XEP-0184: the recipient confirms what reached the bridge.
		from := st.to
		if c.person != nil {
			from = c.me
		}
		rc := a.stanzaBase("message", from, st.from, "")
		rc.add(el(nsReceipts, "received", "id", st.id))
		a.writeAsync(c, rc)
	}
}

// onPresence answers subscription requests to puppets (a user adding one
// to their roster) and probes.
func (a *Adapter) onPresence(c *session, st *stanza) {
	if !a.component || st.to.Localpart() == "" {
		return
	}
	if _, _, err := senderOfJID(st.to.Localpart()); err != nil {
		return
	}
	switch st.typ {
	case "subscribe":
		a.writeAsync(c, a.presence(st.to, st.from.Bare(), "subscribed"))
		a.writeAsync(c, a.presence(st.to, st.from.Bare(), ""))
	case "probe":
		a.writeAsync(c, a.presence(st.to, st.from, ""))
	case "unsubscribe":
		a.writeAsync(c, a.presence(st.to, st.from.Bare(), "unsubscribed"))
	}
}

// emit hands events to the accept queue.
func (a *Adapter) emit(events ...bridge.Event) {
	for _, ev := range events {
		if !a.queue.Push(ev) {
			a.log.Error("xmpp: inbound queue full; event dropped", "kind", ev.Kind())
		}
	}
}
