// Package store implements bridge.Store on SQLite (modernc.org/sqlite) and
// PostgreSQL (pgx), one implementation over database/sql with the few
// dialect differences kept in dialect.go and the migrations.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/backoff"

	_ "github.com/jackc/pgx/v5/stdlib"
	sqlitedrv "modernc.org/sqlite"
)

// Store is a bridge.Store on an SQL database. It is safe for concurrent use.
type Store struct {
	dialect dialect
	// w runs the write transactions, r the reads. On PostgreSQL they are
	// the same pool. On SQLite w has a single connection: SQLite allows one
	// writer at a time anyway, and waiting in the pool, rather than in
	// SQLite's busy handler, keeps writers in order and never ends in
	// "database is locked".
	w, r *sql.DB
	log  *slog.Logger

	st        statements
	queries   map[*sql.Stmt]string // the SQL of the statements on w
	raw       rawStmts
	delivered delivered
	wal       *walSync   // nil unless the store syncs SQLite's log itself
	wmu       sync.Mutex // holds batch: see lockWriter
	batch     batch
	pending   atomic.Bool // the batch holds writes not committed
	seen      seen        // SQLite: the ids stored, for Accept's duplicates
	file      string      // SQLite: the database file; "" in memory
	// reclaimDue: retention's last reclaim failed (see Prune).
	reclaimDue atomic.Bool

	closeOnce sync.Once
	closeErr  error
}

var _ bridge.Store = (*Store)(nil)

// Open opens, creating and migrating as needed, the database named by dsn:
//
//   - "sqlite" or "": the SQLite file switchboard.db in dataDir
//   - "sqlite?_synchronous=NORMAL" and the like: that file with parameters
//   - "sqlite:///abs/path.db" (or sqlite://rel/path.db): that SQLite file
//   - "file:...": an SQLite URI as modernc.org/sqlite takes it
//   - "postgres://..." or "postgresql://...": a PostgreSQL database
//
// Query parameters of an SQLite DSN are passed to the driver and may
// override the defaults _synchronous=FULL and _busy_timeout=10000 (ms).
func Open(ctx context.Context, dsn, dataDir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{log: log}
	s.delivered.init()
	var err error
	ownSync := false
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		s.dialect = postgres
		s.w, err = sql.Open("pgx/v5", dsn)
		if err != nil {
			return nil, fmt.Errorf("store: open postgres: %w", err)
		}
		s.w.SetMaxOpenConns(16)
		s.w.SetMaxIdleConns(16)
		s.w.SetConnMaxIdleTime(5 * time.Minute)
		s.r = s.w
	default:
		var wdsn, rdsn, file string
		wdsn, rdsn, file, ownSync, err = sqliteDSNs(dsn, dataDir)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		s.dialect = sqlite
		s.seen.init()
		if s.w, err = sql.Open("sqlite", wdsn); err != nil {
			return nil, fmt.Errorf("store: open sqlite %s: %w", file, err)
		}
		s.w.SetMaxOpenConns(1)
		s.w.SetMaxIdleConns(1)
		if s.r, err = sql.Open("sqlite", rdsn); err != nil {
			s.w.Close()
			return nil, fmt.Errorf("store: open sqlite %s: %w", file, err)
		}
		// Readers do not block each other or the writer in WAL mode.
		s.r.SetMaxOpenConns(4)
		s.r.SetMaxIdleConns(4)
	}
	// The writer connects first: it switches the file to WAL, which the
	// query-only readers could not.
	if err := s.connect(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: connect %s: %w", s.dialect, err)
	}
	if err := s.startWALSync(ctx, ownSync); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	if s.dialect == sqlite {
		s.loadSeen()
	}
	return s, nil
}

// connect opens the writer's connection. Switching a new SQLite file to
// WAL fails at once with SQLITE_BUSY, without waiting the busy timeout,
// while another process opens it too; so that is retried for as long.
func (s *Store) connect(ctx context.Context) error {
	deadline := time.Now().Add(10 * time.Second)
	// Short, jittered waits: the other process holds the file for
	// milliseconds.
	b := backoff.New(5*time.Millisecond, 25*time.Millisecond)
	for {
		err := s.w.PingContext(ctx)
		var e *sqlitedrv.Error
		if !errors.As(err, &e) || e.Code()&0xff != sqliteBusy || time.Now().After(deadline) {
			return err
		}
		if !b.Wait(ctx, nil) {
			return err
		}
	}
}

