package xmpp

import (
	"context"
	"fmt"

	"github.com/switchboard-chat/switchboard/bridge"
)

// Chat markers (XEP-0333) in one-to-one chats: Switchboard's chats ask
// for them (<markable/>), a <displayed/> from the XMPP user is a
// bridge.Read of the message it names, and a Read from someone else is
// a <displayed/> from their puppet (or their own session).

const nsMarkers = "urn:xmpp:chat-markers:0"

func markable() *element { return el(nsMarkers, "markable") }

// displayed is the id of the message a <displayed/> marker in st names,
// "" when it has none.
func displayed(st *stanza) string {
	return st.el.child(nsMarkers, "displayed").get("id")
}

// SendRead implements bridge.ReadMarker: a <displayed/> in the one-to-one
// chat. Rooms get none: a marker there would speak for the whole room.
func (a *Adapter) SendRead(ctx context.Context, d *bridge.Delivery) error {
	r, ok := d.Event.(*bridge.Read)
	if !ok {
		return bridge.Permanent(fmt.Errorf("xmpp: SendRead got %T", d.Event))
	}
	if d.Room != "" || d.Target == "" {
		return nil
	}
	c, err := a.current()
	if err != nil {
		return err
	}
	_, err = a.sendDirect(ctx, c, r, func(_ speaker, e *element) {
		e.add(el(nsMarkers, "displayed", "id", d.Target))
		// Markers are worth keeping in the archive, like a chat's.
		e.add(el("urn:xmpp:hints", "store"))
	})
	return err
}
