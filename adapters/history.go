package adapters

import (
	"context"

	"github.com/switchboard-chat/switchboard/bridge"
)

// History gives the recent messages of the link a room is in.
type History interface {
	// Recent returns up to n of the last messages said in any room of
	// the link room is in now, oldest first, each once, with its latest
	// edit applied; deleted messages and what retention removes are left
	// out. So is what still waits to be delivered to room, unless
	// queued: without it, those arrive there live, after the history;
	// with it, an adapter that shows the history while the room's
	// traffic flows gets everything said until now, and leaves out the
	// live copies by id.
	Recent(ctx context.Context, room string, n int, queued bool) ([]bridge.HistoryEntry, error)
	// Posted records that message id of the history was posted to room
	// as remoteID (the network's id for it there), so that what later
	// refers to the message (a reply, an edit, a deletion) finds it.
	Posted(ctx context.Context, room string, id bridge.EventID, remoteID string) error
}

// HistoryUser is implemented by adapters that show newcomers a link's
// recent messages (the web page, a new Matrix portal room). The service
// hands each its network's History before Start, when the store keeps
// one.
type HistoryUser interface {
	UseHistory(History)
}
