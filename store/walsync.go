package store

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
)

// walSync makes SQLite's write-ahead log durable after each commit, in
// place of SQLite's synchronous=FULL. SQLite then syncs with fsync, which
// also writes the log's inode, changed by every commit only in its
// modification time: on ext4 that is a second synchronous device write
// (or a journal commit) per transaction. fdatasync skips it, as
// PostgreSQL's default wal_sync_method does. The writer runs with
// synchronous=NORMAL (the log and the database are still synced around
// checkpoints).
//
// Syncs run in the background, one at a time, and each covers every
// commit made before it began (group commit). A commit after a quiet
// spell is synced at once; under load a sync begins at most every
// syncWindow while someone waits for one, so that one device round trip
// serves the commits of that window rather than each paying its own. A
// caller that goes on with its next commits meanwhile (MQTT, which
// acknowledges in order later) waits for that (waitFor without now). One
// that has nothing to acknowledge (IRC, XMPP) need not wait at all: while
// nobody waits, a sync begins at most every lazySyncWindow, and its
// commit is on disk within that. A commit and a sync cost about 300 µs
// of CPU, largely whatever they carry, which at 200 messages a second
// was half the store's share of relaying one. A caller that holds
// everything until its commit is on disk (a blocking Accept, the store's
// own writes) gets a sync at once (wait): it would otherwise wait a
// window for each commit.
//
// The store's writes within a window also share one transaction (see
// batch), which commit, run at the start of each sync, commits; "commit"
// below means a write, committed by then.
type walSync struct {
	path   string        // the log file
	window time.Duration // between the starts of two syncs, while someone waits
	lazy   time.Duration // and while nobody does
	log    *slog.Logger
	// commit, if set, commits the writes made so far before a sync.
	commit func() error

	// timer starts the scheduled sync, in the one goroutine that runs
	// them all (run): a sync runs deep in SQLite, and a goroutine per
	// sync (time.AfterFunc) grew its stack to that depth by copying,
	// several times per sync.
	timer *time.Timer
	stop  chan struct{} // closed by close, for run to return

	mu        sync.Mutex
	done      *sync.Cond
	f         *os.File
	written   uint64    // commits made so far
	durable   uint64    // commits known to be on disk
	syncs     uint64    // fdatasyncs done
	failed    uint64    // syncs that failed
	err       error     // the last failure
	scheduled bool      // timer is to start a sync
	due       time.Time // when, if scheduled
	waiting   int       // callers waiting for a sync (waitFor)
	syncing   bool
	lastStart time.Time
	closed    bool
	stopped   chan struct{} // closed when run has returned
}

// syncWindow is the least time between the starts of two syncs while
// someone waits for one: how much longer a waiter waits under load.
// lazySyncWindow is that time while nobody waits: it bounds how long a
// commit nobody waits for stays off the disk (beyond the sync itself and
// the process's timer slack).
const (
	syncWindow     = 20 * time.Millisecond
	lazySyncWindow = 100 * time.Millisecond
)

func newWALSync(path string, window, lazy time.Duration, log *slog.Logger) *walSync {
	w := &walSync{path: path, window: window, lazy: lazy, log: log, timer: time.NewTimer(time.Hour), stop: make(chan struct{}), stopped: make(chan struct{})}
	w.timer.Stop()
	w.done = sync.NewCond(&w.mu)
	go w.run()
	return w
}

// The methods below work on a nil *walSync, which stands for a store
// that needs no sync of its own (PostgreSQL, SQLite NORMAL or in memory):
// there is nothing to count and nothing to wait for.

