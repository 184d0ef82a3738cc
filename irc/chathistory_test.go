package irc

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircevent"
	"github.com/ergochat/irc-go/ircmsg"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testwait"
	"github.com/switchboard-chat/switchboard/store"
)

// TestChatHistoryRequest: CHATHISTORY AFTER names the channel, the last
// line seen by its msgid, else by its time (UTC, milliseconds), and asks
// for what is left of max_messages, at most the server's limit.
func TestChatHistoryRequest(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	at := time.Date(2026, 12, 5, 7, 0, 1, 234567000, paris)
	for _, tc := range []struct {
		from  cursor
		limit int
		want  string
	}{
		{cursor{MsgID: "m42", Time: at}, 100, "AFTER #lobby msgid=m42 100"},
		{cursor{Time: at, Hash: "h"}, 7, "AFTER #lobby timestamp=2026-12-05T06:00:01.234Z 7"},
	} {
		if got := strings.Join(historyRequest("#lobby", tc.from, tc.limit), " "); got != tc.want {
			t.Errorf("request from %+v: %q, want %q", tc.from, got, tc.want)
		}
	}
	for _, tc := range []struct{ serverMax, want, got, limit int }{
		{100, 500, 0, 100}, // the server's limit
		{0, 500, 0, 500},   // none: all of max_messages at once
		{100, 500, 450, 50},
		{1000, 20, 0, 20},
	} {
		if n := pageLimit(tc.serverMax, tc.want, tc.got); n != tc.limit {
			t.Errorf("pageLimit(%d, %d, %d) = %d, want %d", tc.serverMax, tc.want, tc.got, n, tc.limit)
		}
	}
}

func historyItem(t *testing.T, line string) *ircevent.Batch {
	m, err := ircmsg.ParseLine(line)
	if err != nil {
		t.Fatal(err)
	}
	return &ircevent.Batch{Message: m}
}

// TestChatHistoryPaging: another page is asked for only after a full
// one and below max_messages, from the page's last line (its msgid,
// else its time).
func TestChatHistoryPaging(t *testing.T) {
	withID := []*ircevent.Batch{
		historyItem(t, "@msgid=a;time=2026-12-05T06:00:00.000Z :x!u@h PRIVMSG #c :1"),
		historyItem(t, "@msgid=b;time=2026-12-05T06:00:01.500Z :x!u@h PRIVMSG #c :2"),
	}
	noID := []*ircevent.Batch{withID[0], historyItem(t, "@time=2026-12-05T06:00:01.500Z :x!u@h PRIVMSG #c :2")}
	for _, tc := range []struct {
		name       string
		page       []*ircevent.Batch
		limit, got int
		more       bool
		next       cursor
	}{
		{"full page", withID, 2, 2, true, cursor{MsgID: "b", Time: time.Date(2026, 12, 5, 6, 0, 1, 5e8, time.UTC)}},
		{"full page, no msgid", noID, 2, 4, true, cursor{Time: time.Date(2026, 12, 5, 6, 0, 1, 5e8, time.UTC)}},
		{"short page", withID, 3, 2, false, cursor{}},
		{"max_messages reached", withID, 2, 10, false, cursor{}},
		{"empty", nil, 2, 0, false, cursor{}},
	} {
		next, more := nextPage(tc.page, tc.limit, tc.got, 10)
		if more != tc.more || !next.Time.Equal(tc.next.Time) || next.MsgID != tc.next.MsgID {
			t.Errorf("%s: next %+v, %v; want %+v, %v", tc.name, next, more, tc.next, tc.more)
		}
	}
}

// historyServer is a scripted server with draft/chathistory (which no
// server the tests can run offers) over a channel of lines m1..m<n>; it
// plays back one line of its own on JOIN too, like InspIRCd's +H, and
// then relays a live line.
func historyServer(t *testing.T, n, serverMax int, offerHistory bool) *fakeServer {
	s := newFakeServer(t, false)
	s.offer = []string{"batch", "server-time", "labeled-response"}
	if offerHistory {
		s.offer = append(s.offer, chatHistoryCap)
		s.isupport = "CHATHISTORY=" + strconv.Itoa(serverMax) + " "
	}
	t0 := time.Now().Add(-time.Minute).UTC()
	line := func(i int, batch string) string {
		return fmt.Sprintf("@batch=%s;msgid=m%d;time=%s :alice!a@fake.host PRIVMSG #lobby :line %d", batch, i, t0.Add(time.Duration(i)*time.Second).Format(chatHistoryTime), i)
	}
	s.afterJoin = []string{
		":fake BATCH +play chathistory #lobby",
		line(n, "play"),
		fmt.Sprintf("@batch=play;msgid=p1;time=%s :alice!a@fake.host PRIVMSG #lobby :from the playback", t0.Add(20*time.Second).Format(chatHistoryTime)),
		":fake BATCH -play",
		// Said live right after the JOIN, before the CHATHISTORY reply.
		fmt.Sprintf("@msgid=m%d;time=%s :alice!a@fake.host PRIVMSG #lobby :live", n+1, time.Now().UTC().Format(chatHistoryTime)),
	}
	s.history = func(label string, p []string) []string {
		if len(p) != 4 || p[0] != "AFTER" || p[1] != "#lobby" || !strings.HasPrefix(p[2], "msgid=m") {
			return []string{fmt.Sprintf("@label=%s :fake FAIL CHATHISTORY INVALID_PARAMS :bad request", label)}
		}
		from, _ := strconv.Atoi(strings.TrimPrefix(p[2], "msgid=m"))
		limit, _ := strconv.Atoi(p[3])
		out := []string{fmt.Sprintf("@label=%s :fake BATCH +h chathistory #lobby", label)}
		for i := from + 1; i <= n && i <= from+limit; i++ {
			out = append(out, line(i, "h"))
		}
		return append(out, ":fake BATCH -h")
	}
	s.start()
	return s
}

