package store

import (
	"context"

	"github.com/switchboard-chat/switchboard/bridge"
)

// presenceNamespace is the adapter state namespace where people are
// (bridge.PresenceStore) is kept in, as the blocks are; no network name
// can take it.
const presenceNamespace = "@presence"

func presenceKey(p bridge.PersonRoom) string {
	return recordKey(p.Person, p.Room.Network, p.Room.Room)
}

// SavePresence implements bridge.PresenceStore.
func (s *Store) SavePresence(ctx context.Context, p bridge.PersonRoom) error {
	return s.putRecord(ctx, presenceNamespace, "presence", presenceKey(p), p)
}

// DeletePresence implements bridge.PresenceStore.
func (s *Store) DeletePresence(ctx context.Context, p bridge.PersonRoom) error {
	return s.State(presenceNamespace).Delete(ctx, presenceKey(p))
}

// LoadPresence implements bridge.PresenceStore.
func (s *Store) LoadPresence(ctx context.Context) ([]bridge.PersonRoom, error) {
	return loadRecords[bridge.PersonRoom](ctx, s, presenceNamespace, "presence")
}

var _ bridge.PresenceStore = (*Store)(nil)
