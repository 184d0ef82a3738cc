package bridge

import (
	"context"
	"slices"
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
	// pipelineDepth bounds the messages of one lane written to a network
	// that confirms asynchronously and not confirmed yet (see pipeline).
	pipelineDepth = 64
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
	items []Queued // in seq order; the first inFlight are being delivered
	// inFlight counts the entries handed to the lane's worker and not
	// settled yet.
	inFlight int
	// worker: a worker delivers from the lane (it is busy).
	worker bool
	// pipe feeds the lane's pipeline worker (see pipeline) while it takes
	// more; nil otherwise.
	pipe chan Queued
	// retry: the lane's last pipeline failed; its next entry goes alone,
	// with deliverWithRetry's backoff, before it pipelines again.
	retry bool
}

type held struct {
	lane *lane
	seq  int64
}

// laneDone is what a lane's worker reports: an entry settled (seq), and
// or else the worker's end.
type laneDone struct {
	lane *lane
	seq  int64 // the entry settled; 0 for none
	end  bool  // the worker is done; its unsettled entries are the lane's again
	// failed: the worker was a pipeline that ended on a failure.
	failed bool
	ok     bool // false: ctx ended
}

// lanes is one room's scheduler state, owned by its run goroutine.
type lanes struct {
	byKey   map[laneKey]*lane
	ready   []*lane             // round robin: lanes with entries and no worker
	held    int                 // entries in all lanes
	busy    int                 // lanes with a worker
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
	switch {
	case l.pipe != nil:
		ls.feed(l)
	case len(l.items) == 1 && !l.worker:
		ls.ready = append(ls.ready, l)
	}
}

// feed hands the pipeline worker of l the lane's next entries while they
// are messages it can pipeline and fewer than pipelineDepth are in
// flight; with nothing in flight and nothing more to hand over, it closes
// the pipe, and the worker ends.
func (ls *lanes) feed(l *lane) {
	for l.inFlight < pipelineDepth && l.inFlight < len(l.items) && pipelined(l.items[l.inFlight]) {
		l.pipe <- l.items[l.inFlight] // never blocks: it holds pipelineDepth
		l.inFlight++
	}
	if l.inFlight == 0 {
		close(l.pipe)
		l.pipe = nil
	}
}

// worker says how the lane taken next is delivered.
type worker struct {
	lane *lane
	// one is the entry a single worker delivers; a pipeline worker reads
	// its entries from pipe.
	one  Queued
	pipe <-chan Queued
}

// take starts a worker on the next lane to deliver from: a pipeline when
// the room's network pipelines (pipelines) and the lane's next entry is a
// message it can pipeline, else a worker for that one entry. ok is false
// when no lane is ready or laneWorkers lanes are busy.
func (ls *lanes) take(pipelines bool) (w worker, ok bool) {
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
		l.worker = true
		ls.busy++
		if pipelines && !l.retry && pipelined(next) {
			l.pipe = make(chan Queued, pipelineDepth)
			ls.feed(l)
			return worker{lane: l, pipe: l.pipe}, true
		}
		l.inFlight = 1
		return worker{lane: l, one: next}, true
	}
	return worker{}, false
}

// done takes in what a lane's worker reports.
func (ls *lanes) done(d laneDone) {
	l := d.lane
	if d.seq != 0 {
		ls.settled(l, d.seq)
	}
	if !d.end {
		if l.pipe != nil {
			ls.feed(l)
		}
		return
	}
	// What the worker did not settle is the lane's next again: a failed
	// pipeline leaves the entry that failed, and those after it that
	// were not confirmed, in their order.
	l.worker, l.inFlight, l.retry = false, 0, d.failed
	if l.pipe != nil {
		close(l.pipe)
		l.pipe = nil
	}
	ls.busy--
	if len(l.items) == 0 {
		delete(ls.byKey, l.key) // an idle sender costs nothing
		return
	}
	ls.ready = append(ls.ready, l)
}

// settled removes the entry seq, one of those in flight, from the lane.
func (ls *lanes) settled(l *lane, seq int64) {
	i := slices.IndexFunc(l.items[:l.inFlight], func(q Queued) bool { return q.Seq == seq })
	if i < 0 {
		return
	}
	id := l.items[i].Event.Head().ID
	l.items = slices.Delete(l.items, i, i+1)
	l.inFlight--
	ls.held--
	if ls.owner[id].lane == l {
		delete(ls.owner, id)
	}
	ls.ready = append(ls.ready, ls.waiting[id]...)
	delete(ls.waiting, id)
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
	report := func(d laneDone) {
		select {
		case done <- d:
		case <-ctx.Done():
		}
	}
	defer workers.Wait()
	for {
		_, pipelines := r.network(q.addr.Network).(Pipeliner)
		for w, ok := ls.take(pipelines); ok; w, ok = ls.take(pipelines) {
			workers.Add(1)
			go func() {
				defer workers.Done()
				if w.pipe != nil {
					r.pipeline(ctx, log, q, w.lane, w.pipe, report)
					return
				}
				ok := r.deliverWithRetry(ctx, log, q, w.one)
				report(laneDone{lane: w.lane, seq: w.one.Seq, end: true, ok: ok})
			}()
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
				keep := r.filter(q.addr.Network)
				for _, item := range batch {
					if item.Seq <= last {
						continue // read from the store and handed over as well
					}
					last = item.Seq
					if keep != nil && !keep(item) {
						continue // another instance's to deliver
					}
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
			ls.done(d)
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
