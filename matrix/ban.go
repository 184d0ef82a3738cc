package matrix

import (
	"context"
	"strings"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/adapters"
)

// A room that bans a ghost keeps its sender out: the ban (m.room.member
// "ban" of the ghost, by someone else) as pushed to the appservice, or a
// ghost's join refused while banned. An unban (the ghost's membership
// going from ban to leave) lets them in; a kick (join to leave, by
// someone else) keeps them out only with kick_blocks. The bridge keeps
// the sender's messages out (the failed list, a notice to the sender).

// ghostMembership reads a room's ban, unban or kick of one of our ghosts.
func (a *Adapter) ghostMembership(ctx context.Context, evt *event.Event) error {
	if evt.StateKey == nil {
		return nil
	}
	target := id.UserID(*evt.StateKey)
	if target == a.botID || !a.ghosts.isGhost(string(target)) || evt.Sender == target {
		return nil
	}
	room, linked := a.roomAddr(evt.RoomID)
	if !linked {
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
	s, err := a.ghostSender(ctx, target)
	if err != nil {
		return nil
	}
	sender, by := s.Ref(), string(evt.Sender)
	switch {
	case mem.Membership == event.MembershipBan:
		a.log.Info("matrix: room banned a ghost", "room", room, "ghost", target, "sender", sender.String(), "by", by)
		return a.mod.Banned(ctx, room, sender, by)
	case mem.Membership == event.MembershipLeave && (prev == event.MembershipBan || prev == ""):
		// An unban; with the previous membership unknown (a restart
		// emptied the cache, and Dendrite sends no prev_content), lifting
		// a ban that is not there changes nothing.
		return a.mod.Unbanned(ctx, room, sender, by)
	case mem.Membership == event.MembershipLeave && prev == event.MembershipJoin:
		a.log.Info("matrix: room kicked a ghost", "room", room, "ghost", target, "sender", sender.String(), "by", by, "blocks", a.kickBlocks)
		_, err := a.mod.Kicked(ctx, room, sender, by)
		return err
	}
	return nil
}

// ghostRefused handles a ghost's join to rid that the homeserver refused:
// when the ghost is banned there the sender is kept out and the delivery
// fails for good (nil for other refusals).
func (a *Adapter) ghostRefused(ctx context.Context, ghost id.UserID, rid id.RoomID, err error) error {
	if !isForbidden(err) {
		return nil
	}
	room, linked := a.roomAddr(rid)
	if !linked {
		return nil
	}
	banned := strings.Contains(strings.ToLower(err.Error()), "banned")
	if m, merr := a.as.StateStore.TryGetMember(ctx, rid, ghost); merr == nil && m != nil && m.Membership == event.MembershipBan {
		banned = true
	}
	if !banned {
		return nil
	}
	s, serr := a.ghostSender(ctx, ghost)
	if serr != nil {
		return nil
	}
	a.log.Info("matrix: ghost refused as banned", "room", room, "ghost", ghost, "sender", s.Ref().String())
	if rerr := a.mod.Banned(ctx, room, s.Ref(), ""); rerr != nil {
		a.log.Warn("matrix: cannot report a ban to the bridge", "room", room, "sender", s.Ref().String(), "err", rerr)
	}
	return adapters.Refusal(a.name, room)
}
