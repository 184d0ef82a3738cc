package store

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
)

// walSync makes SQLite's write-ahead log durable after each commit, in
// place of SQLite's synchronous=FULL. SQLite then syncs with fsync, which
// also writes the log's inode, changed by every commit only in its
// modification time: on ext4 that is a second synchronous device write
// (or a journal commit) per transaction. fdatasync skips it, as
// PostgreSQL's default wal_sync_method does. The writer runs with
// synchronous=NORMAL (the log and the database are still synced around
// checkpoints) and each write returns only once an fdatasync that began
// after its commit has ended. One fdatasync serves every commit made
// before it began, so concurrent writers share it (group commit).
type walSync struct {
	path string // the log file

	mu      sync.Mutex
	done    *sync.Cond
	f       *os.File
	written uint64 // commits made so far
	durable uint64 // commits known to be on disk
	syncs   uint64 // fdatasyncs done
	syncing bool
}

func newWALSync(path string) *walSync {
	w := &walSync{path: path}
	w.done = sync.NewCond(&w.mu)
	return w
}

// The methods below work on a nil *walSync, which stands for a store
// that needs no sync of its own (PostgreSQL, SQLite NORMAL or in memory):
// there is nothing to count and nothing to wait for.

// committed counts a commit just made and returns its number, for wait.
func (w *walSync) committed() uint64 {
	if w == nil {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.written++
	return w.written
}

// last is the number of the latest commit, for wait.
func (w *walSync) last() uint64 {
	if w == nil {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.written
}

// wait returns once commit n is on disk.
func (w *walSync) wait(n uint64) error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.durable < n {
		if w.syncing {
			w.done.Wait()
			continue
		}
		w.syncing = true
		upTo := w.written
		w.mu.Unlock()
		err := w.sync()
		w.mu.Lock()
		w.syncing = false
		w.done.Broadcast()
		if err != nil {
			return fmt.Errorf("sync %s: %w", w.path, err)
		}
		w.durable = max(w.durable, upTo)
		w.syncs++
	}
	return nil
}

// sync runs fdatasync on the log. SQLite deletes the log when the last
// connection to the database closes (after checkpointing it into the
// database, synced) and creates a new one on the next open, so a file
// found deleted after the sync is replaced by the current one and that is
// synced instead.
func (w *walSync) sync() error {
	for range 3 {
		if w.f == nil {
			f, err := os.Open(w.path)
			if err != nil {
				return err
			}
			w.f = f
		}
		if err := datasync(w.f); err != nil {
			return err
		}
		if gone, err := unlinked(w.f, w.path); err != nil || !gone {
			return err
		}
		w.f.Close()
		w.f = nil
	}
	return fmt.Errorf("the log was replaced three times during a sync")
}

func (w *walSync) close() {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
}

// startWALSync sets up s.wal when the writer should sync the log itself:
// the database is a file in WAL mode and its DSN asked for FULL.
func (s *Store) startWALSync(ctx context.Context, ownSync bool) error {
	if !ownSync {
		return nil
	}
	var mode string
	if err := s.w.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return fmt.Errorf("read journal mode: %w", err)
	}
	var seq int
	var name, file string
	if err := s.w.QueryRowContext(ctx, `PRAGMA database_list`).Scan(&seq, &name, &file); err != nil {
		return fmt.Errorf("read database file: %w", err)
	}
	if !strings.EqualFold(mode, "wal") || file == "" {
		return nil // in memory: nothing to make durable
	}
	s.wal = newWALSync(file + "-wal")
	return nil
}
