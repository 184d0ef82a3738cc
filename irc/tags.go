package irc

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/ergochat/irc-go/ircmsg"

	"github.com/switchboard-chat/switchboard/bridge"
)

// IRCv3 client tags, where the server has message-tags (InspIRCd's
// ircv3_ctctags, Ergo, Solanum...): a reply names the msgid it answers
// (+draft/reply), a reaction is a TAGMSG (+draft/react or +draft/unreact
// with the +draft/reply of the message it is on), and typing is a TAGMSG
// with +typing. Plain clients see no TAGMSG, so a reply still carries
// the quote line and a reaction the action line, unless tags_only. The
// values go out escaped by ircmsg (EscapeTagValue, on every line it
// makes), and come in unescaped by it.
const (
	tagReply   = "+draft/reply"
	tagReact   = "+draft/react"
	tagUnreact = "+draft/unreact"
	tagTyping  = "+typing"
)

// The typing spec's timing: a client sends "active" at most every 3 s
// while its user types, and takes an "active" that was not renewed for
// 6 s (a "paused" for 30 s) as ended.
const (
	typingForget = time.Minute // outbound state kept without news
	// typingSpell is how long a puppet's "active" is renewed after its
	// source last said so: as long as a Matrix ghost's typing lasts.
	typingSpell = 30 * time.Second
	// typingRenew is how often a long typing spell on IRC is reported
	// again, within the 30 s a Matrix ghost's typing lasts.
	typingRenew = 20 * time.Second
	maxTyping   = 1000
)

// Variables for tests.
var (
	typingEvery     = 3 * time.Second
	typingActiveTTL = 6 * time.Second
	typingPausedTTL = 30 * time.Second
)

// lineTags is what a message says in client tags (part of ircText).
type lineTags struct {
	// quote is the reply fallback's quote line, sent before the text
	// without the tags (it is not the reply); counted with the text
	// lines for max_message_lines.
	quote string
	// tags are the client tags of the text's and attachments' lines.
	tags map[string]string
	// tagmsg, when set, is sent as a TAGMSG before any line.
	tagmsg map[string]string
}

// tagged is the client tags of a message's pieces (part of progress).
type tagged struct {
	tags   []map[string]string // by piece; nil: none but the hop tag
	tagmsg bool                // piece 0 is the TAGMSG, with no text
	// main is the piece whose msgid is the message's remote id: a reply
	// is its own first line, not the quote before it, so that a reply to
	// it, or a reaction, is on the right line.
	main int
}

// pieces adds the TAGMSG to a message's pieces, lead of which are the
// quote's, and says which pieces carry which tags.
func (t lineTags) pieces(pieces []string, lead int) ([]string, tagged) {
	tg := tagged{main: lead}
	if t.tags != nil {
		tg.tags = make([]map[string]string, len(pieces))
		for i := lead; i < len(pieces); i++ {
			tg.tags[i] = t.tags
		}
	}
	if t.tagmsg != nil {
		pieces = append([]string{""}, pieces...)
		tg.tags = append([]map[string]string{t.tagmsg}, tg.tags...)
		tg.tagmsg, tg.main = true, 0
	}
	return pieces, tg
}

func (t *tagged) isTagmsg(i int) bool { return t.tagmsg && i == 0 }

func (t *tagged) tagsOf(i int) map[string]string {
	if i < len(t.tags) {
		return t.tags[i]
	}
	return nil
}

// remoteID is the message's remote id: the first msgid from the main
// piece on, else any.
func (t *tagged) remoteID(ids []string) string {
	for _, list := range [][]string{ids[min(t.main, len(ids)):], ids} {
		for _, id := range list {
			if id != "" {
				return id
			}
		}
	}
	return ""
}

// withHopTag is tags and the hop tag every line of ours carries.
func withHopTag(tags map[string]string) map[string]string {
	if len(tags) == 0 {
		return hopTags
	}
	out := maps.Clone(tags)
	out[hopTag] = ""
	return out
}

// tagValue makes s fit a tag value: one line of valid UTF-8 without NUL
// or control characters, which ircmsg refuses even escaped.
func tagValue(s string) string { return cleanLine(s) }

