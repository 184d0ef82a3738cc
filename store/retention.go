package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
)

// Retention says how long the store keeps what it does not need for
// delivery. A zero age keeps that part for ever.
type Retention struct {
	// Messages is the age after which an event's contents are removed
	// (bridge.RemoveContent): what people said, but not the ids, the
	// remote-id maps, the sender and the short quote that later replies,
	// edits and deletions need. An event still in the outbox or in the
	// failed list keeps its contents until it has left them.
	Messages time.Duration
	// IDs is the age after which a pruned event is deleted with its
	// remote-id maps: a reply to it then arrives as a plain message, and
	// an edit or deletion of it is not bridged. It is at least Messages.
	IDs time.Duration
	// Failed is the age after which a failed delivery is dropped from
	// the failed list; its event's contents may then go too.
	Failed time.Duration
}

// On returns whether r removes anything.
func (r Retention) On() bool { return r.Messages > 0 || r.IDs > 0 || r.Failed > 0 }

// PruneStats is what one Prune did.
type PruneStats struct {
	Failed  int // failed deliveries dropped
	Events  int // events whose contents were removed
	Deleted int // events deleted, with their remote-id maps
	Files   int // files deleted with their messages' contents
	Batches int // write transactions, each holding the writer briefly
	// Longest is the longest a batch held the writer, up to its commit:
	// about the longest an accept may have waited because of pruning.
	Longest time.Duration
	Took    time.Duration

	batch int // the next batch's size
}

// A pruning transaction changes up to batch rows: few enough that it
// holds the writer, which every accept needs, for about pruneHold; each
// batch is sized by how long the last one took. (Deleting an event
// looks for it in the outbox, which has no index on event ids: a long
// outbox makes each deletion slower.) vacuumPages is the same for the
// pages incremental_vacuum gives back.
const (
	minBatch    = 8
	firstBatch  = 256
	maxBatch    = 2048
	pruneHold   = 10 * time.Millisecond
	vacuumPages = 256
)

// Prune applies r as of now: it drops the failed deliveries older than
// r.Failed, then removes the contents of the events older than
// r.Messages that no delivery waits for, a batch at a time, and pauses
// after each batch for as long as it took, so that accepts keep going
// meanwhile. On SQLite, where the writer overwrites what it removes
// (secure_delete), it then gives the freed pages back to the file system
// and checkpoints and truncates the log, so that the removed contents
// are in neither file. On PostgreSQL autovacuum reclaims the old row
// versions.
func (s *Store) Prune(ctx context.Context, r Retention, now time.Time) (PruneStats, error) {
	start := time.Now()
	st := PruneStats{batch: firstBatch}
	err := s.pruneFailed(ctx, r, now, &st)
	if err == nil {
		err = s.pruneEvents(ctx, r, now, &st)
	}
	if err == nil {
		err = s.pruneFiles(ctx, r, now, &st)
	}
	if err == nil {
		err = s.deleteEvents(ctx, r, now, &st)
	}
	if err == nil && s.dialect == sqlite && (st.Failed+st.Events+st.Deleted+st.Files > 0 || s.reclaimDue.Load()) {
		// Until it succeeds, every pass tries again.
		s.reclaimDue.Store(true)
		if err = s.reclaim(ctx, &st); err == nil {
			s.reclaimDue.Store(false)
		}
	}
	st.Took = time.Since(start)
	if err != nil {
		return st, fmt.Errorf("store: prune: %w", err)
	}
	return st, nil
}

// pruneStep runs one batch in a write transaction of its own, then
// leaves the writer to others for as long. fn gets the batch's size and
// returns how many rows it changed: as many means more may be waiting.
func (s *Store) pruneStep(ctx context.Context, st *PruneStats, fn func(tx *sql.Tx, limit int) (int, error)) (n int, full bool, err error) {
	t0 := time.Now()
	limit := st.batch
	var held time.Duration
	err = s.write(ctx, func(tx *sql.Tx) error {
		var err error
		n, err = fn(tx, limit)
		held = time.Since(t0) // the commit and the sync come after, the writer free
		return err
	})
	if err != nil {
		return 0, false, err
	}
	took := time.Since(t0)
	st.Batches++
	st.Longest = max(st.Longest, held)
	switch {
	case held > pruneHold:
		st.batch = max(minBatch, st.batch/2)
	case held < pruneHold/4:
		st.batch = min(maxBatch, st.batch*2)
	}
	select {
	case <-ctx.Done():
		return n, false, ctx.Err()
	case <-time.After(took):
		return n, n >= limit, nil
	}
}

