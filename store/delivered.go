package store

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
)

// flushDelay bounds how long a delivery record waits for a transaction to
// ride along with.
const flushDelay = 20 * time.Millisecond

// delivered holds delivery records not yet committed. Recording a delivery
// in a transaction of its own doubled the cost of relaying a message (a
// commit is a WAL write and an fsync); instead, records join the next
// commit of the batch, due within the sync window, or, where the store
// syncs nothing itself, the next write, or are flushed after flushDelay.
// Until then reads answer from here, so the outbox never hands out a
// delivered entry again and replies and edits resolve. A crash in that
// window delivers those entries once more; it loses nothing.
type delivered struct {
	mu      sync.Mutex
	queue   []deliveryRecord          // not yet in a transaction
	seqs    map[int64]bridge.RoomAddr // target rooms, queued or in a transaction not yet committed
	remote  map[remoteKey]bridge.EventID
	byEvent map[eventKey]string
	timer   *time.Timer

	// A reader whose snapshot predates a commit must still see that
	// commit's records here; they are forgotten only once every read that
	// began before the commit has ended.
	epoch   uint64           // commits settled so far
	reading map[uint64]int   // reads in progress, by the epoch they began in
	retired []retiredRecords // committed, waiting for older reads to end
}

type retiredRecords struct {
	epoch uint64
	recs  []deliveryRecord
}

type deliveryRecord struct {
	q        bridge.Queued
	remoteID string
}

type remoteKey struct{ network, room, remoteID string }
type eventKey struct {
	network, room string
	id            bridge.EventID
}

func (d *delivered) init() {
	d.seqs = map[int64]bridge.RoomAddr{}
	d.remote = map[remoteKey]bridge.EventID{}
	d.byEvent = map[eventKey]string{}
	d.reading = map[uint64]int{}
}

// beginRead marks a read of the outbox or the remote ids in progress; call
// the function it returns when the read is done.
func (d *delivered) beginRead() func() {
	_, end := d.beginReadAt()
	return end
}

// beginReadAt is beginRead that also tells the epoch the read began in.
func (d *delivered) beginReadAt() (uint64, func()) {
	d.mu.Lock()
	e := d.epoch
	d.reading[e]++
	d.mu.Unlock()
	return e, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.reading[e]--; d.reading[e] == 0 {
			delete(d.reading, e)
		}
		d.prune()
	}
}

// prune forgets committed records no read in progress could miss.
func (d *delivered) prune() {
	oldest := d.epoch + 1
	for e := range d.reading {
		oldest = min(oldest, e)
	}
	n := 0
	for _, r := range d.retired {
		if r.epoch >= oldest {
			break
		}
		d.forget(r.recs)
		n++
	}
	d.retired = d.retired[n:]
}

func (d *delivered) forget(recs []deliveryRecord) {
	for _, r := range recs {
		delete(d.seqs, r.q.Seq)
		if r.remoteID != "" {
			id := r.q.Event.Head().ID
			rk := remoteKey{r.q.Target.Network, r.q.Target.Room, r.remoteID}
			if d.remote[rk] == id {
				delete(d.remote, rk)
			}
			delete(d.byEvent, eventKey{r.q.Target.Network, r.q.Target.Room, id})
		}
	}
}

// Delivered implements bridge.Store. The record is durable once the next
// write transaction commits (within flushDelay); calling it again for the
// same delivery changes nothing.
func (s *Store) Delivered(ctx context.Context, q bridge.Queued, remoteID string) error {
	if q.Event == nil {
		return fmt.Errorf("store: delivered seq %d: no event", q.Seq)
	}
	d := &s.delivered
	d.mu.Lock()
	if _, ok := d.seqs[q.Seq]; ok {
		d.mu.Unlock()
		return nil
	}
	d.seqs[q.Seq] = q.Target
	d.queue = append(d.queue, deliveryRecord{q, remoteID})
	if remoteID != "" {
		id := q.Event.Head().ID
		rk := remoteKey{q.Target.Network, q.Target.Room, remoteID}
		if _, taken := d.remote[rk]; !taken {
			d.remote[rk] = id
		}
		d.byEvent[eventKey{q.Target.Network, q.Target.Room, id}] = remoteID
		if s.dialect == sqlite {
			// An echo of this delivery is a duplicate.
			s.remember(s.seen.remoteKey(rk))
		}
	}
	if s.wal == nil && d.timer == nil {
		d.timer = time.AfterFunc(flushDelay, s.flushDelivered)
	}
	d.mu.Unlock()
	if s.wal != nil {
		s.flushDelivered()
	}
	return nil
}