// tagsOK reports whether the server relays client tags on this
// connection.
func (k *conn) tagsOK() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.up && k.caps.tags
}

// tagsOn reports whether the server has message-tags, as the bot found
// when it connected (puppets ask for the same).
func (a *Adapter) tagsOn() bool {
	a.mu.Lock()
	bot, botHere := a.bot, a.heldLocked(0)
	a.mu.Unlock()
	if !botHere {
		return a.peerTags.Load()
	}
	return bot != nil && bot.tagsOK()
}

// SendReply implements bridge.Replier: the reply carries +draft/reply
// with the msgid of the message it answers, after the fallback's quote
// line (untagged, for plain clients; not with tags_only). Without
// message-tags, or a msgid to name, it is the fallback, as on any
// network without replies.
func (a *Adapter) SendReply(ctx context.Context, d *bridge.Delivery) (string, error) {
	m, ok := d.Event.(*bridge.Message)
	if !ok || d.Reply == nil {
		return a.Send(ctx, d)
	}
	q := d.Reply
	msgid := tagValue(q.RemoteID)
	if msgid == "" || !a.tagsOn() {
		fb := *d
		fb.Event = bridge.ReplyFallback(m, q)
		return a.Send(ctx, &fb)
	}
	// The quote is drawn apart from the text: the text has none to skip.
	td := *d
	td.Reply = nil
	return a.startSend(ctx, &td, func(m *bridge.Message) ircText {
		b := renderBody(m)
		if !a.cfg.TagsOnly {
			b.quote = bridge.QuoteLine(q)
		}
		b.tags = map[string]string{tagReply: msgid}
		return b
	})(ctx)
}

// SendReaction implements bridge.Reactor: a TAGMSG with +draft/react and
// the +draft/reply of the message, from the sender's puppet (the bot when
// relaying), followed by the fallback's action line unless tags_only; a
// removal is +draft/unreact alone. Without message-tags, or a msgid to
// name, it is the action line, and a removal nothing, as on any network
// without reactions.
func (a *Adapter) SendReaction(ctx context.Context, d *bridge.Delivery) (string, error) {
	r, ok := d.Event.(*bridge.Reaction)
	if !ok {
		return "", bridge.Permanent(fmt.Errorf("irc: %s is not a reaction", d.Event.Kind()))
	}
	msgid, key := tagValue(d.Target), tagValue(r.Key)
	native := msgid != "" && key != "" && a.tagsOn()
	if r.Remove && !native {
		return "", nil
	}
	// The fallback line's message, also for the TAGMSG alone: it names
	// the sender, and its id (the reaction's) keys the delivery.
	fb := *d
	fb.Event = bridge.ReactionFallback(r, d.Reply)
	if !native {
		return a.Send(ctx, &fb)
	}
	tags := map[string]string{tagReact: key, tagReply: msgid}
	if r.Remove {
		tags = map[string]string{tagUnreact: key, tagReply: msgid}
	}
	withLine := !r.Remove && !a.cfg.TagsOnly
	return a.startSend(ctx, &fb, func(m *bridge.Message) ircText {
		b := ircText{}
		if withLine {
			b = renderBody(m)
		}
		b.tagmsg = tags
		return b
	})(ctx)
}

// tagState is the adapter's typing state, both ways.
type tagState struct {
	typingMu  sync.Mutex
	typingOut map[string]*typingSent // puppet key, folded channel
	typingIn  map[string]*typingSeen // folded channel, folded nick
}

// typingSent is a puppet's typing in a channel, as last sent.
type typingSent struct {
	state string
	at    time.Time   // last sent
	since time.Time   // last said by its source
	renew *time.Timer // the next "active" while the spell lasts
}

