package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// BlockSource says what keeps a sender out of a room.
type BlockSource string

const (
	// BlockBan: the room's network banned the sender's puppet (an IRC +b
	// matching it, an XMPP outcast, a Matrix ban of the ghost). Lifted when
	// the ban is.
	BlockBan BlockSource = "ban"
	// BlockKick: the puppet was kicked, on a network set to keep kicked
	// senders out until an operator lets them in again.
	BlockKick BlockSource = "kick"
	// BlockOperator: a room operator's (or an admin's) "!sb block".
	BlockOperator BlockSource = "operator"
)

// blockSources in the order a sender's blocks are looked up.
var blockSources = []BlockSource{BlockBan, BlockKick, BlockOperator}

// SenderRef names a sender on their own network, as Sender.Network and
// Sender.ID do: the person, whatever name or puppet they have elsewhere.
type SenderRef struct {
	Network string `json:"network"`
	ID      string `json:"id"`
}

func (s SenderRef) String() string { return s.Network + ":" + s.ID }

// Ref returns the sender's SenderRef.
func (s Sender) Ref() SenderRef { return SenderRef{Network: s.Network, ID: s.ID} }

// Block keeps one sender out of one room: nothing of theirs is delivered
// there, by their puppet, the bot or any other way, while it stands.
// Their messages to that room go to the failed list with Reason, and they
// are told once, by the bot of their own network.
type Block struct {
	Room   RoomAddr    `json:"room"`
	Sender SenderRef   `json:"sender"`
	Source BlockSource `json:"source"`
	// Reason is what the failed list and the sender read ("banned from
	// #room on libera").
	Reason string `json:"reason"`
	// By is who decided, as their network names them ("" if unknown).
	By    string    `json:"by,omitempty"`
	Since time.Time `json:"since"`
}

// Key is what tells one block from another: a room, a sender and a source.
func (b Block) Key() BlockKey { return BlockKey{Room: b.Room, Sender: b.Sender, Source: b.Source} }

// BlockKey identifies a block.
type BlockKey struct {
	Room   RoomAddr
	Sender SenderRef
	Source BlockSource
}

// Blocker is implemented by the router, behind the Inbound adapters are
// given: adapters report there what a room decided about a bridged
// sender (a ban or kick of their puppet, and its lifting).
type Blocker interface {
	// Block keeps b.Sender out of b.Room from now on. Blocking again
	// updates the reason and keeps the first Since.
	Block(ctx context.Context, b Block) error
	// Unblock lifts one block; it reports whether there was one.
	Unblock(ctx context.Context, key BlockKey) (bool, error)
}

// BlockStore is implemented by stores that keep blocks across restarts.
type BlockStore interface {
	SaveBlock(ctx context.Context, b Block) error
	DeleteBlock(ctx context.Context, key BlockKey) error
	LoadBlocks(ctx context.Context) ([]Block, error)
}

// blockState is a block with whether its sender has been told.
type blockState struct {
	Block
	told bool
}

// Block implements Blocker.
func (r *Router) Block(ctx context.Context, b Block) error {
	if b.Room.Network == "" || b.Room.Room == "" || b.Sender.Network == "" || b.Sender.ID == "" || b.Source == "" {
		return fmt.Errorf("block: room, sender and source are required (%+v)", b)
	}
	if b.Since.IsZero() {
		b.Since = time.Now().UTC()
	}
	if err := r.block(ctx, b); err != nil {
		return err
	}
	r.blocksChanged()
	return nil
}

func (r *Router) block(ctx context.Context, b Block) error {
	r.blockMu.Lock()
	defer r.blockMu.Unlock()
	if old, ok := r.blocks[b.Key()]; ok {
		b.Since = old.Since
	}
	if bs, ok := r.store.(BlockStore); ok {
		if err := bs.SaveBlock(ctx, b); err != nil {
			return fmt.Errorf("block %s in %s: %w", b.Sender, b.Room, err)
		}
	}
	r.blocks[b.Key()] = &blockState{Block: b}
	r.log.Info("sender blocked from a room", "room", b.Room.String(), "sender", b.Sender.String(), "source", b.Source, "by", b.By, "reason", b.Reason)
	return nil
}

// blocksChanged tells OnBlocksChanged, if set, after the lock is let go.
func (r *Router) blocksChanged() {
	if r.OnBlocksChanged != nil {
		r.OnBlocksChanged()
	}
}

// Unblock implements Blocker.
func (r *Router) Unblock(ctx context.Context, key BlockKey) (bool, error) {
	lifted, err := r.unblock(ctx, key)
	if lifted {
		r.blocksChanged()
	}
	return lifted, err
}

func (r *Router) unblock(ctx context.Context, key BlockKey) (bool, error) {
	r.blockMu.Lock()
	defer r.blockMu.Unlock()
	if _, ok := r.blocks[key]; !ok {
		return false, nil
	}
	if bs, ok := r.store.(BlockStore); ok {
		if err := bs.DeleteBlock(ctx, key); err != nil {
			return false, fmt.Errorf("unblock %s in %s: %w", key.Sender, key.Room, err)
		}
	}
	delete(r.blocks, key)
	r.log.Info("sender let into a room again", "room", key.Room.String(), "sender", key.Sender.String(), "source", key.Source)
	return true, nil
}

