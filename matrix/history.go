package matrix

import (
	"context"
	"errors"
	"fmt"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
)

var _ adapters.HistoryUser = (*Adapter)(nil)

// portalHistory is how many of the link's last messages a new portal
// room starts with.
const portalHistory = 50

// UseHistory has new portal rooms seeded with the link's last messages.
// Called before Start.
func (a *Adapter) UseHistory(h adapters.History) { a.history = h }

// seededPrefix starts the State keys of the portal rooms seeded (or
// being seeded): never twice, even after a restart in between.
const seededPrefix = "seeded:"

// errSeeding holds deliveries to a portal room while its history is
// posted: they come after it. (ErrNotConnected: the router retries them
// quietly, and at once when seeding ends.)
var errSeeding = fmt.Errorf("portal room being seeded with its history: %w", bridge.ErrNotConnected)

// seeding reports whether a room's history is being posted.
func (a *Adapter) seeding(room string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seedingRooms[room]
}

// seedPortal posts the link's last messages to the portal room rid of
// alias, just created, in order: each as its sender's ghost with its
// original time (the appservice ts parameter), or, where the homeserver
// refuses or ignores ts, as the bot's notices "[time] name: text". It
// runs once per room; deliveries to the room wait until it is done.
// History is a courtesy: what fails is logged, and the room goes live.
func (a *Adapter) seedPortal(ctx context.Context, alias string, rid id.RoomID) {
	defer func() {
		a.mu.Lock()
		delete(a.seedingRooms, alias)
		in := a.in
		a.mu.Unlock()
		if in != nil {
			in.Online(a.name) // what waited goes now
		}
	}()
	if a.history == nil {
		return
	}
	first, err := a.state.PutIfAbsent(ctx, seededPrefix+string(rid), time.Now().UTC().Format(time.RFC3339))
	if err != nil || !first {
		if err != nil {
			a.log.Warn("matrix portal history", "room", rid, "err", err)
		}
		return
	}
	// What waits for the room comes after, delivered as usual.
	entries, err := a.history.Recent(ctx, alias, portalHistory, false)
	if err != nil {
		a.log.Warn("matrix portal history", "room", rid, "err", err)
		return
	}
	ghosts := true
	posted := 0
	for _, e := range entries {
		if ghosts {
			err := a.seedAsGhost(ctx, alias, rid, e.Message, posted == 0)
			if err == nil {
				posted++
				continue
			}
			if !errors.Is(err, errNoTS) {
				a.log.Warn("matrix portal history: message not posted", "room", rid, "event", e.Message.ID, "err", err)
				if ctx.Err() != nil {
					return
				}
				continue
			}
			a.log.Info("matrix portal history: the homeserver does not keep the original times; posting it as the bot's notices", "room", rid, "err", err)
			ghosts = false
		}
		if err := a.seedAsNotice(ctx, rid, e.Message); err != nil {
			a.log.Warn("matrix portal history: notice not posted", "room", rid, "event", e.Message.ID, "err", err)
			if ctx.Err() != nil {
				return
			}
			continue
		}
		posted++
	}
	a.log.Info("matrix portal room seeded with history", "room", rid, "messages", posted, "as_ghosts", ghosts)
}

// errNoTS says the homeserver will not post a message at its original
// time.
var errNoTS = errors.New("the homeserver refuses or ignores ts")

// seedAsGhost posts one message of the history as its sender (their
// ghost, or their own Matrix user), at its original time. check: see
// whether the homeserver kept the time (the first message, and each one
// a person's own user posts), and take the message back if not.
func (a *Adapter) seedAsGhost(ctx context.Context, alias string, rid id.RoomID, m *bridge.Message, check bool) error {
	intent, err := a.speaker(ctx, &bridge.Delivery{Room: alias}, m.Sender)
	if err != nil {
		return err
	}
	if err := a.joined(ctx, intent, rid); err != nil {
		return err
	}
	ts := m.Time.UnixMilli()
	resp, err := retry(ctx, func() (*mautrix.RespSendEvent, error) {
		return intent.Client.SendMessageEvent(ctx, rid, event.EventMessage, a.content(m, m.Sender, false),
			mautrix.ReqSendEvent{TransactionID: txnID(m, rid, "history"), Timestamp: ts})
	})
	var herr mautrix.HTTPError
	if errors.As(err, &herr) && herr.Response != nil && herr.Response.StatusCode/100 == 4 && !isForbidden(err) {
		return fmt.Errorf("%w: %w", errNoTS, err)
	}
	if err != nil {
		return err
	}
	// A person's own Matrix user posts with their token, which the
	// homeserver may not let set the time: checked each time.
	if !check && !intent.IsCustomPuppet {
		a.posted(ctx, alias, m, resp.EventID)
		return nil
	}
	ev, err := intent.Client.GetEvent(ctx, rid, resp.EventID)
	if err != nil {
		return err
	}
	if d := ev.Timestamp - ts; d > 1000 || d < -1000 {
		a.redactSeed(ctx, intent, rid, resp.EventID)
		return fmt.Errorf("%w: posted at %d, not %d", errNoTS, ev.Timestamp, ts)
	}
	a.posted(ctx, alias, m, resp.EventID)
	return nil
}

// posted records the event a message of the history became in the
// portal, for what later refers to it: an edit or a deletion of it is
// then applied to it natively, by the same ghost.
func (a *Adapter) posted(ctx context.Context, alias string, m *bridge.Message, evid id.EventID) {
	if err := a.history.Posted(ctx, alias, m.ID, string(evid)); err != nil {
		a.log.Warn("matrix portal history: not recorded; what refers to the message arrives as new", "room", alias, "event", m.ID, "err", err)
	}
}

// redactSeed takes back a history message posted at the wrong time.
func (a *Adapter) redactSeed(ctx context.Context, intent *appservice.IntentAPI, rid id.RoomID, evid id.EventID) {
	if _, err := intent.RedactEvent(ctx, rid, evid); err != nil {
		a.log.Warn("matrix portal history: could not take back a message posted at the wrong time", "room", rid, "event", evid, "err", err)
	}
}

// seedAsNotice posts one message of the history as the bot's notice,
// with its time and sender in the text. It is not recorded as the
// message: a ghost could neither edit nor redact the bot's notice.
func (a *Adapter) seedAsNotice(ctx context.Context, rid id.RoomID, m *bridge.Message) error {
	bot := a.as.BotIntent()
	c := &event.MessageEventContent{MsgType: event.MsgNotice, Body: historyNotice(m), Mentions: &event.Mentions{}}
	_, err := a.send(ctx, bot, rid, event.EventMessage, c, txnID(m, rid, "history-notice"))
	return err
}

// historyNotice is a message of the history as the bot says it: its
// time (UTC), its sender and its text, with its attachments' links.
func historyNotice(m *bridge.Message) string {
	at := m.Time.UTC().Format("2006-01-02 15:04 MST")
	name := m.Sender.Shown(bridge.RelayDelims)
	text := bridge.WithAttachmentLines(m.Text, m.Attachments)
	if m.Emote {
		return bridge.CleanText(fmt.Sprintf("[%s] * %s %s", at, name, text))
	}
	return bridge.CleanText(fmt.Sprintf("[%s] %s: %s", at, name, text))
}