const sqliteBusy = 5 // SQLITE_BUSY, the primary result code

// Close closes the database.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.st.deleteOutbox != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := s.writeExec(ctx, func(txExec) error { return nil }); err != nil {
				s.log.Error("record deliveries at close", "err", err)
			}
			cancel()
		}
		s.delivered.take() // stops the flush timer
		s.seen.close()
		// No sync may begin once SQLite's close below has deleted the log.
		s.wal.close()
		s.raw.close(s.w)
		for _, st := range s.st.all() {
			if st != nil {
				st.Close()
			}
		}
		var errR error
		if s.r != s.w {
			errR = s.r.Close()
		}
		s.closeErr = errors.Join(s.w.Close(), errR)
	})
	return s.closeErr
}

// statements are prepared once, at Open: modernc.org/sqlite has no
// statement cache, and parsing took a third of the time of a delivery.
type statements struct {
	insertEvent, insertRemote, insertOutbox, insertOutboxAt, lastSeq, raiseSeq, insertSeq, lockTargets,
	writerEvent, writerEventByRemote, deleteOutbox, moveFailed,
	eventByRemote, remoteID, event, pending, pendingTargets, outboxDepth, outboxRooms *sql.Stmt
}

func (st *statements) all() []*sql.Stmt {
	return []*sql.Stmt{
		st.insertEvent, st.insertRemote, st.insertOutbox, st.insertOutboxAt, st.lastSeq, st.raiseSeq, st.insertSeq, st.lockTargets,
		st.writerEvent, st.writerEventByRemote, st.deleteOutbox, st.moveFailed,
		st.eventByRemote, st.remoteID, st.event, st.pending, st.pendingTargets, st.outboxDepth, st.outboxRooms,
	}
}

