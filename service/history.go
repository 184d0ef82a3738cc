package service

import (
	"context"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/mapping"
)

// history is one network's adapters.History: the store's history of the
// link a room of the network is in now, within retention.
type history struct {
	network string
	store   bridge.HistoryStore
	links   *mapping.Links
	// retain is retention.messages: older messages are not shown, as
	// retention removes them, whether or not it has yet.
	retain time.Duration
}

var _ adapters.History = (*history)(nil)

func (h *history) Recent(ctx context.Context, room string, n int, queued bool) ([]bridge.HistoryEntry, error) {
	addr := bridge.RoomAddr{Network: h.network, Room: room}
	link, _, ok := h.links.LinkOf(addr)
	if !ok || n <= 0 {
		return nil, nil
	}
	q := bridge.HistoryQuery{Link: link, Limit: n}
	if !queued {
		q.Except = addr
	}
	if h.retain > 0 {
		q.Since = time.Now().Add(-h.retain)
	}
	return h.store.History(ctx, q)
}

func (h *history) Posted(ctx context.Context, room string, id bridge.EventID, remoteID string) error {
	return h.store.Posted(ctx, bridge.RoomAddr{Network: h.network, Room: room}, id, remoteID)
}
