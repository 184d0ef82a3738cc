package xmpp

import (
	"cmp"
	"context"
	"errors"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/backoff"
	"github.com/switchboard-chat/switchboard/mapping"
)

// MUC status codes (XEP-0045 §15.6) the adapter acts on.
const (
	statusSelf       = 110
	statusRealJIDs   = 100 // non-anonymous: every occupant sees real JIDs
	statusNickChange = 303
	statusKicked     = 307
	statusBanned     = 301
	statusShutdown   = 332
)

// room is one linked MUC, as the bot sees it.
type room struct {
	addr string // as configured: the bridge's room name
	jid  jid.JID
	key  string

	// The bot's occupancy. joined and the rest are set by the read loop
	// when the room's self-presence arrives.
	nick        string
	joined      bool
	joining     chan struct{} // closed when the current join attempt ends
	joinErr     error
	joinedAt    time.Time
	subjectSeen bool

	occupants   map[string]*occupant // by nick
	puppetNicks map[string]*puppet   // nicks our puppets hold or are joining with
	// personalNicks are the nicks people's own sessions hold or are
	// joining with (kept across the bot's reconnects: the sessions are
	// streams of their own).
	personalNicks map[string]*personal
	ownIDs        map[string]bool // XEP-0421 occupant ids of our own occupants
	ids           *roomIDs

	// What this session read of the room's archive (see archived).
	archiveRead *archiveRead

	// The XEP-0425 namespace the room announced ("": none), once asked.
	moderation      string
	moderationKnown bool

	topic roomTopic // see topic.go
}

// occupant is someone in a room.
type occupant struct {
	nick       string
	jid        string // real bare JID, when the room shows it
	occupantID string
	show       string
	status     string
	typing     bool
	own        bool
	// role and affiliation as the room's latest presence of the occupant
	// gave them (XEP-0045), for operator().
	role, affiliation string
}

// operator reports whether the occupant runs the room, for the room
// operators' chat commands: a moderator (the role owners and admins get
// on entering, and others may be given), or the room's owner or admin.
func (o *occupant) operator() bool {
	return o.role == "moderator" || o.affiliation == "owner" || o.affiliation == "admin"
}

func newRoom(addr string, j jid.JID) *room {
	r := &room{addr: addr, jid: j.Bare(), key: j.Bare().String(), ids: newRoomIDs(), personalNicks: map[string]*personal{}}
	r.reset()
	return r
}

// reset forgets the occupancy of a session that ended.
func (r *room) reset() {
	r.joined = false
	r.occupants = map[string]*occupant{}
	r.puppetNicks = map[string]*puppet{}
	r.ownIDs = map[string]bool{}
	r.moderationKnown = false // a new session may find the room changed
}

func (r *room) occupantJID(nick string) jid.JID {
	j, err := r.jid.WithResource(nick)
	if err != nil {
		return r.jid
	}
	return j
}

// joinResult is the room's answer to a join: the nick we got, or the
// error presence.
type joinResult struct {
	nick string
	err  error
}

func isConflict(err error) bool {
	var se *stanzaError
	return errors.As(err, &se) && se.condition == "conflict"
}

func joinKey(occupant jid.JID, r *room) string { return occupant.String() + "\x00" + r.key }

// occupy sends a join (or nick change) presence from `from` and waits for
// the room's self-presence or error.
func (a *Adapter) occupy(ctx context.Context, c *session, from jid.JID, r *room, nick string, extra ...*element) (string, error) {
	key := joinKey(from, r)
	ch := make(chan joinResult, 1)
	a.mu.Lock()
	a.joins[key] = ch
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		if a.joins[key] == ch {
			delete(a.joins, key)
		}
		a.mu.Unlock()
	}()
	p := a.presence(from, r.occupantJID(nick), "")
	// No history: what was said before is not bridged again.
	p.add(el(nsMUC, "x").add(el(nsMUC, "history", "maxstanzas", "0")))
	p.add(extra...)
	if err := a.write(c, p); err != nil {
		return "", err
	}
	t := time.NewTimer(a.t.join)
	defer t.Stop()
	select {
	case res := <-ch:
		return res.nick, res.err
	case <-t.C:
		return "", errTimeout
	case <-ctx.Done():
		return "", ctx.Err()
	case <-c.ctx.Done():
		return "", errDisconnected
	}
}