// TestChatHistoryCatchUp: on joining a channel it has a position for
// (m2), on a server with draft/chathistory, the bot asks for what came
// after it, page by page, and bridges it like a playback: once, in
// order, marked as catch-up, counted in the status; the server's join
// playback is not a second source. Without the cap the playback is used
// and no CHATHISTORY is sent.
func TestChatHistoryCatchUp(t *testing.T) {
	for _, tc := range []struct {
		name           string
		offer          bool
		maxMessages    int
		want, requests string
	}{
		{"pages", true, 100, "live line 3 line 4 line 5 line 6 line 7 line 8 line 9",
			"AFTER #lobby msgid=m2 3|AFTER #lobby msgid=m5 3|AFTER #lobby msgid=m8 3"},
		{"max_messages", true, 5, "live line 3 line 4 line 5 line 6 line 7",
			"AFTER #lobby msgid=m2 3|AFTER #lobby msgid=m5 2"},
		{"no cap: the playback", false, 100, "line 9 from the playback live", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := historyServer(t, 9, 3, tc.offer)
			st, err := store.Open(context.Background(), "sqlite", t.TempDir(), testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			state := st.State("fake")
			pos, _ := json.Marshal(cursor{MsgID: "m2", Time: time.Now().Add(-time.Minute)})
			if err := state.Put(t.Context(), cursorKey("#lobby"), string(pos)); err != nil {
				t.Fatal(err)
			}
			n := fakeNetwork(s.ln.Addr().String(), false, false)
			cfg := n.Section.(*Config)
			cfg.Password, cfg.SASL = "", nil
			cfg.CatchUp = config.CatchUp{MaxMessages: tc.maxMessages, MaxAge: time.Hour}
			ad, err := New("fake", n, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			a := ad.(*Adapter)
			a.UseState(state)
			rec := newRecorder()
			if err := a.Join(t.Context(), "#lobby"); err != nil {
				t.Fatal(err)
			}
			if err := a.Start(t.Context(), rec); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { a.Stop(context.Background()) })

			testwait.For(t, "the catch-up and the live line", func() bool {
				_, ok := a.CatchUps()["#lobby"]
				return ok && slices.ContainsFunc(rec.all(), func(ev bridge.Event) bool { return textOfEvent(ev) == "live" })
			})
			time.Sleep(200 * time.Millisecond) // a second source would show by now
			var got []string
			for _, ev := range rec.all() {
				m, ok := ev.(*bridge.Message)
				if !ok {
					continue
				}
				got = append(got, m.Text)
				if m.Text == "live" {
					if m.CatchUp {
						t.Error("the live line marked as catch-up")
					}
					continue
				}
				if !m.CatchUp || m.Origin.RemoteID == "" || time.Since(m.Time) < 30*time.Second {
					t.Errorf("%q: catch-up %v, msgid %q, time %v: want the line's own", m.Text, m.CatchUp, m.Origin.RemoteID, m.Time)
				}
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("bridged %q, want %q", strings.Join(got, " "), tc.want)
			}
			if c := a.CatchUps()["#lobby"]; c.Recovered != len(got)-1 {
				t.Errorf("status: recovered %d, want %d", c.Recovered, len(got)-1)
			}
			a.mu.Lock()
			seen := a.roomLocked("#lobby").catch.seen.MsgID
			a.mu.Unlock()
			if seen != "m10" {
				t.Errorf("after the catch-up the channel's last line is %q, want the live one (m10)", seen)
			}
			var reqs []string
			for _, l := range s.received() {
				if m, err := ircmsg.ParseLine(l); err == nil && m.Command == "CHATHISTORY" {
					reqs = append(reqs, strings.Join(m.Params, " "))
				}
			}
			if strings.Join(reqs, "|") != tc.requests {
				t.Errorf("requests %q, want %q", strings.Join(reqs, "|"), tc.requests)
			}
		})
	}
}
