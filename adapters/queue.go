package adapters

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/backoff"
)

// AcceptQueue hands an adapter's inbound events to the router in order,
// retrying with backoff while the router cannot take them (the store is
// down). For networks with no replay (IRC, XMPP) the events wait here, up
// to a limit; the connection's read loop never waits for the router, which
// would stall keepalives and get it disconnected.
type AcceptQueue struct {
	log   *slog.Logger
	max   int
	mu    sync.Mutex
	items []queued
	wake  chan struct{}
	// taken, when set, is called with each event once the router took it
	// (or refused it for good), in order: see OnTaken.
	taken func(bridge.Event)
}

// queued is an event, or a room's members (see PushMembers).
type queued struct {
	ev      bridge.Event
	room    bridge.RoomAddr
	members []string
}

// maxQueued bounds the events waiting in memory.
const maxQueued = 100000

// NewAcceptQueue returns an empty queue.
func NewAcceptQueue(log *slog.Logger) *AcceptQueue {
	return &AcceptQueue{log: log, max: maxQueued, wake: make(chan struct{}, 1)}
}

// Push queues an event; false when the queue is full and the event was
// not taken.
func (q *AcceptQueue) Push(ev bridge.Event) bool { return q.push(queued{ev: ev}) }

// PushMembers queues the accounts in room now, for bridge.MemberLister,
// after the events pushed before and ahead of those pushed after: a
// member list read from the room's occupants must not undo a join the
// room told of later. False when the queue is full.
func (q *AcceptQueue) PushMembers(room bridge.RoomAddr, accounts []string) bool {
	return q.push(queued{room: room, members: accounts})
}

// OnTaken has fn called with each event, in order, once the router took
// it (or refused it for good): an adapter that remembers how far it read
// a room (XMPP catch-up) never records more than was accepted. Call it
// before Run.
func (q *AcceptQueue) OnTaken(fn func(bridge.Event)) { q.taken = fn }

func (q *AcceptQueue) push(it queued) bool {
	q.mu.Lock()
	if len(q.items) >= q.max {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, it)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

func (q *AcceptQueue) pop() (queued, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return queued{}, false
	}
	ev := q.items[0]
	q.items[0] = queued{}
	q.items = q.items[1:]
	if len(q.items) == 0 {
		q.items = nil // let the backing array go
	}
	return ev, true
}

// Len is how many events wait.
func (q *AcceptQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// Run hands the queued events to in, one at a time, until ctx ends. The
// networks it serves acknowledge nothing, so nothing here waits for the
// disk: where in can tell, an event is done once committed, and the store
// makes it durable within its sync window.
func (q *AcceptQueue) Run(ctx context.Context, in bridge.Inbound) {
	for {
		it, ok := q.pop()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-q.wake:
			}
			continue
		}
		if it.ev == nil {
			// A member list is taken once: one that fails only leaves
			// who is where as the events said.
			if ml, ok := in.(bridge.MemberLister); ok {
				if err := ml.Members(ctx, it.room, it.members); err != nil {
					q.log.Warn("a room's members not taken", "room", it.room.String(), "err", err)
				}
			}
			continue
		}
		ev := it.ev
		b := backoff.New(100*time.Millisecond, 30*time.Second)
		for attempt := 1; ; attempt++ {
			_, err := bridge.Commit(ctx, in, ev)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				if n := q.Len() + 1; n > 0 {
					q.log.Warn("stopping with inbound events not accepted", "count", n)
				}
				return
			}
			if errors.Is(err, bridge.ErrPermanent) {
				q.log.Error("inbound event refused", "kind", ev.Kind(), "err", err)
				break
			}
			if attempt == 1 || attempt%10 == 0 {
				q.log.Warn("cannot accept inbound event; retrying", "kind", ev.Kind(), "attempt", attempt, "err", err, "queued", q.Len())
			}
			if !b.Wait(ctx, nil) {
				return
			}
		}
		if q.taken != nil {
			q.taken(ev)
		}
	}
}
