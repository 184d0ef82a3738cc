package irc

import (
	"strings"

	"github.com/ergochat/irc-go/ircmsg"

	"github.com/switchboard-chat/switchboard/bridge"
)

// The one inbox: what someone writes privately to a person's own nick,
// which their personal connection holds, reaches them on their home
// network as a direct message from the writer's puppet or ghost there
// (To is their puppet identity, which the router turns into their home
// account). Their answer comes back as a direct message to the writer,
// which sendPersonal sends from their own connection.

// addInboxCallbacks has p's connection k read the private messages to it.
func (a *Adapter) addInboxCallbacks(p *personal, k *conn) {
	k.irc.AddCallback("PRIVMSG", func(e ircmsg.Message) { a.onPersonalDirect(p, k, e, false) })
	k.irc.AddCallback("NOTICE", func(e ircmsg.Message) { a.onPersonalDirect(p, k, e, true) })
}

// onPersonalDirect runs in p's connection's read loop: a private message
// to its nick goes to the person's home as a direct message. Not
// bridged: a channel's line (the bot reports those), a person whose home
// is this network (their own client is here), their own other clients,
// Switchboard's own lines,
// CTCP other than ACTION, and whatever comes from the server or its
// services: every NOTICE (by IRC convention an automatic message, as
// services, bots and servers send them, never answered) and a PRIVMSG
// from a services nick (see serviceNick).
func (a *Adapter) onPersonalDirect(p *personal, k *conn, e ircmsg.Message, notice bool) {
	if len(e.Params) < 2 || !k.isMe(e.Params[0]) || p.Acct.Home == "" || p.Acct.Home == a.name {
		return
	}
	if notice || serviceNick(e.Nick()) {
		a.log.Debug("personal connection: a notice or a services message is not bridged", "person", p.Acct.Person, "from", e.Nick(), "notice", notice)
		return
	}
	m := a.chatMessage(e, notice)
	if m == nil {
		return
	}
	a.mu.Lock()
	m.Header = a.directHeaderLocked(e)
	self := m.Sender.Authenticated && a.info.cm.equal(m.Sender.ID, p.Acct.ID)
	a.mu.Unlock()
	if self {
		return // from another client of theirs: not news to them
	}
	ref := bridge.PersonRef(p.Acct.Person, p.Acct.Home)
	m.To = &bridge.Sender{Network: ref.Network, ID: ref.ID, Name: p.Acct.Name, Person: p.Acct.Person, Home: p.Acct.Home}
	a.emit(m)
}

// serviceNick reports whether nick is one of the usual services'
// (NickServ, ChanServ, MemoServ, SaslServ, Global...): what they say is
// about the account, not a conversation; the log has it.
func serviceNick(nick string) bool {
	n := strings.ToLower(nick)
	return strings.HasSuffix(n, "serv") || n == "global"
}
