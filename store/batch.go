package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// batch is the write transaction that the SQLite writer leaves open
// between syncs. A commit is most of the cost of a small write (its
// pages go to the log frame by frame, two system calls each, and every
// transaction takes and drops the file locks); relaying a message wrote
// the same eight pages each time. Writes made within one sync window
// share one transaction, committed just before the sync that makes
// them durable (walSync.commit), or at once when a read or a write of
// another kind needs to see them.
//
// A write joins the open transaction and is kept for as long as it is
// open. Should the transaction be rolled back (a write in it failed, or
// its COMMIT did), the writes that had succeeded are done again, in
// order, in the next one: each was already reported to its caller, and
// an accepted event's deliveries may be on their way. An accept is redone
// with the seqs it was given the first time, so nothing the router holds
// changes.
//
// Only code that holds the writer's connection touches a batch: the pool
// has that one connection, so holding it is the lock.
type batch struct {
	open   bool                 // BEGIN done, no COMMIT or ROLLBACK yet
	on     *rawConn             // the connection it is open on
	writes []func(txExec) error // the writes it holds, to redo
	recs   []deliveryRecord     // the delivery records its writes hold

	// The outbox entries its accepts queued, written only at commit
	// (writeOutbox): most are delivered within the sync window, and an
	// entry delivered before then is neither inserted nor deleted. That
	// was two of a relayed message's five statements.
	outbox  map[int64]outboxEntry
	top     int64 // the highest seq in outbox since the last writeOutbox
	seq     int64 // the last seq handed out, by this process
	seqRead bool  // seq is at least the table's, read in this transaction
	// The value this process last raised sqlite_sequence to, committed
	// or in the open transaction: the seqs up to it are this process's
	// to hand out. Raising it a block ahead spares most commits that
	// write, a page and a statement.
	reserved int64
}

// seqBlock is how far ahead of the seqs handed out sqlite_sequence is
// raised. A restart leaves at most this many unused.
const seqBlock = 1024

type outboxEntry struct {
	link, network, room, eventID string
	queuedAt                     int64
}

// begin opens the transaction, redoing the writes of one rolled back.
func (s *Store) begin(t rawTx) error {
	if s.batch.open && s.batch.on == t.dc {
		return nil
	}
	// Not open, or open on a connection that database/sql has replaced
	// since: the transaction ended with it.
	s.batch.open = false
	if err := t.run("BEGIN IMMEDIATE"); err != nil {
		return err
	}
	s.batch.open, s.batch.on, s.batch.seqRead = true, t.dc, false
	s.pending.Store(true)
	for _, w := range s.batch.writes {
		if err := w(t); err != nil {
			s.rollback(t)
			return fmt.Errorf("redo the writes of a transaction rolled back: %w", err)
		}
	}
	return nil
}

// join runs one write, with the delivery records waiting, in the open
// transaction. A failed write rolls the transaction back; the others are
// redone in the next, each with the records it took along, so that the
// same statements run in the same order on the same data.
func (s *Store) join(t rawTx, recs []deliveryRecord, fn func(txExec) error) error {
	w := func(tx txExec) error {
		if err := s.writeDelivered(tx, recs); err != nil {
			return fmt.Errorf("record deliveries: %w", err)
		}
		return fn(tx)
	}
	err := s.begin(t)
	if err == nil {
		if err = w(t); err != nil {
			s.rollback(t)
		}
	}
	if err != nil {
		s.settle(recs, false)
		return err
	}
	s.batch.writes = append(s.batch.writes, w)
	s.batch.recs = append(s.batch.recs, recs...)
	return nil
}

// rollback ends the open transaction without its writes, which stay to
// be redone.
func (s *Store) rollback(t rawTx) {
	// SQLite may have rolled back already (on SQLITE_FULL, say); then
	// ROLLBACK fails harmlessly.
	t.run("ROLLBACK")
	s.batch.open = false
	clear(s.batch.outbox) // the redo queues them again
	s.batch.top, s.batch.reserved = 0, 0
	s.pending.Store(len(s.batch.writes) > 0)
}