// Blocks lists the blocks of one room, or of every room if room is zero,
// oldest first.
func (r *Router) Blocks(room RoomAddr) []Block {
	r.blockMu.Lock()
	var out []Block
	for _, b := range r.blocks {
		if room == (RoomAddr{}) || b.Room == room {
			out = append(out, b.Block)
		}
	}
	r.blockMu.Unlock()
	slices.SortFunc(out, func(a, b Block) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		return strings.Compare(a.Sender.String(), b.Sender.String())
	})
	return out
}

// loadBlocks reads the blocks kept in the store.
func (r *Router) loadBlocks(ctx context.Context) error { return r.ReloadBlocks(ctx) }

// ReloadBlocks puts the blocks kept in the store in place of those in
// memory: another instance sharing the store (cluster mode) made or
// lifted some. Whether a sender was told of a block that stays is kept.
func (r *Router) ReloadBlocks(ctx context.Context) error {
	bs, ok := r.store.(BlockStore)
	if !ok {
		return nil
	}
	// Read under the lock: a block made here meanwhile is either in what
	// is read or made after it is in place, never undone by it.
	r.blockMu.Lock()
	defer r.blockMu.Unlock()
	blocks, err := bs.LoadBlocks(ctx)
	if err != nil {
		return fmt.Errorf("read blocks: %w", err)
	}
	next := make(map[BlockKey]*blockState, len(blocks))
	added := 0
	for _, b := range blocks {
		st := &blockState{Block: b}
		if old, ok := r.blocks[b.Key()]; ok {
			st.told = old.told
		} else {
			added++
		}
		next[b.Key()] = st
	}
	if lifted := len(r.blocks) + added - len(next); added > 0 || lifted > 0 {
		r.log.Info("blocks read from the store", "blocks", len(next), "new", added, "lifted", lifted)
	}
	r.blocks = next
	return nil
}

// blocked returns the block that keeps the sender of ev out of room, and
// whether the sender is yet to be told of it (then they are, from now on,
// counted as told). A person is kept out by a block of the account they
// wrote from and by one of their puppet, which speaks for them from any
// account: writing from another account never gets around it.
func (r *Router) blocked(room RoomAddr, ev Event) (b Block, tell, ok bool) {
	sender := ev.Head().Sender
	refs := []SenderRef{sender.Ref()}
	if sender.Person != "" {
		refs = append(refs, sender.BlockRef())
	}
	r.blockMu.Lock()
	defer r.blockMu.Unlock()
	if len(r.blocks) == 0 {
		return Block{}, false, false
	}
	for _, s := range refs {
		for _, src := range blockSources {
			if st, ok := r.blocks[BlockKey{Room: room, Sender: s, Source: src}]; ok {
				tell = !st.told
				st.told = true
				return st.Block, tell, true
			}
		}
	}
	return Block{}, false, false
}

// keepsOut reports whether a block keeps ev out of its room: what a
// sender says or does there. A deletion of their own earlier message is
// let through (it takes something away); a leave too, so their puppet
// does not linger.
func keepsOut(ev Event) bool {
	switch ev.(type) {
	case *Delete, *Leave:
		return false
	}
	return true
}

// refuseBlocked fails a delivery that a block keeps out: a message, edit
// or reaction goes to the failed list with the block's reason, and the
// sender is told once; anything else (typing, a join) is dropped.
func (r *Router) refuseBlocked(item Queued, b Block, tell bool) (string, error) {
	switch item.Event.(type) {
	case *Message, *Edit, *Reaction:
	default:
		return "", nil
	}
	if tell {
		r.tellBlocked(item, b)
	}
	return "", Permanent(fmt.Errorf("%w: %s", ErrBlocked, b.Reason))
}

// ErrBlocked is wrapped by the failure of a delivery that a block keeps
// out of its room.
var ErrBlocked = errors.New("sender blocked from the room")

// tellBlocked lets a blocked sender know, once, through the bot of their
// own network (privately where it has direct messages, else in the room
// they spoke in).
func (r *Router) tellBlocked(item Queued, b Block) {
	h := item.Event.Head()
	room := h.Origin.Room
	if h.To != nil {
		room = ""
	}
	r.tellBot(h.Origin.Network, room, h.Sender.ID, fmt.Sprintf("Your messages no longer reach %s (%s): %s.", b.Room.Room, b.Room.Network, b.Reason))
}

// BlockLister is implemented by the router, behind the Inbound adapters
// are given, next to Blocker: the blocks of one room (of every room if
// room is zero), for an adapter that must tell which of them a lifted
// ban ends.
type BlockLister interface {
	Blocks(room RoomAddr) []Block
}

var _ BlockLister = (*Router)(nil)
