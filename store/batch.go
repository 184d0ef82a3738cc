package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/switchboard-chat/switchboard/bridge"
)

// batch is the write transaction that the SQLite writer leaves open
// between syncs, and the accepted events it is to write. A commit is most
// of the cost of a small write (its pages go to the log frame by frame,
// two system calls each, and every transaction takes and drops the file
// locks); relaying a message wrote the same eight pages each time. Writes
// made within one sync window share one transaction, committed just
// before the sync that makes them durable (walSync.commit), or at once
// when a read or a write of another kind needs to see them.
//
// An Accept runs no statement at all: its rows wait here (staged) and go
// into the transaction at its commit, with the others of its window, and
// its duplicates are found in memory (see seen). Statements run once per
// message each found SQLite's pages and code out of the CPU's caches; run
// together, they find them warm.
//
// A write joins the open transaction and is kept for as long as it is
// open. Should the transaction be rolled back (a write in it failed, or
// its COMMIT did), the writes that had succeeded are done again, in
// order, in the next one, and the staged rows it held are staged again:
// each was already reported to its caller, and an accepted event's
// deliveries may be on their way, under the seqs they were given.
//
// Only code that holds s.wmu touches a batch (see lockWriter).
type batch struct {
	open   bool                 // BEGIN done, no COMMIT or ROLLBACK yet
	on     *rawConn             // the connection it is open on
	writes []func(txExec) error // the writes it holds, to redo
	recs   []deliveryRecord     // the delivery records its writes hold

	// The accepted events' rows, and their outbox entries, not yet in the
	// transaction; and those in it, staged again should it roll back. An
	// outbox entry delivered before it is written is never written (two
	// of a relayed message's five statements, as most are delivered within
	// the sync window).
	rows       []acceptRow
	rowsInTx   []acceptRow
	outbox     map[int64]outboxEntry
	outboxInTx map[int64]outboxEntry

	seq int64 // the last seq handed out, by this process
	// The value this process last raised sqlite_sequence to: the seqs up
	// to it are this process's to hand out, and nobody else's (another
	// process's AUTOINCREMENT goes above it). Raising it a block ahead
	// spares the statements at all other times.
	reserved int64
}

// seqBlock is how far ahead of the seqs handed out sqlite_sequence is
// raised. A restart leaves at most this many unused.
const seqBlock = 1024

type outboxEntry struct {
	link, network, room, eventID string
	queuedAt                     int64
}

// acceptRow is an accepted event's row and, if it has one, its origin
// room's remote id.
type acceptRow struct {
	id, kind, link                   string
	origin                           remoteKey
	senderNetwork, senderID, payload string
	createdAt                        int64
}

// rowKeys are an acceptRow's keys in the filter of stored ids.
type rowKeys struct{ event, origin seenKey }

func (s *Store) rowKeys(row acceptRow) rowKeys {
	k := rowKeys{event: s.seen.eventKey(row.id)}
	if row.origin.remoteID != "" {
		k.origin = s.seen.remoteKey(row.origin)
	}
	return k
}

// uncommitted tells whether an accepted row not committed yet matches.
func (b *batch) uncommitted(match func(acceptRow) bool) bool {
	return slices.ContainsFunc(b.rowsInTx, match) || slices.ContainsFunc(b.rows, match)
}

