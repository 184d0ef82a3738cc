package bridge

import (
	"context"
	"sync"
	"time"
)

// A room's deliveries are taken per sender lane: the entries of one sender
// (origin network and sender id) go out strictly in order, one at a time,
// while up to laneWorkers lanes of the room deliver at once, taken round
// robin. One sender's backlog (a flood, a long paste at the target's flood
// rate, a puppet that cannot get in) then holds up only that sender: the
// next sender's message goes out while the flooder's puppet waits on its
// own flood bucket. Where all lines share one flood bucket (relay mode),
// the lanes still alternate: a lane has one line in flight, so another
// sender's line is next in the bucket.
//
// Events without a sender (none of the adapters makes any today) share
// one lane per origin network. An event that refers to another still
// waiting in this room (a reply to, or reaction on, a message of the
// flooder's) waits until that one is delivered, so that it can point at
// it, without leaving its own lane.
const (
	// laneWorkers bounds the deliveries of one room in flight at once.
	laneWorkers = 4
	// laneWindow bounds the entries of one room held in memory (read
	// ahead of the oldest undelivered one). A sender's backlog longer
	// than this (only without an inbound rate limit, or after an outage)
	// holds up later senders until it is shorter again.
	laneWindow = 1024
)

type laneKey struct{ network, sender string }

func laneOf(ev Event) laneKey {
	h := ev.Head()
	if h.Sender.ID == "" {
		return laneKey{network: h.Origin.Network}
	}
	return laneKey{network: h.Sender.Network, sender: h.Sender.ID}
}

// refersTo is the event ev points at (reply, edit, delete, reaction).
func refersTo(ev Event) EventID {
	if m, ok := ev.(*Message); ok {
		return m.ReplyTo.Event
	}
	if ref, ok := Target(ev); ok {
		return ref.Event
	}
	return ""
}

type lane struct {
	key   laneKey
	items []Queued // in seq order; items[0] is in flight while busy
	busy  bool
}

type held struct {
	lane *lane
	seq  int64
}

type laneDone struct {
	lane *lane
	ok   bool // false: ctx ended
}

// lanes is one room's scheduler state, owned by its run goroutine.
type lanes struct {
	byKey   map[laneKey]*lane
	ready   []*lane             // round robin: lanes with entries, not busy
	held    int                 // entries in all lanes
	busy    int                 // lanes delivering
	owner   map[EventID]held    // events held: their lane and seq
	waiting map[EventID][]*lane // lanes whose next entry refers to a held event
}

func newLanes() *lanes {
	return &lanes{byKey: map[laneKey]*lane{}, owner: map[EventID]held{}, waiting: map[EventID][]*lane{}}
}

func (ls *lanes) add(item Queued) {
	k := laneOf(item.Event)
	l, ok := ls.byKey[k]
	if !ok {
		l = &lane{key: k}
		ls.byKey[k] = l
	}
	l.items = append(l.items, item)
	ls.held++
	ls.owner[item.Event.Head().ID] = held{l, item.Seq}
	if len(l.items) == 1 && !l.busy {
		ls.ready = append(ls.ready, l)
	}
}

// take returns the next lane to deliver from, marking it busy, or nil.
func (ls *lanes) take() *lane {
	for ls.busy < laneWorkers && len(ls.ready) > 0 {
		l := ls.ready[0]
		ls.ready = ls.ready[1:]
		next := l.items[0]
		if ref := refersTo(next.Event); ref != "" {
			// Only on an earlier entry: waits then never go round in a
			// circle (a requeued entry gets a later seq than those that
			// refer to it).
			if o, ok := ls.owner[ref]; ok && o.lane != l && o.seq < next.Seq {
				ls.waiting[ref] = append(ls.waiting[ref], l)
				continue
			}
		}
		l.busy = true
		ls.busy++
		return l
	}
	return nil
}

// done settles the lane's entry in flight.
func (ls *lanes) done(l *lane) {
	item := l.items[0]
	l.items[0] = Queued{}
	l.items = l.items[1:]
	l.busy = false
	ls.busy--
	ls.held--
	id := item.Event.Head().ID
	if ls.owner[id].lane == l {
		delete(ls.owner, id)
	}
	ls.ready = append(ls.ready, ls.waiting[id]...)
	delete(ls.waiting, id)
	if len(l.items) == 0 {
		delete(ls.byKey, l.key) // an idle sender costs nothing
		return
	}
	ls.ready = append(ls.ready, l)
}

// run delivers one room's queue: it reads the entries in seq order into
// their senders' lanes and keeps up to laneWorkers lanes delivering.
// Entries leave the outbox one by one as they are delivered, so after a
// restart every lane resumes from the store.
func (r *Router) run(ctx context.Context, q *queue) {
	defer r.wg.Done()
	log := r.log.With("room", q.addr.String())
	var (
		last     int64 // the highest seq read
		ls       = newLanes()
		done     = make(chan laneDone, laneWorkers)
		workers  sync.WaitGroup
		readWait <-chan time.Time // after a failed read
	)
	defer workers.Wait()
	for {
		for l := ls.take(); l != nil; l = ls.take() {
			workers.Add(1)
			go func(l *lane, item Queued) {
				defer workers.Done()
				done <- laneDone{l, r.deliverWithRetry(ctx, log, q, item)}
			}(l, l.items[0])
		}
		var more chan struct{}
		if ls.held < laneWindow && readWait == nil {
			batch, err := r.next(ctx, q, last)
			switch {
			case err != nil:
				if ctx.Err() != nil {
					return
				}
				log.Error("read outbox", "err", err)
				readWait = time.After(r.MaxBackoff)
			case len(batch) > 0:
				for _, item := range batch {
					if item.Seq <= last {
						continue // read from the store and handed over as well
					}
					last = item.Seq
					ls.add(item)
				}
				continue
			default:
				more = q.more
			}
		}
		select {
		case <-ctx.Done():
			return
		case d := <-done:
			if !d.ok {
				return
			}
			ls.done(d.lane)
		case <-more:
		case <-readWait:
			readWait = nil
		}
	}
}

// reconnected wakes every delivery of the queue waiting to retry.
func (q *queue) reconnected() {
	q.onlineMu.Lock()
	close(q.online)
	q.online = make(chan struct{})
	q.onlineMu.Unlock()
}

// onlineWake is closed when the network next reconnects.
func (q *queue) onlineWake() <-chan struct{} {
	q.onlineMu.Lock()
	defer q.onlineMu.Unlock()
	return q.online
}
