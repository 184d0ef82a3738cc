package matrix

import (
	"context"
	"errors"
	"fmt"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/bridge"
)

// Read receipts, in direct chats with a ghost: a Matrix user's m.read
// on a message the ghost posted tells the sender the ghost speaks for
// that it was read (a bridge.Read, which XMPP shows as a chat marker);
// a Read from them is the ghost's own read receipt in the chat.

// handleReceipt turns an m.receipt of a direct chat with a ghost into
// Read events. Receipts of linked rooms, of the bot's chats and of a
// person's inbox are not bridged.
func (a *Adapter) handleReceipt(ctx context.Context, in bridge.Inbound, evt *event.Event) error {
	if _, linked := a.roomAddr(evt.RoomID); linked {
		return nil
	}
	dm, err := a.dmOf(ctx, evt.RoomID)
	if err != nil || dm == nil || dm.Own != "" || dm.Ghost == "" || dm.Ghost == a.botID {
		return err
	}
	content := evt.Content.AsReceipt()
	if content == nil {
		return nil
	}
	var to *bridge.Sender
	for evid, receipts := range *content {
		for user, rr := range receipts[event.ReceiptTypeRead] {
			if a.isOurs(user) {
				continue
			}
			if ok, err := a.postedBy(ctx, dm.Ghost, evt.RoomID, evid); err != nil || !ok {
				return err
			}
			if to == nil {
				s, err := a.ghostSender(ctx, dm.Ghost)
				if err != nil {
					return err
				}
				to = &s
			}
			h := a.header(ctx, evt, "", user)
			h.Origin.RemoteID = "" // a receipt has no id of its own
			if !rr.Timestamp.IsZero() {
				h.Time = rr.Timestamp.UTC()
			}
			recipient := *to
			h.To = &recipient
			if err := in.Accept(ctx, &bridge.Read{Header: h, Target: bridge.Ref{Remote: string(evid)}}); err != nil {
				return err
			}
		}
	}
	return nil
}

// postedBy reports whether ghost posted evid in rid: a receipt on the
// reader's own message says nothing to the other side.
func (a *Adapter) postedBy(ctx context.Context, ghost id.UserID, rid id.RoomID, evid id.EventID) (bool, error) {
	got, err := retry(ctx, func() (*event.Event, error) {
		return a.as.Intent(ghost).Client.GetEvent(ctx, rid, evid)
	})
	if errors.Is(err, mautrix.MNotFound) || errors.Is(err, mautrix.MForbidden) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("matrix: look up %s: %w", evid, err)
	}
	return got.Sender == ghost, nil
}

// SendRead posts the sender's read receipt (their ghost's, or their own
// user's) on Delivery.Target.
func (a *Adapter) SendRead(ctx context.Context, d *bridge.Delivery) error {
	r, ok := d.Event.(*bridge.Read)
	if !ok || d.Target == "" || a.relay || d.Relay {
		return nil // the bot reads for nobody
	}
	intent, err := a.speaker(ctx, d, r.Sender)
	if err != nil {
		return err
	}
	rid, err := a.target(ctx, d, intent)
	if err != nil {
		return err
	}
	if err := a.joined(ctx, intent, rid); err != nil {
		return err
	}
	_, err = retry(ctx, func() (struct{}, error) {
		return struct{}{}, intent.Client.SendReceipt(ctx, rid, id.EventID(d.Target), event.ReceiptTypeRead, nil)
	})
	if err != nil {
		return fmt.Errorf("matrix: read receipt in %s: %w", rid, err)
	}
	return nil
}
