package bridge_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// A blocked sender's messages to one room go to the failed list with the
// block's reason, in every mode; the sender hears of it once, from the
// bot of their own network, in the room they spoke in; other rooms and
// other senders are untouched; lifting the block lets the next message
// through; and a block outlives a restart.
func TestBlockedSenderKeptOutOfOneRoom(t *testing.T) {
	dir := t.TempDir()
	irc := botDirect{directPlain{newPlain()}, make(chan string, 8)}
	mqtt, matrix := newPlain(), rich{newPlain()}
	nets := map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt, "matrix": matrix}
	f := newFixture(t, dir, nets)
	ctx := context.Background()
	room := bridge.RoomAddr{Network: "mqtt", Room: "chat/lobby"}
	key := bridge.BlockKey{Room: room, Sender: bridge.SenderRef{Network: "irc", ID: "spammer"}, Source: bridge.BlockBan}
	if err := f.router.Block(ctx, bridge.Block{Room: room, Sender: key.Sender, Source: key.Source, Reason: "banned from chat/lobby on mqtt", By: "op"}); err != nil {
		t.Fatal(err)
	}

	accept(t, f.router, msg("irc", "#lobby", "spammer", "s1", "buy now"))
	accept(t, f.router, msg("irc", "#lobby", "spammer", "s2", "buy more"))
	accept(t, f.router, msg("irc", "#lobby", "alice", "a1", "hello"))
	if got := texts(mqtt.waitRoom(t, "chat/lobby", 1)); strings.Join(got, "|") != "hello" {
		t.Errorf("the blocked room got %q, want only alice's hello", got)
	}
	// Two senders' lanes: each in its own order, the two in either.
	if got := texts(matrix.waitRoom(t, "!lobby", 3)); strings.Join(without(got, "hello"), "|") != "buy now|buy more" || len(got) != 3 {
		t.Errorf("another room got %q, want everything", got)
	}
	failed := settledFailed(t, f)
	if len(failed) != 2 || failed[0].Target != room || !strings.Contains(failed[0].Reason, "banned from chat/lobby on mqtt") {
		t.Fatalf("failed list %+v, want spammer's two messages to %s with the reason", failed, room)
	}
	if got, want := toldOnce(t, irc.said), "|spammer|Your messages no longer reach chat/lobby (mqtt): banned from chat/lobby on mqtt."; got != want {
		t.Errorf("the bot told %q, want %q", got, want)
	}
	if bs := f.router.Blocks(room); len(bs) != 1 || bs[0].By != "op" || bs[0].Since.IsZero() {
		t.Errorf("blocks of the room: %+v", bs)
	}

	// Kept across a restart.
	f.stop()
	mqtt2 := newPlain()
	nets["mqtt"] = mqtt2
	f = newFixture(t, dir, nets)
	accept(t, f.router, msg("irc", "#lobby", "spammer", "s3", "still here"))
	accept(t, f.router, msg("irc", "#lobby", "alice", "a2", "after"))
	// spammer's lane may still hold "still here": settled before the
	// block is lifted, or it would go out after.
	f.waitDepth(t, 0)
	if got := texts(mqtt2.waitRoom(t, "chat/lobby", 1)); strings.Join(got, "|") != "after" {
		t.Errorf("after a restart the blocked room got %q, want only alice's", got)
	}

	// Lifted: the next message flows.
	if ok, err := f.router.Unblock(ctx, key); !ok || err != nil {
		t.Fatalf("unblock: %v %v", ok, err)
	}
	if ok, _ := f.router.Unblock(ctx, key); ok {
		t.Error("unblocked twice")
	}
	accept(t, f.router, msg("irc", "#lobby", "spammer", "s4", "sorry"))
	if got := texts(mqtt2.waitRoom(t, "chat/lobby", 2)); strings.Join(without(got, "after"), "|") != "sorry" || len(got) != 2 {
		t.Errorf("after the block was lifted the room got %q", got)
	}
	f.stop()
	f = newFixture(t, dir, nets)
	if bs := f.router.Blocks(bridge.RoomAddr{}); len(bs) != 0 {
		t.Errorf("a lifted block came back after a restart: %+v", bs)
	}
	if err := f.router.Block(ctx, bridge.Block{Room: room}); err == nil {
		t.Error("a block without sender or source was taken")
	}
}

// An adapter that finds out about a ban only when it delivers (the
// puppet's join is refused) reports the block and fails the delivery
// with ErrBlocked: the message is on the failed list, the sender is told
// once, and their next message is kept out by the router itself.
func TestBlockFoundByAdapterToldOnce(t *testing.T) {
	irc := botDirect{directPlain{newPlain()}, make(chan string, 8)}
	mqtt := newPlain()
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt, "matrix": rich{newPlain()}})
	ctx := context.Background()
	room := bridge.RoomAddr{Network: "mqtt", Room: "chat/lobby"}
	reason := "banned from chat/lobby on mqtt"
	mqtt.setFail(func(d *bridge.Delivery) error {
		if d.Event.Head().Sender.ID != "spammer" {
			return nil
		}
		b := bridge.Block{Room: room, Sender: d.Event.Head().Sender.Ref(), Source: bridge.BlockBan, Reason: reason}
		if err := f.router.Block(ctx, b); err != nil {
			return err
		}
		return bridge.Permanent(fmt.Errorf("%w: %s", bridge.ErrBlocked, reason))
	})
	accept(t, f.router, msg("irc", "#lobby", "spammer", "s1", "buy now"))
	accept(t, f.router, msg("irc", "#lobby", "spammer", "s2", "buy more"))
	accept(t, f.router, msg("irc", "#lobby", "alice", "a1", "hello"))
	if got := texts(mqtt.waitRoom(t, "chat/lobby", 1)); strings.Join(got, "|") != "hello" {
		t.Errorf("the room got %q, want only alice's hello", got)
	}
	failed := settledFailed(t, f)
	if len(failed) != 2 || !strings.Contains(failed[0].Reason, reason) || !strings.Contains(failed[1].Reason, reason) {
		t.Fatalf("failed list %+v", failed)
	}
	if got := toldOnce(t, irc.said); !strings.Contains(got, reason) {
		t.Errorf("the bot told %q", got)
	}
	mqtt.mu.Lock()
	calls := mqtt.calls
	mqtt.mu.Unlock()
	if calls != 2 {
		t.Errorf("the adapter was asked %d times, want 2: spammer's second message is the router's to refuse", calls)
	}
}