func (s *Store) pruneFailed(ctx context.Context, r Retention, now time.Time, st *PruneStats) error {
	if r.Failed <= 0 {
		return nil
	}
	cutoff := now.Add(-r.Failed).UnixMicro()
	query := s.q(`DELETE FROM failed WHERE seq IN
		(SELECT seq FROM failed WHERE failed_at < ? ORDER BY failed_at LIMIT ?)`)
	for {
		n, full, err := s.pruneStep(ctx, st, func(tx *sql.Tx, limit int) (int, error) {
			return execCount(ctx, tx, query, cutoff, limit)
		})
		st.Failed += n
		if err != nil {
			return fmt.Errorf("failed list: %w", err)
		}
		if !full {
			return nil
		}
	}
}

// pruneEvents removes the contents of old events, oldest first. The
// outbox and the failed list are read once per batch (NOT IN a
// subquery, computed once per statement): they hold few entries, and an
// index on their event ids would cost every delivery.
func (s *Store) pruneEvents(ctx context.Context, r Retention, now time.Time, st *PruneStats) error {
	if r.Messages <= 0 {
		return nil
	}
	cutoff := now.Add(-r.Messages).UnixMicro()
	sel := s.q(`SELECT id, kind, payload, created_at FROM events
		WHERE pruned_at IS NULL AND created_at < ? AND (created_at, id) > (?, ?)
			AND id NOT IN (SELECT event_id FROM outbox) AND id NOT IN (SELECT event_id FROM failed)
		ORDER BY created_at, id LIMIT ?`)
	upd := s.pruneUpdate()
	// The cursor: the events passed over (in the outbox) are not read
	// again in this pass.
	afterAt, afterID := int64(-1), ""
	for {
		changed := 0
		_, full, err := s.pruneStep(ctx, st, func(tx *sql.Tx, limit int) (int, error) {
			type change struct{ id, payload string }
			var changes []change
			rows, err := tx.QueryContext(ctx, sel, cutoff, afterAt, afterID, limit)
			if err != nil {
				return 0, err
			}
			n := 0
			for rows.Next() {
				var id, kind, payload string
				if err := rows.Scan(&id, &kind, &payload, &afterAt); err != nil {
					rows.Close()
					return 0, err
				}
				afterID = id
				n++
				ev, err := bridge.Decode(bridge.Kind(kind), []byte(payload))
				if err != nil {
					// Left as it is: what cannot be read cannot be
					// shortened to a quote either.
					s.log.Warn("retention: event left as it is", "event", id, "err", err)
					continue
				}
				bridge.RemoveContent(ev)
				kept, err := bridge.Encode(ev)
				if err != nil {
					rows.Close()
					return 0, fmt.Errorf("event %s: %w", id, err)
				}
				changes = append(changes, change{id, string(kept)})
			}
			if err := rows.Close(); err != nil {
				return 0, err
			}
			if err := rows.Err(); err != nil {
				return 0, err
			}
			at := time.Now().UnixMicro()
			for _, c := range changes {
				if _, err := tx.ExecContext(ctx, upd, c.payload, at, c.id); err != nil {
					return 0, fmt.Errorf("event %s: %w", c.id, err)
				}
			}
			changed = len(changes)
			return n, nil
		})
		if err != nil {
			return fmt.Errorf("events: %w", err)
		}
		st.Events += changed
		if !full {
			return nil
		}
	}
}

// pruneUpdate is the statement that replaces an event's payload with
// what remains of it (payload, pruned_at, id).
func (s *Store) pruneUpdate() string {
	if s.dialect == sqlite {
		// The shortened row moves to the end of the table, so that the
		// pages it leaves empty are freed (SQLite merges a page only once
		// it is less than a third full) and the kept rows are packed.
		// Nothing refers to an event by its rowid.
		return `UPDATE events SET payload = ?, pruned_at = ?, rowid = (SELECT MAX(rowid) + 1 FROM events)
			WHERE id = ? AND pruned_at IS NULL`
	}
	return s.q(`UPDATE events SET payload = ?, pruned_at = ? WHERE id = ? AND pruned_at IS NULL`)
}