// SendTyping implements bridge.TypingRelayer: a TAGMSG with +typing from
// the sender's own connection or their puppet, where it is in the
// channel already (no puppet connects, nor joins, just to type; the bot
// never types for anyone), as the typing spec asks: "active" at most
// every 3 s, renewed that often while the sender types (IRC clients drop
// it after 6 s; networks that say typing once, as Matrix does, keep it
// for up to typingSpell), and "done" once after it.
func (a *Adapter) SendTyping(ctx context.Context, d *bridge.Delivery) error {
	t, ok := d.Event.(*bridge.Typing)
	if !ok || d.Room == "" || !a.tagsOn() {
		return nil
	}
	who, typist := a.typist(t.Sender, d.Room, d.Relay)
	if typist == nil {
		return nil
	}
	k := typist()
	if k == nil {
		return nil
	}
	state := "done"
	if t.Active {
		state = "active"
	}
	key := who + "\x00" + a.casemap().fold(d.Room)
	s := a.typingDue(key, state)
	if s == nil {
		return nil
	}
	a.sendTyping(ctx, k, d.Room, state)
	if t.Active {
		a.renewTyping(key, d.Room, s, typist)
	}
	return nil
}

// typist says who types for sender in room, and finds their connection
// there when it is up and in room: the sender's own connection when it
// is up (as their messages, in relayed rooms too), else their puppet in
// puppet mode, else no one (typist nil).
func (a *Adapter) typist(s bridge.Sender, room string, relay bool) (string, func() *conn) {
	if a.people.Up(s.Person) != nil {
		return "person\x00" + s.Person, func() *conn {
			k := a.people.Up(s.Person)
			if k == nil || !k.isUp() || !k.inChannel(room) {
				return nil
			}
			return k
		}
	}
	if a.mode != "puppet" || relay {
		return "", nil
	}
	pk := puppetKey(s.Puppet())
	return pk, func() *conn { return a.typingConn(pk, room) }
}

// sendTyping sends a +typing TAGMSG; typing is stale once late, so it
// is never retried.
func (a *Adapter) sendTyping(ctx context.Context, k *conn, ch, state string) {
	if err := k.acquire(ctx); err != nil {
		return
	}
	_, _, err := k.submit(ctx, "TAGMSG", ch, "", map[string]string{tagTyping: state})
	k.release()
	if err != nil {
		a.log.Debug("typing notice not sent", "channel", ch, "err", err)
	}
}

// renewTyping sends "active" again after typingEvery, through typist's
// connection, while s is the spell under key and its source said it
// types less than typingSpell ago.
func (a *Adapter) renewTyping(key, ch string, s *typingSent, typist func() *conn) {
	ts := &a.tagState
	ts.typingMu.Lock()
	defer ts.typingMu.Unlock()
	if s.renew != nil {
		s.renew.Stop()
	}
	s.renew = time.AfterFunc(typingEvery, func() {
		now := a.clock.Now()
		ts.typingMu.Lock()
		live := ts.typingOut[key] == s && now.Sub(s.since) < typingSpell
		if live {
			s.at = now
		}
		ts.typingMu.Unlock()
		if !live || a.ctx.Err() != nil {
			return
		}
		k := typist()
		if k == nil {
			return
		}
		ctx, cancel := context.WithTimeout(a.ctx, typingEvery)
		defer cancel()
		a.sendTyping(ctx, k, ch, "active")
		a.renewTyping(key, ch, s, typist)
	})
}

// typingConn is the connection of the puppet with key when it is up and
// in ch.
func (a *Adapter) typingConn(key, ch string) *conn {
	a.mu.Lock()
	p := a.puppets[key]
	a.mu.Unlock()
	if p == nil {
		return nil
	}
	select {
	case <-p.ready: // p.k and p.err are set before
	default:
		return nil
	}
	if p.err != nil || !p.k.isUp() || !p.k.inChannel(ch) {
		return nil
	}
	return p.k
}

// typingDue records state for key and returns its record when it is to
// be sent now, else nil.
func (a *Adapter) typingDue(key, state string) *typingSent {
	now := a.clock.Now()
	ts := &a.tagState
	ts.typingMu.Lock()
	defer ts.typingMu.Unlock()
	s := ts.typingOut[key]
	if state == "done" {
		// Once, and only to end what was shown.
		delete(ts.typingOut, key)
		if s != nil && s.renew != nil {
			s.renew.Stop()
		}
		return s
	}
	if s != nil && s.state == state && now.Sub(s.at) < typingEvery {
		s.since = now // still typing: the renewals go on
		return nil
	}
	if ts.typingOut == nil {
		ts.typingOut = map[string]*typingSent{}
	}
	if len(ts.typingOut) >= maxTyping {
		for k, old := range ts.typingOut {
			if now.Sub(old.at) > typingForget {
				if old.renew != nil {
					old.renew.Stop()
				}
				delete(ts.typingOut, k)
			}
		}
	}
	if s == nil {
		s = &typingSent{}
		ts.typingOut[key] = s
	}
	s.state, s.at, s.since = state, now, now
	return s
}

