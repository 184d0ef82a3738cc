package xmpp

import (
	"cmp"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"strings"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/backoff"
)

// A person's own XMPP account (adapters.PersonalAccount): its ID is their
// bare JID, its Password the one their session logs in with (SASL SCRAM,
// after StartTLS unless insecure_plaintext). The session joins the
// bridged rooms of the links they take part in (PersonalRooms), and
// those a message of theirs goes to, with their name as nick (the JID's
// localpart when that is taken) and speaks for them there: what it
// sends is confirmed by the room's reflection like a puppet's message,
// and never bridged back (its origin-id is ours); what they send from
// another client of theirs is read by the bot like anyone's, under their
// real JID.
type PersonalAccount = adapters.PersonalAccount

var (
	_ adapters.PeopleUser     = (*Adapter)(nil)
	_ adapters.PersonalRoomer = (*Adapter)(nil)
)

const (
	// personalResource is the resource the sessions ask for: their other
	// clients tell it apart from their own.
	personalResource = "switchboard"
)

// personalWait is how long a person's message waits for their session
// to come up before it goes out through their puppet (a variable for
// tests).
var personalWait = 10 * time.Second

// personal is a person's own session, kept up with backoff, in the
// bridged rooms of the links they take part in.
type personal struct {
	// The account, the session and its state, which adapters.Personal
	// keeps (nil in unit tests that need only the JID).
	*adapters.Person[*session, *personal]
	jid   jid.JID                // their bare JID
	rooms map[string]*membership // by room key; guarded by Adapter.mu
}

// personEntry is a person as adapters.Personal keeps them; X is theirs
// here, nil for an account that cannot be used.
type personEntry = adapters.Person[*session, *personal]

// newPersonal keeps a's people's sessions; the protocol part is here.
func newPersonal(a *Adapter) *adapters.Personal[*session, *personal] {
	return adapters.NewPersonal(&a.mu, &a.wg, adapters.PersonalHooks[*session, *personal]{
		Noun:    "xmpp: personal session",
		Log:     func() *slog.Logger { return a.log },
		Retry:   func() *backoff.Backoff { return backoff.New(a.t.minBackoff, a.t.maxBackoff) },
		Connect: func(ctx context.Context, e *personEntry) adapters.PersonalEnd { return a.connectPersonal(ctx, e.X) },
		DroppedLocked: func(e *personEntry) {
			if e.X != nil {
				a.forgetPersonalLocked(e.X)
			}
		},
		SyncLocked: func(e *personEntry, c *session, part, join []string) func() {
			return a.syncPersonalLocked(e.X, c, part, join)
		},
		AwayLocked: func(e *personEntry, c *session, message string) func() {
			return a.awayPersonalLocked(e.X, c, message)
		},
	})
}

// peopleLocked are the people with a usable account, by person. a.mu is
// held.
func (a *Adapter) peopleLocked() iter.Seq2[string, *personal] {
	return func(yield func(string, *personal) bool) {
		for person, e := range a.people.AllLocked() {
			if e.X != nil && !yield(person, e.X) {
				return
			}
		}
	}
}

