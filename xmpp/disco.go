package xmpp

import (
	"runtime/debug"

	"github.com/switchboard-chat/switchboard/bridge"
)

// features are what the component and its puppets support, for service
// discovery (XEP-0030).
var features = []string{
	nsDiscoInfo, nsDiscoItems, nsPing, nsVersion,
	nsSID, nsCorrect, nsReply, nsFallback, nsReactions, nsRetract, nsRetract0,
	nsChatStates, nsOOB, nsStyling, nsReceipts, nsVCard,
}

// onIQ answers requests to the component, its puppets or the bot, and
// hands answers to whoever waits for them.
func (a *Adapter) onIQ(c *session, st *stanza) {
	switch st.typ {
	case "result", "error":
		a.mu.Lock()
		ch := a.iqs[st.id]
		a.mu.Unlock()
		if ch != nil {
			select {
			case ch <- st:
			default:
			}
		}
		return
	case "get", "set":
	default:
		return
	}
	reply := a.stanzaBase("iq", st.to, st.from, "result")
	setAttr(reply, "id", st.id)
	p := st.payload
	var puppetName string
	var puppetSender bridge.Sender
	isPuppet := false
	if a.component && st.to.Localpart() != "" {
		network, id, err := senderOfJID(st.to.Localpart())
		if err != nil {
			a.answerError(c, st, "cancel", "item-not-found")
			return
		}
		isPuppet, puppetName = true, id
		puppetSender = bridge.Sender{Network: network, ID: id}
		a.mu.Lock()
		if pp := a.puppets[senderKey(bridge.Sender{Network: network, ID: id})]; pp != nil && pp.sender.Name != "" {
			puppetName = pp.sender.Name
		}
		a.mu.Unlock()
	}
	switch {
	case p == nil:
		a.answerError(c, st, "modify", "bad-request")
		return
	case st.typ == "get" && p.name.Space == nsPing && p.name.Local == "ping":
	case st.typ == "get" && p.name.Space == nsDiscoInfo && p.name.Local == "query":
		if p.get("node") != "" {
			a.answerError(c, st, "cancel", "item-not-found")
			return
		}
		q := el(nsDiscoInfo, "query")
		if isPuppet {
			q.add(el(nsDiscoInfo, "identity", "category", "client", "type", "pc", "name", puppetName))
		} else if a.component {
			q.add(el(nsDiscoInfo, "identity", "category", "gateway", "type", "irc", "name", "Switchboard bridge"))
		} else {
			q.add(el(nsDiscoInfo, "identity", "category", "client", "type", "bot", "name", "Switchboard bridge"))
		}
		for _, f := range features {
			q.add(el(nsDiscoInfo, "feature", "var", f))
		}
		reply.add(q)
	case st.typ == "get" && p.name.Space == nsVCard && p.name.Local == "vCard":
		// Puppets only: the bot's card (client mode) is its server's.
		if !isPuppet {
			a.answerError(c, st, "cancel", "item-not-found")
			return
		}
		a.answerVCard(c, st, reply, puppetSender, puppetName)
		return
	case st.typ == "get" && p.name.Space == nsDiscoItems && p.name.Local == "query":
		reply.add(el(nsDiscoItems, "query"))
	case st.typ == "get" && p.name.Space == nsVersion && p.name.Local == "query":
		reply.add(el(nsVersion, "query").add(el(nsVersion, "name").withText("Switchboard"), el(nsVersion, "version").withText(version())))
	default:
		a.answerError(c, st, "cancel", "service-unavailable")
		return
	}
	a.writeAsync(c, reply)
}

func (a *Adapter) answerError(c *session, st *stanza, typ, condition string) {
	e := a.stanzaBase("iq", st.to, st.from, "error")
	setAttr(e, "id", st.id)
	e.add(el("", "error", "type", typ).add(el(nsStanzas, condition)))
	a.writeAsync(c, e)
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