// RemoveContent implements bridge.ContentRemover: the contents of a
// message its author deleted are removed at once, as retention would
// remove them. An event a delivery still waits for (or that is on the
// failed list) keeps them until retention takes them. On SQLite the
// words stay in the freed pages of the log until the next retention
// pass checkpoints it.
func (s *Store) RemoveContent(ctx context.Context, id bridge.EventID) error {
	sel := s.q(`SELECT kind, payload FROM events WHERE id = ? AND pruned_at IS NULL
		AND id NOT IN (SELECT event_id FROM outbox WHERE event_id = ?)
		AND id NOT IN (SELECT event_id FROM failed WHERE event_id = ?)`)
	err := s.write(ctx, func(tx *sql.Tx) error {
		var kind, payload string
		err := tx.QueryRowContext(ctx, sel, string(id), string(id), string(id)).Scan(&kind, &payload)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // unknown, removed already, or still waited for
		}
		if err != nil {
			return err
		}
		ev, err := bridge.Decode(bridge.Kind(kind), []byte(payload))
		if err != nil {
			return err
		}
		bridge.RemoveContent(ev)
		kept, err := bridge.Encode(ev)
		if err != nil {
			return err
		}
		if _, err = tx.ExecContext(ctx, s.pruneUpdate(), string(kept), time.Now().UnixMicro(), string(id)); err != nil {
			return err
		}
		// The files it carried go with its words.
		return s.deleteFilesOf(ctx, tx, id)
	})
	if err != nil {
		return fmt.Errorf("store: remove the contents of %s: %w", id, err)
	}
	return nil
}

// deleteEvents deletes the pruned events older than r.IDs, with their
// remote-id maps (ON DELETE CASCADE).
func (s *Store) deleteEvents(ctx context.Context, r Retention, now time.Time, st *PruneStats) error {
	if r.IDs <= 0 {
		return nil
	}
	cutoff := now.Add(-r.IDs).UnixMicro()
	// An event in the outbox or the failed list is never pruned; checked
	// all the same, as a deletion would fail on their foreign keys.
	query := s.q(`DELETE FROM events WHERE id IN (SELECT id FROM events
		WHERE pruned_at IS NOT NULL AND created_at < ?
			AND id NOT IN (SELECT event_id FROM outbox) AND id NOT IN (SELECT event_id FROM failed)
		ORDER BY created_at, id LIMIT ?)`)
	for {
		n, full, err := s.pruneStep(ctx, st, func(tx *sql.Tx, limit int) (int, error) {
			return execCount(ctx, tx, query, cutoff, limit)
		})
		st.Deleted += n
		if err != nil {
			return fmt.Errorf("delete events: %w", err)
		}
		if !full {
			return nil
		}
	}
}

