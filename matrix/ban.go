package matrix

import (
	"context"
	"strings"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
)

// A room that bans a ghost keeps its sender out: the ban (m.room.member
// "ban" of the ghost, by someone else) as pushed to the appservice, or a
// ghost's join refused while banned. An unban (the ghost's membership
// going from ban to leave) lets them in; a kick (join to leave, by
// someone else) keeps them out only with kick_blocks. The bridge keeps
// the sender's messages out (the failed list, a notice to the sender).
// A person's own user (double-puppeted or with their token) is followed
// the same way, and what the room decides about it, or about their
// ghost, applies to the person (Sender.BlockRef): their ghost never
// speaks for them in a room that banned them, nor from another account.

// blockRefOf is who a ban of user keeps out: the sender a ghost of ours
// stands for, or the person whose own user it is (ok false for anyone
// else).
func (a *Adapter) blockRefOf(ctx context.Context, user id.UserID) (bridge.SenderRef, bool) {
	if a.ghosts.isGhost(string(user)) {
		s, err := a.ghostSender(ctx, user)
		if err != nil {
			return bridge.SenderRef{}, false
		}
		return s.BlockRef(), true
	}
	a.peopleMu.Lock()
	p := a.people.byUser[user]
	a.peopleMu.Unlock()
	if p == nil {
		return bridge.SenderRef{}, false
	}
	return p.acct.BlockRef(), true
}

// ghostMembership reads a room's ban, unban or kick of one of our ghosts
// or of a person's own user.
func (a *Adapter) ghostMembership(ctx context.Context, evt *event.Event) error {
	if evt.StateKey == nil {
		return nil
	}
	target := id.UserID(*evt.StateKey)
	if target == a.botID || evt.Sender == target {
		return nil
	}
	room, linked := a.roomAddr(evt.RoomID)
	if !linked {
		return nil
	}
	sender, ok := a.blockRefOf(ctx, target)
	if !ok {
		return nil
	}
	mem := evt.Content.AsMember()
	var prev event.Membership
	if pc := evt.Unsigned.PrevContent; pc != nil {
		if pc.Parsed == nil {
			_ = pc.ParseRaw(event.StateMember)
		}
		prev = pc.AsMember().Membership
	}
	by := string(evt.Sender)
	switch {
	case mem.Membership == event.MembershipBan:
		a.log.Info("matrix: room banned a ghost or a person's own user", "room", room, "ghost", target, "sender", sender.String(), "by", by)
		return a.mod.Banned(ctx, room, sender, by)
	case mem.Membership == event.MembershipLeave && (prev == event.MembershipBan || prev == ""):
		// An unban; with the previous membership unknown (a restart
		// emptied the cache, and Dendrite sends no prev_content), lifting
		// a ban that is not there changes nothing.
		return a.mod.Unbanned(ctx, room, sender, by)
	case mem.Membership == event.MembershipLeave && prev == event.MembershipJoin:
		a.log.Info("matrix: room kicked a ghost or a person's own user", "room", room, "ghost", target, "sender", sender.String(), "by", by, "blocks", a.kickBlocks)
		_, err := a.mod.Kicked(ctx, room, sender, by)
		return err
	}
	return nil
}

// refusedAsBanned handles a join to rid of user (a ghost, or a person's
// own user) that the homeserver refused: when user is banned there, the
// sender or person is kept out, the delivery fails for good and no ghost
// speaks for them instead (nil for other refusals).
func (a *Adapter) refusedAsBanned(ctx context.Context, user id.UserID, rid id.RoomID, err error) error {
	if !isForbidden(err) {
		return nil
	}
	room, linked := a.roomAddr(rid)
	if !linked {
		return nil
	}
	banned := strings.Contains(strings.ToLower(err.Error()), "banned")
	if m, merr := a.as.StateStore.TryGetMember(ctx, rid, user); merr == nil && m != nil && m.Membership == event.MembershipBan {
		banned = true
	}
	if !banned {
		return nil
	}
	ref, ok := a.blockRefOf(ctx, user)
	if !ok {
		return nil
	}
	a.log.Info("matrix: refused as banned; not sending for them there", "room", room, "user", user, "sender", ref.String())
	if rerr := a.mod.Banned(ctx, room, ref, ""); rerr != nil {
		a.log.Warn("matrix: cannot report a ban to the bridge", "room", room, "sender", ref.String(), "err", rerr)
	}
	return adapters.Refusal(a.name, room)
}
