package irc

import (
	"strings"
	"time"

	"github.com/ergochat/irc-go/ircmsg"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/backoff"
)

// room is a bridged channel as the bot sees it.
type room struct {
	name    string             // as configured
	members map[string]*member // by folded nick
	names   map[string]*member // a NAMES reply being read
	// bans are the folded masks that ban our puppets' senders, as far as
	// this run saw them set; an empty list is a ban of unknown mask.
	bans  map[bridge.SenderRef][]string
	topic chanTopic   // see topic.go
	catch roomCatchUp // see catchup.go
}

type member struct {
	nick     string
	account  string
	prefixes string // channel membership prefixes held ("@", "~@+"); see ranks.go
}

// addInboundCallbacks turns the bot's traffic into bridge events. They
// run in the bot's read loop, so they only queue events (see acceptQueue)
// and never wait.
func (a *Adapter) addInboundCallbacks(k *conn) {
	k.irc.AddCallback("PRIVMSG", func(e ircmsg.Message) { a.onMessage(e, false) })
	k.irc.AddCallback("NOTICE", func(e ircmsg.Message) { a.onMessage(e, true) })
	k.irc.AddCallback("TAGMSG", a.onTagmsg)
	k.irc.AddCallback("JOIN", a.onJoin)
	k.irc.AddCallback("PART", a.onPart)
	k.irc.AddCallback("KICK", a.onKick)
	k.irc.AddCallback("MODE", a.onMode)
	k.irc.AddCallback("QUIT", a.onQuit)
	k.irc.AddCallback("NICK", a.onNick)
	k.irc.AddCallback("TOPIC", a.onTopic)
	k.irc.AddCallback("ACCOUNT", a.onAccount)
	k.irc.AddCallback("353", a.onNames)
	k.irc.AddCallback("366", a.onEndOfNames)
	a.addTopicCallbacks(k)
}

// roomLocked finds a bridged channel; a.mu must be held.
func (a *Adapter) roomLocked(ch string) *room {
	return a.rooms[a.info.cm.fold(ch)]
}

// header builds the common event fields for a line from nick in room
// ("" for a private message); a.mu must be held. The sender is a person
// only by a verified account (account tag, extended-join or
// account-notify), never by nick: anyone may take a nick that is free.
func (a *Adapter) header(e ircmsg.Message, room, nick, account string) bridge.Header {
	if ok, acc := e.GetTag("account"); ok && acc != "" && acc != "*" {
		account = acc
	}
	id := nick
	if account != "" {
		id = account
	}
	t := time.Now()
	if ok, ts := e.GetTag("time"); ok {
		if st, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			t = st
		}
	}
	_, msgid := e.GetTag("msgid")
	return bridge.Header{
		ID:     bridge.NewEventID(),
		Origin: bridge.Origin{Network: a.name, Room: room, RemoteID: msgid},
		// Only an account, from the server, is an authenticated id: a
		// bare nick is anyone's who takes it.
		Sender: bridge.Sender{Network: a.name, ID: id, Name: nick, Mask: a.mask(e, nick), Authenticated: account != ""},
		Time:   t,
	}
}

// mask is nick's nick!user@host as the line's source shows it, for admin
// rules; "" when the line is not from nick (a KICK names the kicker) or
// the server left out user and host. A NICK line's source has the old
// nick, with the user@host the new one keeps.
func (a *Adapter) mask(e ircmsg.Message, nick string) string {
	nuh, err := e.NUH()
	if err != nil || nuh.User == "" || nuh.Host == "" {
		return ""
	}
	if e.Command != "NICK" && !a.casemap().equal(nuh.Name, nick) {
		return ""
	}
	return nick + "!" + nuh.User + "@" + nuh.Host
}

func (a *Adapter) accountLocked(r *room, nick string) string {
	if m := r.members[a.info.cm.fold(nick)]; m != nil {
		return m.account
	}
	return ""
}

func (a *Adapter) emit(ev bridge.Event) {
	if !a.queue.Push(ev) {
		a.log.Error("inbound queue full; dropping event", "kind", ev.Kind(), "room", ev.Head().Origin.Room)
	}
}

// fromServer reports whether a line comes from a server rather than a
// user (server notices, topics set during a netjoin).
func fromServer(e ircmsg.Message) bool {
	return !strings.Contains(e.Source, "!") && strings.Contains(e.Source, ".")
}

