package chatcmd

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
)

// blockKeeper is what the block commands need of the router behind them.
type blockKeeper interface {
	bridge.Blocker
	// Blocks lists a room's blocks, oldest first.
	Blocks(room bridge.RoomAddr) []bridge.Block
}

// maxBlockLines bounds the answer to "!sb blocks": a chat room is no
// place for a long list; /api/status has them all.
const maxBlockLines = 15

func (c *Commands) blockKeeper() (blockKeeper, bool) {
	bk, ok := c.next.(blockKeeper)
	return bk, ok
}

// blockArgs parses the one sender argument of block and unblock (after
// the room, by direct message).
func (c *Commands) blockArgs(ctx context.Context, req request, args []string, verb string) (bridge.RoomAddr, bridge.SenderRef, string) {
	usage := fmt.Sprintf("!sb %s <sender>", verb)
	if req.direct {
		usage = fmt.Sprintf("!sb %s <network:room> <sender>", verb)
	}
	here, args, msg := c.target(req, args, usage)
	if msg != "" {
		return here, bridge.SenderRef{}, msg
	}
	if len(args) == 0 {
		return here, bridge.SenderRef{}, fmt.Sprintf(`Usage: "%s", the sender as network:id (e.g. devices:sensor-1) or by their puppet's name in the room. Say "!sb help" for the commands.`, usage)
	}
	// The rest of the line: a puppet's name may have spaces in it (an
	// XMPP occupant nick "sensor-1 (devices)").
	s, msg := c.resolveSender(ctx, here, strings.Join(args, " "))
	return here, s, msg
}

// resolveSender reads who a block command names: network:id of a
// configured network, else the name of a puppet in room, which only the
// adapter of the room's network can tell (bridge.PuppetResolver). A
// sender of the room's own network is not for Switchboard to keep out:
// the room's own ban does that.
func (c *Commands) resolveSender(ctx context.Context, room bridge.RoomAddr, name string) (bridge.SenderRef, string) {
	var s bridge.SenderRef
	if netName, id, ok := strings.Cut(name, ":"); ok && id != "" {
		if _, known := c.network(netName); known {
			s = bridge.SenderRef{Network: netName, ID: id}
		}
	}
	if s.Network == "" {
		n, _ := c.network(room.Network)
		found := false
		if n.puppets != nil {
			s, found = n.puppets.PuppetSender(ctx, room.Room, name)
		}
		if !found {
			return s, fmt.Sprintf(`No one bridged into %s is named %q. Name a sender as network:id (networks: %s), e.g. devices:sensor-1, or by their puppet's name in the room.`, room, name, strings.Join(c.networkNames(), ", "))
		}
	}
	if s.Network == room.Network {
		return s, fmt.Sprintf("%s is of %s's own network: Switchboard keeps out senders of other networks; use the room's own ban for them.", s, room)
	}
	return s, ""
}

// actor is who gave a command, for a block's By and Reason.
func actor(h *bridge.Header) (by, name string) {
	name = h.Sender.Name
	if name == "" {
		name = h.Sender.ID
	}
	return h.Sender.Ref().String(), name
}

func (c *Commands) cmdBlock(ctx context.Context, req request, args []string) []string {
	bk, ok := c.blockKeeper()
	if !ok {
		return []string{"Blocks are not kept here."}
	}
	here, s, msg := c.blockArgs(ctx, req, args, "block")
	if msg != "" {
		return []string{msg}
	}
	key := bridge.BlockKey{Room: here, Sender: s, Source: bridge.BlockOperator}
	for _, b := range bk.Blocks(here) {
		if b.Key() == key {
			return []string{fmt.Sprintf("%s is already blocked from %s (%s, since %s).", s, here, b.Reason, stamp(b.Since))}
		}
	}
	by, name := actor(req.msg.Head())
	b := bridge.Block{
		Room: here, Sender: s, Source: bridge.BlockOperator, By: by,
		Reason: fmt.Sprintf("blocked from %s on %s by %s", here.Room, here.Network, name),
	}
	if err := bk.Block(ctx, b); err != nil {
		c.log.Error("chat command: block failed", "room", here.String(), "sender", s.String(), "by", by, "err", err)
		return []string{fmt.Sprintf("Could not block %s: %v", s, err)}
	}
	return []string{fmt.Sprintf(`Blocked %s from %s: nothing of theirs is bridged here, by puppet or by the bot, until "!sb unblock %s".`, s, here, s)}
}

func (c *Commands) cmdUnblock(ctx context.Context, req request, args []string) []string {
	bk, ok := c.blockKeeper()
	if !ok {
		return []string{"Blocks are not kept here."}
	}
	here, s, msg := c.blockArgs(ctx, req, args, "unblock")
	if msg != "" {
		return []string{msg}
	}
	// An operator lifts what operators decided, and a kick that keeps a
	// sender out until someone does; a ban is lifted where it was set.
	var lifted []string
	var bans []string
	for _, b := range bk.Blocks(here) {
		if b.Sender != s {
			continue
		}
		if b.Source == bridge.BlockBan {
			bans = append(bans, b.Reason)
			continue
		}
		if _, err := bk.Unblock(ctx, b.Key()); err != nil {
			c.log.Error("chat command: unblock failed", "room", here.String(), "sender", s.String(), "err", err)
			return []string{fmt.Sprintf("Could not unblock %s: %v", s, err)}
		}
		lifted = append(lifted, string(b.Source))
	}
	var lines []string
	switch {
	case len(lifted) > 0 && len(bans) == 0:
		lines = append(lines, fmt.Sprintf("Unblocked %s in %s: their messages are bridged here again.", s, here))
	case len(lifted) > 0:
		lines = append(lines, fmt.Sprintf("Lifted the %s block of %s in %s.", strings.Join(lifted, " and "), s, here))
	case len(bans) == 0:
		lines = append(lines, fmt.Sprintf("%s is not blocked from %s.", s, here))
	}
	if len(bans) > 0 {
		lines = append(lines, fmt.Sprintf("%s is still kept out of %s: %s. Lift the ban in the room to let them in.", s, here, strings.Join(bans, "; ")))
	}
	return lines
}

func (c *Commands) cmdBlocks(req request, args []string) []string {
	bk, ok := c.blockKeeper()
	if !ok {
		return []string{"Blocks are not kept here."}
	}
	usage := "!sb blocks"
	if req.direct {
		usage = "!sb blocks <network:room>"
	}
	here, args, msg := c.target(req, args, usage)
	switch {
	case msg != "":
		return []string{msg}
	case len(args) != 0:
		return []string{fmt.Sprintf(`Usage: "%s". Say "!sb help" for the commands.`, usage)}
	}
	blocks := bk.Blocks(here)
	if len(blocks) == 0 {
		return []string{fmt.Sprintf("No one is blocked from %s.", here)}
	}
	lines := []string{fmt.Sprintf("%d blocked from %s:", len(blocks), here)}
	for i, b := range blocks {
		if i == maxBlockLines {
			lines = append(lines, fmt.Sprintf("... and %d more (see /api/status).", len(blocks)-i))
			break
		}
		line := fmt.Sprintf("%s: %s (%s", b.Sender, b.Reason, b.Source)
		if b.By != "" {
			line += ", by " + b.By
		}
		lines = append(lines, line+", since "+stamp(b.Since)+")")
	}
	return lines
}

// stamp is a time as the answers show it.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 MST") }