// flushDelivered has the records waiting committed soon: by the next
// sync, which commits the batch and takes them along, or, where no sync
// comes, in a write of their own.
func (s *Store) flushDelivered() {
	if s.wal != nil {
		// Reads answer from the records meanwhile: nothing for visible.
		s.wal.committed()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Into the open batch: its sync is due within the window anyway.
	if _, err := s.writeCommit(ctx, func(txExec) error { return nil }); err != nil {
		s.log.Error("record deliveries; will retry", "err", err)
		s.delivered.mu.Lock()
		s.delivered.timer = time.AfterFunc(time.Second, s.flushDelivered)
		s.delivered.mu.Unlock()
	}
}

// take hands the queued records to a transaction.
func (d *delivered) take() []deliveryRecord {
	d.mu.Lock()
	defer d.mu.Unlock()
	recs := d.queue
	d.queue = nil
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	return recs
}

// settle forgets records once their transaction committed, or queues them
// again when it did not.
func (s *Store) settle(recs []deliveryRecord, committed bool) {
	if len(recs) == 0 {
		return
	}
	d := &s.delivered
	d.mu.Lock()
	defer d.mu.Unlock()
	if !committed {
		d.queue = append(recs, d.queue...)
		if d.timer == nil {
			d.timer = time.AfterFunc(flushDelay, s.flushDelivered)
		}
		return
	}
	d.retired = append(d.retired, retiredRecords{d.epoch, recs})
	d.epoch++
	d.prune()
}

// writeDelivered applies records in tx: the outbox entry goes, the room's
// remote id is kept.
func (s *Store) writeDelivered(tx txExec, recs []deliveryRecord) error {
	for _, r := range recs {
		// An entry still queued in the batch was never written.
		if !s.unqueue(r.q.Seq) {
			if _, err := tx.exec(s.st.deleteOutbox, r.q.Seq); err != nil {
				return fmt.Errorf("delete from outbox: %w", err)
			}
		}
		if r.remoteID == "" {
			continue
		}
		id := string(r.q.Event.Head().ID)
		res, err := tx.exec(s.st.insertRemote, r.q.Target.Network, r.q.Target.Room, r.remoteID, id)
		if err != nil {
			return fmt.Errorf("insert remote id: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n > 0 {
			continue
		}
		// The room already uses this remote id. If for another event, the
		// first mapping stays: failing here would only make the router send
		// the event again.
		var other string
		if err := tx.queryString(s.st.writerEventByRemote, &other, r.q.Target.Network, r.q.Target.Room, r.remoteID); err != nil {
			return fmt.Errorf("read remote id: %w", err)
		}
		if other != id {
			s.log.Warn("remote id already maps to another event; keeping that mapping",
				"room", r.q.Target.String(), "remote_id", r.remoteID, "event", id, "mapped_to", other)
		}
	}
	return nil
}

func (d *delivered) isDelivered(seq int64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.seqs[seq]
	return ok
}

func (d *delivered) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.seqs)
}

// subtract takes from rooms, as a read that began in epoch found them, the
// deliveries it may still have seen in the outbox, and drops the rooms
// left with none. Those are the records not committed yet, and the ones
// committed since the read began, which it may or may not have seen: in
// doubt a room's depth errs low, for as long as a commit takes.
func (d *delivered) subtract(rooms []RoomQueue, epoch uint64) []RoomQueue {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.seqs) == 0 {
		return rooms
	}
	before := map[int64]bool{} // committed before the read began
	for _, r := range d.retired {
		if r.epoch >= epoch {
			break
		}
		for _, rec := range r.recs {
			before[rec.q.Seq] = true
		}
	}
	n := map[bridge.RoomAddr]int{}
	for seq, room := range d.seqs {
		if !before[seq] {
			n[room]++
		}
	}
	out := rooms[:0]
	for _, q := range rooms {
		if q.Depth -= n[q.Room]; q.Depth > 0 {
			out = append(out, q)
		}
	}
	return out
}

func (d *delivered) eventByRemote(room bridge.RoomAddr, remoteID string) (bridge.EventID, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	id, ok := d.remote[remoteKey{room.Network, room.Room, remoteID}]
	return id, ok
}

func (d *delivered) remoteID(room bridge.RoomAddr, id bridge.EventID) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.byEvent[eventKey{room.Network, room.Room, id}]
	return r, ok
}
