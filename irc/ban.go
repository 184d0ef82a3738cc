package irc

import (
	"context"
	"errors"
	"strings"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/mapping"
)

// A channel that bans a puppet keeps its sender out: the bot sees every
// +b and -b in its channels and matches the masks against the puppets'
// nick!user@host, with the server's casemapping. A puppet whose JOIN is
// refused as banned (474), or whose line is (404, "banned"), reports the
// ban too, for a ban set before it existed. A person's own connection is
// matched and refused the same way, and its ban keeps the person out
// (Sender.BlockRef): their puppet never speaks for them instead, nor
// from whichever other account they write. Extbans ("m:", "~q:", "$a:"
// ...) are not understood and match no puppet; a puppet they keep out
// finds out by the refusal. The bridge then keeps the sender's messages
// out of the channel (the failed list, a notice to the sender), and the
// bot never relays them instead.

// modeChange is one change of a MODE line.
type modeChange struct {
	add   bool
	mode  byte
	param string
}

// parseModes reads the changes of "MODE #chan +bo-v mask nick nick":
// params are the line's after the channel. Which modes take a parameter
// the server said in ISUPPORT PREFIX and CHANMODES (see takesParam).
func parseModes(params []string, info serverInfo) []modeChange {
	if len(params) == 0 {
		return nil
	}
	var out []modeChange
	args := params[1:]
	add := true
	for i := 0; i < len(params[0]); i++ {
		c := params[0][i]
		switch c {
		case '+':
			add = true
			continue
		case '-':
			add = false
			continue
		}
		ch := modeChange{add: add, mode: c}
		if (info.prefixMode(c) != 0 || info.takesParam(c, add)) && len(args) > 0 {
			ch.param, args = args[0], args[1:]
		}
		out = append(out, ch)
	}
	return out
}

// extban reports whether a ban mask is an extban: its part before "!"
// holds a ":", which no nick can.
func extban(mask string) bool {
	nick, _, _ := strings.Cut(mask, "!")
	return strings.Contains(nick, ":")
}

// maskMatches reports whether an IRC ban mask matches nick!user@host,
// with the server's casemapping.
func maskMatches(cm caseMapping, mask, nuh string) bool {
	return !extban(mask) && mapping.Glob(cm.fold(mask), cm.fold(nuh), false)
}

// puppetView is what a ban is matched against: a puppet, or a person's
// own connection, with the sender a ban of it keeps out.
type puppetView struct {
	sender bridge.SenderRef // Sender.BlockRef: a person, not their account
	nick   string
	nuh    string // nick!user@host
}

// puppetViews lists the connected puppets and personal connections with
// their nick!user@host. A puppet in no channel yet has not seen its
// user@host: the bot's stands in, since puppets connect from where the
// bot does, with its ident (a personal connection with the ident it
// asked for).
func (a *Adapter) puppetViews() []puppetView {
	a.mu.Lock()
	type pk struct {
		s     bridge.SenderRef
		k     *conn
		ident string // "" for the bot's
	}
	var ps []pk
	for _, p := range a.puppets {
		if !p.retired && p.k != nil {
			ps = append(ps, pk{s: p.sender.BlockRef(), k: p.k})
		}
	}
	for _, p := range a.people.AllLocked() {
		if k := p.Conn(); k != nil {
			ps = append(ps, pk{s: p.Acct.BlockRef(), k: k, ident: identFrom(p.Acct.ID)})
		}
	}
	a.mu.Unlock()
	if len(ps) == 0 {
		return nil
	}
	botUH := a.bot.getUserHost()
	var out []puppetView
	for _, p := range ps { // k.mu is not taken under a.mu
		nick := p.k.nick()
		if nick == "" || !p.k.isUp() {
			continue
		}
		uh := p.k.getUserHost()
		if uh == "" {
			uh = botUH
			if user, host, ok := strings.Cut(botUH, "@"); ok && p.ident != "" {
				uh = p.ident + "@" + host
				if strings.HasPrefix(user, "~") { // the server's mark of no ident reply
					uh = "~" + uh
				}
			}
		}
		out = append(out, puppetView{sender: p.s, nick: nick, nuh: nick + "!" + uh})
	}
	return out
}

// followBans follows the bans of a bridged channel (read loop: it only
// queues the reports).
func (a *Adapter) followBans(r *room, changes []modeChange, by string) {
	for _, c := range changes {
		if c.mode != 'b' || c.param == "" {
			continue
		}
		if c.add {
			a.banSet(r, c.param, by)
		} else {
			a.banLifted(r, c.param, by)
		}
	}
}

