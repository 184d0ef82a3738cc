package irc

import (
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
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
		c    CatchUp
		want int
	}{
		{CatchUp{MaxMessages: 500, MaxAge: time.Hour}, 10},
		{CatchUp{MaxMessages: 3, MaxAge: time.Hour}, 3},
		{CatchUp{MaxMessages: 500, MaxAge: 5*time.Minute + time.Second}, 5},
		{CatchUp{MaxMessages: 0, MaxAge: time.Hour}, 0},
		{CatchUp{MaxMessages: 500}, 0},
	} {
		a.cfg.CatchUp = tc.c
		got := a.capCatchUp(lines, "#c")
		if len(got) != tc.want || (len(got) > 0 && got[len(got)-1] != lines[9]) {
			t.Errorf("%+v: kept %d, want the latest %d", tc.c, len(got), tc.want)
		}
	}
}
