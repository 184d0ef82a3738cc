package matrix

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/backoff"
	"github.com/switchboard-chat/switchboard/mapping"
)

// txnID derives a send's transaction id from the bridge event, the room
// and what is sent, so a retried delivery is the same request to the
// homeserver and never posts twice.
func txnID(ev bridge.Event, rid id.RoomID, part string) string {
	sum := sha256.Sum256([]byte(string(ev.Head().ID) + "\x00" + string(rid) + "\x00" + part))
	return "sb" + hex.EncodeToString(sum[:16])
}

// retry runs f until it succeeds or fails with something other than a
// rate limit (M_LIMIT_EXCEEDED / 429), waiting as long as the homeserver
// asks; it gives up only when ctx ends.
func retry[T any](ctx context.Context, f func() (T, error)) (T, error) {
	for {
		v, err := f()
		wait, limited := rateLimited(err)
		if !limited {
			return v, err
		}
		if !backoff.Sleep(ctx, wait, nil) {
			return v, fmt.Errorf("%w (while rate limited)", ctx.Err())
		}
	}
}

// rateLimited reports whether err is a 429, and how long to wait.
func rateLimited(err error) (time.Duration, bool) {
	if err == nil {
		return 0, false
	}
	var herr mautrix.HTTPError
	if !errors.As(err, &herr) {
		return 0, false
	}
	limited := errors.Is(err, mautrix.MLimitExceeded) || herr.Response != nil && herr.Response.StatusCode == http.StatusTooManyRequests
	if !limited {
		return 0, false
	}
	wait := time.Second
	if herr.RespError != nil {
		if ms, ok := herr.RespError.ExtraData["retry_after_ms"].(float64); ok && ms > 0 {
			wait = time.Duration(ms) * time.Millisecond
		}
	}
	if herr.Response != nil {
		if d, ok := retryAfter(herr.Response.Header.Get("Retry-After"), time.Now()); ok {
			wait = d
		}
	}
	return min(wait, 5*time.Minute), true
}

// retryAfter reads a Retry-After header, in seconds or as an HTTP date
// (RFC 9110 allows both). A date that is not after now (the clocks
// differ) counts as not given, rather than as a retry at once that a
// homeserver still limiting would answer with another 429 right away.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s <= 0 {
			return 0, false
		}
		return time.Duration(s) * time.Second, true
	}
	at, err := http.ParseTime(v)
	if err != nil || !at.After(now) {
		return 0, false
	}
	return at.Sub(now), true
}

// target resolves where a delivery goes: a linked room, or for a direct
// event the DM room of the sender's ghost with the recipient.
func (a *Adapter) target(ctx context.Context, d *bridge.Delivery, intent *appservice.IntentAPI) (id.RoomID, error) {
	h := d.Event.Head()
	if d.Room != "" {
		return a.linkedRoom(d.Room)
	}
	if h.To == nil {
		return "", bridge.Permanent(errors.New("matrix: a delivery without room or recipient"))
	}
	return a.directRoom(ctx, intent, h.To.ID)
}

// linkedRoom is the id of a room the bot joined for a link.
func (a *Adapter) linkedRoom(room string) (id.RoomID, error) {
	rid, ok := a.roomID(room)
	if ok && a.seeding(room) {
		return "", errSeeding
	}
	if ok {
		return rid, nil
	}
	a.mu.Lock()
	left := a.left[room]
	a.mu.Unlock()
	if left {
		// Left at runtime: what is still queued for it is not delivered.
		return "", bridge.Permanent(fmt.Errorf("matrix: room %s was left", room))
	}
	return "", fmt.Errorf("matrix: room %s not joined yet", room)
}

// directRoom is the direct chat between intent (a ghost or the bot) and
// a Matrix user, made on first use and remembered in State.
func (a *Adapter) directRoom(ctx context.Context, intent *appservice.IntentAPI, user string) (id.RoomID, error) {
	to := id.UserID(user)
	if _, _, err := to.ParseAndValidateRelaxed(); err != nil {
		return "", bridge.Permanent(fmt.Errorf("matrix: direct recipient %q is not a user id", user))
	}
	if a.isOurs(to) {
		return "", bridge.Permanent(fmt.Errorf("matrix: direct recipient %s is Switchboard's own", to))
	}
	key := "dmroom:" + string(intent.UserID) + "|" + string(to)
	if v, ok, err := a.state.Get(ctx, key); err != nil {
		return "", err
	} else if ok {
		return id.RoomID(v), nil
	}
	resp, err := retry(ctx, func() (*mautrix.RespCreateRoom, error) {
		return intent.CreateRoom(ctx, &mautrix.ReqCreateRoom{
			Preset:   "trusted_private_chat",
			Invite:   []id.UserID{to},
			IsDirect: true,
		})
	})
	if err != nil {
		return "", fmt.Errorf("matrix: create a direct chat with %s: %w", to, err)
	}
	if err := a.rememberDM(ctx, resp.RoomID, intent.UserID, to); err != nil {
		return "", err
	}
	return resp.RoomID, nil
}

