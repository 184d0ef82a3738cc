package matrix

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
)

// Switchboard holds no Matrix keys, so it reads nothing of an encrypted
// room. Rather than let a linked room go quiet without a word, it says
// so, once per room and for good (encryption cannot be turned off):
// in the room itself, and, through the router, in every other room of
// its link. Messages from the other rooms are still posted there,
// unencrypted, as Matrix allows; clients mark them.

// encryptedNoticeKey is what the store knows the notice by: made again
// (after a restart, a second encrypted event) it is refused as a
// duplicate.
const encryptedNoticeKey = "matrix-encrypted"

const (
	encryptedHere  = "This room is encrypted. Switchboard cannot read encrypted messages, so what is said here no longer reaches the rooms linked with it; their messages still arrive here, unencrypted."
	encryptedThere = "The Matrix room %s is encrypted. Switchboard cannot read encrypted messages, so what is said there no longer reaches this room; messages from here still arrive there, unencrypted."
)

// checkEncrypted asks the homeserver whether a room the bot has just
// joined is encrypted: one turned so while Switchboard was not looking,
// or before it was linked.
func (a *Adapter) checkEncrypted(ctx context.Context, room string, rid id.RoomID) error {
	var content event.EncryptionEventContent
	err := a.as.BotIntent().StateEvent(ctx, rid, event.StateEncryption, "", &content)
	if errors.Is(err, mautrix.MNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if content.Algorithm == "" {
		return nil
	}
	return a.noteEncrypted(ctx, room)
}

// noteEncrypted records that a linked room is encrypted and, the first
// time, tells its link. An error leaves the record unmade, so that the
// next encrypted event, or the next start, tries again.
func (a *Adapter) noteEncrypted(ctx context.Context, room string) error {
	a.mu.Lock()
	known := a.encrypted[room]
	a.mu.Unlock()
	if known {
		return nil
	}
	first, err := a.state.PutIfAbsent(ctx, "encrypted:"+room, time.Now().UTC().Format(time.RFC3339))
	if err != nil {
		return err
	}
	if first {
		a.log.Warn("matrix room is encrypted: Switchboard cannot read what is said there", "room", room)
		notice := bridge.RoomNotice(bridge.RoomAddr{Network: a.name, Room: room}, encryptedNoticeKey, fmt.Sprintf(encryptedThere, room))
		err := a.in.Accept(ctx, notice)
		if err == nil {
			err = a.SendAsBot(ctx, room, "", encryptedHere)
		}
		if err != nil {
			if derr := a.state.Delete(ctx, "encrypted:"+room); derr != nil {
				a.log.Warn("matrix: could not forget an unsent encryption notice; it will not be sent again", "room", room, "err", derr)
			}
			return err
		}
	}
	a.mu.Lock()
	a.encrypted[room] = true
	a.mu.Unlock()
	return nil
}

// RoomFlags flags the linked rooms that are encrypted.
func (a *Adapter) RoomFlags() map[string][]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	flags := make(map[string][]string, len(a.encrypted))
	for room := range maps.Keys(a.encrypted) {
		if _, linked := a.rooms[room]; linked {
			flags[room] = []string{adapters.FlagEncrypted}
		}
	}
	return flags
}