// prepare runs after migrate, so that the tables exist, and before any
// write transaction: on SQLite, preparing on w waits for its only
// connection. Statements of write transactions are prepared on w, the
// rest on r.
func (s *Store) prepare(ctx context.Context) error {
	var err error
	s.queries = map[*sql.Stmt]string{}
	p := func(dst **sql.Stmt, db *sql.DB, query string) {
		if err != nil {
			return
		}
		if *dst, err = db.PrepareContext(ctx, s.q(query)); err != nil {
			err = fmt.Errorf("prepare %q: %w", query, err)
		} else if db == s.w {
			s.queries[*dst] = s.q(query)
		}
	}
	p(&s.st.insertEvent, s.w, `INSERT INTO events (id, kind, link, origin_network, origin_room, origin_remote_id,
		sender_network, sender_id, payload, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`)
	p(&s.st.insertRemote, s.w, `INSERT INTO remote_ids (network, room, remote_id, event_id) VALUES (?, ?, ?, ?)
		ON CONFLICT (network, room, remote_id) DO NOTHING`)
	if s.dialect == postgres {
		p(&s.st.insertOutbox, s.w, `INSERT INTO outbox (link, target_network, target_room, event_id, queued_at) VALUES (?, ?, ?, ?, ?) RETURNING seq`)
	} else {
		// The seqs are handed out by stageRow.
		p(&s.st.insertOutboxAt, s.w, `INSERT INTO outbox (seq, link, target_network, target_room, event_id, queued_at) VALUES (?, ?, ?, ?, ?, ?)`)
		p(&s.st.lastSeq, s.w, `SELECT seq FROM sqlite_sequence WHERE name = 'outbox'`)
		p(&s.st.raiseSeq, s.w, `UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'outbox'`)
		p(&s.st.insertSeq, s.w, `INSERT INTO sqlite_sequence (name, seq) VALUES ('outbox', ?)`)
	}
	if s.dialect == postgres {
		// Sorted, so that two transactions take their locks in the same
		// order and cannot deadlock.
		p(&s.st.lockTargets, s.w, `SELECT COUNT(pg_advisory_xact_lock(k))
			FROM (SELECT DISTINCT k FROM unnest(?::bigint[]) AS u (k) ORDER BY k) AS s`)
	}
	const eventByRemote = `SELECT event_id FROM remote_ids WHERE network = ? AND room = ? AND remote_id = ?`
	p(&s.st.writerEventByRemote, s.w, eventByRemote)
	if s.dialect == sqlite {
		p(&s.st.writerEvent, s.w, `SELECT id FROM events WHERE id = ?`)
	}
	p(&s.st.deleteOutbox, s.w, `DELETE FROM outbox WHERE seq = ?`)
	p(&s.st.moveFailed, s.w, `INSERT INTO failed (seq, link, target_network, target_room, event_id, reason, failed_at)
		SELECT seq, link, target_network, target_room, event_id, ?, ? FROM outbox WHERE seq = ?`)

	p(&s.st.eventByRemote, s.r, eventByRemote)
	p(&s.st.remoteID, s.r, `SELECT remote_id FROM remote_ids WHERE event_id = ? AND network = ? AND room = ? LIMIT 1`)
	p(&s.st.event, s.r, `SELECT kind, payload FROM events WHERE id = ?`)
	// Not a bare LIMIT ?: SQLite plans with its value, and so prepares
	// the statement again whenever the value changes.
	p(&s.st.pending, s.r, `SELECT o.seq, o.link, e.kind, e.payload FROM outbox o JOIN events e ON e.id = o.event_id
		WHERE o.target_network = ? AND o.target_room = ? AND o.seq > ? ORDER BY o.seq LIMIT CAST(? AS INTEGER)`)
	p(&s.st.pendingTargets, s.r, `SELECT DISTINCT target_network, target_room FROM outbox ORDER BY target_network, target_room`)
	p(&s.st.outboxDepth, s.r, `SELECT COUNT(*) FROM outbox`)
	// Grouping on the outbox_target index alone, and then looking up the
	// head of each room's queue, keeps the scan off the table's rows.
	p(&s.st.outboxRooms, s.r, `SELECT q.target_network, q.target_room, q.n, o.queued_at
		FROM (SELECT target_network, target_room, COUNT(*) AS n, MIN(seq) AS head
			FROM outbox GROUP BY target_network, target_room) AS q
		JOIN outbox o ON o.seq = q.head
		ORDER BY q.target_network, q.target_room`)
	return err
}

// q rewrites the ? placeholders of query for the dialect.
func (s *Store) q(query string) string {
	if s.dialect == postgres {
		return rebind(query)
	}
	return query
}

// errDuplicate rolls back an Accept of an event seen before.
var errDuplicate = errors.New("duplicate")

// write runs fn in a write transaction, together with the delivery
// records waiting for one, and commits it.
func (s *Store) write(ctx context.Context, fn func(*sql.Tx) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.dialect == sqlite {
		// The batch first, on the same connection: a transaction of its
		// own cannot begin while the batch's is open.
		conn, unlock, err := s.lockWriter(ctx)
		if err != nil {
			return err
		}
		if err = s.onConn(conn, s.commit); err == nil {
			err = s.writeTx(ctx, conn.BeginTx, fn)
		}
		unlock()
		if err != nil {
			return err
		}
		return s.wal.wait(s.wal.committed())
	}
	return s.writeTx(ctx, s.w.BeginTx, fn)
}