// commit commits what the batch holds, redoing it first if it was rolled
// back, with the delivery records waiting.
func (s *Store) commit(t rawTx) error {
	if !s.batch.open && len(s.batch.writes) == 0 {
		s.pending.Store(false)
		return nil
	}
	if err := s.join(t, s.delivered.take(), func(txExec) error { return nil }); err != nil {
		return err
	}
	if err := s.writeOutbox(t); err != nil {
		s.rollback(t)
		return err
	}
	if err := t.run("COMMIT"); err != nil {
		s.rollback(t)
		return err
	}
	s.batch.open = false
	s.forget(true)
	return nil
}

// queueOutbox queues an outbox entry in the open transaction under seq,
// or under a new seq when seq is 0, and returns the seq.
//
// The seqs are handed out here, not by the INSERT, but as AUTOINCREMENT
// would: above any the table has had, which sqlite_sequence keeps
// (writeOutbox keeps it up to date). The table is read once per
// transaction, which holds the write lock: another process (the CLI's
// failed-list commands) may have queued entries between two, above this
// process's reservation.
func (s *Store) queueOutbox(t rawTx, seq int64, e outboxEntry) (int64, error) {
	b := &s.batch
	if seq == 0 {
		if !b.seqRead {
			var last int64
			err := t.queryInt(s.st.lastSeq, &last)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return 0, fmt.Errorf("read the last seq: %w", err)
			}
			if last != b.reserved {
				b.seq, b.reserved = max(b.seq, last), 0
			}
			b.seqRead = true
		}
		b.seq++
		seq = b.seq
	}
	if b.outbox == nil {
		b.outbox = map[int64]outboxEntry{}
	}
	b.outbox[seq] = e
	b.top = max(b.top, seq)
	return seq, nil
}

// unqueue drops seq's outbox entry if it is still only queued, and tells
// whether it was.
func (s *Store) unqueue(seq int64) bool {
	if _, ok := s.batch.outbox[seq]; ok {
		delete(s.batch.outbox, seq)
		return true
	}
	return false
}

// writeOutbox writes the queued outbox entries, and raises
// sqlite_sequence past the highest seq handed out, where the entries that
// carried it may have been delivered and never written.
func (s *Store) writeOutbox(t rawTx) error {
	b := &s.batch
	if b.top == 0 {
		return nil
	}
	for _, seq := range slices.Sorted(maps.Keys(b.outbox)) {
		e := b.outbox[seq]
		if _, err := t.exec(s.st.insertOutboxAt, seq, e.link, e.network, e.room, e.eventID, e.queuedAt); err != nil {
			return fmt.Errorf("queue seq %d for %s:%s: %w", seq, e.network, e.room, err)
		}
	}
	if b.top > b.reserved {
		to := b.top + seqBlock
		res, err := t.exec(s.st.raiseSeq, to)
		var n int64
		if err == nil {
			n, err = res.RowsAffected()
		}
		if err == nil && n == 0 {
			_, err = t.exec(s.st.insertSeq, to)
		}
		if err != nil {
			return fmt.Errorf("keep the last seq: %w", err)
		}
		b.reserved = to
	}
	clear(b.outbox)
	b.top = 0
	return nil
}

// forget empties the batch, once committed, or rolled back for good: its
// delivery records then wait for the next write.
func (s *Store) forget(committed bool) {
	clear(s.batch.writes)
	s.batch.writes = s.batch.writes[:0]
	recs := s.batch.recs
	s.batch.recs = nil
	s.pending.Store(false)
	s.settle(recs, committed)
}

// visible commits the writes made so far, so that a read sees them. It
// costs nothing when there are none.
func (s *Store) visible(ctx context.Context) error {
	if !s.pending.Load() {
		return nil
	}
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return s.commitOn(conn)
}

// commitOn commits the batch on conn, the writer's connection.
func (s *Store) commitOn(conn *sql.Conn) error {
	return conn.Raw(func(dc any) error {
		return s.commit(rawTx{s: s, dc: s.raw.forConn(dc)})
	})
}
