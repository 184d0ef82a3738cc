package irc

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/ergochat/irc-go/ircmsg"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/mapping"
)

// puppet is the connection that speaks for one foreign sender.
type puppet struct {
	key   string
	k     *conn
	ready chan struct{} // closed once connected, or failed (err set)
	err   error
	once  sync.Once // wg.Done for the connection

	// guarded by Adapter.mu
	sender  bridge.Sender
	busy    int
	last    time.Time
	retired bool
	direct  bool // has had a private conversation
}

func puppetKey(s bridge.Sender) string { return s.Network + "\x00" + s.ID }

// puppetFor returns the sender's puppet, connecting it if needed. It
// returns nil (and no error) when the sender is to be relayed by the bot:
// all puppets are taken, or puppets cannot connect right now. The caller
// must releasePuppet a non-nil result.
func (a *Adapter) puppetFor(ctx context.Context, s bridge.Sender) (*puppet, error) {
	s = s.Puppet() // one per person, whichever account they wrote from
	key := puppetKey(s)
	now := a.clock.Now()
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return nil, errors.New("irc: adapter stopped")
	}
	if k := a.senderShard(s); !a.heldLocked(k) {
		a.mu.Unlock()
		return nil, a.notHeld(k)
	}
	p := a.puppets[key]
	create := false
	if p == nil {
		if len(a.puppets) >= a.maxPuppets || now.Before(a.pausedUntil) {
			a.mu.Unlock()
			return nil, nil
		}
		p = &puppet{key: key, sender: s, ready: make(chan struct{}), last: now}
		a.puppets[key] = p
		a.wg.Add(1)
		create = true
	}
	p.busy++
	a.mu.Unlock()
	if create {
		// Not on the caller's context: one delivery giving up should not
		// waste a connection others may be waiting for.
		go a.connectPuppet(p)
	}
	select {
	case <-p.ready:
	case <-ctx.Done():
		a.releasePuppet(p)
		return nil, ctx.Err()
	}
	if p.err != nil {
		a.releasePuppet(p)
		var netErr *net.OpError
		if errors.As(p.err, &netErr) || a.ctx.Err() != nil {
			// The server is unreachable, not refusing puppets: the bot
			// cannot do better, let the delivery be retried.
			return nil, p.err
		}
		return nil, nil
	}
	return p, nil
}

// existingPuppet is puppetFor without creating one.
func (a *Adapter) existingPuppet(ctx context.Context, s bridge.Sender) (*puppet, error) {
	a.mu.Lock()
	p := a.puppets[puppetKey(s.Puppet())]
	if p != nil {
		p.busy++
	}
	a.mu.Unlock()
	if p == nil {
		return nil, nil
	}
	select {
	case <-p.ready:
	case <-ctx.Done():
		a.releasePuppet(p)
		return nil, ctx.Err()
	}
	if p.err != nil {
		a.releasePuppet(p)
		return nil, nil
	}
	return p, nil
}

func (a *Adapter) releasePuppet(p *puppet) {
	a.mu.Lock()
	p.busy--
	p.last = a.clock.Now()
	a.mu.Unlock()
}

