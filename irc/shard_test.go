package irc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// shardedNet is netConfig with shards: 2, connecting from src.
func shardedNet(srv *testenv.IRCServer, src string) *config.Network {
	n := netConfig(srv, "puppet")
	c := n.Section.(*Config)
	c.Shards, c.SourceAddress = 2, src
	return n
}

// senderOfShard is a Matrix sender whose messages shard k delivers.
func senderOfShard(t testing.TB, a *Adapter, k int) *bridge.Message {
	t.Helper()
	for i := range 100 {
		m := message("matrix", fmt.Sprintf("@u%d:hs", i), fmt.Sprintf("u%d", i), "")
		if a.ShardOf(m, false) == k {
			return m
		}
	}
	t.Fatalf("no sender of shard %d", k)
	return nil
}

func say(m *bridge.Message, text string) *bridge.Message {
	c := *m
	c.ID, c.Text = bridge.NewEventID(), text
	return &c
}

// hostOf is the host of the line's source, the address the server saw.
func hostOf(l testenv.IRCLine) string {
	_, host, _ := strings.Cut(l.Source, "@")
	return host
}

// Two adapters on one network with shards: 2, as two instances of a
// cluster: each shard's senders speak through puppets of the adapter
// holding it, from its source address; only shard 0's bot is in the
// channel and bridges it; a delivery handed to the wrong adapter fails
// retryably and sends nothing; once B is gone, A takes its shard.
func TestShardsSpreadPuppetsOverInstances(t *testing.T) {
	srv := testenv.InspIRCd(t)
	alice := srv.Client(t, "alice")
	alice.Join("#lobby")
	a := startAdapter(t, shardedNet(srv, "127.0.0.2"), func(a *Adapter) { a.HoldShards([]int{0}, nil) }, "#lobby")
	b := startAdapter(t, shardedNet(srv, "127.0.0.3"), func(a *Adapter) { a.HoldShards([]int{1}, nil) }, "#lobby")
	m0, m1 := senderOfShard(t, a.Adapter, 0), senderOfShard(t, a.Adapter, 1)

	a.send(t, say(m0, "zero via A"), "#lobby")
	b.send(t, say(m1, "one via B"), "#lobby")
	l0 := alice.WaitText(waitFor, "#lobby", "", "zero via A")
	l1 := alice.WaitText(waitFor, "#lobby", "", "one via B")
	if h0, h1 := hostOf(l0), hostOf(l1); h0 != "127.0.0.2" || h1 != "127.0.0.3" {
		t.Errorf("puppets connected from %s (A) and %s (B), want 127.0.0.2 and 127.0.0.3", h0, h1)
	}

	// Each adapter refuses the other's shard, retryably, saying nothing.
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := b.Send(ctx, delivery(say(m0, "zero via B"), "#lobby")); !errors.Is(err, bridge.ErrNotConnected) {
		t.Errorf("B sent shard 0's message: %v", err)
	}
	if _, err := a.Send(ctx, delivery(say(m1, "one via A"), "#lobby")); !errors.Is(err, bridge.ErrNotConnected) {
		t.Errorf("A sent shard 1's message: %v", err)
	}
	if err := b.SendAsBot(ctx, "#lobby", "", "B's bot"); !errors.Is(err, bridge.ErrNotConnected) {
		t.Errorf("B's bot spoke: %v", err)
	}

	// One bot, A's; a line in the channel reaches A alone.
	names := alice.Names(waitFor, "#lobby")
	if !slices.Contains(names, "bridge") || len(names) != 4 {
		t.Errorf("channel members %v, want alice, bridge and two puppets", names)
	}
	alice.Say("#lobby", "hello both")
	a.rec.wait(t, "alice's line on A", func(ev bridge.Event) bool { return textOfEvent(ev) == "hello both" })
	time.Sleep(300 * time.Millisecond)
	for _, ev := range b.rec.all() {
		t.Errorf("B bridged %s %+v", ev.Kind(), ev)
	}
	for _, ev := range a.rec.all() {
		if ev.Head().Sender.Name == l1.Nick() {
			t.Errorf("A bridged B's puppet: %s %+v", ev.Kind(), ev)
		}
	}
	for _, l := range alice.Messages(nil) {
		if strings.Contains(l.Text(), "via B") && l.Text() != "one via B" || strings.Contains(l.Text(), "one via A") || strings.Contains(l.Text(), "B's bot") {
			t.Errorf("alice saw %q from %s", l.Text(), l.Nick())
		}
	}

	// B stops (its shard's lease passes to A): A holds both, and shard
	// 1's sender speaks through a puppet of A's, from A's address.
	mark := alice.Len()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := b.Stop(sctx); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.WaitFrom(mark, waitFor, func(l testenv.IRCLine) bool { return l.Command == "QUIT" && l.Nick() == l1.Nick() }); err != nil {
		t.Fatalf("B's puppet did not quit: %v", err)
	}
	a.HoldShards([]int{0, 1}, nil)
	a.send(t, say(m1, "one via A now"), "#lobby")
	l := alice.WaitText(waitFor, "#lobby", "", "one via A now")
	if l.Nick() != l1.Nick() || hostOf(l) != "127.0.0.2" {
		t.Errorf("after the move shard 1 spoke as %s from %s, want %s from 127.0.0.2", l.Nick(), hostOf(l), l1.Nick())
	}
}

