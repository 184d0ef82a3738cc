package matrix

import (
	"context"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/bridge"
)

// roomOperator reports whether u operates rid, for the room operators'
// chat commands: their power level there is at least the one to kick
// (m.room.power_levels).
func (a *Adapter) roomOperator(ctx context.Context, rid id.RoomID, u id.UserID) bool {
	pl, err := a.powerLevels(ctx, rid)
	if err != nil {
		a.log.Debug("matrix: cannot read the room's power levels", "room", rid, "err", err)
		return false
	}
	return pl.GetUserLevel(u) >= pl.Kick()
}

// powerLevels are rid's m.room.power_levels: the room state the
// homeserver pushed (kept in the state store as it changes), else asked
// of it once.
func (a *Adapter) powerLevels(ctx context.Context, rid id.RoomID) (*event.PowerLevelsEventContent, error) {
	pl, err := a.as.StateStore.GetPowerLevels(ctx, rid)
	if err == nil && pl != nil {
		return pl, nil
	}
	pl = &event.PowerLevelsEventContent{}
	if err := a.as.BotClient().StateEvent(ctx, rid, event.StatePowerLevels, "", pl); err != nil {
		return nil, err
	}
	if err := a.as.StateStore.SetPowerLevels(ctx, rid, pl); err != nil {
		a.log.Debug("matrix: cannot keep the room's power levels", "room", rid, "err", err)
	}
	return pl, nil
}

// PuppetSender implements bridge.PuppetResolver: the sender a ghost in
// the room (by its MXID) stands for.
func (a *Adapter) PuppetSender(ctx context.Context, room, name string) (bridge.SenderRef, bool) {
	u := id.UserID(name)
	rid, ok := a.roomID(room)
	if !ok || u == a.botID || !a.ghosts.isGhost(name) || !a.as.StateStore.IsInRoom(ctx, rid, u) {
		return bridge.SenderRef{}, false
	}
	s, err := a.ghostSender(ctx, u)
	if err != nil {
		return bridge.SenderRef{}, false
	}
	return s.BlockRef(), true
}

var _ bridge.PuppetResolver = (*Adapter)(nil)
