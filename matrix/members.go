package matrix

import (
	"context"

	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/bridge"
)

// reportMembers tells the bridge who is in a linked room now, by MXID
// (the homeserver's joined members: what it authenticates), when the bot
// has just joined it: on start, after a reconnect that took it out, and
// for a room newly linked. People in the room since before Switchboard
// looked then count as taking part in its link, and people who left
// while it was not looking no longer do (see bridge.MemberLister). The
// bot and ghosts are Switchboard's own and left out. A person's own user
// is counted as any member: Switchboard joins it only to post a message
// of theirs, which is taking part anyway. A list that cannot be read is
// logged and skipped: the events that come still count.
func (a *Adapter) reportMembers(ctx context.Context, room string, rid id.RoomID) {
	ml, ok := a.in.(bridge.MemberLister)
	if !ok {
		return
	}
	res, err := a.as.BotIntent().JoinedMembers(ctx, rid)
	if err != nil {
		a.log.Warn("matrix: could not list a room's members; who is there is known from events only", "room", room, "err", err)
		return
	}
	accounts := make([]string, 0, len(res.Joined))
	for u := range res.Joined {
		if !a.isOurs(u) {
			accounts = append(accounts, string(u))
		}
	}
	if err := ml.Members(ctx, bridge.RoomAddr{Network: a.name, Room: room}, accounts); err != nil {
		a.log.Warn("matrix: a room's members not taken", "room", room, "err", err)
	}
}
