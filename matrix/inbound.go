package matrix

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/bridge"
)

// dmRoom is a direct chat between a Matrix user and a ghost (or the
// bot), or, Own set, between a person's own user and another Matrix user
// (see acceptPersonalDM).
type dmRoom struct {
	Ghost id.UserID `json:"ghost,omitempty"`
	User  id.UserID `json:"user"`
	Own   id.UserID `json:"own,omitempty"`
}

// handleEvent turns one pushed event into bridge events and hands them to
// in; an error means they were not accepted and the transaction must not
// be acknowledged.
func (a *Adapter) handleEvent(ctx context.Context, in bridge.Inbound, evt *event.Event, class event.TypeClass) error {
	if skip, err := a.irrelevant(ctx, evt, class); err != nil || skip {
		return err
	}
	switch {
	case class == event.EphemeralEventType:
		evt.Type.Class = event.EphemeralEventType
	case evt.StateKey != nil:
		evt.Type.Class = event.StateEventType
	default:
		evt.Type.Class = event.MessageEventType
	}
	if err := evt.Content.ParseRaw(evt.Type); err != nil && !errors.Is(err, event.ErrUnsupportedContentType) {
		a.log.Debug("matrix event content not understood", "event", evt.ID, "type", evt.Type.Type, "err", err)
		return nil
	}
	if evt.Type == event.StateMember && evt.StateKey != nil && evt.Unsigned.PrevContent == nil {
		// Not every homeserver sends prev_content (Dendrite does not): the
		// membership cached before this event stands in for it.
		if prev, err := a.as.StateStore.TryGetMember(ctx, evt.RoomID, id.UserID(*evt.StateKey)); err == nil && prev != nil && prev.Membership != "" {
			cp := *prev
			evt.Unsigned.PrevContent = &event.Content{Parsed: &cp}
		}
	}
	if evt.Type.IsState() {
		mautrix.UpdateStateStore(ctx, a.as.StateStore, evt)
	}
	if evt.Type == event.EphemeralEventTyping {
		return a.handleTyping(ctx, in, evt)
	}
	if evt.Type == event.EphemeralEventReceipt {
		return a.handleReceipt(ctx, in, evt)
	}
	if evt.Type == event.StateMember {
		if err := a.handleInvite(ctx, evt); err != nil {
			return err
		}
		if err := a.ghostMembership(ctx, evt); err != nil {
			return err
		}
	}
	if evt.Type == event.StateEncryption || evt.Type == event.EventEncrypted {
		if room, linked := a.roomAddr(evt.RoomID); linked {
			return a.noteEncrypted(ctx, room)
		}
	}
	if a.isOurs(evt.Sender) || a.personalEcho(evt) {
		return nil
	}
	room, linked := a.roomAddr(evt.RoomID)
	var dm *dmRoom
	if !linked {
		var err error
		if dm, err = a.dmOf(ctx, evt.RoomID); err != nil {
			return err
		}
		if dm == nil || evt.Type.IsState() {
			return nil // not a room of ours
		}
	}
	ev, err := a.convert(ctx, evt, room)
	if err != nil || ev == nil {
		return err
	}
	if dm != nil {
		to, err := a.dmRecipient(ctx, evt.RoomID, dm, ev)
		if errors.Is(err, errNotForwarded) || err != nil && dm.Own == "" {
			return nil // a DM with a ghost we never made, nothing for the bot, a group chat
		}
		if err != nil {
			return err // the transaction is pushed again
		}
		h := ev.Head()
		h.To = &to
		h.Origin.Room = ""
	}
	bridge.Clean(ev)
	// Started first, so that the picture is likely there by the time
	// another network shows the sender.
	a.wantUserAvatar(ctx, evt, ev.Head().Sender)
	if err := in.Accept(ctx, ev); err != nil {
		return err
	}
	return a.afterAccept(ctx, evt, ev)
}

// afterAccept records what later events need: a reaction's annotation
// event, so that its redaction reads as the reaction's removal.
func (a *Adapter) afterAccept(ctx context.Context, evt *event.Event, ev bridge.Event) error {
	if _, ok := ev.(*bridge.Message); ok {
		return a.noteThreadMessage(ctx, evt)
	}
	if r, ok := ev.(*bridge.Reaction); ok && !r.Remove {
		v, _ := json.Marshal(reactionRecord{Target: r.Target.Remote, Key: r.Key})
		return a.state.Put(ctx, "annotation:"+string(evt.ID), string(v))
	}
	return nil
}