// UsePeople sets the people who speak through their own XMPP session. A
// person whose account or password changed is connected anew; one no
// longer listed is disconnected. Entries that cannot be used are marked
// failed (see PersonalStatus) and left out.
func (a *Adapter) UsePeople(accts []PersonalAccount) {
	want := map[string]*personEntry{}
	invalid := map[string]string{}
	for _, acct := range accts {
		j, err := jid.Parse(acct.ID)
		switch {
		case acct.Person == "":
			a.log.Error("xmpp: personal account without a person; ignored", "account", acct.ID)
			continue
		case err != nil || j.Localpart() == "" || j.Resourcepart() != "":
			invalid[acct.Person] = fmt.Sprintf("failed: account %q is not a bare JID user@domain", acct.ID)
		case acct.Password == "":
			invalid[acct.Person] = "failed: no password"
		case a.clientServer() == "":
			invalid[acct.Person] = "failed: the network has no client_server to log in through"
		default:
			p := &personal{jid: j.Bare(), rooms: map[string]*membership{}}
			p.Person = a.people.NewPerson(acct, p)
			want[acct.Person] = p.Person
			continue
		}
		a.log.Error("xmpp: personal account cannot be used", "person", acct.Person, "why", invalid[acct.Person])
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.people.UseLocked(want, invalid)
}

// clientServer is where people's sessions log in: client_server, or with
// a client account the server the bot logs in through.
func (a *Adapter) clientServer() string {
	if a.cfg.ClientServer != "" || a.component {
		return a.cfg.ClientServer
	}
	return a.cfg.Server
}

// PersonalStatus is the state of each person's session, by person:
// "connecting", "connected", or "failed: " and the reason (a refused
// login, an unusable account). No secret is part of it.
func (a *Adapter) PersonalStatus() map[string]string { return a.people.PersonalStatus() }

// forgetPersonalLocked drops p's nicks from the rooms' books.
func (a *Adapter) forgetPersonalLocked(p *personal) {
	for key, m := range p.rooms {
		if r := a.rooms[key]; r != nil && r.personalNicks[m.nick] == p {
			delete(r.personalNicks, m.nick)
		}
	}
}

// connectPersonal logs in one session of p's and serves it until it ends.
func (a *Adapter) connectPersonal(ctx context.Context, p *personal) adapters.PersonalEnd {
	account, err := p.jid.WithResource(personalResource)
	if err != nil {
		account = p.jid
	}
	c, err := a.connectAs(ctx, a.clientServer(), account, p.Acct.Password)
	if err != nil {
		return adapters.PersonalEnd{Refused: saslRefusal(err), Err: err}
	}
	return adapters.PersonalEnd{Up: true, Err: a.servePersonal(p, c)}
}

// saslRefusal is the server's reason when err is a refused SASL login
// ("" otherwise). mellium keeps its SASL failure type internal: it is
// known by its type's name.
func saslRefusal(err error) string {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if fmt.Sprintf("%T", e) == "saslerr.Error" {
			return cmp.Or(e.Error(), "not-authorized")
		}
	}
	return ""
}

// servePersonal runs one session of p until it ends: it reads what
// concerns the session itself, makes it available (personalAvailable)
// and joins the bridged rooms.
func (a *Adapter) servePersonal(p *personal, c *session) error {
	c.person = p
	err := a.serveStream(c, xmpp.HandlerFunc(a.personalHandler(c)), func() {
		if a.personalAvailable(p, c) == nil {
			a.personalUp(p, c)
		}
	})
	a.personalDown(p, c)
	return err
}

// personalUp marks p's session c up and takes it into the bridged rooms
// of the links the person takes part in.
func (a *Adapter) personalUp(p *personal, c *session) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c.ctx.Err() != nil || !a.people.UpLocked(p.Person, c) {
		return
	}
	a.log.Info("xmpp: personal session up", "person", p.Acct.Person, "as", c.me.String())
}

func (a *Adapter) personalDown(p *personal, c *session) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.people.DownLocked(p.Person, c)
	for key, m := range p.rooms {
		m.joined = false
		if m.left { // gone with the session
			if r := a.rooms[key]; r != nil && r.personalNicks[m.nick] == p {
				delete(r.personalNicks, m.nick)
			}
			delete(p.rooms, key)
		}
	}
	for _, om := range a.sent {
		if om.gen == c.gen && !om.finished() {
			om.finish("", errDisconnected)
		}
	}
}

// joinPersonalAll takes the sessions that are up, of the people whose
// links take in r, into r, a newly bridged room, in the background.
func (a *Adapter) joinPersonalAll(r *room) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.people.BridgedLocked(r.addr)
}

// PersonalRooms implements adapters.PersonalRoomer: person's session
// joins the bridged rooms among rooms it is not in yet, and leaves those
// no longer among them, at once while it is up (personalUp joins them
// when it comes up).
func (a *Adapter) PersonalRooms(person string, rooms []string) { a.people.PersonalRooms(person, rooms) }

// roomOfLocked is the bridged room addr names (nil if none); a.mu is
// held.
func (a *Adapter) roomOfLocked(addr string) *room {
	j, err := parseRoom(addr)
	if err != nil {
		return nil
	}
	return a.rooms[j.String()]
}

