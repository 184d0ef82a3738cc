package irc

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/internal/testwait"
	"github.com/switchboard-chat/switchboard/store"
)

func histLine(msgid, nick, text string, t time.Time) *bridge.Message {
	return &bridge.Message{
		Header: bridge.Header{Origin: bridge.Origin{RemoteID: msgid}, Sender: bridge.Sender{Name: nick}, Time: t},
		Text:   text,
	}
}

// TestCursorAfter: where a playback is picked up, by msgid, else by
// time and text at InspIRCd's one-second resolution.
func TestCursorAfter(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC)
	lines := []*bridge.Message{
		histLine("m1", "alice", "one", t0),
		histLine("m2", "alice", "two", t0.Add(time.Second)),
		histLine("m3", "bob", "three", t0.Add(time.Second)),
		histLine("m4", "alice", "four", t0.Add(2*time.Second)),
	}
	noIDs := make([]*bridge.Message, len(lines))
	for i, m := range lines {
		c := *m
		c.Origin.RemoteID = ""
		noIDs[i] = &c
	}
	live := func(m *bridge.Message, ms int) cursor {
		c := cursorOf(m)
		c.Time = c.Time.Add(time.Duration(ms) * time.Millisecond) // live lines have milliseconds
		return c
	}
	for _, tc := range []struct {
		name  string
		c     cursor
		lines []*bridge.Message
		want  int
	}{
		{"by msgid", live(lines[1], 300), lines, 2},
		{"last line seen", live(lines[3], 0), lines, 4},
		{"by time and text, same second", live(noIDs[1], 300), noIDs, 2},
		{"by time and text, second line of a second", live(noIDs[2], 900), noIDs, 3},
		{"msgid gone from the playback: by time", cursor{MsgID: "m0", Time: t0.Add(1500 * time.Millisecond), Hash: lineHash(lines[2])}, lines, 3},
		{"unknown text in its second: that second bridged", cursor{Time: t0.Add(time.Second), Hash: "nope"}, noIDs, 1},
		{"link start: its second is before", cursor{Time: t0.Add(1200 * time.Millisecond)}, lines, 3},
		{"link start after everything", cursor{Time: t0.Add(time.Hour)}, lines, 4},
		{"nothing known", cursor{}, lines, 4},
	} {
		if got := tc.c.after(tc.lines); got != tc.want {
			t.Errorf("%s: after = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestCapCatchUp: catch_up keeps the latest max_messages lines, none
// older than max_age; 0 turns it off.
func TestCapCatchUp(t *testing.T) {
	now := time.Now()
	var lines []*bridge.Message
	for i := 10; i > 0; i-- {
		lines = append(lines, histLine("", "a", "x", now.Add(-time.Duration(i)*time.Minute)))
	}
	a := &Adapter{clock: realClock{}, log: testLogger(t)}
	for _, tc := range []struct {
		c    config.CatchUp
		want int
	}{
		{config.CatchUp{MaxMessages: 500, MaxAge: time.Hour}, 10},
		{config.CatchUp{MaxMessages: 3, MaxAge: time.Hour}, 3},
		{config.CatchUp{MaxMessages: 500, MaxAge: 5*time.Minute + time.Second}, 5},
		{config.CatchUp{MaxMessages: 0, MaxAge: time.Hour}, 0},
		{config.CatchUp{MaxMessages: 500}, 0},
	} {
		a.cfg.CatchUp = tc.c
		got := a.capCatchUp(lines, "#c")
		if len(got) != tc.want || (len(got) > 0 && got[len(got)-1] != lines[9]) {
			t.Errorf("%+v: kept %d, want the latest %d", tc.c, len(got), tc.want)
		}
	}
}

// TestCatchUpAfterReconnect: the bot's connection drops; what is said
// in a +H channel meanwhile arrives once it is back, once, in order,
// with its original time and marked as catch-up; the playback's older
// lines (said before the bot first joined, and seen live) do not.
func TestCatchUpAfterReconnect(t *testing.T) {
	srv := testenv.InspIRCd(t)
	alice := srv.Client(t, "alice")
	alice.Join("#lobby")
	alice.Send("MODE", "#lobby", "+H", "100:1d")
	alice.Say("#lobby", "before the bridge")
	n := netConfig(srv, "puppet")
	n.Section.(*Config).CatchUp = config.CatchUp{MaxMessages: 100, MaxAge: time.Hour}
	a := startAdapter(t, n, nil, "#lobby")
	alice.Say("#lobby", "live")
	a.rec.wait(t, "live", func(ev bridge.Event) bool { return textOfEvent(ev) == "live" })

	from := alice.Len()
	a.bot.closeSocket()
	if _, err := alice.WaitFrom(from, waitFor, func(l testenv.IRCLine) bool {
		return l.Command == "QUIT" && strings.EqualFold(l.Nick(), "bridge")
	}); err != nil {
		t.Fatalf("the bot did not quit: %v", err)
	}
	said := time.Now()
	for i := 1; i <= 5; i++ {
		alice.Say("#lobby", fmt.Sprintf("missed %d", i))
	}
	a.rec.wait(t, "missed 5", func(ev bridge.Event) bool { return textOfEvent(ev) == "missed 5" })
	alice.Say("#lobby", "after")
	a.rec.wait(t, "after", func(ev bridge.Event) bool { return textOfEvent(ev) == "after" })

	var got []string
	for _, ev := range a.rec.all() {
		m, ok := ev.(*bridge.Message)
		if !ok {
			continue
		}
		got = append(got, m.Text)
		if strings.HasPrefix(m.Text, "missed") {
			if !m.CatchUp || m.Time.After(said.Add(time.Second)) || m.Time.Before(said.Add(-time.Second)) || m.Origin.RemoteID == "" {
				t.Errorf("%q: catch-up %v, time %v (said at %v), msgid %q", m.Text, m.CatchUp, m.Time, said, m.Origin.RemoteID)
			}
		} else if m.CatchUp {
			t.Errorf("%q marked as catch-up", m.Text)
		}
	}
	want := "live missed 1 missed 2 missed 3 missed 4 missed 5 after"
	if strings.Join(got, " ") != want {
		t.Errorf("bridged %q, want %q", strings.Join(got, " "), want)
	}
	if c := a.CatchUps()["#lobby"]; c.Recovered != 5 || c.At.Before(said) {
		t.Errorf("CatchUps: %+v, want 5 recovered after %v", c, said)
	}
}

// putCounter counts the writes to an adapter's State.
type putCounter struct {
	adapters.State
	puts atomic.Int32
}

func (s *putCounter) Put(ctx context.Context, key, value string) error {
	s.puts.Add(1)
	return s.State.Put(ctx, key, value)
}

// TestCatchUpFromTheLinkOn: a channel linked at run time after a
// conversation there bridges none of it; its lines are saved without a
// write per line; after a restart (a new adapter on the same store), what
// was said meanwhile, and only that, is caught up.
func TestCatchUpFromTheLinkOn(t *testing.T) {
	srv := testenv.InspIRCd(t)
	st, err := store.Open(context.Background(), "sqlite", t.TempDir(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	state := &putCounter{State: st.State("libera")}
	n := netConfig(srv, "puppet")
	n.Section.(*Config).CatchUp = config.CatchUp{MaxMessages: 100, MaxAge: time.Hour}
	useState := func(a *Adapter) { a.UseState(state) }

	alice := srv.Client(t, "alice")
	alice.Join("#late")
	alice.Send("MODE", "#late", "+H", "100:1d")
	for i := 1; i <= 3; i++ {
		alice.Say("#late", fmt.Sprintf("old %d", i))
	}
	first := startAdapter(t, n, useState)
	if err := first.Join(context.Background(), "#late"); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the playback", func() bool { _, ok := first.CatchUps()["#late"]; return ok })
	if c := first.CatchUps()["#late"]; c.Recovered != 0 {
		t.Errorf("linked after a conversation: recovered %d lines, want 0", c.Recovered)
	}
	for i := 1; i <= 20; i++ {
		alice.Say("#late", fmt.Sprintf("live %d", i))
	}
	first.rec.wait(t, "live 20", func(ev bridge.Event) bool { return textOfEvent(ev) == "live 20" })
	time.Sleep(cursorFlushEvery + 500*time.Millisecond)
	if p := state.puts.Load(); p > 4 {
		t.Errorf("%d writes of the cursor for 20 lines, want a few", p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, ev := range first.rec.all() {
		if strings.HasPrefix(textOfEvent(ev), "old") {
			t.Errorf("%q, said before the link, bridged", textOfEvent(ev))
		}
	}

	for i := 1; i <= 3; i++ {
		alice.Say("#late", fmt.Sprintf("missed %d", i))
	}
	second := startAdapter(t, n, useState, "#late")
	second.rec.wait(t, "missed 3", func(ev bridge.Event) bool { return textOfEvent(ev) == "missed 3" })
	alice.Say("#late", "after")
	second.rec.wait(t, "after", func(ev bridge.Event) bool { return textOfEvent(ev) == "after" })
	var got []string
	for _, ev := range second.rec.all() {
		if m, ok := ev.(*bridge.Message); ok {
			got = append(got, m.Text)
		}
	}
	if want := "missed 1 missed 2 missed 3 after"; strings.Join(got, " ") != want {
		t.Errorf("after the restart bridged %q, want %q", strings.Join(got, " "), want)
	}
	if c := second.CatchUps()["#late"]; c.Recovered != 3 {
		t.Errorf("after the restart: recovered %d, want 3", c.Recovered)
	}
}
