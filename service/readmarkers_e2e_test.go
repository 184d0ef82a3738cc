package service

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

const nsChatMarkers = "urn:xmpp:chat-markers:0"

// Issue 23, test 5: read markers in a direct chat between carol on XMPP
// and alice on Matrix (carol writes to alice's puppet JID; alice reads
// in the DM room of carol's ghost). alice's read receipt, pushed as the
// homeserver would (Dendrite pushes no receipts to appservices), reaches
// carol as an XEP-0333 <displayed/> of her message; carol's <displayed/>
// of alice's answer becomes the ghost's read receipt, which alice's
// client sees.
func TestReadMarkersInDirectChats(t *testing.T) {
	w := newMWorld(t)
	runSwitchboard(t, w.config(t, ""))
	carol := w.person(t, "carol")

	// alice's puppet JID, from her presence in the MUC once she spoke.
	w.alice.Text(w.roomID, "hello all")
	presence, err := carol.WaitFor(patience, func(s testenv.XMPPStanza) bool {
		return s.Kind() == "presence" && s.From() == w.room.String()+"/alice (mx)"
	})
	if err != nil {
		t.Fatal(err)
	}
	puppet, err := jid.Parse(presence.Child("http://jabber.org/protocol/muc#user", "x").Child("", "item").AttrValue("jid"))
	if err != nil {
		t.Fatal(err)
	}
	puppet = puppet.Bare()
	private, err := carol.Chat(puppet, "a private word", `<markable xmlns="`+nsChatMarkers+`"/>`)
	if err != nil {
		t.Fatal(err)
	}
	dm, ghost := w.inboxMessage(t, "", "a private word")

	t.Run("a Matrix read receipt becomes a displayed marker", func(t *testing.T) {
		from := carol.Len()
		word := w.waitMatrix(t, "carol's word", func(ev *event.Event) bool {
			c, ok := messageText(ev)
			return ok && ev.RoomID == dm && c.Body == "a private word"
		})
		// As Synapse pushes it (MSC2409 / appservice ephemeral events).
		code := w.pushTransactionBody(t, w.mx.HSToken, "receipt-1", fmt.Sprintf(`{"events":[],"ephemeral":[{"type":"m.receipt","room_id":%q,
			"content":{%q:{"m.read":{%q:{"ts":%d}}}}}]}`, dm, word.ID, w.alice.UserID, time.Now().UnixMilli()))
		if code != http.StatusOK {
			t.Fatalf("transaction: %d", code)
		}
		st, err := carol.WaitFrom(from, patience, func(s testenv.XMPPStanza) bool {
			return s.Kind() == "message" && s.Child(nsChatMarkers, "displayed") != nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Child(nsChatMarkers, "displayed").AttrValue("id"); got != private || st.Type() != "chat" {
			t.Errorf("carol got a %q marker of %q, want a chat marker of her message %q", st.Type(), got, private)
		}
		if from, _ := jid.Parse(st.From()); !from.Bare().Equal(puppet) {
			t.Errorf("the marker came from %s, want alice's puppet %s", st.From(), puppet)
		}
	})

	t.Run("an XMPP displayed marker becomes the ghost's read receipt", func(t *testing.T) {
		from := carol.Len()
		answer := w.alice.Text(dm, "read me")
		st := waitChat(t, carol, from, "read me")
		if st.Child(nsChatMarkers, "markable") == nil {
			t.Errorf("alice's chat is not markable: %s", st.Body())
		}
		mark := len(w.alice.Events())
		if _, err := carol.Send("message", []string{"to", puppet.String(), "type", "chat"}, "",
			`<displayed xmlns="`+nsChatMarkers+`" id="`+st.ID()+`"/>`); err != nil {
			t.Fatal(err)
		}
		w.waitMatrixFrom(t, mark, "the ghost's read receipt", func(ev *event.Event) bool {
			if ev.RoomID != dm || ev.Type.Type != event.EphemeralEventReceipt.Type {
				return false
			}
			_, read := (*ev.Content.AsReceipt())[answer][event.ReceiptTypeRead][ghost]
			return read
		})
	})
}
