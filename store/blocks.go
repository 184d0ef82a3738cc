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

// blockKey is a block's key in the state table: its parts escaped and
// joined by spaces, which escaping leaves out of every part.
func blockKey(k bridge.BlockKey) string {
	parts := []string{k.Room.Network, k.Room.Room, k.Sender.Network, k.Sender.ID, string(k.Source)}
	for i, p := range parts {
		parts[i] = url.QueryEscape(p)
	}
	return strings.Join(parts, " ")
}

// SaveBlock implements bridge.BlockStore.
func (s *Store) SaveBlock(ctx context.Context, b bridge.Block) error {
	v, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("store: block: %w", err)
	}
	return s.State(blocksNamespace).Put(ctx, blockKey(b.Key()), string(v))
}

// DeleteBlock implements bridge.BlockStore.
func (s *Store) DeleteBlock(ctx context.Context, k bridge.BlockKey) error {
	return s.State(blocksNamespace).Delete(ctx, blockKey(k))
}

// LoadBlocks implements bridge.BlockStore.
func (s *Store) LoadBlocks(ctx context.Context) ([]bridge.Block, error) {
	var out []bridge.Block
	var bad error
	err := s.State(blocksNamespace).Scan(ctx, "", func(key, value string) bool {
		var b bridge.Block
		if err := json.Unmarshal([]byte(value), &b); err != nil {
			bad = fmt.Errorf("store: block %q: %w", key, err)
			return false
		}
		out = append(out, b)
		return true
	})
	if err == nil {
		err = bad
	}
	return out, err
}

var _ bridge.BlockStore = (*Store)(nil)