// HoldShards on a running adapter: a shard let go quits its puppets, a
// shard whose fence closes has nothing more written by its puppets, and
// without shard 0 the bot quits (the adapter stays up) until it is held
// again.
func TestHoldShardsLetsGoOfPuppetsAndBot(t *testing.T) {
	srv := testenv.InspIRCd(t)
	alice := srv.Client(t, "alice")
	alice.Join("#lobby")
	a := startAdapter(t, shardedNet(srv, ""), nil, "#lobby")
	m0, m1 := senderOfShard(t, a.Adapter, 0), senderOfShard(t, a.Adapter, 1)
	a.send(t, say(m0, "zero"), "#lobby")
	a.send(t, say(m1, "one"), "#lobby")
	l0, l1 := alice.WaitText(waitFor, "#lobby", "", "zero"), alice.WaitText(waitFor, "#lobby", "", "one")
	p0, p1 := l0.Nick(), l1.Nick()
	quits := func(nick string) {
		t.Helper()
		if _, err := alice.Wait(waitFor, func(l testenv.IRCLine) bool { return l.Command == "QUIT" && l.Nick() == nick }); err != nil {
			t.Fatalf("%s did not quit: %v", nick, err)
		}
	}

	// Shard 1's lease about to pass: its puppet writes nothing more.
	var fenced atomic.Bool
	a.HoldShards([]int{0, 1}, func(k int) bool { return k != 1 || !fenced.Load() })
	fenced.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := a.Send(ctx, delivery(say(m1, "fenced"), "#lobby")); err == nil {
		t.Error("a fenced puppet's message was confirmed")
	}
	quits(p1)

	// Without shard 0: the bot quits, the adapter stays connected and
	// shard 1 speaks (from a new puppet: the fence is open again).
	a.HoldShards([]int{1}, nil)
	quits("bridge")
	quits(p0)
	if !a.Connected() {
		t.Error("adapter without shard 0 reports not connected")
	}
	a.send(t, say(m1, "one again"), "#lobby")
	alice.WaitText(waitFor, "#lobby", p1, "one again")

	// Shard 0 back: the bot joins again, and shard 1 is let go.
	mark := alice.Len()
	a.HoldShards([]int{0}, nil)
	if _, err := alice.WaitFrom(mark, waitFor, func(l testenv.IRCLine) bool { return l.Command == "JOIN" && l.Nick() == "bridge" }); err != nil {
		t.Fatalf("the bot did not come back: %v", err)
	}
	if _, err := alice.WaitFrom(mark, waitFor, func(l testenv.IRCLine) bool { return l.Command == "QUIT" && l.Nick() == p1 }); err != nil {
		t.Fatalf("shard 1's puppet did not quit: %v", err)
	}
}