// syncPersonalLocked is how p's session c leaves the rooms of links the
// person left and joins the bridged rooms of those they take part in
// (adapters.Personal runs one sync of p's at a time). a.mu is held; the
// work returned runs without it.
func (a *Adapter) syncPersonalLocked(p *personal, c *session, part, join []string) func() {
	var leave, enter []*room
	for _, addr := range part {
		if r := a.roomOfLocked(addr); r != nil {
			leave = append(leave, r)
		}
	}
	for _, addr := range join {
		if r := a.roomOfLocked(addr); r != nil {
			enter = append(enter, r)
		}
	}
	return func() {
		person := p.Acct.Person
		for _, r := range leave {
			if err := a.leavePersonal(c.ctx, p, c, r); err != nil && c.ctx.Err() == nil {
				a.log.Warn("xmpp: personal session cannot leave room", "person", person, "room", r.addr, "err", err)
			}
		}
		for _, r := range enter {
			if _, err := a.joinPersonal(c.ctx, p, c, r); err != nil && c.ctx.Err() == nil {
				a.log.Warn("xmpp: personal session cannot join room", "person", person, "room", r.addr, "err", err)
			}
		}
	}
}

// leavePersonal takes p's session c out of r, after the join in flight
// there if any. Its nick stays the person's until the bot sees it go
// (personalGoneLocked): the departure is not news to bridge.
func (a *Adapter) leavePersonal(ctx context.Context, p *personal, c *session, r *room) error {
	a.mu.Lock()
	m := p.rooms[r.key]
	if m != nil && m.joining != nil {
		ch := m.joining
		a.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		a.mu.Lock()
	}
	if m == nil || !m.joined || p.Conn() != c {
		a.mu.Unlock()
		return nil
	}
	m.joined, m.left = false, true
	e := a.presence(c.me, r.occupantJID(m.nick), "unavailable")
	a.mu.Unlock()
	if err := a.write(c, e); err != nil {
		return err
	}
	a.log.Info("xmpp: personal session left room: the person left the link", "person", p.Acct.Person, "room", r.addr)
	return nil
}

// personalGoneLocked forgets nick in r as a person's once the room says
// it left, when their session left it on purpose. a.mu is held.
func (a *Adapter) personalGoneLocked(r *room, nick string) {
	p := r.personalNicks[nick]
	if p == nil {
		return
	}
	if m := p.rooms[r.key]; m != nil && m.left && m.nick == nick {
		delete(r.personalNicks, nick)
		delete(p.rooms, r.key)
	}
}

// personalNicks are the nicks a person's session tries: their name, then
// their JID's localpart.
func personalNicks(p *personal) []string {
	var out []string
	for _, n := range []string{p.Acct.Name, p.jid.Localpart()} {
		n = puppetNick(n, bridge.Sender{Network: "person", ID: p.Acct.Person})
		if n != "" && (len(out) == 0 || out[0] != n) {
			out = append(out, n)
		}
	}
	return out
}

// PersonalAway implements adapters.PersonalAwayer: their session's
// presence shows away (<show>away</show> with the message as <status>),
// or available again: broadcast, at the session's priority, which says
// whose chats to their bare JID are (see inboxPriority), and in each room
// it is in (XEP-0045 §7.7: a presence to the occupant JID).
func (a *Adapter) PersonalAway(person string, away bool, message string) {
	a.people.PersonalAway(person, away, message)
}

// awayShow is what a presence of a session away with message carries,
// nothing when message is "" (available).
func awayShow(message string) []*element {
	if message == "" {
		return nil
	}
	return []*element{el("", "show").withText("away"), el("", "status").withText(message)}
}

// awayPersonalLocked is how p's session c shows the person away with
// message, or back (""), in the rooms it is in. a.mu is held.
func (a *Adapter) awayPersonalLocked(p *personal, c *session, message string) func() {
	out := []*element{el("", "presence").add(p.priority(a.name)).add(awayShow(message)...)}
	for key, m := range p.rooms {
		if r := a.rooms[key]; r != nil && m.joined && !m.left {
			out = append(out, a.presence(c.me, r.occupantJID(m.nick), "").add(awayShow(message)...))
		}
	}
	return func() {
		for _, e := range out {
			if err := a.write(c, e); err != nil {
				a.log.Warn("xmpp: personal session cannot set away", "person", p.Acct.Person, "err", err)
				return
			}
		}
	}
}