// hopTag marks the lines Switchboard sends, where the server relays client
// tags (message-tags), so that another Switchboard in the same channel
// does not bridge them again.
const hopTag = "+switchboard.chat/bridged"

var hopTags = map[string]string{hopTag: ""}

// chatMessage reads a PRIVMSG or NOTICE from another user into a message
// without its header; nil when it is not to be bridged.
func (a *Adapter) chatMessage(e ircmsg.Message, notice bool) *bridge.Message {
	if len(e.Params) < 2 || fromServer(e) {
		return nil
	}
	if a.isOwn(e.Nick()) {
		return nil // our own lines, echoes included
	}
	if e.HasTag(hopTag) {
		return nil // another bridge's puppet: bridging it again could loop
	}
	text := e.Params[1]
	emote := false
	if strings.HasPrefix(text, "\x01") {
		inner := strings.TrimSuffix(text[1:], "\x01")
		cmd, rest, _ := strings.Cut(inner, " ")
		if !strings.EqualFold(cmd, "ACTION") {
			return nil // VERSION, PING, DCC...: not chat
		}
		text, emote = rest, true
	}
	m := &bridge.Message{Text: stripCodes(text), Emote: emote, Notice: notice && !emote}
	if _, msgid := e.GetTag(tagReply); msgid != "" {
		m.ReplyTo = bridge.Ref{Remote: msgid} // an IRCv3 client's reply
	}
	if html, ok := ircToHTML(text); ok {
		m.HTML = html
	}
	return m
}

// onMessage reports what is said in bridged channels, and private
// messages to the bot (see toBot).
func (a *Adapter) onMessage(e ircmsg.Message, notice bool) {
	m := a.chatMessage(e, notice)
	if m == nil {
		return
	}
	nick := e.Nick()
	if a.bot.isMe(e.Params[0]) {
		a.toBot(e, m, notice)
		return
	}
	a.mu.Lock()
	r := a.roomLocked(e.Params[0])
	if r == nil || !strings.ContainsRune(a.info.chanTypes, rune(e.Params[0][0])) {
		a.mu.Unlock()
		return
	}
	m.Header = a.header(e, r.name, nick, a.accountLocked(r, nick))
	m.Operator = a.operatorLocked(r, nick)
	m.Mentions = a.mentionsLocked(r, m.Text, nick)
	r.seenLineLocked(m)
	a.mu.Unlock()
	a.emit(m)
	a.typingSpoke(r.name, nick)
}

// toBot reports a private message to the bot as a direct message to
// Switchboard itself (bridge.ToBot): a chat command, never bridged. A
// NOTICE is not one: by IRC convention no one answers a notice
// automatically (services and other bots send them), so two bots can
// never answer each other forever.
func (a *Adapter) toBot(e ircmsg.Message, m *bridge.Message, notice bool) {
	if notice {
		return
	}
	a.mu.Lock()
	m.Header = a.directHeaderLocked(e)
	a.mu.Unlock()
	m.To = &bridge.Sender{Network: a.name, ID: a.bot.nick()}
	a.emit(m)
}

// directHeaderLocked is the header of a private message; a.mu must be
// held. Without account-tag, what the bot knows keeps the sender's id the
// one their channel messages have.
func (a *Adapter) directHeaderLocked(e ircmsg.Message) bridge.Header {
	nick := e.Nick()
	account := ""
	for _, r := range a.rooms {
		if account = a.accountLocked(r, nick); account != "" {
			break
		}
	}
	return a.header(e, "", nick, account)
}

// onDirect runs in a puppet's read loop: a private message to the puppet
// is a direct message to the sender it speaks for, and keeps it from
// being idle.
func (a *Adapter) onDirect(p *puppet, e ircmsg.Message, notice bool) {
	if len(e.Params) < 1 || !p.k.isMe(e.Params[0]) {
		return // a channel's line: the bot reports those
	}
	m := a.chatMessage(e, notice)
	if m == nil {
		return
	}
	a.mu.Lock()
	m.Header = a.directHeaderLocked(e)
	to := p.sender
	m.To = &to
	p.last = a.clock.Now()
	p.direct = true
	a.mu.Unlock()
	a.emit(m)
}

