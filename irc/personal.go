package irc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ergochat/irc-go/ircevent"
	"github.com/ergochat/irc-go/ircmsg"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/backoff"
	"github.com/switchboard-chat/switchboard/mapping"
)

// A person's own IRC account (adapters.PersonalAccount): its ID is their
// account name, which is also the nick the connection asks for, and its
// Password their SASL PLAIN password. Accounts without a password are
// not handed over; a Token means nothing on IRC.
type PersonalAccount = adapters.PersonalAccount

var (
	_ adapters.PeopleUser     = (*Adapter)(nil)
	_ adapters.PersonalRoomer = (*Adapter)(nil)
)

// personalWait is how long a person's message waits for their personal
// connection to come up before it goes out through their puppet (a
// variable for tests).
var personalWait = 10 * time.Second

// personalRegain is how often a personal connection that came up under
// another nick (theirs was taken) asks for theirs again, as a bouncer's
// keepnick does (a variable for tests).
var personalRegain = time.Minute

// personal is the connection a person speaks through: kept up like a
// bouncer's (no idle quit), reconnecting with backoff, in the bridged
// channels of the links the person takes part in (PersonalRooms), and in
// those a message of theirs went to. What it reads is not bridged: the bot reports the channels,
// and its own lines are echoes of what we sent.
type personal struct {
	acct   PersonalAccount
	ctx    context.Context
	cancel context.CancelFunc

	// guarded by Adapter.mu
	cur   *conn         // the connection being made or up; for Stop
	k     *conn         // registered and up; nil while not
	up    chan struct{} // closed while k is up; a new one once it drops
	state string        // adapters.PersonalConnecting, adapters.PersonalConnected or "failed: why"
	// waited says a message already waited personalWait in vain since
	// the connection was last up: the next ones go to the puppet at once
	// rather than each waiting in turn.
	waited bool
	// parting are the channels of links the person left, for the next
	// sync to part (syncPersonalLocked).
	parting []string
	syncMu  sync.Mutex // one sync at a time
}

// UsePeople sets the people who speak through their own IRC connection.
// A person whose account or password changed is connected anew; one no
// longer listed is disconnected. Entries that cannot be used are marked
// failed (see PersonalStatus) and left out.
func (a *Adapter) UsePeople(accts []PersonalAccount) {
	want := map[string]PersonalAccount{}
	invalid := map[string]string{}
	for _, acct := range accts {
		switch {
		case acct.Person == "":
			a.log.Error("personal IRC account without a person; ignored", "account", acct.ID)
			continue
		case validNick(acct.ID) != nil:
			invalid[acct.Person] = fmt.Sprintf("failed: account %q is not a usable nick: %v", acct.ID, validNick(acct.ID))
		case acct.Password == "" || strings.ContainsAny(acct.Password, "\r\n\x00"):
			invalid[acct.Person] = "failed: the password is empty or contains a line break or NUL"
		default:
			want[acct.Person] = acct
			continue
		}
		a.log.Error("personal IRC account cannot be used", "person", acct.Person, "why", invalid[acct.Person])
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for person, p := range a.people {
		if acct, ok := want[person]; ok && acct == p.acct {
			delete(want, person) // unchanged; Start starts it if not yet
			continue
		}
		a.stopPersonalLocked(p)
		delete(a.people, person)
		_, listed := want[person]
		if _, bad := invalid[person]; !listed && !bad {
			delete(a.wants, person) // no longer a person here
		}
	}
	for person, why := range invalid {
		a.people[person] = &personal{state: why}
	}
	for person, acct := range want {
		p := &personal{acct: acct, up: make(chan struct{}), state: adapters.PersonalConnecting}
		a.people[person] = p
		if a.started && !a.stopped {
			a.startPersonalLocked(p)
		}
	}
	a.indexAccountsLocked()
}

// indexAccountsLocked maps the folded personal accounts to their people,
// again whenever the casemapping may have changed; a.mu must be held.
func (a *Adapter) indexAccountsLocked() {
	a.accounts = map[string]string{}
	for person, p := range a.people {
		if p.acct.ID != "" {
			a.accounts[a.info.cm.fold(p.acct.ID)] = person
		}
	}
}

// PersonalStatus is the state of each person's connection, by person:
// "connecting", "connected", or "failed: " and the reason (a refused
// login, an unusable account). No secret is part of it.
func (a *Adapter) PersonalStatus() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]string, len(a.people))
	for person, p := range a.people {
		out[person] = p.state
	}
	return out
}