// intentFor is the Matrix user that speaks for a sender: their ghost, made
// and named on first use, or the bot in relay mode (relay: the room asked
// for it with Delivery.Relay).
func (a *Adapter) intentFor(ctx context.Context, s bridge.Sender, relay bool) (*appservice.IntentAPI, error) {
	if a.relay || relay {
		bot := a.as.BotIntent()
		return bot, ensureRegistered(ctx, bot)
	}
	account := s
	s = s.Puppet() // one ghost per person, whichever account they wrote from
	local := a.ghosts.localpart(s)
	intent := a.as.Intent(id.NewUserID(local, a.cfg.Domain))
	if intent == nil {
		return nil, bridge.Permanent(fmt.Errorf("matrix: no ghost possible for %s", s.ID))
	}
	if _, err := retry(ctx, func() (struct{}, error) { return struct{}{}, ensureRegistered(ctx, intent) }); err != nil {
		return nil, fmt.Errorf("matrix: register ghost %s: %w", intent.UserID, err)
	}
	a.quiet(ctx, intent)
	if err := a.nameGhost(ctx, intent, local, s); err != nil {
		return nil, err
	}
	// Avatars are known by account: a person's ghost shows the picture
	// of the account they last wrote from that has one.
	a.syncAvatar(ctx, intent, local, account)
	return intent, nil
}

// nameGhost gives the ghost intent (of sender s, localpart local) the
// sender's display name, unless it has it already.
func (a *Adapter) nameGhost(ctx context.Context, intent *appservice.IntentAPI, local string, s bridge.Sender) error {
	name := mapping.Render(a.template, s)
	a.ghostMu.Lock()
	current, known := a.ghostNames[intent.UserID]
	a.ghostMu.Unlock()
	if known && current == name {
		return nil
	}
	rec, _ := json.Marshal(bridge.Sender{Network: s.Network, ID: s.ID, Name: s.Name})
	if err := a.state.Put(ctx, "ghost:"+local, string(rec)); err != nil {
		return err
	}
	if _, err := retry(ctx, func() (struct{}, error) { return struct{}{}, intent.SetDisplayName(ctx, name) }); err != nil {
		return fmt.Errorf("matrix: name ghost %s: %w", intent.UserID, err)
	}
	a.ghostMu.Lock()
	a.ghostNames[intent.UserID] = name
	a.ghostMu.Unlock()
	return nil
}

// joined makes sure intent is in the room (the bot invites it when the
// room is not public).
func (a *Adapter) joined(ctx context.Context, intent *appservice.IntentAPI, rid id.RoomID) error {
	a.joiningAsPerson(ctx, intent, rid)
	_, err := retry(ctx, func() (struct{}, error) { return struct{}{}, intent.EnsureJoined(ctx, rid) })
	return err
}

// send posts one event as intent, joining first; a stale membership cache
// (the ghost was kicked) is corrected once.
func (a *Adapter) send(ctx context.Context, intent *appservice.IntentAPI, rid id.RoomID, typ event.Type, content any, txn string) (id.EventID, error) {
	return a.sendAt(ctx, intent, rid, typ, content, txn, time.Time{})
}

