package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
)

// batchStore opens an SQLite store that syncs its log itself, with its
// next sync held back until someone waits for one at once; and a plain
// connection to the same file, standing in for another process.
func batchStore(t *testing.T) (*Store, *sql.DB) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "batch.db")
	s := openStore(t, "sqlite://"+file, "")
	if s.wal == nil {
		t.Fatal("the default SQLite store does not sync its log itself")
	}
	s.wal.mu.Lock()
	s.wal.window, s.wal.lazy, s.wal.lastStart = time.Hour, time.Hour, time.Now()
	s.wal.mu.Unlock()
	other, err := sql.Open("sqlite", "file:"+file+"?_query_only=1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	return s, other
}

// outboxSeqs lists the outbox as another process sees it.
func outboxSeqs(t *testing.T, db *sql.DB) []int64 {
	t.Helper()
	rows, err := db.Query(`SELECT seq FROM outbox ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var seqs []int64
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return seqs
}

func acceptUnsynced(t *testing.T, s *Store, ev bridge.Event) (bridge.Queued, func(bool) error) {
	t.Helper()
	queued, ok, durable, err := s.AcceptCommitted(t.Context(), "lobby", ev, []bridge.RoomAddr{mqtt})
	if err != nil || !ok || len(queued) != 1 || durable == nil {
		t.Fatalf("accept %s: %v, %v, %v", ev.Head().Origin.RemoteID, queued, ok, err)
	}
	return queued[0], durable
}

// Writes within a sync window share one transaction, committed with the
// sync; a read through the store sees them at once all the same.
func TestWritesShareTheSyncsTransaction(t *testing.T) {
	s, other := batchStore(t)
	s.wal.mu.Lock()
	syncsBefore := s.wal.syncs
	s.wal.mu.Unlock()
	var seqs []int64
	var last func(bool) error
	for i := range 3 {
		q, durable := acceptUnsynced(t, s, message(lobby, fmt.Sprint("irc-", i), "hello"))
		seqs, last = append(seqs, q.Seq), durable
	}
	if got := outboxSeqs(t, other); len(got) != 0 {
		t.Fatalf("another process sees %v before the sync: the writes were committed one by one", got)
	}
	// A reply to the last message arrives at once and must resolve.
	id, err := s.EventByRemote(t.Context(), lobby, "irc-2")
	if err != nil {
		t.Fatalf("a message accepted a moment ago does not resolve: %v", err)
	}
	if ev, err := s.Event(t.Context(), id); err != nil || ev.(*bridge.Message).Text != "hello" {
		t.Fatalf("event %s: %v, %v", id, ev, err)
	}
	if got := outboxSeqs(t, other); !slices.Equal(got, seqs) {
		t.Errorf("after the read another process sees %v, want %v", got, seqs)
	}
	if err := last(true); err != nil {
		t.Fatal(err)
	}
	s.wal.mu.Lock()
	syncs := s.wal.syncs - syncsBefore
	s.wal.mu.Unlock()
	if syncs != 1 {
		t.Errorf("%d syncs for three writes in one window, want 1", syncs)
	}
}

// A write that fails (here a duplicate) rolls the shared transaction
// back; the writes before it are done again, with the seqs the router
// already holds, and a delivery recorded in it is recorded in the next.
func TestFailedWriteKeepsTheOthers(t *testing.T) {
	s, other := batchStore(t)
	first, _ := acceptUnsynced(t, s, message(lobby, "irc-1", "one"))
	second, _ := acceptUnsynced(t, s, message(lobby, "irc-2", "two"))
	if err := s.Delivered(t.Context(), first, "mqtt-1"); err != nil {
		t.Fatal(err)
	}
	third, _ := acceptUnsynced(t, s, message(lobby, "irc-3", "three")) // takes the delivery record along
	// The same IRC message again, under a new event id.
	_, ok, durable, err := s.AcceptCommitted(t.Context(), "lobby", message(lobby, "irc-2", "two"), []bridge.RoomAddr{mqtt})
	if err != nil || ok {
		t.Fatalf("duplicate accepted: %v, %v", ok, err)
	}
	if err := durable(true); err != nil {
		t.Fatal(err)
	}
	if got, want := outboxSeqs(t, other), []int64{second.Seq, third.Seq}; !slices.Equal(got, want) {
		t.Errorf("outbox on disk %v, want %v (the first delivered, the others as queued)", got, want)
	}
	var events int
	if err := other.QueryRow(`SELECT COUNT(*) FROM events`).Scan(&events); err != nil || events != 3 {
		t.Errorf("%d events on disk, want 3: %v", events, err)
	}
	if id, err := s.EventByRemote(t.Context(), mqtt, "mqtt-1"); err != nil || id != first.Event.Head().ID {
		t.Errorf("the delivered copy resolves to %q, %v", id, err)
	}
	pending, err := s.Pending(t.Context(), mqtt, 0, 10)
	if err != nil || len(pending) != 2 || pending[0].Seq != second.Seq || pending[1].Seq != third.Seq {
		t.Errorf("pending %v, %v", pending, err)
	}
}

// A transaction whose COMMIT fails fails its writers' waits; the writes
// are done again in the next, which a later wait commits.
func TestFailedCommitIsRedone(t *testing.T) {
	s, other := batchStore(t)
	q, durable := acceptUnsynced(t, s, message(lobby, "irc-1", "one"))
	poisoned := false
	_, err := s.writeCommit(t.Context(), func(tx txExec) error {
		if poisoned {
			return nil // this time, nothing to break
		}
		poisoned = true
		// Checked at COMMIT, which then fails.
		if _, err := tx.(rawTx).execSQL(`PRAGMA defer_foreign_keys = ON`); err != nil {
			return err
		}
		_, err := tx.(rawTx).execSQL(`INSERT INTO outbox (seq, link, target_network, target_room, event_id, queued_at)
			VALUES (1000, 'lobby', 'mqtt', 'x', 'no such event', 0)`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := durable(true); err == nil {
		t.Fatal("the wait succeeded though the commit failed")
	}
	if got := outboxSeqs(t, other); len(got) != 0 {
		t.Fatalf("outbox on disk after the failed commit: %v", got)
	}
	if err := durable(true); err != nil {
		t.Fatalf("waiting again: %v", err)
	}
	if got := outboxSeqs(t, other); !slices.Equal(got, []int64{q.Seq}) {
		t.Errorf("outbox on disk %v, want [%d]", got, q.Seq)
	}
	next, durable := acceptUnsynced(t, s, message(lobby, "irc-2", "two"))
	if err := durable(true); err != nil {
		t.Fatal(err)
	}
	if next.Seq <= q.Seq {
		t.Errorf("seq %d handed out again after %d", next.Seq, q.Seq)
	}
}

// An entry delivered within its sync window is never written to the
// outbox; its seq is not handed out again all the same, and an entry the
// transaction still holds can fail and be requeued.
func TestDeliveredInTheWindowIsNeverWritten(t *testing.T) {
	s, other := batchStore(t)
	first, _ := acceptUnsynced(t, s, message(lobby, "irc-1", "one"))
	second, _ := acceptUnsynced(t, s, message(lobby, "irc-2", "two"))
	if err := s.Delivered(t.Context(), second, "mqtt-2"); err != nil {
		t.Fatal(err)
	}
	if err := s.Failed(t.Context(), first, "room gone"); err != nil {
		t.Fatal(err)
	}
	if got := outboxSeqs(t, other); len(got) != 0 {
		t.Errorf("outbox on disk %v, want none: one delivered, one failed", got)
	}
	failed, err := s.FailedDeliveries(t.Context(), 10)
	if err != nil || len(failed) != 1 || failed[0].Seq != first.Seq || failed[0].Reason != "room gone" {
		t.Fatalf("failed list %+v, %v", failed, err)
	}
	if id, err := s.EventByRemote(t.Context(), mqtt, "mqtt-2"); err != nil || id != second.Event.Head().ID {
		t.Errorf("the delivered copy resolves to %q, %v", id, err)
	}
	if pending, err := s.Pending(t.Context(), mqtt, 0, 10); err != nil || len(pending) != 0 {
		t.Errorf("pending %v, %v", pending, err)
	}

	// The highest seq so far was never written; the database still
	// knows it, whoever queues next.
	requeued, err := s.Requeue(t.Context(), first.Seq)
	if err != nil {
		t.Fatal(err)
	}
	third, durable := acceptUnsynced(t, s, message(lobby, "irc-3", "three"))
	if err := durable(true); err != nil {
		t.Fatal(err)
	}
	if requeued.Seq <= second.Seq || third.Seq <= requeued.Seq {
		t.Errorf("seqs %d, %d, then %d (requeued) and %d: a seq handed out again or out of order",
			first.Seq, second.Seq, requeued.Seq, third.Seq)
	}
	if got, want := outboxSeqs(t, other), []int64{requeued.Seq, third.Seq}; !slices.Equal(got, want) {
		t.Errorf("outbox on disk %v, want %v", got, want)
	}
}

func (t rawTx) execSQL(q string) (driver.Result, error) {
	ds, err := t.prepared(q)
	if err != nil {
		return nil, err
	}
	return ds.(driver.StmtExecContext).ExecContext(context.Background(), nil)
}

// A seq is never handed out twice: not after a restart, though the
// entries that carried the last ones were delivered and never written,
// nor when another process queues some meanwhile.
func TestSeqsAreNeverHandedOutAgain(t *testing.T) {
	dsn := "sqlite://" + filepath.Join(t.TempDir(), "seqs.db")
	s := openStore(t, dsn, "")
	var last int64
	for i := range 3 {
		q, durable := acceptUnsynced(t, s, message(lobby, fmt.Sprint("irc-", i), "hello"))
		if err := s.Delivered(t.Context(), q, ""); err != nil {
			t.Fatal(err)
		}
		if err := durable(true); err != nil {
			t.Fatal(err)
		}
		last = q.Seq
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, dsn, "")
	after, _ := acceptUnsynced(t, s, message(lobby, "irc-3", "after the restart"))
	if after.Seq <= last {
		t.Fatalf("seq %d after a restart, %d before it", after.Seq, last)
	}
	if err := s.Failed(t.Context(), after, "gone"); err != nil {
		t.Fatal(err)
	}
	// The CLI's requeue, from a process of its own.
	cli := openStore(t, dsn, "")
	requeued, err := cli.Requeue(t.Context(), after.Seq)
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Close(); err != nil {
		t.Fatal(err)
	}
	next, durable := acceptUnsynced(t, s, message(lobby, "irc-4", "after the requeue"))
	if err := durable(true); err != nil {
		t.Fatal(err)
	}
	// Another process's seqs go above this one's reservation, which this
	// one goes on using: the two never meet.
	if requeued.Seq <= after.Seq || next.Seq == requeued.Seq || next.Seq <= after.Seq {
		t.Errorf("seqs %d, then %d (requeued by another process) and %d", after.Seq, requeued.Seq, next.Seq)
	}
	if got := pending(t, s, mqtt); len(got) != 2 || got[0].Event.Head().ID == got[1].Event.Head().ID {
		t.Errorf("pending %v, want the requeued entry and the next", got)
	}
}
