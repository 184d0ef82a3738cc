package store

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/switchboard-chat/switchboard/bridge"
)

// blocksNamespace is the adapter state namespace the blocks are kept in;
// no network name can take it.
const blocksNamespace = "@blocks"

// recordKey is a record's key in the state table: its parts escaped and
// joined by spaces, which escaping leaves out of every part.
func recordKey(parts ...string) string {
	for i, p := range parts {
		parts[i] = url.QueryEscape(p)
	}
	return strings.Join(parts, " ")
}

func blockKey(k bridge.BlockKey) string {
	return recordKey(k.Room.Network, k.Room.Room, k.Sender.Network, k.Sender.ID, string(k.Source))
}

// putRecord keeps v, as JSON, under key in namespace; what names it in
// errors.
func (s *Store) putRecord(ctx context.Context, namespace, what, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	return s.State(namespace).Put(ctx, key, string(raw))
}

// loadRecords reads every record kept in namespace; what names it in
// errors.
func loadRecords[T any](ctx context.Context, s *Store, namespace, what string) ([]T, error) {
	var out []T
	var bad error
	err := s.State(namespace).Scan(ctx, "", func(key, value string) bool {
		var v T
		if err := json.Unmarshal([]byte(value), &v); err != nil {
			bad = fmt.Errorf("store: %s %q: %w", what, key, err)
			return false
		}
		out = append(out, v)
		return true
	})
	if err == nil {
		err = bad
	}
	return out, err
}

// SaveBlock implements bridge.BlockStore.
func (s *Store) SaveBlock(ctx context.Context, b bridge.Block) error {
	return s.putRecord(ctx, blocksNamespace, "block", blockKey(b.Key()), b)
}

// DeleteBlock implements bridge.BlockStore.
func (s *Store) DeleteBlock(ctx context.Context, k bridge.BlockKey) error {
	return s.State(blocksNamespace).Delete(ctx, blockKey(k))
}

// LoadBlocks implements bridge.BlockStore.
func (s *Store) LoadBlocks(ctx context.Context) ([]bridge.Block, error) {
	return loadRecords[bridge.Block](ctx, s, blocksNamespace, "block")
}

var _ bridge.BlockStore = (*Store)(nil)