// startPersonalLocked starts keeping p's connection up; a.mu must be
// held and the adapter running.
func (a *Adapter) startPersonalLocked(p *personal) {
	if p.acct.ID == "" || p.ctx != nil {
		return
	}
	p.ctx, p.cancel = context.WithCancel(a.ctx)
	a.wg.Add(1)
	go a.runPersonal(p)
}

func (a *Adapter) stopPersonalLocked(p *personal) {
	if p.cancel == nil {
		return
	}
	p.cancel()
	if p.cur != nil {
		go p.cur.quit() // QUIT bypasses flood control, but not the write lock
	}
}

// runPersonal keeps a person's connection up until the adapter stops or
// the person is removed. A refused login is retried only rarely.
func (a *Adapter) runPersonal(p *personal) {
	defer a.wg.Done()
	bo := &backoff.Backoff{Min: backoffBase, Max: a.cfg.ReconnectMax, Clock: a.clock}
	authBo := &backoff.Backoff{Min: adapters.PersonalLoginRetryMin, Max: adapters.PersonalLoginRetryMax, Clock: a.clock}
	for p.ctx.Err() == nil {
		k := a.newPersonalConn(p)
		a.mu.Lock()
		p.cur = k
		a.mu.Unlock()
		ctx, cancel := context.WithTimeout(p.ctx, regTimeout+dialTimeout)
		err := k.connectOnce(ctx)
		cancel()
		if err == nil {
			authBo.Reset()
			if !a.keepPersonal(p, k) {
				return
			}
			if !bo.Wait(p.ctx, nil) {
				return
			}
			continue
		}
		if p.ctx.Err() != nil {
			return
		}
		if why := k.saslRefused(); why != "" {
			// Wrong credentials stay wrong until someone changes them.
			a.personalFailed(p, "SASL login as "+p.acct.ID+" refused: "+why)
			k.closeSocket()
			if !authBo.Wait(p.ctx, nil) {
				return
			}
			continue
		}
		if errors.Is(err, ircevent.SASLFailed) {
			// InspIRCd offers SASL only while its services are linked:
			// they may be back soon, so the usual backoff.
			a.personalFailed(p, "the server offers no SASL (are its services down?)")
			k.closeSocket()
			if !bo.Wait(p.ctx, nil) {
				return
			}
			continue
		}
		a.log.Warn("personal connection failed", "person", p.acct.Person, "account", p.acct.ID, "err", err)
		if !bo.Wait(p.ctx, nil) {
			return
		}
	}
}

// personalFailed marks p failed with the reason, logged once until it
// changes: the person's messages go out through their puppet meanwhile.
func (a *Adapter) personalFailed(p *personal, why string) {
	a.mu.Lock()
	changed := p.state != adapters.PersonalFailed(why)
	p.state = adapters.PersonalFailed(why)
	a.mu.Unlock()
	if changed {
		a.log.Error("personal connection cannot log in; their messages go out through their puppet", "person", p.acct.Person, "account", p.acct.ID, "why", why)
	}
}

// keepPersonal waits while p's connection k is up, asking for the
// person's nick from time to time while k has another; false when p is
// to stop.
func (a *Adapter) keepPersonal(p *personal, k *conn) bool {
	regain := time.NewTicker(personalRegain)
	defer regain.Stop()
	for {
		select {
		case <-k.finished:
			return true
		case <-p.ctx.Done():
			k.quit()
			select {
			case <-k.finished:
			case <-time.After(3 * time.Second):
				k.closeSocket()
			}
			return false
		case <-regain.C:
			if nick := k.nick(); nick != "" && !a.casemap().equal(nick, p.acct.ID) {
				k.rename(p.ctx, p.acct.ID)
			}
		}
	}
}