func (a *Adapter) onJoin(e ircmsg.Message) {
	if len(e.Params) < 1 {
		return
	}
	nick := e.Nick()
	account := ""
	if len(e.Params) >= 3 && e.Params[1] != "*" { // extended-join
		account = e.Params[1]
	}
	isBot := a.bot.isMe(nick)
	own := isBot || a.isOwn(nick)
	a.mu.Lock()
	r := a.roomLocked(e.Params[0])
	if r == nil {
		a.mu.Unlock()
		if isBot {
			a.partStray(e.Params[0])
		}
		return
	}
	if isBot {
		r.members, r.names = map[string]*member{}, nil // NAMES follows
		a.mu.Unlock()
		return
	}
	r.members[a.info.cm.fold(nick)] = &member{nick: nick, account: account}
	if nuh, err := e.NUH(); err == nil && !own {
		own = a.notePeerLocked(nick, nuh.User)
	}
	if own {
		a.mu.Unlock()
		return
	}
	h := a.header(e, r.name, nick, account)
	a.mu.Unlock()
	a.emit(&bridge.Join{Header: h})
}

func (a *Adapter) onPart(e ircmsg.Message) {
	if len(e.Params) < 1 {
		return
	}
	nick := e.Nick()
	reason := ""
	if len(e.Params) >= 2 {
		reason = stripCodes(e.Params[1])
	}
	a.leave(e, e.Params[0], nick, reason)
}

func (a *Adapter) onKick(e ircmsg.Message) {
	if len(e.Params) < 2 {
		return
	}
	reason := "kicked by " + e.Nick()
	if len(e.Params) >= 3 && e.Params[2] != "" {
		reason += ": " + stripCodes(e.Params[2])
	}
	if !a.bot.isMe(e.Params[1]) && a.isOwn(e.Params[1]) {
		a.puppetKicked(e.Params[0], e.Params[1], e.Nick())
	}
	a.leave(e, e.Params[0], e.Params[1], reason)
}

func (a *Adapter) leave(e ircmsg.Message, ch, nick, reason string) {
	if a.bot.isMe(nick) {
		a.botLeft(ch)
		return
	}
	own := a.isOwn(nick)
	a.mu.Lock()
	r := a.roomLocked(ch)
	if r == nil {
		a.mu.Unlock()
		return
	}
	f := a.info.cm.fold(nick)
	account := a.accountLocked(r, nick)
	delete(r.members, f)
	a.peerGoneLocked(f)
	if own {
		a.mu.Unlock()
		return
	}
	h := a.header(e, r.name, nick, account)
	a.mu.Unlock()
	a.emit(&bridge.Leave{Header: h, Reason: reason})
}

// botLeft handles the bot being parted or kicked from a bridged channel:
// it goes back in after a pause.
func (a *Adapter) botLeft(ch string) {
	a.mu.Lock()
	r := a.roomLocked(ch)
	if r == nil || a.stopped {
		a.mu.Unlock()
		return
	}
	r.members, r.names = map[string]*member{}, nil
	a.wg.Add(1)
	a.mu.Unlock()
	go func() {
		defer a.wg.Done()
		if !backoff.Sleep(a.ctx, rejoinDelay, nil) {
			return
		}
		if !a.bridging(r) {
			return // left meanwhile
		}
		if err := a.bot.join(a.ctx, r.name); err != nil && a.ctx.Err() == nil {
			a.log.Warn("cannot rejoin channel", "channel", r.name, "err", err)
		}
	}()
}

// partStray parts a channel the bot joined but no longer bridges: a
// rejoin that crossed a Leave. Parting waits for a flood token, which the
// read loop we are in must not.
func (a *Adapter) partStray(ch string) {
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return
	}
	a.wg.Add(1)
	a.mu.Unlock()
	go func() {
		defer a.wg.Done()
		a.mu.Lock()
		r := a.roomLocked(ch)
		a.mu.Unlock()
		if r != nil {
			return // joined again meanwhile
		}
		if err := a.bot.part(a.ctx, ch, "unlinked"); err != nil && a.ctx.Err() == nil {
			a.log.Warn("cannot part channel", "channel", ch, "err", err)
		}
	}()
}

func (a *Adapter) onQuit(e ircmsg.Message) {
	nick := e.Nick()
	reason := ""
	if len(e.Params) >= 1 {
		reason = stripCodes(e.Params[0])
	}
	if a.bot.isMe(nick) {
		return
	}
	own := a.isOwn(nick)
	var evs []bridge.Event
	a.mu.Lock()
	f := a.info.cm.fold(nick)
	if own {
		// The server says it is gone: whoever uses the nick next is not
		// our puppet.
		delete(a.own, f)
		delete(a.peers, f)
	}
	for _, r := range a.rooms {
		m := r.members[f]
		if m == nil {
			continue
		}
		delete(r.members, f)
		if !own {
			evs = append(evs, &bridge.Leave{Header: a.header(e, r.name, nick, m.account), Reason: reason})
		}
	}
	a.mu.Unlock()
	for _, ev := range evs {
		a.emit(ev)
	}
}