// sendAt is send with the message's original time when it is late
// (bridge.LateSince): Switchboard's own users post it with that time (the
// appservice's ts), so clients show when it was said. A person's own
// user, which may post with a token of their own, posts it as now.
func (a *Adapter) sendAt(ctx context.Context, intent *appservice.IntentAPI, rid id.RoomID, typ event.Type, content any, txn string, at time.Time) (id.EventID, error) {
	if err := a.joined(ctx, intent, rid); err != nil {
		if ban := a.refusedAsBanned(ctx, intent.UserID, rid, err); ban != nil {
			return "", ban
		}
		a.personalRefusedSend(intent, err)
		return "", fmt.Errorf("matrix: %s joins %s: %w", intent.UserID, rid, err)
	}
	if evid, ok := a.sentBefore(ctx, intent, rid, txn); ok {
		a.log.Info("matrix: event of a send whose answer was lost found in the room; not sending it again", "room", rid, "event", evid)
		a.unsure.forget(txn)
		return evid, nil
	}
	body := marked(content, txn)
	post := func() (*mautrix.RespSendEvent, error) {
		req := mautrix.ReqSendEvent{TransactionID: txn}
		if !at.IsZero() && a.isOurs(intent.UserID) {
			req.Timestamp = at.UnixMilli()
		}
		return intent.Client.SendMessageEvent(ctx, rid, typ, body, req)
	}
	resp, err := retry(ctx, post)
	if isForbidden(err) {
		if jerr := intent.EnsureJoined(ctx, rid, appservice.EnsureJoinedParams{IgnoreCache: true}); jerr == nil {
			resp, err = retry(ctx, post)
		}
	}
	if err != nil {
		if answerLost(err) {
			a.unsure.add(txn)
		}
		a.personalRefusedSend(intent, err)
		return "", fmt.Errorf("matrix: send to %s: %w", rid, err)
	}
	a.unsure.forget(txn)
	a.sentAsPerson(intent, resp.EventID)
	return resp.EventID, nil
}

// content renders a message for Matrix: the body as plain text, HTML
// (sanitized, or the escaped text when relaying) as formatted_body, and
// attachments (those not posted as media) as links. Relaying (relay
// mode, or relay for this delivery), the sender's name comes first.
func (a *Adapter) content(m *bridge.Message, s bridge.Sender, relay bool) *event.MessageEventContent {
	text, html := bridge.CleanText(m.Text), ""
	if m.HTML != "" {
		html = sanitizeHTML(bridge.CleanText(m.HTML))
	}
	for _, att := range m.Attachments {
		name := att.Name
		if name == "" {
			name = att.URL
		}
		if !strings.Contains(text, att.URL) {
			text = strings.TrimSpace(text + "\n" + att.Line())
			if html != "" {
				html += "<br>" + sanitizeHTML(`<a href="`+escapeAttr(att.URL)+`">`+escapeText(name)+`</a>`)
			}
		}
	}
	c := &event.MessageEventContent{MsgType: event.MsgText, Body: text}
	switch {
	case m.Emote:
		c.MsgType = event.MsgEmote
	case m.Notice:
		c.MsgType = event.MsgNotice
	}
	if a.relay || relay {
		// The template is the admin's; what the sender chose cannot
		// close the prefix.
		s.Name, s.ID = s.Shown(bridge.RelayDelims), bridge.ShownName(s.ID, bridge.RelayDelims)
		name := mapping.Render(a.template, s)
		if m.Emote {
			c.MsgType = event.MsgText
			c.Body = "* " + name + " " + text
		} else {
			c.Body = "<" + name + "> " + text
		}
		if html != "" {
			prefix := "&lt;" + escapeText(name) + "&gt; "
			if m.Emote {
				prefix = "* " + escapeText(name) + " "
			}
			html = prefix + html
		}
	}
	if html != "" {
		c.Format, c.FormattedBody = event.FormatHTML, html
	}
	c.Mentions = &event.Mentions{}
	return c
}

func escapeText(s string) string { return textToHTML(s) }
func escapeAttr(s string) string { return strings.ReplaceAll(textToHTML(s), "<br>", "") }

// Send posts a message (or a fallback) to a room, or to a person.
func (a *Adapter) Send(ctx context.Context, d *bridge.Delivery) (string, error) {
	switch ev := d.Event.(type) {
	case *bridge.Message:
		return a.sendMessage(ctx, d, ev, nil)
	case *bridge.Edit:
		return a.SendEdit(ctx, d)
	case *bridge.Reaction:
		return a.SendReaction(ctx, d)
	case *bridge.Delete:
		return "", a.SendDelete(ctx, d)
	case *bridge.Join, *bridge.Leave, *bridge.Rename:
		return "", a.SendMembership(ctx, d)
	case *bridge.Typing:
		return "", a.SendTyping(ctx, d)
	}
	return "", nil
}