func (a *Adapter) newPersonalConn(p *personal) *conn {
	acct := p.acct
	cc := a.connConfig("person "+acct.Person, acct.ID)
	cc.caps = a.puppetCaps
	cc.user = identFrom(acct.ID)
	cc.realname = acct.ID
	cc.sasl = &SASL{User: acct.ID, Password: acct.Password}
	cc.saslRequired = true
	self := bridge.Sender{Network: a.name, ID: acct.ID}
	cc.altNick = func(base string, maxLen, attempt int) string {
		return mapping.IRCNickAlternative(base, maxLen, self, attempt)
	}
	cc.nickLen = func() int { return a.serverInfo().nickLen }
	cc.onUp = func(k *conn) { a.personalUp(p, k) }
	cc.onDown = func(k *conn) { a.personalDown(p, k) }
	k := newConn(cc)
	a.followOwnNick(k)
	k.irc.AddCallback("NICK", func(e ircmsg.Message) {
		if len(e.Params) > 0 && k.isMe(e.Params[0]) {
			a.personalNick(p, k)
		}
	})
	return k
}

// personalUp runs once p's connection k is registered (and logged in:
// SASL is required): its nick is ours, messages may use it, and it
// joins the bridged channels of the links the person takes part in.
func (a *Adapter) personalUp(p *personal, k *conn) {
	a.mu.Lock()
	if p.ctx.Err() != nil || a.stopped {
		a.mu.Unlock()
		return
	}
	a.own[a.info.cm.fold(k.nick())] = time.Time{}
	p.k, p.state, p.waited = k, adapters.PersonalConnected, false
	if !a.info.cm.equal(k.nick(), p.acct.ID) {
		p.state = nickTaken(p.acct.ID)
	}
	select {
	case <-p.up: // cannot happen: the last connection's personalDown made a new one
	default:
		close(p.up)
	}
	a.syncPersonalLocked(p)
	taken := p.state != adapters.PersonalConnected
	a.mu.Unlock()
	a.log.Info("personal connection up", "person", p.acct.Person, "nick", k.nick())
	if taken {
		a.log.Error("personal connection: their nick is taken; their messages go out through their puppet until it is free", "person", p.acct.Person, "nick", p.acct.ID, "connected_as", k.nick())
	}
}

// nickTaken is the state of a connection up under another nick than the
// person's: to the channel it is not them, so their puppet speaks.
func nickTaken(nick string) string {
	return "failed: nick " + nick + " is in use by someone else"
}

// personalNick follows k's nick changes: back under their own nick, the
// person speaks from it again.
func (a *Adapter) personalNick(p *personal, k *conn) {
	a.mu.Lock()
	if p.k != k {
		a.mu.Unlock()
		return
	}
	was := p.state
	p.state = adapters.PersonalConnected
	if !a.info.cm.equal(k.nick(), p.acct.ID) {
		p.state = nickTaken(p.acct.ID)
	}
	now := p.state
	a.mu.Unlock()
	if was != now && now == adapters.PersonalConnected {
		a.log.Info("personal connection has its nick back", "person", p.acct.Person, "nick", k.nick())
	}
}

func (a *Adapter) personalDown(p *personal, k *conn) {
	nick := k.nick()
	a.mu.Lock()
	if p.k == k {
		p.k, p.up = nil, make(chan struct{})
		if p.state == adapters.PersonalConnected || p.state == nickTaken(p.acct.ID) {
			p.state = adapters.PersonalConnecting
		}
	}
	f := a.info.cm.fold(nick)
	if until, ok := a.own[f]; ok && until.IsZero() {
		a.own[f] = a.clock.Now().Add(ownGrace)
	}
	a.mu.Unlock()
}

