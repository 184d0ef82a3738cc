package matrix

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/bridge"
)

// Leave stops bridging a room: the ghosts in it and then the bot leave
// (a portal room too; its alias stays, so a later Join finds it again),
// and its events are no longer handed on.
func (a *Adapter) Leave(ctx context.Context, room string) error {
	a.joinMu.Lock()
	defer a.joinMu.Unlock()
	a.mu.Lock()
	a.wanted = slices.DeleteFunc(a.wanted, func(r string) bool { return r == room })
	a.left[room] = true
	rid, known := a.rooms[room]
	delete(a.rooms, room)
	if known {
		delete(a.byID, rid)
		delete(a.typing, rid)
	}
	a.mu.Unlock()
	if !known {
		// Not joined by this process, but perhaps by an earlier one.
		var err error
		if rid, err = a.resolve(ctx, room); errors.Is(err, errPortalPending) {
			return nil
		} else if err != nil {
			return fmt.Errorf("matrix: leave %s: %w", room, err)
		}
	}
	a.log.Info("matrix: leaving room", "room", room, "id", rid)
	return a.leaveRoom(ctx, rid)
}

// leaveRoom takes every ghost in a room and then the bot out of it.
func (a *Adapter) leaveRoom(ctx context.Context, rid id.RoomID) error {
	var first error
	for _, u := range a.ghostsIn(ctx, rid) {
		if err := a.leaveAs(ctx, u, rid); err != nil && first == nil {
			first = err
		}
	}
	if err := a.leaveAs(ctx, a.botID, rid); err != nil && first == nil {
		first = err
	}
	return first
}

// ghostsIn lists the ghosts in a room: as the homeserver says (the bot
// is still in it), and as the cache says, for the ones it may not show.
func (a *Adapter) ghostsIn(ctx context.Context, rid id.RoomID) []id.UserID {
	var users []id.UserID
	if res, err := a.as.BotIntent().JoinedMembers(ctx, rid); err == nil {
		for u := range res.Joined {
			users = append(users, u)
		}
	} else {
		a.log.Debug("matrix: joined members", "room", rid, "err", err)
	}
	if cached, err := a.as.StateStore.GetRoomJoinedOrInvitedMembers(ctx, rid); err == nil {
		users = append(users, cached...)
	}
	users = slices.DeleteFunc(users, func(u id.UserID) bool { return !a.ghosts.isGhost(string(u)) })
	slices.Sort(users)
	return slices.Compact(users)
}

// leaveAs has one of our users leave a room; not being in it is fine.
func (a *Adapter) leaveAs(ctx context.Context, u id.UserID, rid id.RoomID) error {
	intent := a.as.Intent(u)
	_, err := retry(ctx, func() (*mautrix.RespLeaveRoom, error) {
		return intent.LeaveRoom(ctx, rid, &mautrix.ReqLeave{Reason: "no longer bridged"})
	})
	if err != nil && !isForbidden(err) && !errors.Is(err, mautrix.MNotFound) {
		return fmt.Errorf("matrix: %s leaves %s: %w", u, rid, err)
	}
	// Forgotten, so that a later Join joins for real instead of trusting
	// the cache.
	return a.as.StateStore.SetMembership(ctx, rid, u, event.MembershipLeave)
}

// SendAsBot posts text as an m.notice from the appservice bot: to a
// linked room, or with room "" to the direct chat between the bot and
// user (a user id), made on first use. The text is the plain body only,
// so nothing in it is read as markup.
func (a *Adapter) SendAsBot(ctx context.Context, room, user, text string) error {
	bot := a.as.BotIntent()
	if err := ensureRegistered(ctx, bot); err != nil {
		return fmt.Errorf("matrix: bot: %w", err)
	}
	var rid id.RoomID
	var err error
	if room != "" {
		rid, err = a.linkedRoom(room)
	} else {
		rid, err = a.directRoom(ctx, bot, user)
	}
	if err != nil {
		return err
	}
	c := &event.MessageEventContent{MsgType: event.MsgNotice, Body: bridge.CleanText(text), Mentions: &event.Mentions{}}
	_, err = a.send(ctx, bot, rid, event.EventMessage, c, botTxnID())
	return err
}

// botTxnID is a fresh transaction id: SendAsBot has no event to derive
// one from.
func botTxnID() string {
	var b [16]byte
	rand.Read(b[:])
	return "sbbot" + hex.EncodeToString(b[:])
}

// acceptBotDM has the bot join a direct chat a Matrix user invited it
// to, and remembers it like the DMs of ghosts: what is said there is
// said to Switchboard itself.
func (a *Adapter) acceptBotDM(ctx context.Context, evt *event.Event) error {
	bot := a.as.BotIntent()
	if _, err := bot.JoinRoomByID(ctx, evt.RoomID); err != nil {
		a.log.Warn("matrix bot cannot join a direct chat", "room", evt.RoomID, "from", evt.Sender, "err", err)
		return nil
	}
	return a.rememberDM(ctx, evt.RoomID, a.botID, evt.Sender)
}

// rememberDM records a direct chat between one of our users and a Matrix
// user, both ways.
func (a *Adapter) rememberDM(ctx context.Context, rid id.RoomID, ours, user id.UserID) error {
	return a.rememberRoom(ctx, rid, dmRoom{Ghost: ours, User: user}, ours)
}

// rememberRoom records dm, a direct chat where ours (a ghost, the bot,
// a person's own user) speaks to dm.User, both ways: by room, and as
// the room of ours with dm.User (a newer one replaces it).
func (a *Adapter) rememberRoom(ctx context.Context, rid id.RoomID, dm dmRoom, ours id.UserID) error {
	v, _ := json.Marshal(dm)
	if err := a.state.Put(ctx, "dm:"+string(rid), string(v)); err != nil {
		return err
	}
	if err := a.state.Put(ctx, "dmroom:"+string(ours)+"|"+string(dm.User), string(rid)); err != nil {
		return err
	}
	a.cacheDM(rid, &dm, true)
	return a.as.StateStore.SetMembership(ctx, rid, ours, event.MembershipJoin)
}

// botRecipient is Switchboard itself as the recipient of a direct
// message: To on this network makes bridge.ToBot true.
func (a *Adapter) botRecipient() bridge.Sender {
	return bridge.Sender{Network: a.name, ID: string(a.botID)}
}
