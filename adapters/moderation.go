package adapters

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
)

// Moderation reports what a room decided about the puppet of a foreign
// sender (a ban, a kick, and their lifting) to the bridge, which keeps
// that sender out of the room while it stands (see bridge.Blocker). Each
// adapter knows its puppets and which sender each speaks for; this is
// what they share. The zero value reports nothing.
type Moderation struct {
	Network string
	// KickBlocks keeps a kicked sender out until an operator lets them in
	// (the network's kick_blocks); else a kick only makes the puppet leave.
	KickBlocks bool
	Log        *slog.Logger
	in         bridge.Inbound

	mu   sync.Mutex
	todo []func(context.Context) error
	wake chan struct{}
}

// NewModeration is the moderation reporter of a network whose adapter
// was given in at Start.
func NewModeration(network string, kickBlocks bool, in bridge.Inbound, log *slog.Logger) *Moderation {
	if log == nil {
		log = slog.Default()
	}
	return &Moderation{Network: network, KickBlocks: kickBlocks, Log: log, in: in, wake: make(chan struct{}, 1)}
}

// BanReason is what a ban's refused deliveries say, on the failed list
// and to the sender: "banned from #room on libera".
func BanReason(network, room string) string {
	return fmt.Sprintf("banned from %s on %s", room, network)
}

// Banned reports that room banned the puppet of sender; by is who did,
// as the room's network names them.
func (m *Moderation) Banned(ctx context.Context, room string, sender bridge.SenderRef, by string) error {
	return m.report(ctx, bridge.Block{
		Room: bridge.RoomAddr{Network: m.Network, Room: room}, Sender: sender,
		Source: bridge.BlockBan, Reason: BanReason(m.Network, room), By: by,
	})
}

// Kicked reports that room kicked the puppet of sender; it blocks only
// on a network set to keep kicked senders out (KickBlocks), and reports
// whether it did.
func (m *Moderation) Kicked(ctx context.Context, room string, sender bridge.SenderRef, by string) (bool, error) {
	if m == nil || !m.KickBlocks {
		return false, nil
	}
	return true, m.report(ctx, bridge.Block{
		Room: bridge.RoomAddr{Network: m.Network, Room: room}, Sender: sender,
		Source: bridge.BlockKick, Reason: fmt.Sprintf("kicked from %s on %s", room, m.Network), By: by,
	})
}

// Unbanned reports that room lifted its ban of sender's puppet.
func (m *Moderation) Unbanned(ctx context.Context, room string, sender bridge.SenderRef, by string) error {
	bl := m.blocker()
	if bl == nil {
		return nil
	}
	key := bridge.BlockKey{Room: bridge.RoomAddr{Network: m.Network, Room: room}, Sender: sender, Source: bridge.BlockBan}
	had, err := bl.Unblock(ctx, key)
	if err != nil {
		return err
	}
	if had {
		m.Log.Info("ban lifted", "room", room, "sender", sender.String(), "by", by)
	}
	return nil
}

// Bans lists the senders room keeps out by a ban, as far as the bridge
// knows (nil if it cannot tell): a lifted ban whose puppet is gone (the
// adapter restarted) can only be matched against these.
func (m *Moderation) Bans(room string) []bridge.SenderRef {
	bl, ok := m.blocker().(bridge.BlockLister)
	if !ok {
		return nil
	}
	var out []bridge.SenderRef
	for _, b := range bl.Blocks(bridge.RoomAddr{Network: m.Network, Room: room}) {
		if b.Source == bridge.BlockBan {
			out = append(out, b.Sender)
		}
	}
	return out
}

func (m *Moderation) blocker() bridge.Blocker {
	if m == nil {
		return nil
	}
	bl, _ := m.in.(bridge.Blocker)
	return bl
}

func (m *Moderation) report(ctx context.Context, b bridge.Block) error {
	bl := m.blocker()
	if bl == nil {
		return nil
	}
	if err := bl.Block(ctx, b); err != nil {
		return err
	}
	m.Log.Info("puppet's sender kept out of a room", "room", b.Room.Room, "sender", b.Sender.String(), "source", b.Source, "by", b.By)
	return nil
}

// Refusal is the error of a delivery that a ban refused: it goes to the
// failed list with the ban's reason, and is never relayed another way.
func Refusal(network, room string) error {
	return bridge.Permanent(fmt.Errorf("%w: %s", bridge.ErrBlocked, BanReason(network, room)))
}

// Post queues report to run in the background, after those posted
// before it: a protocol read loop must not wait on the store, and a ban
// and its lifting must reach the bridge in the order they were made.
// Run must be running.
func (m *Moderation) Post(report func(context.Context) error) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.todo = append(m.todo, report)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Run runs what is posted until ctx ends.
func (m *Moderation) Run(ctx context.Context) {
	for {
		m.mu.Lock()
		todo := m.todo
		m.todo = nil
		m.mu.Unlock()
		for _, report := range todo {
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			if err := report(rctx); err != nil && ctx.Err() == nil {
				m.Log.Warn("cannot report a ban or kick to the bridge", "network", m.Network, "err", err)
			}
			cancel()
		}
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		}
	}
}