// committed counts a commit just made, schedules its sync and returns its
// number, for wait.
func (w *walSync) committed() uint64 {
	if w == nil {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.written++
	w.scheduleLocked()
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

// scheduleLocked has a sync start at once, or at the end of the window
// that began with the last one: the lazy window unless someone waits. A
// caller that begins to wait brings a lazy sync forward.
func (w *walSync) scheduleLocked() {
	if w.syncing || w.closed {
		return
	}
	window := w.lazy
	if w.waiting > 0 {
		window = w.window
	}
	due := w.lastStart.Add(window)
	if w.scheduled && !due.Before(w.due) {
		return
	}
	w.scheduled, w.due = true, due
	w.timer.Reset(max(time.Until(due), 0))
}

// run starts the scheduled syncs until close. A sync a waiter took over
// (wait) leaves the timer to fire for nothing.
func (w *walSync) run() {
	defer close(w.stopped)
	for {
		select {
		case <-w.stop:
			return
		case <-w.timer.C:
		}
		w.mu.Lock()
		if w.scheduled && !w.closed {
			w.flushLocked()
		}
		w.mu.Unlock()
	}
}

// flushLocked is the scheduled sync, with mu held.
func (w *walSync) flushLocked() {
	if runtime.GOMAXPROCS(0) == 1 {
		// The sync holds the only P: what is ready to run (a delivery
		// just queued) goes first.
		w.mu.Unlock()
		runtime.Gosched()
		w.mu.Lock()
		if !w.scheduled || w.syncing || w.closed {
			return // a waiter took it meanwhile
		}
	}
	w.syncLocked()
}

// syncLocked syncs every commit made so far, in this goroutine, with mu
// held on entry and on return but not during the sync.
func (w *walSync) syncLocked() {
	upTo := w.written
	w.syncing, w.scheduled = true, false
	w.lastStart = time.Now()
	w.mu.Unlock()

	var err error
	if w.commit != nil {
		if err = w.commit(); err != nil {
			err = fmt.Errorf("commit: %w", err)
		}
	}
	if err == nil {
		err = w.sync()
	}

	w.mu.Lock()
	w.syncing = false
	if err != nil {
		w.failed++
		w.err = fmt.Errorf("sync %s: %w", w.path, err)
		w.log.Error("store: the log could not be committed or synced; its writes are not durable yet", "err", w.err, "commits", upTo-w.durable)
	} else {
		w.durable = max(w.durable, upTo)
		w.syncs++
		if w.durable < w.written {
			w.scheduleLocked() // commits made during the sync
		}
	}
	w.done.Broadcast()
}

// wait returns once commit n is on disk, or with the error of a sync that
// failed meanwhile (waiting again then tries another). Unless one is in
// progress, it syncs at once, itself.
func (w *walSync) wait(n uint64) error { return w.waitFor(n, true) }

// waitFor is wait, or with now false, for a caller that goes on
// meanwhile: the sync may wait for the end of its window, for more
// commits to share it.
func (w *walSync) waitFor(n uint64, now bool) error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	failed := w.failed
	for w.durable < n {
		switch {
		case w.failed != failed:
			return w.err
		case w.closed:
			return fmt.Errorf("sync %s: the store is closed", w.path)
		case now && !w.syncing:
			// A scheduled sync that had not started yet is this one.
			w.syncLocked()
		default:
			w.waiting++
			w.scheduleLocked()
			w.done.Wait()
			w.waiting--
		}
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

// close ends the syncs, after the one in progress. SQLite's own close
// checkpoints the log into the database and syncs both.
func (w *walSync) close() {
	if w == nil {
		return
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.stopped
		return
	}
	w.closed = true
	for w.syncing {
		w.done.Wait()
	}
	w.scheduled = false
	w.timer.Stop()
	close(w.stop)
	w.done.Broadcast()
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	w.mu.Unlock()
	<-w.stopped
}

// startWALSync sets up s.wal when the writer should sync the log itself:
// the database is a file in WAL mode and its DSN asked for FULL.
// It also notes the SQLite file's name (Size).
func (s *Store) startWALSync(ctx context.Context, ownSync bool) error {
	if s.dialect != sqlite {
		return nil
	}
	var seq int
	var name string
	if err := s.w.QueryRowContext(ctx, `PRAGMA database_list`).Scan(&seq, &name, &s.file); err != nil {
		return fmt.Errorf("read database file: %w", err)
	}
	if !ownSync {
		return nil
	}
	var mode string
	if err := s.w.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return fmt.Errorf("read journal mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") || s.file == "" {
		return nil // in memory: nothing to make durable
	}
	s.wal = newWALSync(s.file+"-wal", syncWindow, lazySyncWindow, s.log)
	s.wal.commit = s.commitBatch
	return nil
}