// ShardOf is a pure function of the event, the same in every release:
// a sender's shard is FNV-1a of whom they are, a person's the same from
// any account; the bot's events (relayed, room notices, topics) are
// shard 0's.
func TestShardOf(t *testing.T) {
	n := &config.Network{Type: "irc", Mode: "puppet", Section: &Config{Server: "irc.example.org:6667", Nick: "bridge", Shards: 4}}
	ad, err := New("libera", n, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := ad.(*Adapter)
	ann := message("matrix", "@ann:hs", "ann", "hi")
	// Pinned (FNV-1a 32 of "matrix\x00@ann:hs" is 1484638914): instances
	// of different releases must agree.
	if got, want := a.ShardOf(ann, false), shardFor("matrix\x00@ann:hs", 4); got != want || got != 2 {
		t.Errorf("ShardOf(ann) = %d, want %d (pinned 2)", got, want)
	}
	for i := range 50 {
		m := message("xmpp", fmt.Sprintf("u%d@example.org", i), "u", "x")
		if k := a.ShardOf(m, false); k != a.ShardOf(m, false) || k < 0 || k >= 4 {
			t.Fatalf("ShardOf unstable or out of range: %d", k)
		}
		if k := a.ShardOf(m, true); k != 0 {
			t.Errorf("a relayed message is shard %d's, want the bot's, 0", k)
		}
	}
	bob1, bob2 := message("matrix", "@bob:hs", "bob", "x"), message("xmpp", "bob@example.org", "bob", "x")
	bob1.Sender.Person, bob2.Sender.Person = "bob", "bob"
	if a.ShardOf(bob1, false) != a.ShardOf(bob2, false) || a.ShardOf(bob1, false) != a.personShard("bob") {
		t.Error("one person's accounts are in different shards")
	}
	notice := bridge.RoomNotice(bridge.RoomAddr{Network: "matrix", Room: "!r:hs"}, "enc", "now encrypted")
	topic := &bridge.Topic{Header: ann.Header, Topic: "t"}
	leave := &bridge.Leave{Header: ann.Header}
	if a.ShardOf(notice, false) != 0 || a.ShardOf(topic, false) != 0 {
		t.Error("a room notice or topic is not the bot's")
	}
	if a.ShardOf(leave, true) != a.ShardOf(ann, false) {
		t.Error("a leave is not mirrored by the sender's puppet's shard")
	}
	n.Mode = "relay"
	ad, _ = New("libera", n, nil)
	if k := ad.(*Adapter).ShardOf(ann, false); k != 0 {
		t.Errorf("relay mode: shard %d, want 0", k)
	}
}

// A topic is shard 0's (the bot sets it); where the bot may not, its
// fallback line comes from the bot too, whoever's shard the sender is.
func TestShardTopicFallbackFromTheBot(t *testing.T) {
	srv := testenv.InspIRCd(t)
	alice := srv.Client(t, "alice")
	alice.Join("#lobby") // +t, alice the only operator
	a := startAdapter(t, shardedNet(srv, ""), func(a *Adapter) { a.HoldShards([]int{0}, nil) }, "#lobby")
	m1 := senderOfShard(t, a.Adapter, 1)
	topic := &bridge.Topic{Header: m1.Header, Topic: "shards"}
	if k := a.ShardOf(topic, false); k != 0 {
		t.Fatalf("a topic is shard %d's", k)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := a.SendTopic(ctx, delivery(topic, "#lobby")); !errors.Is(err, bridge.ErrFallback) {
		t.Fatalf("SendTopic without rank: %v, want ErrFallback", err)
	}
	// What the router sends next (bridge's topicFallback).
	fb := &bridge.Message{Header: topic.Header, Text: "changed the topic to: shards", Emote: true}
	if _, err := a.Send(ctx, delivery(fb, "#lobby")); err != nil {
		t.Fatalf("fallback: %v", err)
	}
	l := alice.WaitMessage(waitFor, func(l testenv.IRCLine) bool { return strings.Contains(l.Text(), "changed the topic to: shards") })
	if l.Nick() != "bridge" {
		t.Errorf("the fallback came from %s, not the bot", l.Nick())
	}
	// Anything else of that sender's is still shard 1's.
	if _, err := a.Send(ctx, delivery(say(m1, "hi"), "#lobby")); !errors.Is(err, bridge.ErrNotConnected) {
		t.Errorf("shard 1's message on shard 0's adapter: %v", err)
	}
}

// People's own connections run only on the adapter holding their
// person's shard, and come up where it moves.
func TestShardPeopleFollowTheirShard(t *testing.T) {
	srv := testenv.InspIRCd(t)
	a := startAdapter(t, shardedNet(srv, ""), func(a *Adapter) { a.HoldShards([]int{0}, nil) })
	var in0, in1 string
	for i := 0; in0 == "" || in1 == ""; i++ {
		p := fmt.Sprintf("p%d", i)
		if a.personShard(p) == 0 {
			in0 = cmp.Or(in0, p)
		} else {
			in1 = cmp.Or(in1, p)
		}
	}
	a.UsePeople([]PersonalAccount{
		{Person: in0, Home: "matrix", ID: in0, Password: "pw"},
		{Person: in1, Home: "matrix", ID: in1, Password: "pw"},
	})
	st := a.PersonalStatus()
	if _, ok := st[in1]; ok || st[in0] == "" {
		t.Fatalf("holding shard 0, people's connections are %v; want %s's only", st, in0)
	}
	a.HoldShards([]int{1}, nil)
	st = a.PersonalStatus()
	if _, ok := st[in0]; ok || st[in1] == "" {
		t.Fatalf("holding shard 1, people's connections are %v; want %s's only", st, in1)
	}
}