// settledFailed is the failed list once the outbox is empty.
func settledFailed(t *testing.T, f *fixture) []bridge.FailedDelivery {
	t.Helper()
	f.waitDepth(t, 0)
	failed, err := f.store.FailedDeliveries(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	return failed
}

// toldOnce is what the bot told the blocked sender, who must be told
// exactly once.
func toldOnce(t *testing.T, said <-chan string) string {
	t.Helper()
	var got string
	select {
	case got = <-said:
	case <-time.After(5 * time.Second):
		t.Fatal("the blocked sender was never told")
	}
	select {
	case again := <-said:
		t.Errorf("told twice: %q", again)
	case <-time.After(100 * time.Millisecond):
	}
	return got
}

// without is texts less one of them.
func without(texts []string, drop string) []string {
	var out []string
	for _, t := range texts {
		if t != drop {
			out = append(out, t)
		}
	}
	return out
}

// Blocks made and lifted by one router reach another that shares the
// store when it reloads them (cluster mode: another instance): the
// other keeps the sender out, tells them once however often it reloads,
// and lets them in again once the block is lifted. Only Block and
// Unblock tell OnBlocksChanged, not a reload.
func TestReloadBlocksFromSharedStore(t *testing.T) {
	dsn := testenv.Postgres(t)
	ctx := context.Background()
	maker := newFixtureDSN(t, dsn, t.TempDir(), map[string]bridge.MessageSender{})
	var changes atomic.Int32
	maker.router.OnBlocksChanged = func() { changes.Add(1) }
	irc := botDirect{directPlain{newPlain()}, make(chan string, 8)}
	mqtt := newPlain()
	holder := newFixtureDSN(t, dsn, t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": mqtt, "matrix": rich{newPlain()}})
	room := bridge.RoomAddr{Network: "mqtt", Room: "chat/lobby"}
	key := bridge.BlockKey{Room: room, Sender: bridge.SenderRef{Network: "irc", ID: "spammer"}, Source: bridge.BlockOperator}

	if err := maker.router.Block(ctx, bridge.Block{Room: room, Sender: key.Sender, Source: key.Source, Reason: "blocked from chat/lobby on mqtt by op"}); err != nil {
		t.Fatal(err)
	}
	if n := changes.Load(); n != 1 {
		t.Errorf("OnBlocksChanged told %d times after a block, want 1", n)
	}
	if bs := holder.router.Blocks(room); len(bs) != 0 {
		t.Fatalf("the other router has blocks before reloading: %+v", bs)
	}
	if err := holder.router.ReloadBlocks(ctx); err != nil {
		t.Fatal(err)
	}
	if bs := holder.router.Blocks(room); len(bs) != 1 || bs[0].Key() != key {
		t.Fatalf("after a reload the other router's blocks are %+v", bs)
	}
	accept(t, holder.router, msg("irc", "#lobby", "spammer", "s1", "buy now"))
	if failed := settledFailed(t, holder); len(failed) != 1 || !strings.Contains(failed[0].Reason, "by op") {
		t.Fatalf("failed list %+v, want spammer's message with the block's reason", failed)
	}
	toldOnce(t, irc.said)
	if err := holder.router.ReloadBlocks(ctx); err != nil {
		t.Fatal(err)
	}
	accept(t, holder.router, msg("irc", "#lobby", "spammer", "s2", "buy more"))
	holder.waitDepth(t, 0)
	select {
	case again := <-irc.said:
		t.Errorf("told again after a reload: %q", again)
	case <-time.After(100 * time.Millisecond):
	}

	if ok, err := maker.router.Unblock(ctx, key); !ok || err != nil {
		t.Fatalf("unblock: %v %v", ok, err)
	}
	if err := maker.router.ReloadBlocks(ctx); err != nil {
		t.Fatal(err)
	}
	if n := changes.Load(); n != 2 {
		t.Errorf("OnBlocksChanged told %d times after a block, an unblock and a reload, want 2", n)
	}
	if err := holder.router.ReloadBlocks(ctx); err != nil {
		t.Fatal(err)
	}
	accept(t, holder.router, msg("irc", "#lobby", "spammer", "s3", "sorry"))
	if got := texts(mqtt.waitRoom(t, "chat/lobby", 1)); strings.Join(got, "|") != "sorry" {
		t.Errorf("after the block was lifted elsewhere the room got %q, want sorry", got)
	}
}