// joinPersonal takes p's session c into r (if it is not there yet) and
// returns its nick there. Concurrent callers share one attempt.
func (a *Adapter) joinPersonal(ctx context.Context, p *personal, c *session, r *room) (string, error) {
	a.mu.Lock()
	m, ch, nick, err := a.startJoinLocked(ctx, p.rooms, r)
	if ch == nil {
		return nick, err
	}
	a.mu.Unlock()
	for _, nick := range personalNicks(p) {
		a.mu.Lock()
		if r.personalNicks[m.nick] == p {
			delete(r.personalNicks, m.nick)
		}
		// Known before the room answers: the bot sees the join too.
		m.nick = nick
		r.personalNicks[nick] = p
		a.mu.Unlock()
		a.mu.Lock()
		away := awayShow(p.Away()) // a room joined while away sees them away
		a.mu.Unlock()
		_, err = a.occupy(ctx, c, c.me, r, nick, away...)
		if !isConflict(err) {
			break
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	m.joining, m.err, m.joined = nil, err, err == nil
	close(ch)
	if err != nil {
		if r.personalNicks[m.nick] == p {
			delete(r.personalNicks, m.nick)
		}
		return "", err
	}
	a.log.Info("xmpp: personal session joined room", "person", p.Acct.Person, "room", r.addr, "nick", m.nick)
	return m.nick, nil
}

// personalFor returns the person's session when they have one that is
// up, waiting up to personalWait for one still connecting; nil means the
// puppet speaks for them.
func (a *Adapter) personalFor(ctx context.Context, person string) *session {
	return a.people.For(ctx, person, personalWait)
}

// speaksThemselves reports whether person has a session of their own
// here that is not failed: their joining elsewhere brings no puppet of
// theirs into a room, since their messages will come from their session.
func (a *Adapter) speaksThemselves(person string) bool { return a.people.Speaks(person) }

// personalSpeaker is the person's own occupant in r, when their session
// is up and in the room (ok); an error when the room refuses them: a ban
// keeps them out, never their puppet instead.
func (a *Adapter) personalSpeaker(ctx context.Context, r *room, s bridge.Sender) (sp speaker, ok bool, err error) {
	c := a.personalFor(ctx, s.Person)
	if c == nil {
		return speaker{}, false, nil
	}
	if _, err := a.joinPersonal(ctx, c.person, c, r); err != nil {
		var se *stanzaError
		switch {
		case ctx.Err() != nil:
			return speaker{}, true, ctx.Err()
		case errors.Is(err, errLeft):
			return speaker{}, true, bridge.Permanent(fmt.Errorf("xmpp: %s: %w", r.addr, err))
		case errors.As(err, &se) && se.condition == "forbidden":
			ref := s.BlockRef()
			a.log.Info("xmpp: personal session refused as banned", "room", r.addr, "person", s.Person)
			if rerr := a.mod.Banned(ctx, r.addr, ref, ""); rerr != nil {
				a.log.Warn("xmpp: cannot report a ban to the bridge", "room", r.addr, "sender", ref.String(), "err", rerr)
			}
			return speaker{}, true, adapters.Refusal(a.name, r.addr)
		}
		a.log.Warn("xmpp: personal session cannot join; using the puppet", "room", r.addr, "person", s.Person, "err", err)
		return speaker{}, false, nil
	}
	return speaker{jid: c.me, via: c}, true, nil
}

// personalHandler reads a personal session's stream: the answers to its
// joins, its removal from a room, the reflections of and errors to what
// it sent, and the one-to-one messages to the person, for their inbox
// (personalDirect). The rest (the rooms' traffic) is the bot's to
// bridge; IQs mellium answers.
func (a *Adapter) personalHandler(c *session) func(xmlstream.TokenReadEncoder, *xml.StartElement) error {
	return func(rd xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		defer a.recoverStanza()
		typ := attrOf(start, "type")
		switch {
		case start.Name.Local == "presence":
		case start.Name.Local == "message" && typ == "error":
		case start.Name.Local == "message" && typ == "groupchat" && strings.HasPrefix(attrOf(start, "id"), msgIDPrefix):
		case start.Name.Local == "message" && (typ == "chat" || typ == "normal" || typ == "") && c.person.inbox(a.name):
			// Perhaps one to them, for their inbox.
		default:
			return nil // the session reads past the rest of it
		}
		e, err := readElement(rd, *start, a.maxStanza)
		if err != nil {
			return nil
		}
		st, err := parseStanza(e)
		if err != nil {
			return nil
		}
		a.mu.Lock()
		r := a.rooms[st.from.Bare().String()]
		a.mu.Unlock()
		if st.kind == "message" && st.typ != "error" && st.typ != "groupchat" {
			if r == nil {
				a.personalDirect(c, st)
			}
			return nil
		}
		if r == nil || st.from.Resourcepart() == "" {
			return nil
		}
		switch {
		case st.kind == "presence":
			a.personalPresence(c, r, st)
		case st.typ == "error":
			a.onMessageError(c, r, st)
			if st.err != nil && (st.err.condition == "not-acceptable" || st.err.condition == "not-allowed") {
				a.mu.Lock()
				if m := c.person.rooms[r.key]; m != nil && m.joining == nil {
					m.joined = false // joins again on the next message
				}
				a.mu.Unlock()
			}
		default:
			remote := st.stanzaIDBy(r.jid)
			a.mu.Lock()
			a.reflectedLocked(r, st, cmp.Or(remote, st.id))
			a.mu.Unlock()
		}
		return nil
	}
}

// personalPresence answers a personal session's join, and notes its
// removal from a room (it joins again on its next message there).
func (a *Adapter) personalPresence(c *session, r *room, st *stanza) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.answerJoinLocked(joinKey(c.me, r), st)
	if !st.muc.has(statusSelf) || st.typ != "unavailable" || st.muc.has(statusNickChange) {
		return
	}
	if m := c.person.rooms[r.key]; m != nil && m.joining == nil {
		m.joined = false
	}
	banned, kicked := st.muc.has(statusBanned), st.muc.has(statusKicked)
	a.log.Info("xmpp: personal session removed from room", "room", r.addr, "person", c.person.Acct.Person,
		"kicked", kicked, "banned", banned)
	if banned || kicked {
		// Kept out at once, not at their next message: the bridge then
		// refuses it rather than their puppet speaking for them.
		a.postRemoved(r.addr, c.person.Acct.BlockRef(), st.muc.item.actor, banned)
	}
}

// personalOccupantLocked reports whether nick in r is a person's own
// session: the occupant of their session, or another client of theirs
// under the same nick. Its presences are not bridged. a.mu is held.
func (a *Adapter) personalOccupantLocked(r *room, nick string, o *occupant) bool {
	p := r.personalNicks[nick]
	return p != nil && (o == nil || o.jid == "" || o.jid == p.jid.String())
}

// personalEchoLocked reports whether a room message is one a personal
// session sent: from its nick, with our id. The person's other clients
// under the same nick send ids of their own, and are bridged.
func (a *Adapter) personalEchoLocked(r *room, nick string, st *stanza) bool {
	return r.personalNicks[nick] != nil && (strings.HasPrefix(st.originID, msgIDPrefix) || strings.HasPrefix(st.id, msgIDPrefix))
}

// leavePersonalLocked takes people's sessions out of r, a room no longer
// bridged, and returns the departures to send. a.mu is held.
func (a *Adapter) leavePersonalLocked(r *room) (send func()) {
	type departure struct {
		c *session
		e *element
	}
	var out []departure
	for _, p := range a.peopleLocked() {
		m := p.rooms[r.key]
		delete(p.rooms, r.key)
		if s := p.Conn(); m != nil && m.joined && s != nil {
			out = append(out, departure{s, a.presence(s.me, r.occupantJID(m.nick), "unavailable")})
		}
	}
	clear(r.personalNicks)
	return func() {
		for _, d := range out {
			if err := a.write(d.c, d.e); err != nil {
				a.log.Debug("xmpp: personal session cannot leave room", "room", r.addr, "err", err)
			}
		}
	}
}
