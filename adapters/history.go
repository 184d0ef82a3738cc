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
}

// HistoryUser is implemented by adapters that show newcomers a link's
// recent messages (the web page, a new Matrix portal room). The service
// hands each its network's History before Start, when the store keeps
// one.
type HistoryUser interface {
	UseHistory(History)
}
