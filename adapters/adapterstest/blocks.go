package adapterstest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
)

// Blocked keeps what an adapter's moderation reports (adapters.Moderation)
// as the router would: embedded in a test's bridge.Inbound, it makes that
// a bridge.Blocker and a bridge.BlockLister. The zero value is ready.
type Blocked struct {
	mu     sync.Mutex
	blocks map[bridge.BlockKey]bridge.Block
}

var (
	_ bridge.Blocker     = (*Blocked)(nil)
	_ bridge.BlockLister = (*Blocked)(nil)
)

// Block implements bridge.Blocker.
func (b *Blocked) Block(ctx context.Context, bl bridge.Block) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.blocks == nil {
		b.blocks = map[bridge.BlockKey]bridge.Block{}
	}
	b.blocks[bl.Key()] = bl
	return nil
}

// Unblock implements bridge.Blocker.
func (b *Blocked) Unblock(ctx context.Context, key bridge.BlockKey) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.blocks[key]
	delete(b.blocks, key)
	return ok, nil
}

// Blocks implements bridge.BlockLister.
func (b *Blocked) Blocks(room bridge.RoomAddr) []bridge.Block {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []bridge.Block
	for _, bl := range b.blocks {
		if room == (bridge.RoomAddr{}) || bl.Room == room {
			out = append(out, bl)
		}
	}
	return out
}

// WaitBlocks waits until the blocks of room are n, and returns them.
func (b *Blocked) WaitBlocks(t testing.TB, room bridge.RoomAddr, n int) []bridge.Block {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		bl := b.Blocks(room)
		if len(bl) == n {
			return bl
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d blocks in %s, want %d: %+v", len(bl), room, n, bl)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