// joinBot joins the bot to a room, trying other nicks while its own is
// taken. Concurrent callers share one attempt.
func (a *Adapter) joinBot(ctx context.Context, c *session, r *room) error {
	a.mu.Lock()
	if !a.currentRoomLocked(r) {
		a.mu.Unlock()
		return errLeft // a rejoin that Leave overtook
	}
	if r.joined {
		a.mu.Unlock()
		return nil
	}
	if ch := r.joining; ch != nil {
		a.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if r.joined {
			return nil
		}
		if r.joinErr != nil {
			return r.joinErr
		}
		return errNotConnected
	}
	ch := make(chan struct{})
	r.joining = ch
	a.mu.Unlock()
	var err error
	for attempt := range maxNickAttempts {
		nick := nickAlternative(a.cfg.Nick, a.botSender, attempt)
		a.mu.Lock()
		if !a.currentRoomLocked(r) {
			a.mu.Unlock()
			err = errLeft
			break
		}
		r.nick = nick
		a.mu.Unlock()
		_, err = a.occupy(ctx, c, c.me, r, nick)
		if !isConflict(err) {
			break
		}
	}
	a.mu.Lock()
	r.joining, r.joinErr = nil, err
	close(ch)
	a.mu.Unlock()
	if err == nil {
		a.log.Info("xmpp: joined room", "room", r.addr, "nick", r.nick)
	}
	return err
}

// puppet is a foreign sender's JID on the component's domain.
type puppet struct {
	sender   bridge.Sender
	jid      jid.JID
	key      string
	nickBase string
	last     time.Time
	show     string
	status   string
	rooms    map[string]*membership // by room key: the rooms it is (to be) in
}

// membership is a puppet's occupancy of one room.
type membership struct {
	nick    string
	joined  bool
	left    bool // a person's session left; its nick is theirs until the room says it is gone
	joining chan struct{}
	err     error
	photo   photoAd // what its presence there advertised (puppetavatar.go)
}

func senderKey(s bridge.Sender) string { return s.Network + "\x00" + s.ID }

// puppetFor returns the sender's puppet, making one while there is room;
// nil when puppets.max are active.
func (a *Adapter) puppetFor(s bridge.Sender) (*puppet, error) {
	s = s.Puppet() // one per person, whichever account they wrote from
	a.mu.Lock()
	defer a.mu.Unlock()
	key := senderKey(s)
	if p := a.puppets[key]; p != nil {
		p.last = time.Now()
		if s.Name != "" && s.Name != p.sender.Name {
			p.sender = s
			p.nickBase = puppetNick(mapping.Render(a.template, s), s)
		}
		return p, nil
	}
	if len(a.puppets) >= a.maxPuppets {
		return nil, nil
	}
	j, err := puppetJID(s, a.domain)
	if err != nil {
		return nil, err
	}
	p := &puppet{
		sender:   s,
		jid:      j,
		key:      key,
		nickBase: puppetNick(mapping.Render(a.template, s), s),
		last:     time.Now(),
		rooms:    map[string]*membership{},
	}
	a.puppets[key] = p
	a.byJID[j.String()] = p
	return p, nil
}

// existingPuppet is the sender's puppet if there is one.
func (a *Adapter) existingPuppet(s bridge.Sender) *puppet {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.puppets[senderKey(s.Puppet())]
	if p != nil {
		p.last = time.Now()
	}
	return p
}