type reactionRecord struct {
	Target string `json:"target"`
	Key    string `json:"key"`
}

// handleInvite accepts invites: the bot's to linked rooms and to direct
// chats (chat commands), a ghost's to a direct chat, and a person's
// own user's to a direct chat when their home is elsewhere (their inbox).
func (a *Adapter) handleInvite(ctx context.Context, evt *event.Event) error {
	mem := evt.Content.AsMember()
	if mem.Membership != event.MembershipInvite || evt.StateKey == nil {
		return nil
	}
	target := id.UserID(*evt.StateKey)
	switch {
	case target == a.botID:
		if _, linked := a.roomAddr(evt.RoomID); linked {
			a.poke() // maintain joins
			return nil
		}
		if mem.IsDirect && !a.isOurs(evt.Sender) {
			return a.acceptBotDM(ctx, evt)
		}
	case mem.IsDirect && !a.isOurs(evt.Sender) && a.inboxUser(target) != nil:
		return a.acceptPersonalDM(ctx, a.inboxUser(target), evt)
	case a.ghosts.isGhost(string(target)) && !a.isOurs(evt.Sender):
		if !mem.IsDirect {
			return nil
		}
		if _, ok, _ := a.state.Get(ctx, "ghost:"+target.Localpart()); !ok {
			return nil // not a ghost we know of
		}
		intent := a.as.Intent(target)
		if err := ensureRegistered(ctx, intent); err != nil {
			return err
		}
		if _, err := intent.JoinRoomByID(ctx, evt.RoomID); err != nil {
			a.log.Warn("matrix ghost cannot join a direct chat", "ghost", target, "room", evt.RoomID, "err", err)
			return nil
		}
		return a.rememberDM(ctx, evt.RoomID, target, evt.Sender)
	}
	return nil
}

// dmRecipient is who a direct chat's event is for: the foreign sender
// behind the ghost, or Switchboard itself in a chat with the bot. The bot
// takes new messages only, and no notices: those come from other bots,
// and answering them could go on forever.
func (a *Adapter) dmRecipient(ctx context.Context, rid id.RoomID, dm *dmRoom, ev bridge.Event) (bridge.Sender, error) {
	if dm.Own != "" {
		return a.personalRecipient(ctx, rid, dm, ev)
	}
	if dm.Ghost != a.botID {
		return a.ghostSender(ctx, dm.Ghost)
	}
	if m, ok := ev.(*bridge.Message); !ok || m.Notice {
		return bridge.Sender{}, errNotForBot
	}
	return a.botRecipient(), nil
}

var (
	errNotForBot    = errors.New("not a message for the bot")
	errNotForwarded = errors.New("not forwarded to the person's home")
)

// irrelevant reports an event handleEvent would drop: one of a room
// that is neither linked nor a direct chat of ours, that is not about
// the bot or a ghost (their invites and memberships). A person's MXID in
// the registration (double_puppet_namespace above all) makes the
// homeserver push every event of every room where such a user is
// joined: their private rooms and direct chats with anyone. Those are
// dropped here (but an invite to a direct chat of a person whose home
// is another network, and the direct chats their inbox reads), before
// their content is parsed, without a trip to the store (direct chats
// are looked up through a cache), without caching their state, without
// logging, and a transaction of nothing else is not even remembered
// (see putTransaction).
func (a *Adapter) irrelevant(ctx context.Context, evt *event.Event, class event.TypeClass) (bool, error) {
	if evt == nil {
		return true, nil
	}
	if _, linked := a.roomAddr(evt.RoomID); linked {
		return false, nil
	}
	if class == event.EphemeralEventType && evt.Type.Type != event.EphemeralEventReceipt.Type {
		return true, nil // typing, presence: linked rooms only; receipts of direct chats too
	}
	if evt.StateKey != nil && (a.isOurs(evt.Sender) || a.isOurs(id.UserID(*evt.StateKey))) {
		return false, nil
	}
	if evt.Type == event.StateMember && evt.StateKey != nil && a.inboxUser(id.UserID(*evt.StateKey)) != nil && directInvite(evt) {
		return false, nil // for the inbox of a person whose home is elsewhere
	}
	if evt.RoomID == "" {
		return true, nil
	}
	dm, err := a.dmOf(ctx, evt.RoomID)
	return dm == nil && err == nil, err
}

