package service

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// Moderators' deletions cross the bridge: a Matrix moderator's redaction
// becomes a XEP-0425 moderation in the MUC (Prosody with Debian's
// mod_muc_moderation, which speaks urn:xmpp:message-moderate:0), where
// the bridge's component is a moderator; an ordinary Matrix user's
// redaction of someone else's message changes nothing elsewhere; and an
// XMPP moderator's moderation of an IRC user's message redacts its
// Matrix copy, and of a Matrix user's own message, once the bot has the
// power to redact it (until then the failed list says why).
func TestModeratorDeletesCrossTheBridge(t *testing.T) {
	w := newMWorldOn(t, newXWorldWith(t, testenv.XMPPServerConfig{MUCModules: []string{"muc_moderation"}}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// carol makes the MUC (so she owns it) and makes the component an
	// admin of it, hence a moderator once it joins.
	carol := w.person(t, "carol")
	if res, err := carol.IQ(w.room, "set", fmt.Sprintf(
		`<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='admin' jid=%q/></query>`, w.xmpp.Component)); err != nil || res.Type() != "result" {
		t.Fatalf("making the component an admin: %v %v", res, err)
	}

	// In the Matrix room, alice (its creator) makes mod a moderator at
	// the room's redact level; dave is an ordinary member.
	mod, dave := w.hs.Client(t, "mod"), w.hs.Client(t, "dave")
	mod.Join(string(w.roomID))
	dave.Join(string(w.roomID))
	var pl event.PowerLevelsEventContent
	if err := w.alice.StateEvent(ctx, w.roomID, event.StatePowerLevels, "", &pl); err != nil {
		t.Fatal(err)
	}
	pl.SetUserLevel(mod.UserID, pl.Redact())
	if _, err := w.alice.SendStateEvent(ctx, w.roomID, event.StatePowerLevels, "", &pl); err != nil {
		t.Fatal(err)
	}

	svc, _ := runService(t, w.config(t, ""))
	sub := w.mqtt.Subscribe(t, root+"/out/#", 1)
	bob := w.human(t, "bob")

	// carol's two messages, as the MUC, MQTT and Matrix know them.
	type copies struct{ sid, bridged string }
	var spam [2]copies
	var mxID [2]id.EventID
	for i, text := range []string{"first spam", "second spam"} {
		if _, err := carol.Say(w.room, text); err != nil {
			t.Fatal(err)
		}
		spam[i].sid = carol.WaitMessage(patience, groupchatFrom(w.room, "carol", text)).StanzaID(w.room.String())
		spam[i].bridged = nextEvent(t, sub, "message").ID
		mxID[i] = w.waitMatrix(t, text, func(ev *event.Event) bool {
			c, ok := messageText(ev)
			return ok && c.Body == text
		}).ID
	}
	if spam[0].sid == "" || spam[1].sid == "" {
		t.Fatalf("the MUC gave no stanza-ids: %+v", spam)
	}

	// Dendrite v0.15.2 pushes no redactions to appservices: they arrive
	// as Synapse pushes them. dave's comes first, mod's second; each
	// room's deliveries keep their order, so anything dave's did would be
	// seen before what mod's does.
	redaction := func(n int, by id.UserID, target id.EventID) string {
		return fmt.Sprintf(`{"type":"m.room.redaction","room_id":%q,"sender":%q,"event_id":"$moderation-%d",
			"redacts":%q,"origin_server_ts":%d,"content":{"redacts":%q}}`, w.roomID, by, n, target, time.Now().UnixMilli(), target)
	}
	from := carol.Len()
	if code := w.pushTransaction(t, "moderation-1", redaction(1, dave.UserID, mxID[0])); code != http.StatusOK {
		t.Fatalf("transaction: %d", code)
	}
	if code := w.pushTransaction(t, "moderation-2", redaction(2, mod.UserID, mxID[1])); code != http.StatusOK {
		t.Fatalf("transaction: %d", code)
	}
	moderated := func(sid string) func(testenv.XMPPStanza) bool {
		return func(s testenv.XMPPStanza) bool {
			apply := s.Child("urn:xmpp:fasten:0", "apply-to")
			m := apply.Child("urn:xmpp:message-moderate:0", "moderated")
			return s.Type() == "groupchat" && s.From() == w.room.String() && apply.AttrValue("id") == sid &&
				m.Child("urn:xmpp:message-retract:0", "retract") != nil
		}
	}
	i, got, err := carol.WaitIndex(from, patience, moderated(spam[1].sid))
	if err != nil {
		t.Fatalf("carol never saw the second message moderated: %v", err)
	}
	if by := got.Child("urn:xmpp:fasten:0", "apply-to").Child("urn:xmpp:message-moderate:0", "moderated").AttrValue("by"); by == "" {
		t.Errorf("the moderation names no moderator: %v", got)
	}
	for _, s := range carol.Stanzas()[from:i] {
		if moderated(spam[0].sid)(s) {
			t.Errorf("dave, no moderator, had carol's first message moderated: %v", s)
		}
	}
	if _, metrics := httpGet(t, "http://"+w.httpAddr+"/metrics"); !strings.Contains(metrics, `switchboard_events_refused_total{network="mx",type="delete"} 1`) {
		t.Errorf("dave's refused redaction is not counted:\n%s", metrics)
	}
	if ev := nextEvent(t, sub, "delete"); ev.Target != spam[1].bridged || ev.Sender.ID != string(mod.UserID) {
		t.Errorf("MQTT delete %+v, want mod's deletion of %s", ev, spam[1].bridged)
	}

	// The reverse: carol, the MUC's owner, moderates bob's message from
	// IRC; its Matrix copy (his ghost's) is redacted.
	bob.Say(room, "irc spam")
	sid := carol.WaitMessage(patience, groupchatFrom(w.room, "bob (libera)", "irc spam")).StanzaID(w.room.String())
	ghostMsg := w.waitMatrix(t, "bob's message", func(ev *event.Event) bool {
		c, ok := messageText(ev)
		return ok && c.Body == "irc spam"
	}).ID
	if res, err := carol.IQ(w.room, "set", fmt.Sprintf(`<apply-to xmlns='urn:xmpp:fasten:0' id=%q>
		<moderate xmlns='urn:xmpp:message-moderate:0'><retract xmlns='urn:xmpp:message-retract:0'/><reason>spam</reason></moderate>
		</apply-to>`, sid)); err != nil || res.Type() != "result" {
		t.Fatalf("carol's moderation: %v %v", res, err)
	}
	w.waitMatrix(t, "the redaction of bob's message", redactionOf(ghostMsg))

	// alice's own message, moderated in the MUC: only the bot can redact
	// it, and it may not yet. The operator sees why on the failed list,
	// and once alice gives the bot the power, a retry redacts it.
	mine := w.alice.Text(w.roomID, "matrix spam")
	sid = carol.WaitMessage(patience, groupchatFrom(w.room, "alice (mx)", "matrix spam")).StanzaID(w.room.String())
	if res, err := carol.IQ(w.room, "set", fmt.Sprintf(`<apply-to xmlns='urn:xmpp:fasten:0' id=%q>
		<moderate xmlns='urn:xmpp:message-moderate:0'><retract xmlns='urn:xmpp:message-retract:0'/></moderate>
		</apply-to>`, sid)); err != nil || res.Type() != "result" {
		t.Fatalf("carol's moderation: %v %v", res, err)
	}
	var seq int64
	for deadline := time.Now().Add(patience); seq == 0; time.Sleep(50 * time.Millisecond) {
		failed, err := svc.store.FailedDeliveries(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range failed {
			if f.Target.Network == "mx" && f.Event.Kind() == "delete" {
				seq = f.Seq
				if !strings.Contains(f.Reason, "may not redact") {
					t.Errorf("failed list reason %q, want it to say the bot may not redact", f.Reason)
				}
			}
		}
		if seq == 0 && time.Now().After(deadline) {
			t.Fatal("the moderation of alice's message never reached the failed list")
		}
	}
	if err := w.alice.StateEvent(ctx, w.roomID, event.StatePowerLevels, "", &pl); err != nil {
		t.Fatal(err)
	}
	pl.SetUserLevel(id.NewUserID(w.mx.Bot, w.mx.Domain), pl.Redact())
	if _, err := w.alice.SendStateEvent(ctx, w.roomID, event.StatePowerLevels, "", &pl); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.router.Retry(ctx, seq); err != nil {
		t.Fatal(err)
	}
	w.waitMatrix(t, "the redaction of alice's message", redactionOf(mine))
}

func redactionOf(target id.EventID) func(*event.Event) bool {
	return func(ev *event.Event) bool {
		if ev.Type != event.EventRedaction {
			return false
		}
		if ev.Redacts == target {
			return true
		}
		_ = ev.Content.ParseRaw(ev.Type)
		return ev.Content.AsRedaction().Redacts == target
	}
}