// startJoinLocked starts a join into r of the occupant whose memberships
// are rooms, a puppet's or a person's session's: when it is in already,
// or a join in flight (which it waits for) ends, it returns that join's
// nick or error, with a.mu released. Otherwise it returns its
// membership and the channel to close once the caller has joined, a.mu
// still held. Concurrent callers thus share one attempt.
func (a *Adapter) startJoinLocked(ctx context.Context, rooms map[string]*membership, r *room) (m *membership, ch chan struct{}, nick string, err error) {
	if !a.currentRoomLocked(r) {
		a.mu.Unlock()
		return nil, nil, "", errLeft
	}
	m = rooms[r.key]
	if m == nil {
		m = &membership{}
		rooms[r.key] = m
	}
	if m.joined {
		a.mu.Unlock()
		return m, nil, m.nick, nil
	}
	if ch := m.joining; ch != nil {
		a.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return m, nil, "", ctx.Err()
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if m.joined {
			return m, nil, m.nick, nil
		}
		return m, nil, "", cmp.Or(m.err, errNotConnected)
	}
	ch = make(chan struct{})
	m.joining, m.left = ch, false
	return m, ch, "", nil
}

// joinPuppet takes a puppet into a room (if it is not there yet) and
// returns its nick there. A nick someone else holds is resolved with the
// sender's fingerprint.
func (a *Adapter) joinPuppet(ctx context.Context, c *session, r *room, p *puppet) (string, error) {
	a.mu.Lock()
	m, ch, nick, err := a.startJoinLocked(ctx, p.rooms, r)
	if ch == nil {
		return nick, err
	}
	base := p.nickBase
	extra := presenceShow(p.show, p.status)
	s := p.sender
	a.mu.Unlock()
	x, ad := a.photoUpdate(ctx, s)
	extra = withPhoto(extra, x)

	for attempt := range maxNickAttempts {
		nick := nickAlternative(base, p.sender, attempt)
		a.mu.Lock()
		if !a.currentRoomLocked(r) {
			a.mu.Unlock()
			err = errLeft
			break
		}
		if o := r.occupants[nick]; o != nil && !o.own {
			a.mu.Unlock()
			continue // taken: do not even ask
		}
		if q := r.puppetNicks[nick]; q != nil && q != p {
			a.mu.Unlock()
			continue
		}
		m.nick = nick
		r.puppetNicks[nick] = p
		a.mu.Unlock()
		_, err = a.occupy(ctx, c, p.jid, r, nick, extra...)
		if err == nil || !isConflict(err) {
			break
		}
		a.mu.Lock()
		if r.puppetNicks[nick] == p {
			delete(r.puppetNicks, nick)
		}
		a.mu.Unlock()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	m.joining, m.err = nil, err
	if err == nil {
		m.photo = ad
	}
	close(ch)
	if errors.Is(err, errLeft) && p.rooms[r.key] == m {
		delete(p.rooms, r.key)
	}
	if err != nil {
		if r.puppetNicks[m.nick] == p {
			delete(r.puppetNicks, m.nick)
		}
		return "", err
	}
	return m.nick, nil
}

// presenceShow is the <show/> and <status/> of an occupant's presence.
func presenceShow(show, status string) []*element {
	var out []*element
	if show != "" {
		out = append(out, el("", "show").withText(show))
	}
	if status != "" {
		out = append(out, el("", "status").withText(status))
	}
	return out
}

// leavePuppet takes a puppet out of one room.
func (a *Adapter) leavePuppet(c *session, r *room, p *puppet, status string) error {
	a.mu.Lock()
	m := p.rooms[r.key]
	delete(p.rooms, r.key)
	if m != nil && r.puppetNicks[m.nick] == p {
		delete(r.puppetNicks, m.nick)
	}
	a.mu.Unlock()
	if m == nil || !m.joined || c == nil {
		return nil
	}
	e := a.presence(p.jid, r.occupantJID(m.nick), "unavailable")
	e.add(presenceShow("", status)...)
	return a.write(c, e)
}

// reapPuppets retires the puppets idle for longer than puppets.idle: they
// leave their rooms and are forgotten.
func (a *Adapter) reapPuppets(now time.Time) {
	var idle []*puppet
	a.mu.Lock()
	for _, p := range a.puppets {
		if now.Sub(p.last) > a.idle {
			idle = append(idle, p)
		}
	}
	c := a.conn
	a.mu.Unlock()
	for _, p := range idle {
		a.retirePuppet(c, p)
	}
}

func (a *Adapter) retirePuppet(c *session, p *puppet) {
	a.mu.Lock()
	var rooms []*room
	for key := range p.rooms {
		if r := a.rooms[key]; r != nil {
			rooms = append(rooms, r)
		}
	}
	a.mu.Unlock()
	for _, r := range rooms {
		if err := a.leavePuppet(c, r, p, ""); err != nil {
			a.log.Debug("xmpp: puppet leave failed", "puppet", p.jid.String(), "err", err)
		}
	}
	a.mu.Lock()
	if a.puppets[p.key] == p {
		delete(a.puppets, p.key)
		delete(a.byJID, p.jid.String())
	}
	a.mu.Unlock()
}

// pinger checks every joined room with an XEP-0410 self-ping and rejoins
// rooms the bot is no longer in; a ping without an answer means the
// stream is dead.
func (a *Adapter) pinger(c *session) {
	t := time.NewTicker(a.t.ping)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if !a.ready.Load() {
			continue
		}
		for _, r := range a.roomList() {
			if c.ctx.Err() != nil {
				return
			}
			a.mu.Lock()
			joined, nick, joining := r.joined, r.nick, r.joining != nil
			a.mu.Unlock()
			if joining {
				continue
			}
			if !joined {
				a.rejoin(c, r)
				continue
			}
			res, err := a.iq(c.ctx, c, c.me, r.occupantJID(nick), "get", el(nsPing, "ping"), a.t.pingTimeout)
			switch {
			case errors.Is(err, errTimeout):
				a.log.Warn("xmpp: self-ping unanswered; reconnecting", "room", r.addr)
				c.kill()
				return
			case err != nil:
				return
			case res.typ == "error" && res.err != nil && !pingMeansJoined(res.err.condition):
				a.log.Warn("xmpp: no longer in room; rejoining", "room", r.addr, "err", res.err.Error())
				a.mu.Lock()
				r.joined = false
				a.mu.Unlock()
				a.rejoin(c, r)
			}
		}
	}
}