// banSet keeps out the senders of the puppets a new ban matches.
func (a *Adapter) banSet(r *room, mask, by string) {
	cm := a.casemap()
	fm := cm.fold(mask)
	for _, p := range a.puppetViews() {
		if !maskMatches(cm, mask, p.nuh) {
			continue
		}
		a.mu.Lock()
		if r.bans == nil {
			r.bans = map[bridge.SenderRef][]string{}
		}
		r.bans[p.sender] = append(r.bans[p.sender], fm)
		a.mu.Unlock()
		a.log.Info("channel banned a puppet", "channel", r.name, "puppet", p.nick, "sender", p.sender.String(), "mask", mask, "by", by)
		sender := p.sender
		a.mod.Post(func(ctx context.Context) error { return a.mod.Banned(ctx, r.name, sender, by) })
	}
}

// banLifted lets in the senders no other ban of the channel keeps out.
// A sender banned before the adapter last started, or whose ban mask it
// does not know (a refused JOIN), is let in on any -b: if a ban still
// matches, their puppet's next JOIN is refused and they are kept out
// again.
func (a *Adapter) banLifted(r *room, mask, by string) {
	fm := a.casemap().fold(mask)
	a.mod.Post(func(ctx context.Context) error {
		free := map[bridge.SenderRef]bool{}
		for _, s := range a.mod.Bans(r.name) {
			free[s] = true
		}
		a.mu.Lock()
		for s, masks := range r.bans {
			masks = removeAll(masks, fm)
			if len(masks) == 0 {
				delete(r.bans, s)
				free[s] = true
			} else {
				r.bans[s] = masks
				delete(free, s)
			}
		}
		a.mu.Unlock()
		var errs []error
		for s := range free {
			errs = append(errs, a.mod.Unbanned(ctx, r.name, s, by))
		}
		return errors.Join(errs...)
	})
}

func removeAll(list []string, s string) []string {
	out := list[:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// puppetKicked runs when a channel kicked one of our puppets: on a
// network set to (kick_blocks) its sender is kept out until an operator
// lets them in; else the puppet rejoins with their next message.
func (a *Adapter) puppetKicked(ch, nick, by string) {
	cm := a.casemap()
	for _, p := range a.puppetViews() {
		if !cm.equal(p.nick, nick) {
			continue
		}
		a.mu.Lock()
		r := a.roomLocked(ch)
		a.mu.Unlock()
		if r == nil {
			return
		}
		a.log.Info("channel kicked a puppet", "channel", r.name, "puppet", nick, "sender", p.sender.String(), "by", by, "blocks", a.kickBlocks)
		sender := p.sender
		a.mod.Post(func(ctx context.Context) error {
			_, err := a.mod.Kicked(ctx, r.name, sender, by)
			return err
		})
		return
	}
}

// puppetRefused handles a puppet's JOIN or line that the channel refused:
// when it says the puppet is banned, the sender is kept out (reported
// now, the delivery waits for it) and the delivery fails for good,
// never to be relayed by the bot. It returns nil for other refusals.
func (a *Adapter) puppetRefused(ctx context.Context, p *puppet, ch string, err error) error {
	if !bannedRefusal(err) {
		return nil
	}
	a.mu.Lock()
	s := p.sender
	a.mu.Unlock()
	return a.senderRefused(ctx, s, p.k.nick(), ch, err)
}

// senderRefused is puppetRefused for the connection nick that spoke for
// sender (a puppet or a person's own connection).
func (a *Adapter) senderRefused(ctx context.Context, sender bridge.Sender, nick, ch string, err error) error {
	if !bannedRefusal(err) {
		return nil
	}
	a.mu.Lock()
	s := sender.BlockRef() // a person's ban keeps them out from any account
	name := ch
	if r := a.roomLocked(ch); r != nil {
		name = r.name
		if r.bans == nil {
			r.bans = map[bridge.SenderRef][]string{}
		}
		if _, ok := r.bans[s]; !ok {
			r.bans[s] = nil // mask unknown: lifted by any -b
		}
	}
	a.mu.Unlock()
	a.log.Info("puppet refused as banned", "channel", name, "puppet", nick, "sender", s.String(), "err", err)
	if rerr := a.mod.Banned(ctx, name, s, ""); rerr != nil {
		// Not kept out for now, yet never relayed: the next message
		// finds the ban again.
		a.log.Warn("cannot report a ban to the bridge", "channel", name, "sender", s.String(), "err", rerr)
	}
	return adapters.Refusal(a.name, name)
}

// bannedRefusal reports whether err is the server refusing a JOIN as
// banned (474), or a line with 404 saying so (404 alone may be +m or +n).
func bannedRefusal(err error) bool {
	var r *refusal
	if !errors.As(err, &r) {
		return false
	}
	return r.code == "474" || r.code == "404" && strings.Contains(strings.ToLower(r.text), "banned")
}