func (a *Adapter) onNick(e ircmsg.Message) {
	if len(e.Params) < 1 {
		return
	}
	old, nick := e.Nick(), e.Params[0]
	// ircevent updates its own nick before our callbacks run, so the bot
	// is recognised by either name.
	own := a.bot.isMe(old) || a.bot.isMe(nick) || a.isOwn(old)
	var evs []bridge.Event
	a.mu.Lock()
	fo, fn := a.info.cm.fold(old), a.info.cm.fold(nick)
	a.ownRenamedLocked(old, nick)
	for _, r := range a.rooms {
		m := r.members[fo]
		if m == nil {
			continue
		}
		delete(r.members, fo)
		r.members[fn] = &member{nick: nick, account: m.account, prefixes: m.prefixes}
		if !own {
			evs = append(evs, &bridge.Rename{Header: a.header(e, r.name, nick, m.account), Previous: old})
		}
	}
	a.mu.Unlock()
	for _, ev := range evs {
		a.emit(ev)
	}
}

func (a *Adapter) onTopic(e ircmsg.Message) {
	if len(e.Params) < 2 || fromServer(e) {
		return
	}
	if a.isOwn(e.Nick()) {
		return
	}
	if h, ok := a.channelHeader(e); ok {
		a.emit(&bridge.Topic{Header: h, Topic: stripCodes(e.Params[1])})
	}
}

// channelHeader is the header of an event its sender caused in the
// bridged channel e.Params[0]; false when it is no such channel.
func (a *Adapter) channelHeader(e ircmsg.Message) (bridge.Header, bool) {
	nick := e.Nick()
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.roomLocked(e.Params[0])
	if r == nil {
		return bridge.Header{}, false
	}
	return a.header(e, r.name, nick, a.accountLocked(r, nick)), true
}

// ownRenamedLocked follows a puppet's nick change; a.mu must be held.
// Both the bot and the puppet's own connection report it, in either
// order, so the old nick stays ours for a while as a departed puppet's
// does: the bot may still have lines from before the change to read.
func (a *Adapter) ownRenamedLocked(old, nick string) {
	fo, fn := a.info.cm.fold(old), a.info.cm.fold(nick)
	if a.peers[fo] {
		delete(a.peers, fo)
		a.peers[fn] = true
	}
	if until, ok := a.own[fo]; ok && until.IsZero() {
		a.own[fo] = a.clock.Now().Add(ownGrace)
		a.own[fn] = time.Time{}
	}
}

// onAccount follows account-notify, so later events carry the account
// even without account-tag.
func (a *Adapter) onAccount(e ircmsg.Message) {
	if len(e.Params) < 1 {
		return
	}
	account := e.Params[0]
	if account == "*" {
		account = ""
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.info.cm.fold(e.Nick())
	for _, r := range a.rooms {
		if m := r.members[f]; m != nil {
			m.account = account
		}
	}
}

// onNames reads RPL_NAMREPLY: "<me> <type> <channel> :[prefixes]nick[!user@host] ...".
func (a *Adapter) onNames(e ircmsg.Message) {
	if len(e.Params) < 4 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.roomLocked(e.Params[2])
	if r == nil {
		return
	}
	if r.names == nil {
		r.names = map[string]*member{}
	}
	for _, tok := range strings.Fields(e.Params[3]) {
		prefixes, tok := a.info.namesPrefixes(tok)
		if i := strings.IndexByte(tok, '!'); i >= 0 {
			user, _, _ := strings.Cut(tok[i+1:], "@")
			tok = tok[:i]
			if !a.casemap().equal(tok, e.Params[0]) { // not the bot
				a.notePeerLocked(tok, user)
			}
		}
		if tok != "" {
			r.names[a.info.cm.fold(tok)] = &member{nick: tok, prefixes: prefixes}
		}
	}
}

func (a *Adapter) onEndOfNames(e ircmsg.Message) {
	if len(e.Params) < 2 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.roomLocked(e.Params[1])
	if r == nil || r.names == nil {
		return
	}
	for f, m := range r.names {
		if old := r.members[f]; old != nil && old.account != "" {
			m.account = old.account
		}
	}
	r.members, r.names = r.names, nil
}
