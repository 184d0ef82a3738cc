package adapters

import (
	"context"

	"github.com/switchboard-chat/switchboard/bridge"
)

// History gives the recent messages of the link a room is in: what was
// said in any of its rooms, oldest first, each once, with its latest edit
// applied; deleted messages and what retention removes are left out, and
// so is what still waits to be delivered to the room itself (it arrives
// there live, after the history).
type History interface {
	Recent(ctx context.Context, room string, n int) ([]bridge.HistoryEntry, error)
}

// HistoryUser is implemented by adapters that show newcomers a link's
// recent messages (the web page, a new Matrix portal room). The service
// hands each its network's History before Start, when the store keeps
// one.
type HistoryUser interface {
	UseHistory(History)
}