// personalFor returns the person's connection when they have one that is
// up, waiting up to personalWait for one still connecting; nil means the
// puppet speaks for them.
func (a *Adapter) personalFor(ctx context.Context, person string) *conn {
	if person == "" {
		return nil
	}
	a.mu.Lock()
	p := a.people[person]
	if p == nil || p.ctx == nil || p.waited || adapters.IsPersonalFailed(p.state) {
		a.mu.Unlock()
		return nil
	}
	k, up := p.k, p.up
	a.mu.Unlock()
	if k != nil {
		return k
	}
	t, stop := a.clock.After(personalWait)
	defer stop()
	select {
	case <-up:
	case <-t:
	case <-ctx.Done():
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if p.k == nil && ctx.Err() == nil {
		p.waited = true
	}
	return p.k
}

// sendPersonal sends as the person from their own connection and returns
// the wait for the confirmation; fallback says their puppet should send
// instead.
func (a *Adapter) sendPersonal(ctx context.Context, k *conn, key, target string, direct bool, m *bridge.Message, b ircText) (bridge.Confirm, bool) {
	if !direct {
		if err := k.join(ctx, target); err != nil {
			if ctx.Err() != nil {
				return bridge.Settled("", err), false
			}
			if ban := a.senderRefused(ctx, m.Sender, k.nick(), target, err); ban != nil {
				// Banned as themselves: never their puppet instead.
				return bridge.Settled("", ban), false
			}
			a.log.Warn("personal connection cannot join; using the puppet", "nick", k.nick(), "channel", target, "err", err)
			return nil, true
		}
	}
	sent := a.startVia(ctx, k, key, target, m, b, "")
	return func(ctx context.Context) (string, error) {
		id, err := sent(ctx)
		if !direct {
			if ban := a.senderRefused(ctx, m.Sender, k.nick(), target, err); ban != nil {
				a.forgetProgress(key)
				return "", ban
			}
		}
		return id, err
	}, false
}

// personalConns are the personal connections being made or up.
func (a *Adapter) personalConnsLocked() []*conn {
	var out []*conn
	for _, p := range a.people {
		if p.cur != nil {
			out = append(out, p.cur)
		}
	}
	return out
}

// personalUpLocked are the personal connections that are up; a.mu must
// be held.
func (a *Adapter) personalUpLocked() []*conn {
	var out []*conn
	for _, p := range a.people {
		if p.k != nil {
			out = append(out, p.k)
		}
	}
	return out
}

// joinPersonalLocked takes the personal connections that are up, of
// the people whose links take in channel, into it, a newly bridged
// channel; a person who cannot join speaks through their puppet (see
// sendPersonal). a.mu must be held.
func (a *Adapter) joinPersonalLocked(channel string) {
	for person, p := range a.people {
		if a.wants.Wants(person, channel) {
			a.syncPersonalLocked(p)
		}
	}
}

// PersonalRooms implements adapters.PersonalRoomer: person's connection
// joins the bridged channels of rooms it is not in yet, and parts those
// no longer among them, at once while it is up (personalUp joins them
// when it comes up).
func (a *Adapter) PersonalRooms(person string, rooms []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	added, removed := a.wants.Set(person, rooms)
	p := a.people[person]
	if p == nil || p.k == nil || len(added)+len(removed) == 0 {
		return // a connection not up is in no channel
	}
	p.parting = append(p.parting, removed...)
	a.syncPersonalLocked(p)
}

// bridgedLocked are those of chans that are bridged; a.mu must be held.
func (a *Adapter) bridgedLocked(chans []string) []string {
	var out []string
	for _, ch := range chans {
		if a.roomLocked(ch) != nil {
			out = append(out, ch)
		}
	}
	return out
}

// syncPersonalLocked has p's connection, when up, part the channels of
// links the person left and join the bridged channels of those they take
// part in, in the background: joining waits for the server's replies,
// which the read loop we may be in reads. One sync of p's runs at a
// time, each on the latest wants, so that quick changes end where the
// last one says. a.mu must be held.
func (a *Adapter) syncPersonalLocked(p *personal) {
	if p.k == nil || a.stopped {
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		p.syncMu.Lock()
		defer p.syncMu.Unlock()
		person := p.acct.Person
		a.mu.Lock()
		k := p.k
		part := slices.DeleteFunc(p.parting, func(ch string) bool { return a.wants.Wants(person, ch) })
		p.parting = nil
		join := a.bridgedLocked(a.wants.Of(person))
		a.mu.Unlock()
		if k == nil {
			return // down: in no channel, and personalUp syncs again
		}
		for _, ch := range part {
			if !k.inOrJoining(ch) {
				continue
			}
			if err := k.part(p.ctx, ch, ""); err != nil && p.ctx.Err() == nil {
				a.log.Warn("personal connection cannot part", "person", person, "channel", ch, "err", err)
				continue
			}
			a.log.Info("personal connection parted: the person left the link", "person", person, "channel", ch)
		}
		for ch, err := range k.joinAll(p.ctx, join) {
			a.log.Warn("personal connection cannot join", "person", person, "channel", ch, "err", err)
		}
	}()
}
