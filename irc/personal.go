package irc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/ergochat/irc-go/ircevent"
	"github.com/ergochat/irc-go/ircmsg"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
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
	_ adapters.PersonalAwayer = (*Adapter)(nil)
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
type personal = adapters.Person[*conn, struct{}]

// newPersonal keeps a's personal connections; the protocol part is here.
func newPersonal(a *Adapter) *adapters.Personal[*conn, struct{}] {
	return adapters.NewPersonal(&a.mu, &a.wg, adapters.PersonalHooks[*conn, struct{}]{
		Noun:  "personal connection",
		Log:   func() *slog.Logger { return a.log },
		Clock: a.clock,
		Retry: func() *backoff.Backoff {
			return &backoff.Backoff{Min: backoffBase, Max: a.cfg.ReconnectMax, Clock: a.clock}
		},
		Connect: a.connectPersonal,
		DroppedLocked: func(p *personal) {
			if k := p.Current(); k != nil {
				go k.quit() // QUIT bypasses flood control, but not the write lock
			}
		},
		SyncLocked: a.syncPersonalLocked,
		AwayLocked: a.awayPersonalLocked,
	})
}

// UsePeople sets the people who speak through their own IRC connection.
// A person whose account or password changed is connected anew; one no
// longer listed is disconnected. Entries that cannot be used are marked
// failed (see PersonalStatus) and left out.
func (a *Adapter) UsePeople(accts []PersonalAccount) {
	a.mu.Lock()
	a.accts = slices.Clone(accts)
	a.mu.Unlock()
	a.usePeople()
}

// usePeople connects the people of the shards held here (all of them
// outside cluster mode), and disconnects the others.
func (a *Adapter) usePeople() {
	a.peopleMu.Lock()
	defer a.peopleMu.Unlock()
	a.mu.Lock()
	var accts []PersonalAccount
	for _, acct := range a.accts {
		if acct.Person == "" || a.heldLocked(a.personShard(acct.Person)) {
			accts = append(accts, acct)
		}
	}
	a.mu.Unlock()
	want := map[string]*personal{}
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
			want[acct.Person] = a.people.NewPerson(acct, struct{}{})
			continue
		}
		a.log.Error("personal IRC account cannot be used", "person", acct.Person, "why", invalid[acct.Person])
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.people.UseLocked(want, invalid)
	a.indexAccountsLocked()
}

// indexAccountsLocked maps the folded personal accounts to their people,
// again whenever the casemapping may have changed; a.mu must be held.
func (a *Adapter) indexAccountsLocked() {
	a.accounts = map[string]string{}
	for person, p := range a.people.AllLocked() {
		if p.Acct.ID != "" {
			a.accounts[a.info.cm.fold(p.Acct.ID)] = person
		}
	}
}

// PersonalStatus is the state of each person's connection, by person:
// "connecting", "connected", or "failed: " and the reason (a refused
// login, an unusable account, their nick taken). No secret is part of it.
func (a *Adapter) PersonalStatus() map[string]string { return a.people.PersonalStatus() }

// connectPersonal makes one connection of p's and keeps it until it
// drops or p stops.
func (a *Adapter) connectPersonal(ctx context.Context, p *personal) adapters.PersonalEnd {
	k := a.newPersonalConn(p)
	a.people.Attempt(p, k)
	cctx, cancel := context.WithTimeout(ctx, regTimeout+dialTimeout)
	err := k.connectOnce(cctx)
	cancel()
	switch {
	case err == nil:
		a.keepPersonal(ctx, p, k)
		return adapters.PersonalEnd{Up: true}
	case ctx.Err() != nil:
	case k.saslRefused() != "":
		k.closeSocket()
		return adapters.PersonalEnd{Refused: k.saslRefused()}
	case errors.Is(err, ircevent.SASLFailed):
		// InspIRCd offers SASL only while its services are linked:
		// they may be back soon, so the usual backoff.
		k.closeSocket()
		return adapters.PersonalEnd{Failed: "the server offers no SASL (are its services down?)"}
	}
	return adapters.PersonalEnd{Err: err}
}

// keepPersonal waits while p's connection k is up, asking for the
// person's nick from time to time while k has another, and quits it when
// p is to stop.
func (a *Adapter) keepPersonal(ctx context.Context, p *personal, k *conn) {
	regain := time.NewTicker(personalRegain)
	defer regain.Stop()
	for {
		select {
		case <-k.finished:
			return
		case <-ctx.Done():
			k.quit()
			select {
			case <-k.finished:
			case <-time.After(3 * time.Second):
				k.closeSocket()
			}
			return
		case <-regain.C:
			if nick := k.nick(); nick != "" && !a.casemap().equal(nick, p.Acct.ID) {
				k.rename(ctx, p.Acct.ID)
			}
		}
	}
}