// directInvite reports a member event that invites its state key to a
// direct chat, read from its raw content: the rest of what a person's
// memberships say is none of Switchboard's business.
func directInvite(evt *event.Event) bool {
	var m struct {
		Membership event.Membership `json:"membership"`
		IsDirect   bool             `json:"is_direct"`
	}
	return json.Unmarshal(evt.Content.VeryRaw, &m) == nil && m.Membership == event.MembershipInvite && m.IsDirect
}

// dmOf is the direct chat of ours rid is, nil if none. Every event of
// a room that is not linked asks, so the answers, either way, are
// cached (rememberDM updates the cache).
func (a *Adapter) dmOf(ctx context.Context, rid id.RoomID) (*dmRoom, error) {
	a.mu.Lock()
	dm, cached := a.dms[rid]
	a.mu.Unlock()
	if cached {
		return dm, nil
	}
	v, ok, err := a.state.Get(ctx, "dm:"+string(rid))
	if err != nil {
		return nil, err
	}
	dm = nil
	if ok {
		var d dmRoom
		if json.Unmarshal([]byte(v), &d) == nil {
			dm = &d
		}
	}
	// Not over an answer rememberDM gave meanwhile.
	a.cacheDM(rid, dm, false)
	return dm, nil
}

// maxCachedDMs bounds the direct chat cache; it starts over when full.
const maxCachedDMs = 10000

// cacheDM caches what rid is (dm, or nil for no direct chat): over
// what is cached only if replace.
func (a *Adapter) cacheDM(rid id.RoomID, dm *dmRoom, replace bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.dms[rid]; ok && !replace {
		return
	}
	if len(a.dms) >= maxCachedDMs {
		clear(a.dms)
	}
	a.dms[rid] = dm
}

// ghostSender is the foreign sender a ghost stands for.
func (a *Adapter) ghostSender(ctx context.Context, ghost id.UserID) (bridge.Sender, error) {
	if v, ok, err := a.state.Get(ctx, "ghost:"+ghost.Localpart()); err == nil && ok {
		var s bridge.Sender
		if json.Unmarshal([]byte(v), &s) == nil {
			return s, nil
		}
	}
	net, sid, ok := a.ghosts.parse(ghost.Localpart())
	if !ok {
		return bridge.Sender{}, errors.New("not a ghost")
	}
	return bridge.Sender{Network: net, ID: sid, Name: sid}, nil
}

func (a *Adapter) header(ctx context.Context, evt *event.Event, room string, sender id.UserID) bridge.Header {
	t := time.UnixMilli(evt.Timestamp).UTC()
	if evt.Timestamp == 0 {
		t = time.Now().UTC()
	}
	return bridge.Header{
		ID:     bridge.NewEventID(),
		Origin: bridge.Origin{Network: a.name, Room: room, RemoteID: string(evt.ID)},
		// The homeserver vouches for the sender of what it pushes.
		Sender: bridge.Sender{Network: a.name, ID: string(sender), Name: a.displayName(ctx, evt.RoomID, sender), Authenticated: true},
		Time:   t,
	}
}

// displayName is a Matrix user's name in a room: their member event's
// displayname, else their profile's, else the localpart.
func (a *Adapter) displayName(ctx context.Context, rid id.RoomID, u id.UserID) string {
	if m, err := a.as.StateStore.TryGetMember(ctx, rid, u); err == nil && m != nil && m.Displayname != "" {
		return m.Displayname
	}
	a.mu.Lock()
	name, ok := a.names[u]
	a.mu.Unlock()
	if ok {
		return name
	}
	name = u.Localpart()
	if res, err := a.as.BotClient().GetDisplayName(ctx, u); err == nil && res.DisplayName != "" {
		name = res.DisplayName
	}
	a.mu.Lock()
	if len(a.names) > 10000 {
		clear(a.names)
	}
	a.names[u] = name
	a.mu.Unlock()
	return name
}

