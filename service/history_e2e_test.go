package service

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// historyOf is what a peer that just joined got as history: the texts
// of the messages, and of them the edited ones, in order, once
// history_end came.
func historyOf(t *testing.T, p *testenv.WebRTCPeer) (texts []string, edited map[string]bool) {
	t.Helper()
	end := p.Wait(t, patience, "the end of the history", func(f testenv.WebRTCFrame) bool { return f.Type == "history_end" })
	edited = map[string]bool{}
	welcome := false
	for _, f := range p.Frames() {
		switch f.Type {
		case "welcome":
			welcome = true
		case "history":
			if !welcome {
				t.Fatalf("history before the welcome: %s", f.Raw)
			}
			var ev testenv.WebRTCFrame
			if err := json.Unmarshal(f.Event, &ev); err != nil || ev.Type != "message" || ev.ID == "" || ev.Sender.Name == "" {
				t.Fatalf("history frame %s: want a message with id and sender (%v)", f.Raw, err)
			}
			var ts struct {
				TS string `json:"ts"`
			}
			json.Unmarshal(f.Event, &ts)
			if _, err := time.Parse(time.RFC3339, ts.TS); err != nil {
				t.Errorf("history message %s without its time: %v", f.Event, err)
			}
			texts = append(texts, ev.Text)
			if f.Edited != "" {
				edited[ev.Text] = true
			}
		case "history_end":
			if f.Count != len(texts) {
				t.Errorf("history_end says %d, got %d", f.Count, len(texts))
			}
			return texts, edited
		default:
			if f.Type != "join" && f.Type != "leave" {
				t.Fatalf("live %s frame before the history ended: %s", f.Type, f.Raw)
			}
		}
	}
	t.Fatalf("history_end %s not among the frames", end.Raw)
	return nil, nil
}

// Test 3 (issue 24): a peer joining the web room gets the link's last 50
// messages, from every room of the link, before any live traffic: an
// edited one as edited, a deleted one not, nor one older than
// retention.messages.
func TestWebRTCHistory(t *testing.T) {
	const retain = 8 * time.Second
	w := newWorld(t)
	cfg, base := w.webrtcConfigWith(t, fmt.Sprintf("retention: { messages: %s, ids: 1h }", retain))
	runSwitchboard(t, cfg)
	alice := testenv.MustDialWebRTC(t, base, "room", "", "alice", "alice")
	if texts, _ := historyOf(t, alice); len(texts) != 0 {
		t.Fatalf("history of a new link: %q", texts)
	}
	dev := w.mqtt.Client(t, testenv.UniqueClientID("sensor-1"))
	publish := func(text string) {
		testenv.MQTTPublish(t, dev, root+"/in/sensor-1", 1, false, text)
	}
	seen := func(text string) testenv.WebRTCFrame {
		return alice.Wait(t, patience, text, func(f testenv.WebRTCFrame) bool { return f.Type == "message" && f.Text == text })
	}

	t.Run("retention", func(t *testing.T) {
		publish("ancient words")
		seen("ancient words")
		time.Sleep(retain + 500*time.Millisecond)
		publish("fresh words")
		seen("fresh words")
		bob := testenv.MustDialWebRTC(t, base, "room", "", "bob", "bob")
		defer bob.Close()
		if texts, _ := historyOf(t, bob); !slices.Equal(texts, []string{"fresh words"}) {
			t.Fatalf("history %q, want only the fresh words", texts)
		}
	})

	t.Run("last 50", func(t *testing.T) {
		var want []string
		for i := range 30 {
			publish(fmt.Sprintf("line %02d", i))
			want = append(want, fmt.Sprintf("line %02d", i))
		}
		seen("line 29")
		alice.Say("to be edited")
		toEdit := seen("to be edited")
		alice.Say("to be deleted")
		toDelete := seen("to be deleted")
		want = append(want, "edited, as it stands")
		for i := 30; i < 55; i++ {
			publish(fmt.Sprintf("line %02d", i))
			want = append(want, fmt.Sprintf("line %02d", i))
		}
		alice.Send(map[string]any{"type": "edit", "target": toEdit.ID, "text": "edited, as it stands"})
		alice.Send(map[string]any{"type": "delete", "target": toDelete.ID})
		seen("line 54")
		alice.Wait(t, patience, "the delete", func(f testenv.WebRTCFrame) bool { return f.Type == "delete" && f.Target == toDelete.ID })
		alice.Wait(t, patience, "the edit", func(f testenv.WebRTCFrame) bool { return f.Type == "edit" && f.EditOf == toEdit.ID })

		carol := testenv.MustDialWebRTC(t, base, "room", "", "carol", "carol")
		texts, edited := historyOf(t, carol)
		want = want[len(want)-50:]
		if !slices.Equal(texts, want) {
			t.Fatalf("history\n%q\nwant\n%q", texts, want)
		}
		if !edited["edited, as it stands"] || len(edited) != 1 {
			t.Errorf("edited: %v, want the edited message alone", edited)
		}
		// Live traffic follows, once.
		publish("after carol came")
		carol.Wait(t, patience, "live traffic", func(f testenv.WebRTCFrame) bool { return f.Type == "message" && f.Text == "after carol came" })
	})

	// Messages said while a peer joins reach it once each, in order:
	// in the history or live after it.
	t.Run("race", func(t *testing.T) {
		const n = 30
		done := make(chan error, 1)
		go func() {
			for i := range n {
				tok := dev.Publish(root+"/in/sensor-1", 1, false, fmt.Sprintf("race %02d", i))
				if !tok.WaitTimeout(patience) {
					done <- fmt.Errorf("publish race %02d: timeout", i)
					return
				}
				if err := tok.Error(); err != nil {
					done <- err
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			done <- nil
		}()
		time.Sleep(20 * time.Millisecond)
		dave := testenv.MustDialWebRTC(t, base, "room", "", "dave", "dave")
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		seen("race 29")
		dave.Wait(t, patience, "the last race", func(f testenv.WebRTCFrame) bool { return f.Type == "message" && f.Text == "race 29" })
		texts, _ := historyOf(t, dave)
		inHistory := 0
		var got []string
		for _, text := range texts {
			if strings.HasPrefix(text, "race ") {
				got = append(got, text)
				inHistory++
			}
		}
		for _, f := range dave.Frames() {
			if f.Type == "message" && strings.HasPrefix(f.Text, "race ") {
				got = append(got, f.Text)
			}
		}
		var want []string
		for i := range n {
			want = append(want, fmt.Sprintf("race %02d", i))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("dave got (%d in the history, then live)\n%q\nwant\n%q", inHistory, got, want)
		}
		t.Logf("%d of %d in the history, the rest live", inHistory, n)
	})
}
