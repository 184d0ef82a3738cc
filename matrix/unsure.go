package matrix

import (
	"context"
	"errors"
	"github.com/switchboard-chat/switchboard/internal/backoff"
	"sync"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// A send whose answer was lost (the homeserver went away mid-request)
// may or may not have created its event. Sending again with the same
// transaction id is safe only while the homeserver remembers the id, and
// Dendrite keeps them in memory: after its restart, the retry would post
// a second copy. So every event the adapter posts carries its
// transaction id in its content, and before sending again after such a
// loss the adapter looks for it in the room's latest events.

// txnMarker is the content key holding the transaction id.
const txnMarker = "net.switchboard.txn"

// unsureFor is how long a lost answer is remembered; the router retries
// well within it.
const unsureFor = 15 * time.Minute

// lookBack is how many of the room's latest events are searched.
const lookBack = 100

// settle is how long after a lost answer the event it may have created
// can still be missing from the room's history: a homeserver files an
// event there asynchronously (Dendrite's sync API consumes the room
// server's output from a queue). A retry within that time that does not
// find the event looks again once it has passed.
const settle = 2 * time.Second

// unsure holds the transaction ids of sends whose outcome is unknown.
type unsure struct {
	mu   sync.Mutex
	txns map[string]time.Time
}

func (u *unsure) add(txn string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.txns == nil {
		u.txns = map[string]time.Time{}
	}
	now := time.Now()
	for t, at := range u.txns {
		if now.Sub(at) > unsureFor {
			delete(u.txns, t)
		}
	}
	u.txns[txn] = now
}

// lostAt tells when the answer to txn's send was lost, if it was.
func (u *unsure) lostAt(txn string) (time.Time, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	at, ok := u.txns[txn]
	return at, ok && time.Since(at) <= unsureFor
}

func (u *unsure) forget(txn string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.txns, txn)
}

// answerLost reports whether err leaves open whether the homeserver
// received the request: anything but an HTTP answer.
func answerLost(err error) bool {
	var herr mautrix.HTTPError
	return err != nil && !(errors.As(err, &herr) && herr.Response != nil)
}

// marked adds the transaction id to an event's content.
func marked(content any, txn string) any {
	return &event.Content{Raw: map[string]any{txnMarker: txn}, Parsed: content}
}

// sentBefore looks for the event of a send to rid whose answer was lost,
// if one was: see settle.
func (a *Adapter) sentBefore(ctx context.Context, intent *appservice.IntentAPI, rid id.RoomID, txn string) (id.EventID, bool) {
	lost, ok := a.unsure.lostAt(txn)
	if !ok {
		return "", false
	}
	if evid, ok := a.findSent(ctx, intent, rid, txn); ok {
		return evid, true
	}
	wait := settle - time.Since(lost)
	if wait <= 0 {
		return "", false
	}
	if !backoff.Sleep(ctx, wait, nil) {
		return "", false
	}
	return a.findSent(ctx, intent, rid, txn)
}

// findSent looks for the event intent posted with transaction id txn
// among the room's latest events.
func (a *Adapter) findSent(ctx context.Context, intent *appservice.IntentAPI, rid id.RoomID, txn string) (id.EventID, bool) {
	resp, err := intent.Client.Messages(ctx, rid, "", "", mautrix.DirectionBackward, nil, lookBack)
	if err != nil {
		a.log.Warn("matrix: cannot look for an event whose send lost its answer; sending it again", "room", rid, "err", err)
		return "", false
	}
	for _, evt := range resp.Chunk {
		if evt.Sender == intent.UserID && evt.Content.Raw[txnMarker] == txn {
			return evt.ID, true
		}
	}
	return "", false
}
