package store

import (
	"context"
	"database/sql"
	"fmt"
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
	s.batch.open, s.batch.on = true, t.dc
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
	if err := t.run("COMMIT"); err != nil {
		s.rollback(t)
		return err
	}
	s.batch.open = false
	s.forget(true)
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