// SendReply posts a message as a native reply.
func (a *Adapter) SendReply(ctx context.Context, d *bridge.Delivery) (string, error) {
	m, ok := d.Event.(*bridge.Message)
	if !ok {
		return a.Send(ctx, d)
	}
	return a.sendMessage(ctx, d, m, d.Reply)
}

// sendMessage posts a message as its text (an m.text, m.emote or
// m.notice) and then one media event per attachment uploaded, each with a
// transaction id of its own, so that a retry after a partial send posts
// only what is missing. The first event posted stands for the message:
// replies, edits and deletes from other networks point at it; the others
// are listed under it in State, for a delete to redact them too.
func (a *Adapter) sendMessage(ctx context.Context, d *bridge.Delivery, m *bridge.Message, reply *bridge.Quote) (string, error) {
	intent, err := a.speaker(ctx, d, m.Sender)
	if err != nil {
		return "", err
	}
	rid, err := a.target(ctx, d, intent)
	if err != nil {
		return "", err
	}
	ms, err := a.uploadMedia(ctx, intent, m)
	if err != nil {
		return "", err
	}
	text, mentioned := a.outboundMentions(ctx, rid, textPart(m, ms), a.relay || d.Relay)
	if blank(text) && len(ms) > 0 && (a.relay || d.Relay) {
		// Media from the bot say nothing of who sent them: the text does.
		names := make([]string, len(ms))
		for i, md := range ms {
			names[i] = md.name
		}
		text.Text = strings.Join(names, ", ")
	}
	quote := reply != nil && reply.RemoteID == "" && reply.Text != ""
	type part struct {
		c   *event.MessageEventContent
		txn string
	}
	var parts []part
	if len(ms) == 0 || !blank(text) || quote {
		c := a.content(text, m.Sender, d.Relay)
		c.Mentions.UserIDs = mentioned
		parts = append(parts, part{c, txnID(m, rid, "message")})
	}
	for _, md := range ms {
		parts = append(parts, part{md.content(), txnID(m, rid, "media:"+strconv.Itoa(md.index))})
	}
	if reply != nil {
		addReply(parts[0].c, reply)
	}
	thread, err := a.threadFor(ctx, rid, d.Thread, reply)
	if err != nil {
		return "", err
	}
	ids := make([]string, len(parts))
	for i, p := range parts {
		thread.relate(p.c)
		evid, err := a.sendAt(ctx, intent, rid, event.EventMessage, p.c, p.txn, bridge.LateSince(m, time.Now()))
		if err != nil {
			return "", err
		}
		ids[i] = string(evid)
	}
	if err := thread.sent(ctx, a, ids[len(ids)-1]); err != nil {
		return "", err
	}
	// The bridge maps the message to its first event; a delete of it
	// takes the others along (see SendDelete).
	if len(ids) > 1 {
		if err := a.state.Put(ctx, partsPrefix+ids[0], strings.Join(ids[1:], " ")); err != nil {
			return "", err
		}
	}
	return ids[0], nil
}

// partsPrefix starts the State keys that list the further events of a
// message posted as several (text and media).
const partsPrefix = "parts:"

// addReply makes c a reply: a native one when the room saw the original,
// else with the original quoted (only ever on a text part).
func addReply(c *event.MessageEventContent, reply *bridge.Quote) {
	if reply.RemoteID != "" {
		c.RelatesTo = &event.RelatesTo{InReplyTo: &event.InReplyTo{EventID: id.EventID(reply.RemoteID)}}
		return
	}
	if reply.Text == "" {
		return
	}
	// The room never saw the original: quote it.
	name := bridge.ShownName(reply.SenderName, bridge.RelayDelims)
	quote := "> <" + name + "> " + strings.ReplaceAll(reply.Text, "\n", "\n> ")
	c.Body = strings.TrimSuffix(quote+"\n\n"+c.Body, "\n\n")
	if c.FormattedBody != "" {
		c.FormattedBody = "<blockquote>" + escapeText("<"+name+"> "+reply.Text) + "</blockquote>" + c.FormattedBody
	}
}

