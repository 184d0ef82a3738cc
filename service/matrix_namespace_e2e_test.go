package service

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"

	"github.com/switchboard-chat/switchboard/httpapi"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/internal/testwait"
)

// Issue 21, item 1 (Matrix) with double_puppet_namespace: Dendrite reads
// the registration `switchboard matrix-registration` wrote with a broad
// pattern, once. carol, added afterwards through /api/people with her
// Matrix user double-puppeted, speaks from @carol:localhost at once: her
// account is checked as soon as she is put, and what she writes in the
// MUC appears in the Matrix room from her own user, no ghost of hers
// joining; the homeserver is never restarted. A private room between
// two local users, which the pattern makes Dendrite push to Switchboard
// (matrix.TestBroadNamespace sees those pushes), is bridged nowhere:
// not to IRC, MQTT or the MUC, and its text is not logged.
func TestMatrixPersonAddedThroughTheAPISpeaksAtOnce(t *testing.T) {
	w := newMWorldWith(t, newXWorld(t), "", `    double_puppet_namespace: '@[^:]+:localhost'`)
	carolMx := w.hs.Client(t, "carol")
	dave := w.hs.Client(t, "dave")
	cfg := w.config(t, "")
	cfg.HTTP.APIToken = apiToken
	log := testenv.NewLog(t)
	svc, _ := runServiceLogging(t, cfg, log)
	base := "http://" + svc.HTTPAddr
	watcher := w.human(t, "watcher")
	sub := w.mqtt.Subscribe(t, root+"/out/#", 1)
	hsPid := w.hs.Process.Pid()

	code, body := apiCall(t, "PUT", base+"/api/people/carol", apiToken, map[string]any{
		"name": "Carol", "home": "mx",
		"accounts": map[string]any{
			"mx":     map[string]any{"id": string(carolMx.UserID), "double_puppet": true},
			"jabber": "carol@localhost",
		},
	})
	var put httpapi.Person
	json.Unmarshal(body, &put)
	if code != http.StatusCreated || len(put.Notes) != 0 {
		t.Fatalf("PUT carol: %d %s; want 201 without notes (the namespace covers her)", code, body)
	}
	testwait.For(t, "carol's Matrix user checked", func() bool {
		for _, n := range getStatus(t, svc).Networks {
			if n.Name == "mx" {
				return n.People["carol"] == "connected"
			}
		}
		return false
	})

	carol := w.person(t, "carol") // in the MUC once she is a person
	if _, err := carol.Say(w.room, "carol from her XMPP client"); err != nil {
		t.Fatal(err)
	}
	ev := w.waitMatrix(t, "carol's message", func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && ev.RoomID == w.roomID && c.Body == "carol from her XMPP client"
	})
	if ev.Sender != carolMx.UserID {
		t.Errorf("Matrix shows carol's message from %s, want her own %s", ev.Sender, carolMx.UserID)
	}
	for _, e := range w.alice.Events() {
		if e.Type == event.StateMember && strings.Contains(e.GetStateKey(), "sb_jabber") && strings.Contains(e.GetStateKey(), "carol") {
			t.Errorf("a ghost of carol joined: %s", e.GetStateKey())
		}
	}

	// A private room of alice and dave, which nothing links.
	private := w.alice.NewRoom(false, "", dave.UserID)
	dave.Join(string(private))
	w.alice.Text(private, "alice to dave, privately")
	dave.Text(private, "dave to alice, privately")
	// Dendrite pushes an appservice's transactions in order: once a later
	// message of the linked room is on IRC, the private room's were
	// handled.
	w.alice.Text(w.roomID, "after the private chat")
	watcher.WaitText(patience, room, "", "after the private chat")
	time.Sleep(300 * time.Millisecond) // the other networks, and anything bridged late
	var published []string
	for drained := false; !drained; {
		select {
		case m := <-sub.C:
			published = append(published, m.Topic+" "+string(m.Payload))
		default:
			drained = true
		}
	}
	if !strings.Contains(strings.Join(published, "\n"), "after the private chat") {
		t.Errorf("MQTT never got the linked room's message: %q", published)
	}
	for _, text := range []string{"alice to dave, privately", "dave to alice, privately"} {
		for _, l := range watcher.Lines() {
			if strings.Contains(l.Raw, text) {
				t.Errorf("IRC got the private room's %q: %s", text, l.Raw)
			}
		}
		for _, m := range published {
			if strings.Contains(m, text) {
				t.Errorf("MQTT got the private room's %q: %s", text, m)
			}
		}
		for _, s := range carol.Stanzas() {
			if strings.Contains(s.Body(), text) {
				t.Errorf("the MUC got the private room's %q", text)
			}
		}
		if strings.Contains(log.String(), text) {
			t.Errorf("Switchboard logged the private room's %q", text)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	members, err := dave.JoinedMembers(ctx, private)
	if err != nil {
		t.Fatal(err)
	}
	if len(members.Joined) != 2 {
		t.Errorf("the private room's members: %v, want alice and dave only", members.Joined)
	}
	if w.hs.Process.Pid() != hsPid {
		t.Errorf("Dendrite was restarted")
	}
}