// writeTx runs fn, and the delivery records waiting, in a transaction
// from begin.
func (s *Store) writeTx(ctx context.Context, begin func(context.Context, *sql.TxOptions) (*sql.Tx, error), fn func(*sql.Tx) error) (err error) {
	recs := s.delivered.take()
	defer func() { s.settle(recs, err == nil) }()
	tx, err := begin(s.stmtContext(ctx), nil)
	if err != nil {
		return err
	}
	if err := s.writeDelivered(sqlTx{s.stmtContext(ctx), tx}, recs); err != nil {
		tx.Rollback()
		return fmt.Errorf("record deliveries: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback() // the records go back to wait for the next write
		return err
	}
	return tx.Commit()
}

// stmtContext is the context the statements of a write transaction run
// with. On SQLite it is never canceled: modernc.org/sqlite starts a
// goroutine per statement to interrupt it on cancellation, which cost more
// than the statement itself, and a local write does not hang (waiting for
// another process's lock ends after the busy timeout); write checks ctx
// before it begins.
func (s *Store) stmtContext(ctx context.Context) context.Context {
	if s.dialect == sqlite {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// Accept implements bridge.Store.
func (s *Store) Accept(ctx context.Context, link string, ev bridge.Event, targets []bridge.RoomAddr) ([]bridge.Queued, bool, error) {
	queued, accepted, durable, err := s.AcceptCommitted(ctx, link, ev, targets)
	if err == nil && durable != nil {
		err = durable(true)
	}
	if err != nil {
		return nil, false, err
	}
	return queued, accepted, nil
}

// AcceptCommitted implements bridge.EarlyStore; durable is nil when the
// commit needs no sync of its own (PostgreSQL, SQLite NORMAL).
func (s *Store) AcceptCommitted(ctx context.Context, link string, ev bridge.Event, targets []bridge.RoomAddr) ([]bridge.Queued, bool, func(now bool) error, error) {
	h := ev.Head()
	if h.ID == "" {
		return nil, false, nil, fmt.Errorf("store: accept %s event without id", ev.Kind())
	}
	payload, err := bridge.Encode(ev)
	if err != nil {
		return nil, false, nil, fmt.Errorf("store: accept %s: encode: %w", h.ID, err)
	}
	targets = distinct(targets)
	now := time.Now().UnixMicro()
	if s.dialect == sqlite {
		row := acceptRow{
			id: string(h.ID), kind: string(ev.Kind()), link: link,
			origin:        remoteKey{h.Origin.Network, h.Origin.Room, h.Origin.RemoteID},
			senderNetwork: h.Sender.Network, senderID: h.Sender.ID, payload: string(payload), createdAt: now,
		}
		entries := make([]outboxEntry, len(targets))
		for i, t := range targets {
			entries[i] = outboxEntry{link, t.Network, t.Room, row.id, now}
		}
		seqs, commit, err := s.acceptStaged(ctx, row, entries)
		var durable func(now bool) error
		if s.wal != nil && err == nil {
			durable = func(now bool) error {
				if err := s.wal.waitFor(commit, now); err != nil {
					return fmt.Errorf("store: accept %s: %w", h.ID, err)
				}
				return nil
			}
		}
		if err != nil {
			return nil, false, nil, fmt.Errorf("store: accept %s: %w", h.ID, err)
		}
		if seqs == nil {
			return nil, false, durable, nil // the first copy may not be on disk yet
		}
		queued := make([]bridge.Queued, len(targets))
		for i, t := range targets {
			queued[i] = bridge.Queued{Seq: seqs[i], Link: link, Target: t, Event: ev}
		}
		return queued, true, durable, nil
	}
	queued := make([]bridge.Queued, 0, len(targets))
	err = s.write(ctx, func(tx *sql.Tx) error {
		// PostgreSQL hands out seqs at insert but they become visible at
		// commit, so without this a later seq for a room could be read,
		// and delivered, before an earlier one. Holding a lock per target
		// room from before the insert until commit makes each room's seqs
		// visible in order. (SQLite writers are serialized anyway.)
		if len(targets) > 0 {
			if _, err := tx.StmtContext(ctx, s.st.lockTargets).ExecContext(ctx, lockKeys(targets)); err != nil {
				return fmt.Errorf("lock targets: %w", err)
			}
		}
		res, err := tx.StmtContext(ctx, s.st.insertEvent).ExecContext(ctx, string(h.ID), string(ev.Kind()), link,
			h.Origin.Network, h.Origin.Room, h.Origin.RemoteID, h.Sender.Network, h.Sender.ID,
			string(payload), now)
		if err != nil {
			return fmt.Errorf("insert event: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return errDuplicate // the same event accepted again
		}
		if h.Origin.RemoteID != "" {
			res, err := tx.StmtContext(ctx, s.st.insertRemote).ExecContext(ctx, h.Origin.Network, h.Origin.Room, h.Origin.RemoteID, string(h.ID))
			if err != nil {
				return fmt.Errorf("insert remote id: %w", err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				return errDuplicate
			}
		}
		queued = queued[:0]
		for _, t := range targets {
			q := bridge.Queued{Link: link, Target: t, Event: ev}
			if err := tx.StmtContext(ctx, s.st.insertOutbox).QueryRowContext(ctx, link, t.Network, t.Room, string(h.ID), now).Scan(&q.Seq); err != nil {
				return fmt.Errorf("queue for %s: %w", t, err)
			}
			queued = append(queued, q)
		}
		return nil
	})
	if errors.Is(err, errDuplicate) {
		return nil, false, nil, nil
	}
	if err != nil {
		return nil, false, nil, fmt.Errorf("store: accept %s: %w", h.ID, err)
	}
	return queued, true, nil, nil
}

// acceptStaged stages an event on SQLite, unless it is a duplicate, and
// returns its seqs (nil for a duplicate) and the number of the commit to
// wait for.
func (s *Store) acceptStaged(ctx context.Context, row acceptRow, entries []outboxEntry) (seqs []int64, commit uint64, err error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	keys := s.rowKeys(row)
	s.wmu.Lock()
	if s.wal != nil && s.batch.reservedFor(len(entries)) && !s.seen.mayHave(keys.event) &&
		(row.origin.remoteID == "" || !s.seen.mayHave(keys.origin)) {
		// Most accepts: nothing to ask the database, no connection needed.
		seqs = s.stageRow(row, keys, entries)
		s.wmu.Unlock()
		return seqs, s.wal.committed(), nil
	}
	conn, unlock, err := s.writerConn(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer unlock()
	err = s.onConn(conn, func(t rawTx) error {
		if known, err := s.known(t, row, keys); err != nil || known {
			commit = s.wal.last()
			return err
		}
		if err := s.reserve(t, len(entries)); err != nil {
			return err
		}
		seqs = s.stageRow(row, keys, entries)
		if s.wal == nil {
			// Nothing syncs later: commit now. The batch holds this
			// accept alone, and its caller hears that it failed.
			if err := s.commit(t); err != nil {
				s.forget(false)
				seqs = nil
				return err
			}
			return nil
		}
		commit = s.wal.committed()
		return nil
	})
	return seqs, commit, err
}

func distinct(rooms []bridge.RoomAddr) []bridge.RoomAddr {
	for i := 1; i < len(rooms); i++ {
		if slices.Contains(rooms[:i], rooms[i]) {
			out := slices.Clone(rooms[:i])
			for _, r := range rooms[i+1:] {
				if !slices.Contains(out, r) {
					out = append(out, r)
				}
			}
			return out
		}
	}
	return rooms
}

func lockKeys(rooms []bridge.RoomAddr) []int64 {
	keys := make([]int64, len(rooms))
	for i, r := range rooms {
		h := fnv.New64a()
		h.Write([]byte(r.Network))
		h.Write([]byte{0})
		h.Write([]byte(r.Room))
		keys[i] = int64(h.Sum64())
	}
	slices.Sort(keys)
	return keys
}

// Flush implements bridge.Flusher: the delivery records waiting are
// written (and synced) when it returns.
func (s *Store) Flush(ctx context.Context) error {
	return s.writeExec(ctx, func(txExec) error { return nil })
}

// PendingTargets implements bridge.Store.
func (s *Store) PendingTargets(ctx context.Context) ([]bridge.RoomAddr, error) {
	// Deliveries waiting to be recorded would list rooms with nothing left.
	if err := s.Flush(ctx); err != nil {
		return nil, fmt.Errorf("store: pending targets: %w", err)
	}
	rows, err := s.st.pendingTargets.QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: pending targets: %w", err)
	}
	defer rows.Close()
	var out []bridge.RoomAddr
	for rows.Next() {
		var a bridge.RoomAddr
		if err := rows.Scan(&a.Network, &a.Room); err != nil {
			return nil, fmt.Errorf("store: pending targets: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: pending targets: %w", err)
	}
	return out, nil
}

// Pending implements bridge.Store.
func (s *Store) Pending(ctx context.Context, target bridge.RoomAddr, after int64, limit int) ([]bridge.Queued, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("store: pending for %s: limit %d is not positive", target, limit)
	}
	if err := s.visible(ctx); err != nil {
		return nil, fmt.Errorf("store: pending for %s: %w", target, err)
	}
	defer s.delivered.beginRead()()
	var out []bridge.Queued
	// Entries delivered but not yet recorded are skipped; read on until
	// limit entries are found or there are no more, so that a short answer
	// always means the outbox has no more.
	for {
		want := limit - len(out)
		n, err := s.pendingPage(ctx, target, &after, want, &out)
		if err != nil {
			return nil, fmt.Errorf("store: pending for %s: %w", target, err)
		}
		if len(out) == limit || n < want {
			return out, nil
		}
	}
}

// pendingPage reads up to limit rows after *after into out, skipping
// entries delivered but not yet recorded, and returns how many rows it
// read.
func (s *Store) pendingPage(ctx context.Context, target bridge.RoomAddr, after *int64, limit int, out *[]bridge.Queued) (int, error) {
	rows, err := s.st.pending.QueryContext(ctx, target.Network, target.Room, *after, limit)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var (
			q             = bridge.Queued{Target: target}
			kind, payload string
		)
		if err := rows.Scan(&q.Seq, &q.Link, &kind, &payload); err != nil {
			return n, err
		}
		n++
		*after = q.Seq
		if s.delivered.isDelivered(q.Seq) {
			continue
		}
		if q.Event, err = bridge.Decode(bridge.Kind(kind), []byte(payload)); err != nil {
			return n, fmt.Errorf("seq %d: %w", q.Seq, err)
		}
		*out = append(*out, q)
	}
	return n, rows.Err()
}

// Failed implements bridge.Store. Calling it again changes nothing.
func (s *Store) Failed(ctx context.Context, q bridge.Queued, reason string) error {
	err := s.writeExec(ctx, func(tx txExec) error {
		if t, ok := tx.(rawTx); ok {
			// moveFailed reads the entry from the table.
			if err := s.writeOutbox(t); err != nil {
				return err
			}
		}
		if _, err := tx.exec(s.st.moveFailed, reason, time.Now().UnixMicro(), q.Seq); err != nil {
			return fmt.Errorf("insert into failed: %w", err)
		}
		if _, err := tx.exec(s.st.deleteOutbox, q.Seq); err != nil {
			return fmt.Errorf("delete from outbox: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: failed seq %d to %s: %w", q.Seq, q.Target, err)
	}
	return nil
}

// Event implements bridge.Store.
func (s *Store) Event(ctx context.Context, id bridge.EventID) (bridge.Event, error) {
	if err := s.visible(ctx); err != nil {
		return nil, fmt.Errorf("store: event %s: %w", id, err)
	}
	var kind, payload string
	err := s.st.event.QueryRowContext(ctx, string(id)).Scan(&kind, &payload)
	if err != nil {
		return nil, fmt.Errorf("store: event %s: %w", id, notFound(err))
	}
	ev, err := bridge.Decode(bridge.Kind(kind), []byte(payload))
	if err != nil {
		return nil, fmt.Errorf("store: event %s: %w", id, err)
	}
	return ev, nil
}

// EventByRemote implements bridge.Store.
func (s *Store) EventByRemote(ctx context.Context, room bridge.RoomAddr, remoteID string) (bridge.EventID, error) {
	if err := s.visible(ctx); err != nil {
		return "", fmt.Errorf("store: event of %s in %s: %w", remoteID, room, err)
	}
	defer s.delivered.beginRead()()
	if id, ok := s.delivered.eventByRemote(room, remoteID); ok {
		return id, nil
	}
	var id string
	err := s.st.eventByRemote.QueryRowContext(ctx, room.Network, room.Room, remoteID).Scan(&id)
	if err != nil {
		return "", fmt.Errorf("store: event of %s in %s: %w", remoteID, room, notFound(err))
	}
	return bridge.EventID(id), nil
}

// RemoteID implements bridge.Store.
func (s *Store) RemoteID(ctx context.Context, room bridge.RoomAddr, id bridge.EventID) (string, error) {
	if err := s.visible(ctx); err != nil {
		return "", fmt.Errorf("store: remote id of %s in %s: %w", id, room, err)
	}
	defer s.delivered.beginRead()()
	if remote, ok := s.delivered.remoteID(room, id); ok {
		return remote, nil
	}
	var remote string
	err := s.st.remoteID.QueryRowContext(ctx, string(id), room.Network, room.Room).Scan(&remote)
	if err != nil {
		return "", fmt.Errorf("store: remote id of %s in %s: %w", id, room, notFound(err))
	}
	return remote, nil
}

// OutboxDepth implements bridge.Store.
func (s *Store) OutboxDepth(ctx context.Context) (int, error) {
	if err := s.visible(ctx); err != nil {
		return 0, fmt.Errorf("store: outbox depth: %w", err)
	}
	defer s.delivered.beginRead()()
	var n int
	if err := s.st.outboxDepth.QueryRowContext(ctx).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: outbox depth: %w", err)
	}
	return max(0, n-s.delivered.count()), nil
}

// RoomQueue is the outbox of one target room.
type RoomQueue struct {
	Room  bridge.RoomAddr
	Depth int // deliveries waiting
	// Oldest is when the head of the queue, the delivery waiting longest,
	// was queued.
	Oldest time.Time
}

// OutboxRooms lists the rooms with deliveries waiting, sorted, in one
// grouped query: cheap enough to run at every metrics scrape. For a moment
// after a delivery, Oldest may still be that of the delivered entry.
func (s *Store) OutboxRooms(ctx context.Context) ([]RoomQueue, error) {
	if err := s.visible(ctx); err != nil {
		return nil, fmt.Errorf("store: outbox rooms: %w", err)
	}
	epoch, end := s.delivered.beginReadAt()
	defer end()
	rows, err := s.st.outboxRooms.QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: outbox rooms: %w", err)
	}
	defer rows.Close()
	var out []RoomQueue
	for rows.Next() {
		var (
			q      RoomQueue
			queued int64
		)
		if err := rows.Scan(&q.Room.Network, &q.Room.Room, &q.Depth, &queued); err != nil {
			return nil, fmt.Errorf("store: outbox rooms: %w", err)
		}
		q.Oldest = time.UnixMicro(queued)
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: outbox rooms: %w", err)
	}
	return s.delivered.subtract(out, epoch), nil
}

func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return bridge.ErrNotFound
	}
	return err
}

// FullText implements bridge.TextStore.
func (s *Store) FullText(ctx context.Context, id bridge.EventID) (string, error) {
	if err := s.visible(ctx); err != nil {
		return "", fmt.Errorf("store: text of %s: %w", id, err)
	}
	var (
		kind, payload string
		pruned        bool
	)
	err := s.r.QueryRowContext(ctx, s.q(`SELECT kind, payload, pruned_at IS NOT NULL FROM events WHERE id = ?`), string(id)).
		Scan(&kind, &payload, &pruned)
	if err != nil {
		return "", fmt.Errorf("store: text of %s: %w", id, notFound(err))
	}
	if kind != string(bridge.KindMessage) && kind != string(bridge.KindEdit) {
		return "", fmt.Errorf("store: text of %s: a %s has none: %w", id, kind, bridge.ErrNotFound)
	}
	if pruned {
		return "", fmt.Errorf("store: text of %s: %w", id, bridge.ErrContentRemoved)
	}
	ev, err := bridge.Decode(bridge.Kind(kind), []byte(payload))
	if err != nil {
		return "", fmt.Errorf("store: text of %s: %w", id, err)
	}
	switch ev := ev.(type) {
	case *bridge.Message:
		return ev.Text, nil
	case *bridge.Edit:
		return ev.Text, nil
	}
	return "", fmt.Errorf("store: text of %s: a %T has none: %w", id, ev, bridge.ErrNotFound)
}
