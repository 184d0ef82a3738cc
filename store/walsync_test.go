package store

import (
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
)

// Every commit waits for a sync that began after it; commits made while
// a sync runs share the next one.
func TestWALSyncGroupsCommits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db-wal")
	if err := os.WriteFile(path, []byte("log"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := newWALSync(path, 0, 0, testLog(t))
	defer w.close()
	const writers, commits = 8, 50
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range commits {
				n := w.committed()
				if err := w.wait(n); err != nil {
					t.Error(err)
					return
				}
				w.mu.Lock()
				durable := w.durable
				w.mu.Unlock()
				if durable < n {
					t.Errorf("wait(%d) returned with %d durable", n, durable)
				}
			}
		})
	}
	wg.Wait()
	if w.durable != writers*commits || w.syncs == 0 || w.syncs > writers*commits {
		t.Errorf("%d of %d commits durable after %d syncs", w.durable, writers*commits, w.syncs)
	}
	t.Logf("%d commits, %d syncs", writers*commits, w.syncs)
}

// A log deleted and created anew (SQLite does so when the last connection
// closes and the next opens) is found and synced instead.
func TestWALSyncFollowsANewLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db-wal")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := newWALSync(path, 0, 0, testLog(t))
	defer w.close()
	if err := w.wait(w.committed()); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := w.wait(w.committed()); err != nil {
		t.Fatal(err)
	}
	var synced, current syscall.Stat_t
	if err := syscall.Fstat(int(w.f.Fd()), &synced); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(path, &current); err != nil {
		t.Fatal(err)
	}
	if synced.Ino != current.Ino || w.syncs != 2 {
		t.Errorf("synced inode %d, the log is %d; %d syncs", synced.Ino, current.Ino, w.syncs)
	}
	// With no log at all the commit cannot be made durable, and says so;
	// waiting again tries again.
	os.Remove(path)
	n := w.committed()
	if err := w.wait(n); err == nil {
		t.Error("a commit was declared durable with its log gone")
	}
	if err := os.WriteFile(path, []byte("back"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := w.wait(n); err != nil || w.durable < n {
		t.Errorf("with the log back: %v, %d of %d durable", err, w.durable, n)
	}
}

// Under load a sync begins at most once a window: commits made within it
// share one, and a commit nobody waits for is on disk all the same.
func TestWALSyncWindow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db-wal")
	if err := os.WriteFile(path, []byte("log"), 0o600); err != nil {
		t.Fatal(err)
	}
	const window = 300 * time.Millisecond
	w := newWALSync(path, window, window, testLog(t))
	defer w.close()
	// The first commit after a quiet spell is synced at once.
	began := time.Now()
	if err := w.wait(w.committed()); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(began); waited >= window {
		t.Errorf("the first commit waited %v for its sync", waited)
	}
	// Ten more in the window: one more sync, at the window's end, and
	// none before.
	var last uint64
	for range 10 {
		last = w.committed()
		time.Sleep(time.Millisecond)
	}
	w.mu.Lock()
	early := w.durable
	w.mu.Unlock()
	if early >= last && time.Since(began) < window {
		t.Errorf("commit %d synced before the window ended", last)
	}
	// Nobody waits: the commits reach the disk by themselves.
	for deadline := time.Now().Add(window + 5*time.Second); ; time.Sleep(10 * time.Millisecond) {
		w.mu.Lock()
		durable, syncs := w.durable, w.syncs
		w.mu.Unlock()
		if durable == last {
			if syncs != 2 {
				t.Errorf("11 commits took %d syncs, want 2", syncs)
			}
			if synced := time.Since(began); synced < window {
				t.Errorf("the second sync began %v after the first, inside the %v window", synced, window)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d commits durable %v after the window", durable, last, window+5*time.Second)
		}
	}
}

// A writer that holds everything until its commit is on disk gets its
// sync at once, window or not; one that goes on meanwhile waits for the
// window, so that later commits share the sync.
func TestWALSyncNow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db-wal")
	if err := os.WriteFile(path, []byte("log"), 0o600); err != nil {
		t.Fatal(err)
	}
	const window = time.Second
	w := newWALSync(path, window, window, testLog(t))
	defer w.close()
	began := time.Now()
	for range 4 {
		if err := w.wait(w.committed()); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(began); took >= window/2 || w.syncs != 4 {
		t.Errorf("four commits one after another took %v and %d syncs", took, w.syncs)
	}
	began = time.Now()
	if err := w.waitFor(w.committed(), false); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took < window/2 {
		t.Errorf("a batched wait took %v, inside the %v window", took, window)
	}
}

// While nobody waits, commits share a sync of the lazy window; a caller
// that begins to wait brings it forward to the end of the short one.
func TestWALSyncLazyUntilSomeoneWaits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db-wal")
	if err := os.WriteFile(path, []byte("log"), 0o600); err != nil {
		t.Fatal(err)
	}
	const window, lazy = 200 * time.Millisecond, 30 * time.Second
	w := newWALSync(path, window, lazy, testLog(t))
	defer w.close()
	// The first commit after a quiet spell is synced at once, waited for
	// or not.
	first := w.committed()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		w.mu.Lock()
		durable := w.durable
		w.mu.Unlock()
		if durable >= first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first commit was not synced at once")
		}
	}
	began := time.Now()
	last := w.committed()
	time.Sleep(2 * window)
	w.mu.Lock()
	durable := w.durable
	w.mu.Unlock()
	if durable >= last {
		t.Fatalf("a commit nobody waits for was synced within %v, before its lazy window", 2*window)
	}
	if err := w.waitFor(last, false); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 2*window+5*time.Second {
		t.Errorf("a waiter waited %v after the commit, with a %v window", took, window)
	}
	if w.syncs != 2 {
		t.Errorf("%d syncs, want 2", w.syncs)
	}
}

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// AcceptCommitted hands out the deliveries once committed; durable
// returns once the log is synced past the commit. A duplicate waits for
// the commits before it.
func TestAcceptCommittedThenDurable(t *testing.T) {
	s := openStore(t, "sqlite", t.TempDir())
	ctx := t.Context()
	// A sync just began: the next is due after the window.
	s.wal.mu.Lock()
	s.wal.window, s.wal.lazy, s.wal.lastStart = time.Second, time.Second, time.Now()
	s.wal.mu.Unlock()
	queued, accepted, durable, err := s.AcceptCommitted(ctx, "lobby", message(lobby, "r1", "hi"), []bridge.RoomAddr{mqtt})
	if err != nil || !accepted || len(queued) != 1 {
		t.Fatalf("AcceptCommitted: %v %v %v", queued, accepted, err)
	}
	if pending, err := s.Pending(ctx, mqtt, 0, 10); err != nil || len(pending) != 1 {
		t.Fatalf("before the sync, pending for %v: %v %v", mqtt, pending, err)
	}
	s.wal.mu.Lock()
	written, synced := s.wal.written, s.wal.durable
	s.wal.mu.Unlock()
	if synced >= written {
		t.Fatalf("commit %d already durable (%d) before durable was called", written, synced)
	}
	if err := durable(false); err != nil {
		t.Fatal(err)
	}
	if s.wal.durable < written {
		t.Fatalf("durable returned with %d of %d commits synced", s.wal.durable, written)
	}
	_, accepted, durable, err = s.AcceptCommitted(ctx, "lobby", message(lobby, "r1", "hi"), []bridge.RoomAddr{mqtt})
	if err != nil || accepted || durable == nil || durable(true) != nil {
		t.Fatalf("duplicate: accepted %v, %v", accepted, err)
	}
}
