package irc

import (
	"context"
	"strings"

	"github.com/ergochat/irc-go/ircmsg"

	"github.com/switchboard-chat/switchboard/bridge"
)

// Channel operators, for the room operators' chat commands: the bot
// follows each member's channel prefixes (from NAMES, with multi-prefix,
// and MODE changes), which the server alone sets. A member holding "@"
// or any prefix the server ranks above it (ISUPPORT PREFIX order, "~"
// founder and "&" admin on most servers) is an operator; "%" halfops and
// "+" voices are not: on many networks halfops may not even set bans,
// and what the commands do (keep a sender out, relay mode) is the
// channel's policy.

// defaultChanModes is RFC 2811's CHANMODES, for servers that send none.
const defaultChanModes = "beI,k,l,imnpst"

// prefixMode returns the membership prefix symbol of a mode letter, or 0.
func (i serverInfo) prefixMode(mode byte) byte {
	if j := strings.IndexByte(i.prefixModes, mode); j >= 0 && j < len(i.prefixes) {
		return i.prefixes[j]
	}
	return 0
}

// takesParam reports whether a channel mode other than a prefix takes a
// parameter when set (adding) or unset: CHANMODES types A and B always,
// C only when set, D never.
func (i serverInfo) takesParam(mode byte, adding bool) bool {
	types := strings.Split(i.chanModes, ",")
	for t, letters := range types {
		if strings.IndexByte(letters, mode) < 0 {
			continue
		}
		return t < 2 || (t == 2 && adding)
	}
	return false
}

// isOperatorPrefix reports whether a member holding the prefix symbols
// held operates the channel: one of them ranks at or above "@".
func (i serverInfo) isOperatorPrefix(held string) bool {
	op := strings.IndexByte(i.prefixes, '@')
	if op < 0 {
		op = 0 // a server without "@": its highest rank only
	}
	for j := 0; j < len(held); j++ {
		if k := strings.IndexByte(i.prefixes, held[j]); k >= 0 && k <= op {
			return true
		}
	}
	return false
}

// operatorLocked reports whether nick operates r now; a.mu must be held.
func (a *Adapter) operatorLocked(r *room, nick string) bool {
	m := r.members[a.info.cm.fold(nick)]
	return m != nil && a.info.isOperatorPrefix(m.prefixes)
}

// onMode follows a bridged channel's MODE changes, read once: its
// members' prefixes and its bans.
func (a *Adapter) onMode(e ircmsg.Message) {
	if len(e.Params) < 2 {
		return
	}
	a.mu.Lock()
	r := a.roomLocked(e.Params[0])
	info := a.info
	a.mu.Unlock()
	if r == nil {
		return
	}
	changes := parseModes(e.Params[1:], info)
	a.followPrefixes(r, info, changes)
	a.followBans(r, changes, e.Nick())
}

// followPrefixes follows changes of members' prefixes ("MODE #chan +o-v
// alice bob").
func (a *Adapter) followPrefixes(r *room, info serverInfo, changes []modeChange) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range changes {
		sym := info.prefixMode(c.mode)
		if sym == 0 || c.param == "" {
			continue
		}
		m := r.members[info.cm.fold(c.param)]
		if m == nil {
			continue
		}
		m.prefixes = strings.ReplaceAll(m.prefixes, string(sym), "")
		if c.add {
			m.prefixes += string(sym)
		}
	}
}

// namesPrefixes splits a NAMES entry into its prefix symbols and the rest.
func (i serverInfo) namesPrefixes(tok string) (prefixes, rest string) {
	rest = strings.TrimLeft(tok, i.prefixes)
	return tok[:len(tok)-len(rest)], rest
}

// PuppetSender implements bridge.PuppetResolver: the sender a puppet
// with that nick in the channel speaks for.
func (a *Adapter) PuppetSender(_ context.Context, channel, name string) (bridge.SenderRef, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.roomLocked(channel)
	f := a.info.cm.fold(name)
	if r == nil || r.members[f] == nil {
		return bridge.SenderRef{}, false
	}
	for _, p := range a.puppets {
		if p.k != nil && !p.retired && a.info.cm.fold(p.k.nick()) == f {
			return p.sender.BlockRef(), true
		}
	}
	return bridge.SenderRef{}, false
}

var _ bridge.PuppetResolver = (*Adapter)(nil)