// execCount runs a statement and returns the rows it changed.
func execCount(ctx context.Context, tx *sql.Tx, query string, args ...any) (int, error) {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// reclaim gives the pages freed on SQLite back to the file system, a
// batch at a time, then checkpoints the log into the database and
// truncates it: the pages the removals changed were written to the log
// in full, and older copies of them may be in it still.
func (s *Store) reclaim(ctx context.Context, st *PruneStats) error {
	for {
		free, _, err := s.pruneStep(ctx, st, func(tx *sql.Tx, _ int) (int, error) {
			if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA incremental_vacuum(%d)`, vacuumPages)); err != nil {
				return 0, err
			}
			var free int
			err := tx.QueryRowContext(ctx, `PRAGMA freelist_count`).Scan(&free)
			return free, err
		})
		if err != nil {
			return fmt.Errorf("incremental vacuum: %w", err)
		}
		if free == 0 {
			break
		}
	}
	return s.checkpoint(ctx)
}

// checkpoint copies SQLite's log into the database and truncates it, on
// the writer's connection once the open batch is committed. Readers still
// using the log are waited for only briefly, accepts waiting meanwhile: a
// long read (the filter of stored ids loading at start) makes it fail,
// to be tried again soon (RunRetention).
func (s *Store) checkpoint(ctx context.Context) error {
	return s.onIdleWriter(ctx, func(conn *sql.Conn) error {
		var timeout int
		if err := conn.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&timeout); err != nil {
			return err
		}
		if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, checkpointWait.Milliseconds())); err != nil {
			return err
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf(`PRAGMA busy_timeout = %d`, timeout))
		var busy, frames, done int
		if err := conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &frames, &done); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		if busy != 0 {
			return errors.New("checkpoint: readers are using the log; it is truncated at the next try")
		}
		return nil
	})
}

// checkpointWait is how long a checkpoint waits for readers, and
// reclaimRetry how soon retention tries again when one could not finish.
const (
	checkpointWait = 200 * time.Millisecond
	reclaimRetry   = time.Minute
)

// onIdleWriter runs fn on the writer's connection with no transaction
// open on it (the batch committed first), for what SQLite cannot run in
// one: VACUUM, checkpoints. Accepts wait meanwhile.
func (s *Store) onIdleWriter(ctx context.Context, fn func(*sql.Conn) error) error {
	conn, unlock, err := s.lockWriter(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.onConn(conn, s.commit); err != nil {
		return err
	}
	return fn(conn)
}

// incrementalVacuum switches an SQLite file made by an older build,
// without auto_vacuum, to auto_vacuum=INCREMENTAL, for retention to give
// space back: one full VACUUM, at the first start after the upgrade.
// (New files get it from the writer's DSN.) A VACUUM that fails, short of
// disk space for the copies it writes, leaves the store working as before
// and is tried again at the next start.
func (s *Store) incrementalVacuum(ctx context.Context) error {
	if s.dialect != sqlite {
		return nil
	}
	const incremental = 2
	var mode int
	if err := s.w.QueryRowContext(ctx, `PRAGMA auto_vacuum`).Scan(&mode); err != nil {
		return fmt.Errorf("read auto_vacuum: %w", err)
	}
	if mode == incremental {
		return nil
	}
	s.log.Info("switching the database to incremental vacuum: one full VACUUM, which may take a while", "file", s.file)
	start := time.Now()
	err := s.onIdleWriter(ctx, func(conn *sql.Conn) error {
		if _, err := conn.ExecContext(ctx, `PRAGMA auto_vacuum = INCREMENTAL`); err != nil {
			return err
		}
		if _, err := conn.ExecContext(ctx, `VACUUM`); err != nil {
			return err
		}
		return conn.QueryRowContext(ctx, `PRAGMA auto_vacuum`).Scan(&mode)
	})
	if err == nil && mode != incremental {
		err = fmt.Errorf("auto_vacuum is %d after VACUUM", mode)
	}
	if err == nil {
		err = s.checkpoint(ctx)
	}
	if err != nil {
		s.log.Error("the database could not be switched to incremental vacuum; retention removes contents but cannot shrink the file until it is", "err", err)
		return nil
	}
	s.log.Info("applied database migration", "name", "incremental vacuum", "dialect", s.dialect, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// RunRetention prunes by r at once and then every interval, until ctx
// ends.
func (s *Store) RunRetention(ctx context.Context, r Retention, every time.Duration) {
	if !r.On() {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		st, err := s.Prune(ctx, r, time.Now())
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.log.Error("retention", "err", err)
		case st.Events+st.Deleted+st.Failed+st.Files > 0:
			s.log.Info("retention: removed old contents", "events", st.Events, "deleted", st.Deleted, "failed_dropped", st.Failed, "files", st.Files,
				"batches", st.Batches, "longest_batch", st.Longest.Round(time.Microsecond), "took", st.Took.Round(time.Millisecond))
		}
		wait := t.C
		if s.reclaimDue.Load() {
			wait = time.After(min(every, reclaimRetry))
		}
		select {
		case <-ctx.Done():
			return
		case <-wait:
		}
	}
}

// Size is the space the store takes: on SQLite the database file and its
// log, on PostgreSQL the database.
func (s *Store) Size(ctx context.Context) (int64, error) {
	if s.dialect == postgres {
		var n int64
		if err := s.r.QueryRowContext(ctx, `SELECT pg_database_size(current_database())`).Scan(&n); err != nil {
			return 0, fmt.Errorf("store: size: %w", err)
		}
		return n, nil
	}
	if s.file == "" { // in memory
		var pages, size int64
		err := s.r.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages)
		if err == nil {
			err = s.r.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&size)
		}
		if err != nil {
			return 0, fmt.Errorf("store: size: %w", err)
		}
		return pages * size, nil
	}
	var n int64
	for _, f := range []string{s.file, s.file + "-wal"} {
		fi, err := os.Stat(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("store: size: %w", err)
		}
		n += fi.Size()
	}
	return n, nil
}
