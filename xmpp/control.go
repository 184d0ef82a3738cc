package xmpp

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"mellium.im/xmpp/jid"

	"github.com/switchboard-chat/switchboard/bridge"
)

// errLeft: the room was left at runtime (Leave) and not joined since.
var errLeft = errors.New("xmpp: room left")

// currentRoomLocked reports whether r is still a room the adapter bridges:
// a join that Leave overtook must not take anyone back in.
func (a *Adapter) currentRoomLocked(r *room) bool { return a.rooms[r.key] == r }

// botJID is the bot's own address: the component's domain, or the relay
// account.
func (a *Adapter) botJID() jid.JID {
	if a.component {
		return jid.MustParse(a.domain)
	}
	return a.account
}

// Leave stops bridging a MUC room: every puppet and then the bot leave
// it, and it is no longer joined after reconnects or failed self-pings.
// Join brings it back.
func (a *Adapter) Leave(ctx context.Context, room string) error {
	j, err := parseRoom(room)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.left[j.String()] = true
	r := a.rooms[j.String()]
	if r == nil {
		a.mu.Unlock()
		return nil
	}
	delete(a.rooms, r.key)
	out := a.departuresLocked(r)
	a.forgetRoomLocked(r)
	leavePersonal := a.leavePersonalLocked(r)
	c := a.conn
	a.mu.Unlock()
	leavePersonal()
	a.unlinkCatchUp(ctx, r)
	a.log.Info("xmpp: leaving room", "room", r.addr, "occupants", len(out))
	return a.depart(ctx, c, out)
}

// departuresLocked takes the puppets out of r's books and returns the
// unavailable presences that take them and the bot out of the room: the
// puppets first, so that the bot is the last to go.
func (a *Adapter) departuresLocked(r *room) []*element {
	var out []*element
	for _, p := range a.puppets {
		m := p.rooms[r.key]
		if m == nil {
			continue
		}
		delete(p.rooms, r.key)
		// Joined or still joining: a join in flight is answered before
		// the presence that follows it on the stream.
		if m.nick != "" {
			out = append(out, a.presence(p.jid, r.occupantJID(m.nick), "unavailable"))
		}
	}
	if r.nick != "" {
		out = append(out, a.presence(a.botJID(), r.occupantJID(r.nick), "unavailable"))
	}
	return out
}

// forgetRoomLocked drops what the adapter knew of a room it left, and
// fails the joins still waiting for the room's answer (it would no longer
// reach them) and the sends waiting for their reflection.
func (a *Adapter) forgetRoomLocked(r *room) {
	r.reset()
	for key, ch := range a.joins {
		if strings.HasSuffix(key, "\x00"+r.key) {
			select {
			case ch <- joinResult{err: errLeft}:
			default:
			}
		}
	}
	for key, om := range a.sent {
		if strings.HasPrefix(key, r.key+"\x00") && !om.finished() {
			om.finish("", errLeft)
		}
	}
}

// depart sends departures on c. What cannot be sent now (no session, a
// failed write, ctx ending) is sent first thing on the next session: the
// server does not take a component's occupants out of rooms when its
// stream ends.
func (a *Adapter) depart(ctx context.Context, c *session, out []*element) error {
	for i, e := range out {
		err := ctx.Err()
		if err == nil && (c == nil || c.ctx.Err() != nil) {
			err = errNotConnected
		}
		if err == nil {
			err = a.write(c, e)
		}
		if err != nil {
			a.mu.Lock()
			a.parting = append(a.parting, out[i:]...)
			a.mu.Unlock()
			if errors.Is(err, errNotConnected) || errors.Is(err, errDisconnected) {
				return nil // done on the next session
			}
			return err
		}
	}
	return nil
}

// departPending sends the departures an earlier session could not.
func (a *Adapter) departPending(c *session) error {
	a.mu.Lock()
	out := a.parting
	a.parting = nil
	a.mu.Unlock()
	if len(out) == 0 {
		return nil
	}
	return a.depart(c.ctx, c, out)
}

// SendAsBot posts text as Switchboard itself: to a room from the bot's
// occupant (the component's or the relay account's), or with room "" as
// a chat message to user (a JID) from the component's domain or the relay
// account. The text goes out as character data, escaped by the encoder.
func (a *Adapter) SendAsBot(ctx context.Context, room, user, text string) error {
	c, err := a.current()
	if err != nil {
		return err
	}
	text = bridge.CleanText(text)
	if room == "" {
		return a.botChat(c, user, text)
	}
	r, err := a.readyRoom(ctx, c, room)
	if err != nil {
		return err
	}
	sp := speaker{jid: c.me, relay: true}
	id := newID()
	e := a.groupchat(sp, r, id)
	e.add(el("", "body").withText(text), originID(id))
	_, err = a.sendGroupchat(ctx, c, r, sp, id, e)
	return err
}

// botChat sends a one-to-one chat message from the bot.
func (a *Adapter) botChat(c *session, user, text string) error {
	to, err := jid.Parse(user)
	if err != nil || to.Domainpart() == "" {
		return bridge.Permanent(fmt.Errorf("xmpp: %q is not a JID", user))
	}
	e := a.stanzaBase("message", c.me, to, "chat")
	e.add(el("", "body").withText(text))
	if err := a.fit(e); err != nil {
		return err
	}
	return a.write(c, e)
}

// onBotDirect turns a chat message to the bot (the component's domain
// or the relay account) into a Message to Switchboard itself: chat
// commands come this way. r is the room a private message came through.
func (a *Adapter) onBotDirect(c *session, r *room, st *stanza) {
	if st.typ != "chat" && st.typ != "normal" && st.typ != "" || !st.hasBody {
		return // room traffic, headlines, chat states
	}
	if st.replace != "" || st.retract != "" || st.retractOld != "" || st.reactions != nil {
		return // commands are new messages only
	}
	if !st.delay.IsZero() {
		// Offline storage handing over what came while we were away:
		// commands are not run late.
		a.drop(DropHistory, "from", st.from.String(), "detail", "delayed direct message to the bot")
		return
	}
	sender, ok := a.botDirectSender(r, st)
	if !ok {
		return
	}
	// To this network: bridge.ToBot tells it from a puppet's DM.
	h := a.directHeader(st, sender, bridge.Sender{Network: a.name, ID: a.botJID().String()})
	a.emit(a.messageEvent(h, st, nil))
	if st.wantReceipt && st.id != "" {
		rc := a.stanzaBase("message", st.to, st.from, "")
		rc.add(el(nsReceipts, "received", "id", st.id))
		a.writeAsync(c, rc)
	}
}

// botDirectSender is who wrote to the bot: their bare JID, or for a
// private message through a room their real JID when the room shows it
// (else their occupant JID). Switchboard's own addresses are nobody.
func (a *Adapter) botDirectSender(r *room, st *stanza) (bridge.Sender, bool) {
	from := st.from.Bare()
	if from.Localpart() == "" || a.component && from.Domainpart() == a.domain || !a.component && from.Equal(a.account) {
		return bridge.Sender{}, false // servers, components, ourselves
	}
	id, name := from.String(), from.Localpart()
	if r != nil {
		nick := st.from.Resourcepart()
		id, name = st.from.String(), nick
		a.mu.Lock()
		if o := r.occupants[nick]; o != nil && o.jid != "" {
			id = o.jid
		}
		own := nick == r.nick || r.puppetNicks[nick] != nil
		a.mu.Unlock()
		if own {
			return bridge.Sender{}, false
		}
	}
	return bridge.Sender{Network: a.name, ID: id, Name: bridge.CleanText(name)}, true
}