// typingSeen is someone typing in a channel, as the bot last heard.
type typingSeen struct {
	header  bridge.Header
	since   time.Time // when Active was last reported
	timer   *time.Timer
	renewed int // which timer is current
}

// onTagmsg reads a TAGMSG in a bridged channel: a reaction (+draft/react
// or +draft/unreact, on the +draft/reply msgid) or typing (+typing).
func (a *Adapter) onTagmsg(e ircmsg.Message) {
	if len(e.Params) < 1 || fromServer(e) || a.isOwn(e.Nick()) || e.HasTag(hopTag) {
		return
	}
	h, ok := a.channelHeader(e)
	if !ok {
		return
	}
	_, target := e.GetTag(tagReply)
	if _, key := e.GetTag(tagReact); key != "" && target != "" {
		a.emit(&bridge.Reaction{Header: h, Target: bridge.Ref{Remote: target}, Key: key})
	} else if _, key := e.GetTag(tagUnreact); key != "" && target != "" {
		a.emit(&bridge.Reaction{Header: h, Target: bridge.Ref{Remote: target}, Key: key, Remove: true})
	}
	if ok, state := e.GetTag(tagTyping); ok {
		h.ID = bridge.NewEventID()
		h.Origin.RemoteID = "" // typing is no message anything refers to
		a.typingFrom(h, state)
	}
}

func typingKey(cm caseMapping, room, nick string) string {
	return cm.fold(room) + "\x00" + cm.fold(nick)
}

// typingFrom follows someone's typing on IRC: "active" and "paused" are
// reported as typing (again after typingRenew of it), anything else, or
// silence for longer than the spec lets a state last, as its end.
func (a *Adapter) typingFrom(h bridge.Header, state string) {
	key := typingKey(a.casemap(), h.Origin.Room, h.Sender.Name)
	ttl := typingActiveTTL
	switch state {
	case "active":
	case "paused":
		ttl = typingPausedTTL
	default:
		a.typingEnded(key, -1)
		return
	}
	now := a.clock.Now()
	ts := &a.tagState
	ts.typingMu.Lock()
	s := ts.typingIn[key]
	if s == nil {
		if ts.typingIn == nil {
			ts.typingIn = map[string]*typingSeen{}
		}
		s = &typingSeen{}
		ts.typingIn[key] = s
	} else {
		s.timer.Stop()
	}
	report := s.since.IsZero() || now.Sub(s.since) >= typingRenew
	if report {
		s.since = now
	}
	s.header = h
	s.renewed++
	gen := s.renewed
	s.timer = time.AfterFunc(ttl, func() { a.typingEnded(key, gen) })
	ts.typingMu.Unlock()
	if report {
		a.emit(&bridge.Typing{Header: h, Active: true})
	}
}

// typingEnded reports the end of the typing under key, if it is still
// the one timer gen was set for (-1: whichever).
func (a *Adapter) typingEnded(key string, gen int) {
	ts := &a.tagState
	ts.typingMu.Lock()
	s := ts.typingIn[key]
	if s == nil || gen >= 0 && s.renewed != gen {
		ts.typingMu.Unlock()
		return
	}
	delete(ts.typingIn, key)
	s.timer.Stop()
	ts.typingMu.Unlock()
	h := s.header
	h.ID, h.Time = bridge.NewEventID(), a.clock.Now()
	a.emit(&bridge.Typing{Header: h, Active: false})
}

// typingSpoke ends nick's typing in room: a message from them ends it,
// as their client takes it.
func (a *Adapter) typingSpoke(room, nick string) {
	a.typingEnded(typingKey(a.casemap(), room, nick), -1)
}