// convert maps a Matrix event to a bridge event (nil: nothing to bridge).
func (a *Adapter) convert(ctx context.Context, evt *event.Event, room string) (bridge.Event, error) {
	switch evt.Type {
	case event.StateMember:
		return a.convertMember(ctx, evt, room), nil
	case event.StateTopic:
		if !topicChange(evt) {
			return nil, nil // the same topic again (see topic.go)
		}
		return &bridge.Topic{Header: a.header(ctx, evt, room, evt.Sender), Topic: evt.Content.AsTopic().Topic}, nil
	case event.EventRedaction:
		target := evt.Redacts
		if c := evt.Content.AsRedaction(); c.Redacts != "" {
			target = c.Redacts
		}
		if target == "" {
			return nil, nil
		}
		h := a.header(ctx, evt, room, evt.Sender)
		v, ok, err := a.state.Get(ctx, "annotation:"+string(target))
		if err != nil {
			return nil, err
		}
		if ok {
			var rec reactionRecord
			if json.Unmarshal([]byte(v), &rec) == nil {
				return &bridge.Reaction{Header: h, Target: bridge.Ref{Remote: rec.Target}, Key: rec.Key, Remove: true}, nil
			}
		}
		del := &bridge.Delete{Header: h, Target: bridge.Ref{Remote: string(target)}}
		if room != "" {
			mod, err := a.mayRedactOthers(ctx, evt.RoomID, evt.Sender)
			if err != nil {
				return nil, err // the transaction is pushed again
			}
			del.Moderator = mod
		}
		return del, nil
	case event.EventReaction:
		rel := evt.Content.AsReaction().RelatesTo
		if rel.Type != event.RelAnnotation || rel.EventID == "" || rel.Key == "" {
			return nil, nil
		}
		return &bridge.Reaction{Header: a.header(ctx, evt, room, evt.Sender), Target: bridge.Ref{Remote: string(rel.EventID)}, Key: rel.Key}, nil
	case event.EventMessage:
		return a.convertMessage(ctx, evt, room), nil
	}
	return nil, nil
}

func (a *Adapter) convertMember(ctx context.Context, evt *event.Event, room string) bridge.Event {
	if evt.StateKey == nil {
		return nil
	}
	target := id.UserID(*evt.StateKey)
	if a.isOurs(target) {
		return nil
	}
	mem := evt.Content.AsMember()
	var prev *event.MemberEventContent
	if pc := evt.Unsigned.PrevContent; pc != nil {
		if pc.Parsed == nil {
			pc.ParseRaw(event.StateMember)
		}
		prev = pc.AsMember()
	}
	h := a.header(ctx, evt, room, target)
	if mem.Displayname != "" {
		h.Sender.Name = mem.Displayname
	}
	wasJoined := prev != nil && prev.Membership == event.MembershipJoin
	switch mem.Membership {
	case event.MembershipJoin:
		if !wasJoined {
			return &bridge.Join{Header: h}
		}
		if prev.Displayname != mem.Displayname && mem.Displayname != "" {
			a.mu.Lock()
			delete(a.names, target)
			a.mu.Unlock()
			old := prev.Displayname
			if old == "" {
				old = target.Localpart()
			}
			return &bridge.Rename{Header: h, Previous: old}
		}
	case event.MembershipLeave, event.MembershipBan:
		if !wasJoined {
			return nil // a rejected invite or a knock withdrawn
		}
		if prev.Displayname != "" {
			h.Sender.Name = prev.Displayname
		}
		reason := mem.Reason
		if evt.Sender != target {
			reason = strings.TrimSpace("kicked by " + string(evt.Sender) + ": " + mem.Reason)
			reason = strings.TrimSuffix(reason, ":")
		}
		return &bridge.Leave{Header: h, Reason: reason}
	}
	return nil
}