func (a *Adapter) connectPuppet(p *puppet) {
	info := a.serverInfo()
	a.mu.Lock()
	s := p.sender
	a.mu.Unlock()
	if !info.known {
		// No bot here to have asked (another instance holds shard 0).
		info.nickLen = unknownNickLen
	}
	nick := mapping.IRCNick(mapping.Render(a.template, s), info.nickLen, s)
	cc := a.connConfig("puppet "+nick, nick)
	cc.caps = a.puppetCaps
	cc.shard = a.senderShard(s)
	cc.realname = stripCodes(cleanLine(relayName(s) + " (" + s.Network + ")"))
	cc.altNick = func(base string, maxLen, attempt int) string {
		return mapping.IRCNickAlternative(base, maxLen, s, attempt)
	}
	cc.nickLen = func() int { return info.nickLen }
	cc.fallbackNick = func() string { return mapping.IRCNick("", info.nickLen, s) }
	cc.onDown = func(*conn) { a.puppetGone(p) }
	k := newConn(cc)
	k.irc.AddCallback("PRIVMSG", func(e ircmsg.Message) { a.onDirect(p, e, false) })
	k.irc.AddCallback("NOTICE", func(e ircmsg.Message) { a.onDirect(p, e, true) })
	a.followOwnNick(k)
	a.mu.Lock()
	p.k = k
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(a.ctx, regTimeout+dialTimeout)
	defer cancel()
	err := k.connectOnce(ctx)
	if err == nil {
		a.mu.Lock()
		if a.stopped || p.retired {
			err = errors.New("irc: adapter stopped")
		} else {
			a.own[a.info.cm.fold(k.nick())] = time.Time{}
		}
		a.mu.Unlock()
		if err != nil {
			k.quit()
		}
	}
	if err != nil {
		p.err = err
		a.mu.Lock()
		if a.puppets[p.key] == p {
			delete(a.puppets, p.key)
		}
		var netErr *net.OpError
		refused := a.ctx.Err() == nil && !errors.As(err, &netErr)
		if refused {
			a.pausedUntil = a.clock.Now().Add(puppetPause)
		}
		a.mu.Unlock()
		if refused {
			a.log.Warn("puppet refused by the server; relaying for a while", "nick", nick, "err", err, "pause", puppetPause)
		} else if a.ctx.Err() == nil {
			a.log.Warn("puppet cannot connect", "nick", nick, "err", err)
		}
		// A failed connect left nothing running; a registered one that
		// we quit ends in puppetGone.
		if !k.isUp() {
			p.once.Do(a.wg.Done)
		}
	} else {
		a.learnServer(k)
		a.log.Debug("puppet connected", "nick", k.nick(), "sender", s.ID, "network", s.Network)
	}
	close(p.ready)
}

// puppetGone runs when a puppet's connection ended, for whatever reason.
func (a *Adapter) puppetGone(p *puppet) {
	nick := p.k.nick()
	a.mu.Lock()
	if a.puppets[p.key] == p {
		delete(a.puppets, p.key)
	}
	f := a.info.cm.fold(nick)
	if until, ok := a.own[f]; ok && until.IsZero() {
		a.own[f] = a.clock.Now().Add(ownGrace)
	}
	a.mu.Unlock()
	p.once.Do(a.wg.Done)
}

// retirePuppet disconnects a puppet now.
func (a *Adapter) retirePuppet(p *puppet) {
	a.mu.Lock()
	if a.puppets[p.key] == p {
		delete(a.puppets, p.key)
	}
	p.retired = true
	a.mu.Unlock()
	p.k.quit()
}

// reapPuppets retires the puppets idle for longer than the idle time.
func (a *Adapter) reapPuppets(now time.Time) {
	var idle []*puppet
	a.mu.Lock()
	for key, p := range a.puppets {
		select {
		case <-p.ready:
		default:
			continue
		}
		if p.busy == 0 && p.err == nil && now.Sub(p.last) >= a.idle {
			delete(a.puppets, key)
			p.retired = true
			idle = append(idle, p)
		}
	}
	a.mu.Unlock()
	for _, p := range idle {
		a.log.Debug("puppet idle; quitting", "nick", p.k.nick())
		p.k.quit()
	}
}

// puppetCount is the number of puppets connected or connecting.
func (a *Adapter) puppetCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.puppets)
}

// followOwnNick keeps the nick of k (a puppet or a personal connection)
// ours when it changes. The bot sees the change only in a channel they
// share, and a puppet with private conversations only is in none.
func (a *Adapter) followOwnNick(k *conn) {
	k.irc.AddCallback("NICK", func(e ircmsg.Message) {
		if len(e.Params) > 0 && k.isMe(e.Params[0]) {
			a.mu.Lock()
			a.ownRenamedLocked(e.Nick(), e.Params[0])
			a.mu.Unlock()
		}
	})
}