// pingMeansJoined: XEP-0410 §3.2: these errors come from our own client
// and still prove we are in the room.
func pingMeansJoined(condition string) bool {
	return condition == "service-unavailable" || condition == "feature-not-implemented"
}

// rejoin takes the bot and the room's puppets back in.
func (a *Adapter) rejoin(c *session, r *room) {
	if err := a.joinBot(c.ctx, c, r); err != nil {
		if c.ctx.Err() == nil {
			a.log.Warn("xmpp: cannot rejoin room", "room", r.addr, "err", err)
		}
		return
	}
	if !a.relay {
		a.mu.Lock()
		for _, p := range a.puppets {
			if m := p.rooms[r.key]; m != nil {
				m.joined = false
			}
		}
		a.mu.Unlock()
		a.rejoinPuppets(c, r.key)
	}
}

// rejoinLater rejoins a room the bot was removed from, after a pause.
func (a *Adapter) rejoinLater(c *session, r *room) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if backoff.Sleep(c.ctx, a.t.rejoin, nil) {
			a.rejoin(c, r)
		}
	}()
}

// PuppetSender implements bridge.PuppetResolver: the sender whose puppet
// has the occupant nick name in the room.
func (a *Adapter) PuppetSender(_ context.Context, room, name string) (bridge.SenderRef, bool) {
	j, err := parseRoom(room)
	if err != nil {
		return bridge.SenderRef{}, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if r := a.rooms[j.String()]; r != nil {
		if p := r.puppetNicks[name]; p != nil {
			return p.sender.BlockRef(), true
		}
	}
	return bridge.SenderRef{}, false
}

var _ bridge.PuppetResolver = (*Adapter)(nil)