func (a *Adapter) convertMessage(ctx context.Context, evt *event.Event, room string) bridge.Event {
	c := evt.Content.AsMessage()
	h := a.header(ctx, evt, room, evt.Sender)
	if rel := c.RelatesTo; rel != nil && rel.Type == event.RelReplace && rel.EventID != "" {
		nc := c.NewContent
		if nc == nil {
			nc = &event.MessageEventContent{Body: strings.TrimPrefix(c.Body, "* ")}
		}
		text, html := messageText(nc)
		return &bridge.Edit{Header: h, Target: bridge.Ref{Remote: string(rel.EventID)}, Text: text, HTML: html}
	}
	m := &bridge.Message{Header: h}
	if room != "" {
		m.Operator = a.roomOperator(ctx, evt.RoomID, evt.Sender)
	}
	if rel := c.RelatesTo; rel != nil && rel.InReplyTo != nil && rel.InReplyTo.EventID != "" {
		m.ReplyTo = bridge.Ref{Remote: string(rel.InReplyTo.EventID)}
		c.Body = stripReplyFallback(c.Body)
	}
	readThread(c.RelatesTo, m)
	switch c.MsgType {
	case event.MsgEmote:
		m.Emote = true
	case event.MsgNotice:
		m.Notice = true
	case event.MsgImage, event.MsgFile, event.MsgVideo, event.MsgAudio:
		att := bridge.Attachment{Name: c.FileName}
		if att.Name == "" {
			att.Name = c.Body
		}
		att.URL = a.mediaURL(c.URL, att.Name)
		if c.Info != nil {
			att.Mime, att.Size = c.Info.MimeType, int64(c.Info.Size)
		}
		if att.URL == "" {
			return nil // encrypted or broken media: nothing to offer
		}
		m.Attachments = []bridge.Attachment{att}
		// The body is the file name unless a caption was given.
		if c.FileName == "" || c.Body == c.FileName {
			m.Text = att.Name
			return m
		}
	}
	m.Text, m.HTML = messageText(c)
	if m.Text == "" && len(m.Attachments) == 0 {
		return nil
	}
	a.inboundMentions(ctx, evt.RoomID, c, m)
	return m
}

// messageText is a message's plain text and its sanitized HTML ("" when
// it has none).
func messageText(c *event.MessageEventContent) (string, string) {
	text := c.Body
	html := ""
	if c.Format == event.FormatHTML && c.FormattedBody != "" {
		html = sanitizeHTML(c.FormattedBody)
	}
	return text, html
}

// mediaURL turns an mxc:// URI into the URL offered to other networks:
// a link through Switchboard when http.public_url is set, else the
// homeserver's download URL (which works only if the homeserver is
// public and serves media unauthenticated). name is the file's, for the
// link to end in.
func (a *Adapter) mediaURL(mxc id.ContentURIString, name string) string {
	u, err := mxc.Parse()
	if err != nil || u.IsEmpty() {
		return ""
	}
	if link := a.publicLink(u, name); link != "" {
		return link
	}
	return a.hsURL + "/_matrix/media/v3/download/" + url.PathEscape(u.Homeserver) + "/" + url.PathEscape(u.FileID)
}

// handleTyping turns a room's typing list into Typing events for the users
// who started or stopped.
func (a *Adapter) handleTyping(ctx context.Context, in bridge.Inbound, evt *event.Event) error {
	room, linked := a.roomAddr(evt.RoomID)
	if !linked {
		return nil
	}
	now := map[id.UserID]bool{}
	for _, u := range evt.Content.AsTyping().UserIDs {
		if !a.isOurs(u) {
			now[u] = true
		}
	}
	a.mu.Lock()
	before := a.typing[evt.RoomID]
	a.typing[evt.RoomID] = now
	a.mu.Unlock()
	var changes []bridge.Event
	for u := range now {
		if !before[u] {
			h := a.header(ctx, evt, room, u)
			h.Origin.RemoteID = ""
			changes = append(changes, &bridge.Typing{Header: h, Active: true})
		}
	}
	for u := range before {
		if !now[u] {
			h := a.header(ctx, evt, room, u)
			h.Origin.RemoteID = ""
			changes = append(changes, &bridge.Typing{Header: h, Active: false})
		}
	}
	for _, ev := range changes {
		if err := in.Accept(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

// mayRedactOthers reports whether user's power level in the room reaches
// its redact level, read from the homeserver at the time: a redaction
// pushed to us says nothing of the sender's power, and a deletion the
// bridge carries to other networks on a moderator's word must rest on
// the room's own rules.
func (a *Adapter) mayRedactOthers(ctx context.Context, rid id.RoomID, user id.UserID) (bool, error) {
	var pl event.PowerLevelsEventContent
	if err := a.as.BotClient().StateEvent(ctx, rid, event.StatePowerLevels, "", &pl); err != nil {
		if errors.Is(err, mautrix.MNotFound) || errors.Is(err, mautrix.MForbidden) {
			// No power levels event, or none the bot may read: nobody
			// counts as a moderator (retrying would not change that).
			a.log.Warn("matrix: cannot read a room's power levels; the redaction counts as its sender's own", "room", rid, "sender", user, "err", err)
			return false, nil
		}
		return false, fmt.Errorf("matrix: read the power levels of %s: %w", rid, err)
	}
	return pl.GetUserLevel(user) >= pl.Redact(), nil
}