// SendEdit replaces an earlier message's text.
func (a *Adapter) SendEdit(ctx context.Context, d *bridge.Delivery) (string, error) {
	ed, ok := d.Event.(*bridge.Edit)
	if !ok {
		return "", bridge.Permanent(fmt.Errorf("matrix: SendEdit got %T", d.Event))
	}
	intent, err := a.speaker(ctx, d, ed.Sender)
	if err != nil {
		return "", err
	}
	rid, err := a.target(ctx, d, intent)
	if err != nil {
		return "", err
	}
	nc := a.content(&bridge.Message{Header: ed.Header, Text: ed.Text, HTML: ed.HTML}, ed.Sender, d.Relay)
	if d.Target == "" {
		// The room never saw the original: say it as a new message.
		nc.Body = "* " + nc.Body
		evid, err := a.send(ctx, intent, rid, event.EventMessage, nc, txnID(ed, rid, "edit"))
		return string(evid), err
	}
	c := &event.MessageEventContent{
		MsgType:    nc.MsgType,
		Body:       "* " + nc.Body,
		NewContent: nc,
		RelatesTo:  &event.RelatesTo{Type: event.RelReplace, EventID: id.EventID(d.Target)},
		Mentions:   &event.Mentions{},
	}
	if nc.FormattedBody != "" {
		c.Format, c.FormattedBody = event.FormatHTML, "* "+nc.FormattedBody
	}
	evid, err := a.send(ctx, intent, rid, event.EventMessage, c, txnID(ed, rid, "edit"))
	return string(evid), err
}

// SendDelete redacts an earlier message.
func (a *Adapter) SendDelete(ctx context.Context, d *bridge.Delivery) error {
	del, ok := d.Event.(*bridge.Delete)
	if !ok || d.Target == "" {
		return nil // nothing here to delete
	}
	var intent *appservice.IntentAPI
	var rid id.RoomID
	var err error
	if del.Moderator && d.Room != "" {
		intent, rid, err = a.moderatorIntent(ctx, d)
		if intent == nil || err != nil {
			return err
		}
	} else {
		if intent, err = a.speaker(ctx, d, del.Sender); err != nil {
			return err
		}
		if rid, err = a.target(ctx, d, intent); err != nil {
			return err
		}
	}
	if err := a.redact(ctx, intent, rid, id.EventID(d.Target), txnID(del, rid, "delete")); err != nil {
		if del.Moderator && errors.Is(err, mautrix.MForbidden) {
			// Retrying cannot help; the failed list tells the operator
			// to give the bot the power (and retry it from there).
			return bridge.Permanent(fmt.Errorf("matrix: the bot may not redact others' messages in %s (a moderator's delete by %s on %s): %w", d.Room, del.Sender.ID, del.Origin.Network, err))
		}
		return err
	}
	more, _, err := a.state.Get(ctx, partsPrefix+d.Target)
	if err != nil {
		return err
	}
	for i, part := range strings.Fields(more) {
		if err := a.redact(ctx, intent, rid, id.EventID(part), txnID(del, rid, "delete:"+strconv.Itoa(i+1))); err != nil {
			return err
		}
	}
	return nil
}

// moderatorIntent is who redacts a message for a moderator of another
// network: the ghost or bot that posted it (anyone may redact their own
// event, whatever the room's power levels), or else, for a Matrix user's
// own message, the bot, which needs the room's redact level. A nil intent
// means there is nothing to redact.
func (a *Adapter) moderatorIntent(ctx context.Context, d *bridge.Delivery) (*appservice.IntentAPI, id.RoomID, error) {
	rid, err := a.linkedRoom(d.Room)
	if err != nil {
		return nil, "", err
	}
	bot := a.as.BotIntent()
	evt, err := retry(ctx, func() (*event.Event, error) {
		return bot.Client.GetEvent(ctx, rid, id.EventID(d.Target))
	})
	if errors.Is(err, mautrix.MNotFound) {
		return nil, "", nil // gone already
	}
	if err != nil {
		return nil, "", fmt.Errorf("matrix: look up %s: %w", d.Target, err)
	}
	if evt.Sender != a.botID && a.ghosts.isGhost(string(evt.Sender)) {
		return a.as.Intent(evt.Sender), rid, nil
	}
	return bot, rid, ensureRegistered(ctx, bot)
}