func (a *Adapter) newPersonalConn(p *personal) *conn {
	acct := p.Acct
	cc := a.connConfig("person "+acct.Person, acct.ID)
	cc.caps = a.puppetCaps
	cc.shard = a.personShard(acct.Person)
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
	a.addInboxCallbacks(p, k)
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
	if !a.people.UpLocked(p, k) {
		a.mu.Unlock()
		return
	}
	a.own[a.info.cm.fold(k.nick())] = time.Time{}
	if !a.info.cm.equal(k.nick(), p.Acct.ID) {
		p.SetState(nickTaken(p.Acct.ID))
	}
	taken := p.State() != adapters.PersonalConnected
	a.mu.Unlock()
	a.learnServer(k)
	a.log.Info("personal connection up", "person", p.Acct.Person, "nick", k.nick())
	if taken {
		a.log.Error("personal connection: their nick is taken; their messages go out through their puppet until it is free", "person", p.Acct.Person, "nick", p.Acct.ID, "connected_as", k.nick())
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
	if p.Conn() != k {
		a.mu.Unlock()
		return
	}
	was := p.State()
	p.SetState(adapters.PersonalConnected)
	if !a.info.cm.equal(k.nick(), p.Acct.ID) {
		p.SetState(nickTaken(p.Acct.ID))
	}
	now := p.State()
	a.mu.Unlock()
	if was != now && now == adapters.PersonalConnected {
		a.log.Info("personal connection has its nick back", "person", p.Acct.Person, "nick", k.nick())
	}
}

func (a *Adapter) personalDown(p *personal, k *conn) {
	nick := k.nick()
	a.mu.Lock()
	a.people.DownLocked(p, k)
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
	return a.people.For(ctx, person, personalWait)
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

// PersonalRooms implements adapters.PersonalRoomer: person's connection
// joins the bridged channels of rooms it is not in yet, and parts those
// no longer among them, at once while it is up (personalUp joins them
// when it comes up).
func (a *Adapter) PersonalRooms(person string, rooms []string) { a.people.PersonalRooms(person, rooms) }

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

// PersonalAway implements adapters.PersonalAwayer: their connection
// sends AWAY with the message, or AWAY alone to be back, as their own
// client would.
func (a *Adapter) PersonalAway(person string, away bool, message string) {
	a.people.PersonalAway(person, away, message)
}

// awayPersonalLocked is how p's connection k says the person is away
// with message, or back ("").
func (a *Adapter) awayPersonalLocked(p *personal, k *conn, message string) func() {
	return func() {
		ctx, person := p.Ctx(), p.Acct.Person
		if err := k.bucket.wait(ctx); err != nil {
			return
		}
		var err error
		if message == "" {
			err = k.irc.Send("AWAY")
		} else {
			err = k.irc.Send("AWAY", cleanLine(message))
		}
		if err != nil {
			a.log.Warn("personal connection cannot set away", "person", person, "err", err)
			return
		}
		a.log.Debug("personal connection away", "person", person, "away", message != "")
	}
}

// syncPersonalLocked is how p's connection k parts the channels of links
// the person left and joins the bridged channels of those they take part
// in (adapters.Personal runs one sync of p's at a time). a.mu must be
// held; the work returned runs without it.
func (a *Adapter) syncPersonalLocked(p *personal, k *conn, part, join []string) func() {
	join = a.bridgedLocked(join)
	return func() {
		ctx, person := p.Ctx(), p.Acct.Person
		for _, ch := range part {
			if !k.inOrJoining(ch) {
				continue
			}
			if err := k.part(ctx, ch, ""); err != nil && ctx.Err() == nil {
				a.log.Warn("personal connection cannot part", "person", person, "channel", ch, "err", err)
				continue
			}
			a.log.Info("personal connection parted: the person left the link", "person", person, "channel", ch)
		}
		for ch, err := range k.joinAll(ctx, join) {
			a.log.Warn("personal connection cannot join", "person", person, "channel", ch, "err", err)
		}
	}
}

// notHome refuses as a person's home an IRC network where Switchboard
// holds their nick (their account has a password): a direct message
// goes to a nick, so one to theirs would reach Switchboard's connection
// and never a client of theirs; another client logged in to the same
// account has another nick, which no one writes to. Without a password
// their nick is their own client's, which may well be their home.
func notHome(a config.Account) string {
	if a.Password == "" {
		return ""
	}
	return "Switchboard holds their nick there (the account has a password), so direct messages to it reach Switchboard, not them"
}