// holds tells whether the batch has anything to commit.
func (b *batch) holds() bool {
	return b.open || len(b.writes) > 0 || len(b.rows) > 0 || len(b.outbox) > 0
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
// transaction, after the staged rows (the records and the write may
// refer to their events). A failed write rolls the transaction back; the
// others are redone in the next, each with the records it took along, so
// that the same statements run in the same order on the same data.
func (s *Store) join(t rawTx, recs []deliveryRecord, fn func(txExec) error) error {
	w := func(tx txExec) error {
		if err := s.writeRows(tx.(rawTx)); err != nil {
			return err
		}
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
// be redone, and stages again the rows it held.
func (s *Store) rollback(t rawTx) {
	// SQLite may have rolled back already (on SQLITE_FULL, say); then
	// ROLLBACK fails harmlessly.
	t.run("ROLLBACK")
	b := &s.batch
	b.open = false
	b.rows = append(b.rowsInTx, b.rows...)
	b.rowsInTx = nil
	for seq, e := range b.outboxInTx {
		b.outbox[seq] = e
	}
	clear(b.outboxInTx)
	s.pending.Store(b.holds())
}

// commit commits what the batch holds, redoing it first if it was rolled
// back, with the delivery records waiting.
func (s *Store) commit(t rawTx) error {
	recs := s.delivered.take()
	if !s.batch.holds() && len(recs) == 0 {
		s.pending.Store(false)
		return nil
	}
	if err := s.join(t, recs, func(tx txExec) error { return s.writeOutbox(tx.(rawTx)) }); err != nil {
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

// reservedFor tells whether the seqs reserved cover n more.
func (b *batch) reservedFor(n int) bool { return b.seq+int64(n) <= b.reserved }

// reserve reserves seqs for n more entries, unless they are already.
func (s *Store) reserve(t rawTx, n int) error {
	if s.batch.reservedFor(n) {
		return nil
	}
	if err := s.join(t, nil, s.reserveSeqs(n)); err != nil {
		return fmt.Errorf("reserve seqs: %w", err)
	}
	return nil
}

// stageRow stages an accepted event's row and its outbox entries, under
// new seqs, reserved already, and returns the seqs.
func (s *Store) stageRow(row acceptRow, keys rowKeys, entries []outboxEntry) []int64 {
	b := &s.batch
	if b.outbox == nil {
		b.outbox, b.outboxInTx = map[int64]outboxEntry{}, map[int64]outboxEntry{}
	}
	b.rows = append(b.rows, row)
	s.remember(keys.event)
	if row.origin.remoteID != "" {
		s.remember(keys.origin)
	}
	seqs := make([]int64, len(entries))
	for i, e := range entries {
		b.seq++
		seqs[i] = b.seq
		b.outbox[b.seq] = e
	}
	s.pending.Store(true)
	return seqs
}

// reserveSeqs is the write that raises sqlite_sequence a block past the
// seqs about to be handed out, above any seq the table has had, as
// AUTOINCREMENT would hand them out.
func (s *Store) reserveSeqs(n int) func(txExec) error {
	to := int64(0)
	return func(tx txExec) error {
		t := tx.(rawTx)
		b := &s.batch
		if to == 0 { // not when redone: the seqs may be handed out
			var last int64
			if err := t.queryInt(s.st.lastSeq, &last); err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("read the last seq: %w", err)
			}
			b.seq = max(b.seq, last)
			to = b.seq + int64(n) + seqBlock
		}
		res, err := t.exec(s.st.raiseSeq, to)
		var rows int64
		if err == nil {
			rows, err = res.RowsAffected()
		}
		if err == nil && rows == 0 {
			_, err = t.exec(s.st.insertSeq, to)
		}
		if err != nil {
			return fmt.Errorf("keep the last seq: %w", err)
		}
		b.reserved = to
		return nil
	}
}

// known tells whether an event with this id, or from this origin remote
// id, was accepted before, or the remote id is that of a delivery into
// its room: in the batch, in the delivery records, or in the database.
// The filter of stored ids holds the keys of all three, so a key it
// rules out is in none: most accepts end there.
func (s *Store) known(t rawTx, row acceptRow, keys rowKeys) (bool, error) {
	b := &s.batch
	if s.seen.mayHave(keys.event) {
		if b.uncommitted(func(r acceptRow) bool { return r.id == row.id }) {
			return true, nil
		}
		var got string
		switch err := t.queryString(s.st.writerEvent, &got, row.id); {
		case err == nil:
			return true, nil
		case !errors.Is(err, sql.ErrNoRows):
			return false, fmt.Errorf("look up event: %w", err)
		}
	}
	origin := row.origin
	if origin.remoteID == "" || !s.seen.mayHave(keys.origin) {
		return false, nil
	}
	if b.uncommitted(func(r acceptRow) bool { return r.origin == origin }) {
		return true, nil
	}
	if _, ok := s.delivered.eventByRemote(bridge.RoomAddr{Network: origin.network, Room: origin.room}, origin.remoteID); ok {
		return true, nil
	}
	var got string
	switch err := t.queryString(s.st.writerEventByRemote, &got, origin.network, origin.room, origin.remoteID); {
	case err == nil:
		return true, nil
	case !errors.Is(err, sql.ErrNoRows):
		return false, fmt.Errorf("look up remote id: %w", err)
	}
	return false, nil
}

// unqueue drops seq's outbox entry if it is still only staged, and tells
// whether it was.
func (s *Store) unqueue(seq int64) bool {
	if _, ok := s.batch.outbox[seq]; ok {
		delete(s.batch.outbox, seq)
		return true
	}
	return false
}

// writeRows writes the staged rows into the open transaction.
func (s *Store) writeRows(t rawTx) error {
	b := &s.batch
	for _, r := range b.rows {
		res, err := t.exec(s.st.insertEvent, r.id, r.kind, r.link, r.origin.network, r.origin.room, r.origin.remoteID,
			r.senderNetwork, r.senderID, r.payload, r.createdAt)
		if err != nil {
			return fmt.Errorf("insert event %s: %w", r.id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			// Only another process writing this file can have stored it
			// meanwhile.
			s.log.Warn("store: event stored already by another writer", "event", r.id)
		}
		if r.origin.remoteID == "" {
			continue
		}
		if _, err := t.exec(s.st.insertRemote, r.origin.network, r.origin.room, r.origin.remoteID, r.id); err != nil {
			return fmt.Errorf("insert remote id of %s: %w", r.id, err)
		}
	}
	b.rowsInTx = append(b.rowsInTx, b.rows...)
	b.rows = b.rows[:0:0]
	return nil
}

// writeOutbox writes the staged outbox entries into the open transaction,
// in order.
func (s *Store) writeOutbox(t rawTx) error {
	b := &s.batch
	if len(b.outbox) == 0 {
		return nil
	}
	for _, seq := range slices.Sorted(maps.Keys(b.outbox)) {
		e := b.outbox[seq]
		if _, err := t.exec(s.st.insertOutboxAt, seq, e.link, e.network, e.room, e.eventID, e.queuedAt); err != nil {
			return fmt.Errorf("queue seq %d for %s:%s: %w", seq, e.network, e.room, err)
		}
	}
	maps.Copy(b.outboxInTx, b.outbox)
	clear(b.outbox)
	return nil
}

// forget empties the batch, once committed, or rolled back for good: its
// delivery records then wait for the next write, and the seqs reserved
// in it are reserved again.
func (s *Store) forget(committed bool) {
	b := &s.batch
	clear(b.writes)
	b.writes = b.writes[:0]
	recs := b.recs
	b.recs = nil
	b.rows, b.rowsInTx = nil, nil
	clear(b.outbox)
	clear(b.outboxInTx)
	if !committed {
		b.reserved = 0
	}
	s.pending.Store(false)
	s.settle(recs, committed)
}

// visible commits the writes made so far, so that a read sees them. It
// costs nothing when there are none.
func (s *Store) visible(ctx context.Context) error {
	if !s.pending.Load() {
		return nil
	}
	return s.onWriter(ctx, s.commit)
}