func (a *Adapter) redact(ctx context.Context, intent *appservice.IntentAPI, rid id.RoomID, target id.EventID, txn string) error {
	if err := a.joined(ctx, intent, rid); err != nil {
		return err
	}
	// Marked like every event we post: a person's redaction pushed back
	// is known as ours (see personalEcho).
	resp, err := retry(ctx, func() (*mautrix.RespSendEvent, error) {
		return intent.Client.RedactEvent(ctx, rid, target, mautrix.ReqRedact{TxnID: txn, Extra: map[string]any{txnMarker: txn}})
	})
	if err == nil {
		a.sentAsPerson(intent, resp.EventID)
	}
	if errors.Is(err, mautrix.MNotFound) {
		return nil // gone already
	}
	if err != nil {
		return fmt.Errorf("matrix: redact %s: %w", target, err)
	}
	return nil
}

// SendReaction adds an annotation, or redacts the one added before.
func (a *Adapter) SendReaction(ctx context.Context, d *bridge.Delivery) (string, error) {
	r, ok := d.Event.(*bridge.Reaction)
	if !ok {
		return "", bridge.Permanent(fmt.Errorf("matrix: SendReaction got %T", d.Event))
	}
	if d.Target == "" {
		return "", nil // the room never saw the message
	}
	intent, err := a.speaker(ctx, d, r.Sender)
	if err != nil {
		return "", err
	}
	rid, err := a.target(ctx, d, intent)
	if err != nil {
		return "", err
	}
	key := "sentreaction:" + string(rid) + "|" + d.Target + "|" + string(intent.UserID) + "|" + r.Key
	if r.Remove {
		v, ok, err := a.state.Get(ctx, key)
		if err != nil || !ok {
			return "", err
		}
		if err := a.redact(ctx, intent, rid, id.EventID(v), txnID(r, rid, "unreact")); err != nil {
			return "", err
		}
		return "", a.state.Delete(ctx, key)
	}
	c := &event.ReactionEventContent{RelatesTo: event.RelatesTo{Type: event.RelAnnotation, EventID: id.EventID(d.Target), Key: r.Key}}
	evid, err := a.send(ctx, intent, rid, event.EventReaction, c, txnID(r, rid, "react"))
	if err != nil {
		return "", err
	}
	return string(evid), a.state.Put(ctx, key, string(evid))
}

// SendMembership mirrors a foreign sender's join, leave or rename with
// their ghost.
func (a *Adapter) SendMembership(ctx context.Context, d *bridge.Delivery) error {
	if a.relay || d.Relay || d.Room == "" {
		return nil
	}
	rid, err := a.linkedRoom(d.Room)
	if err != nil {
		return err
	}
	h := d.Event.Head()
	switch ev := d.Event.(type) {
	case *bridge.Join, *bridge.Rename:
		intent, err := a.speaker(ctx, d, h.Sender)
		if err != nil {
			return err
		}
		return a.joined(ctx, intent, rid)
	case *bridge.Leave:
		// Only their ghost leaves: a person's own Matrix user stays where
		// it is (a quit on IRC, a phone dropping out of a MUC, must not
		// take their own account out of a room; they leave it themselves).
		u := id.NewUserID(a.ghosts.localpart(h.Sender.Puppet()), a.cfg.Domain)
		if !a.as.StateStore.IsInRoom(ctx, rid, u) {
			return nil
		}
		intent := a.as.Intent(u)
		_, err := retry(ctx, func() (*mautrix.RespLeaveRoom, error) {
			return intent.LeaveRoom(ctx, rid, &mautrix.ReqLeave{Reason: ev.Reason})
		})
		if err != nil && !isForbidden(err) {
			return fmt.Errorf("matrix: %s leaves %s: %w", u, rid, err)
		}
		return a.as.StateStore.SetMembership(ctx, rid, u, event.MembershipLeave)
	}
	return nil
}

// SendTyping shows or clears a ghost's typing notice.
func (a *Adapter) SendTyping(ctx context.Context, d *bridge.Delivery) error {
	t, ok := d.Event.(*bridge.Typing)
	if !ok || a.relay || d.Relay {
		return nil
	}
	if d.Room != "" && a.personalIntent(ctx, t.Sender.Person) != nil {
		// Their own user typing would come back as them typing; and no
		// ghost of theirs joins.
		return nil
	}
	intent, err := a.intentFor(ctx, t.Sender, false)
	if err != nil {
		return err
	}
	rid, err := a.target(ctx, d, intent)
	if err != nil {
		return err
	}
	if err := a.joined(ctx, intent, rid); err != nil {
		return err
	}
	_, err = retry(ctx, func() (*mautrix.RespTyping, error) {
		return intent.Client.UserTyping(ctx, rid, t.Active, 30*time.Second)
	})
	return err
}
