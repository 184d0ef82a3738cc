package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
)

// marker returns a string found nowhere else, to look for in the files.
func marker() string { return "MARK" + rand.Text() }

// oldText is a message whose marker lies past the quote a reply keeps.
func oldText(mark string) string {
	return "this line starts the quote a reply shows, and then says " + mark + " at the end"
}

// fileHolds tells whether the SQLite file or its log holds s.
func fileHolds(t *testing.T, st *Store, s string) bool {
	t.Helper()
	for _, f := range []string{st.file, st.file + "-wal"} {
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}

func fullText(t *testing.T, s *Store, id bridge.EventID) (string, error) {
	t.Helper()
	return s.FullText(t.Context(), id)
}

// testRetention: old contents go, from the store and (SQLite) from its
// files, except what the outbox and the failed list still hold; what a
// reply needs stays.
func testRetention(t *testing.T, newDB newDBFunc) {
	ctx := t.Context()
	s := newStore(t, newDB)
	marks := map[string]string{}
	msg := func(name, remote string) *bridge.Message {
		marks[name] = marker()
		m := message(lobby, remote, oldText(marks[name]))
		m.HTML = "<b>" + marks[name] + "</b>"
		m.Sender.Mask = "alice!a@" + marks[name] + ".example"
		return m
	}
	delivered := msg("delivered", "irc-1")
	waiting := msg("waiting", "irc-2")
	failed := msg("failed", "irc-3")
	for _, m := range []*bridge.Message{delivered, waiting, failed} {
		accept(t, s, m, mqtt, mx)
	}
	for _, q := range pending(t, s, mqtt) {
		if err := s.Delivered(ctx, q, "mq-"+q.Event.Head().Origin.RemoteID); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range pending(t, s, mx) {
		var err error
		switch q.Event.Head().ID {
		case delivered.ID:
			err = s.Delivered(ctx, q, "$mx-1")
		case failed.ID:
			err = s.Failed(ctx, q, "refused")
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if s.dialect == sqlite && s.file != "" {
		if err := s.checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		if !fileHolds(t, s, marks["delivered"]) {
			t.Fatal("the marker is not in the file before pruning: the search cannot fail")
		}
	}

	if n, err := s.Size(ctx); err != nil || n < 8192 {
		t.Fatalf("store size %d, %v; want the file's or the database's", n, err)
	}

	keep := Retention{Messages: time.Hour, Failed: 30 * 24 * time.Hour}
	st, err := s.Prune(ctx, keep, time.Now().Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("prune: %+v", st)
	if st.Events != 1 || st.Failed != 0 {
		t.Fatalf("pruned %d events, dropped %d failed; want 1 and 0", st.Events, st.Failed)
	}
	if _, err := fullText(t, s, delivered.ID); !errors.Is(err, bridge.ErrContentRemoved) {
		t.Fatalf("full text of a pruned message: %v, want ErrContentRemoved", err)
	}
	if _, err := fullText(t, s, bridge.NewEventID()); !errors.Is(err, bridge.ErrNotFound) {
		t.Fatalf("full text of an unknown event: %v, want ErrNotFound", err)
	}
	for _, m := range []*bridge.Message{waiting, failed} {
		if got, err := fullText(t, s, m.ID); err != nil || got != m.Text {
			t.Fatalf("full text of a message still in the outbox or failed list: %q, %v", got, err)
		}
	}
	if qs := pending(t, s, mx); len(qs) != 1 || qs[0].Event.(*bridge.Message).Text != waiting.Text {
		t.Fatalf("outbox after pruning: %+v", qs)
	}
	fails, err := s.FailedDeliveries(ctx, 10)
	if err != nil || len(fails) != 1 || fails[0].Event.(*bridge.Message).Text != failed.Text {
		t.Fatalf("failed list after pruning: %+v, %v", fails, err)
	}

	// What replies, edits and deletions need is still there.
	ev, err := s.Event(ctx, delivered.ID)
	if err != nil {
		t.Fatal(err)
	}
	kept := ev.(*bridge.Message)
	if want := bridge.Excerpt(delivered.Text, 40); kept.Text != want || kept.HTML != "" ||
		kept.Sender.Name != delivered.Sender.Name || kept.Sender.ID != delivered.Sender.ID || kept.Sender.Mask != "" ||
		kept.Origin != delivered.Origin || !kept.Time.Equal(delivered.Time) {
		t.Fatalf("pruned event %+v, want the sender, origin, time and the quote %q", kept, want)
	}
	if id, err := s.EventByRemote(ctx, lobby, "irc-1"); err != nil || id != delivered.ID {
		t.Fatalf("origin remote id: %v, %v", id, err)
	}
	for room, want := range map[bridge.RoomAddr]string{mqtt: "mq-irc-1", mx: "$mx-1"} {
		if got, err := s.RemoteID(ctx, room, delivered.ID); err != nil || got != want {
			t.Fatalf("remote id in %s: %q, %v; want %q", room, got, err, want)
		}
	}
	// A redelivered copy of the pruned message is still a duplicate.
	again := *delivered
	again.ID = bridge.NewEventID()
	if _, ok, err := s.Accept(ctx, "lobby", &again, []bridge.RoomAddr{mqtt}); err != nil || ok {
		t.Fatalf("accept of a pruned message's copy: %v, %v; want a duplicate", ok, err)
	}
	if s.dialect == sqlite && s.file != "" {
		if fileHolds(t, s, marks["delivered"]) {
			t.Fatal("the pruned message's text is still in the database file or its log")
		}
		if !fileHolds(t, s, marks["waiting"]) {
			t.Fatal("the waiting message's text is not in the files")
		}
	}

	// The failed list's own age: its entry goes, then its event's text.
	st, err = s.Prune(ctx, Retention{Messages: time.Hour, Failed: time.Hour}, time.Now().Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if st.Failed != 1 || st.Events != 1 {
		t.Fatalf("second prune: %+v, want the failed delivery dropped and its event pruned", st)
	}
	if _, err := fullText(t, s, failed.ID); !errors.Is(err, bridge.ErrContentRemoved) {
		t.Fatalf("full text once out of the failed list: %v, want ErrContentRemoved", err)
	}
	if fails, err := s.FailedDeliveries(ctx, 10); err != nil || len(fails) != 0 {
		t.Fatalf("failed list: %+v, %v; want it empty", fails, err)
	}
	// Once delivered, the last one goes too.
	for _, q := range pending(t, s, mx) {
		if err := s.Delivered(ctx, q, "$mx-2"); err != nil {
			t.Fatal(err)
		}
	}
	if st, err = s.Prune(ctx, keep, time.Now().Add(2*time.Hour)); err != nil || st.Events != 1 {
		t.Fatalf("third prune: %+v, %v; want the delivered message pruned", st, err)
	}
	if s.dialect == sqlite && s.file != "" {
		for name, m := range marks {
			if fileHolds(t, s, m) {
				t.Errorf("the %s message's text is still in the database file or its log", name)
			}
		}
	}

	// After retention.ids the rest goes, with the id maps.
	keep.IDs = 90 * time.Minute
	if st, err = s.Prune(ctx, keep, time.Now().Add(2*time.Hour)); err != nil || st.Deleted != 3 {
		t.Fatalf("prune of the ids: %+v, %v; want the three messages deleted", st, err)
	}
	if _, err := s.Event(ctx, delivered.ID); !errors.Is(err, bridge.ErrNotFound) {
		t.Fatalf("deleted event: %v, want ErrNotFound", err)
	}
	if _, err := fullText(t, s, delivered.ID); !errors.Is(err, bridge.ErrNotFound) {
		t.Fatalf("full text of a deleted event: %v, want ErrNotFound", err)
	}
	if _, err := s.EventByRemote(ctx, lobby, "irc-1"); !errors.Is(err, bridge.ErrNotFound) {
		t.Fatalf("origin remote id of a deleted event: %v, want ErrNotFound", err)
	}
	if _, err := s.RemoteID(ctx, mx, delivered.ID); !errors.Is(err, bridge.ErrNotFound) {
		t.Fatalf("remote id of a deleted event: %v, want ErrNotFound", err)
	}
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM remote_ids`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("remote ids left: %d, %v", n, err)
	}
}

// A store made before retention, without auto_vacuum, is switched to
// incremental vacuum at its first open, keeping what it holds, and its
// retention then shrinks the file.
func TestSQLiteUpgradeIncrementalVacuum(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	file := filepath.Join(dir, "switchboard.db")
	old, err := sql.Open("sqlite", "file:"+file+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	stmts := []string{`CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`}
	for _, m := range migrations[:3] {
		stmts = append(stmts, m.statements(sqlite)...)
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO schema_version VALUES (%d, '%s', 0)`, m.version, m.name))
	}
	created := time.Now().Add(-48 * time.Hour).UnixMicro()
	mark := marker()
	for i := range 2000 {
		ev := message(lobby, fmt.Sprint("irc-", i), oldText(mark)+strings.Repeat(" padding", 40))
		payload, err := bridge.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO events VALUES ('%s', 'message', 'lobby', 'libera', '#lobby', 'irc-%d', 'libera', 'alice', '%s', %d)`,
			ev.ID, i, payload, created))
	}
	for _, stmt := range stmts {
		if _, err := old.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	var mode int
	if err := old.QueryRowContext(ctx, `PRAGMA auto_vacuum`).Scan(&mode); err != nil || mode != 0 {
		t.Fatalf("the old store's auto_vacuum: %d, %v; want 0 (none)", mode, err)
	}
	old.Close()

	s := openStore(t, "sqlite", dir)
	if err := s.w.QueryRowContext(ctx, `PRAGMA auto_vacuum`).Scan(&mode); err != nil || mode != 2 {
		t.Fatalf("auto_vacuum after the upgrade: %d, %v; want 2 (incremental)", mode, err)
	}
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM events`).Scan(&n); err != nil || n != 2000 {
		t.Fatalf("events after the upgrade: %d, %v; want 2000", n, err)
	}
	before, err := s.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.Prune(ctx, Retention{Messages: 24 * time.Hour}, time.Now())
	if err != nil || st.Events != 2000 {
		t.Fatalf("prune: %+v, %v; want 2000 events", st, err)
	}
	after, err := s.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("2000 messages of %d bytes: %d bytes before pruning, %d after (%d a message kept); %+v",
		len(oldText(mark))+320, before, after, after/2000, st)
	if after > before*6/10 {
		t.Fatalf("the file shrank from %d to %d bytes only", before, after)
	}
	if fileHolds(t, s, mark) {
		t.Fatal("the pruned text is still in the files")
	}
}

// Under a steady stream of messages, accepted and delivered, with
// retention pruning often, the SQLite file stops growing.
func TestSQLiteRetentionPlateau(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for 16 s")
	}
	ctx := t.Context()
	s := openStore(t, "sqlite", t.TempDir())
	keep := Retention{Messages: time.Second, IDs: 2 * time.Second, Failed: time.Second}

	pruneCtx, stopPrune := context.WithCancel(ctx)
	var (
		mu     sync.Mutex
		passes []PruneStats
		done   = make(chan struct{})
	)
	go func() {
		defer close(done)
		for pruneCtx.Err() == nil {
			st, err := s.Prune(pruneCtx, keep, time.Now())
			if err != nil && pruneCtx.Err() == nil {
				t.Errorf("prune: %v", err)
			}
			mu.Lock()
			passes = append(passes, st)
			mu.Unlock()
			select {
			case <-pruneCtx.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()

	const (
		run    = 16 * time.Second
		sample = 500 * time.Millisecond
		rate   = 200 // messages a second
	)
	targets := []bridge.RoomAddr{mqtt, mx}
	text := strings.Repeat("a steady stream of chat ", 12) // 288 bytes
	var (
		sizes      []int64 // database file, each sample
		total      []int64 // file and log
		n          int
		slowAccept time.Duration
	)
	start := time.Now()
	next := start.Add(sample)
	for time.Since(start) < run {
		n++
		ev := message(lobby, fmt.Sprint("irc-", n), fmt.Sprint(n, " ", text))
		t0 := time.Now()
		if _, ok, err := s.Accept(ctx, "lobby", ev, targets); err != nil || !ok {
			t.Fatalf("accept: %v, %v", ok, err)
		}
		slowAccept = max(slowAccept, time.Since(t0))
		for _, room := range targets {
			qs, err := s.Pending(ctx, room, 0, 1)
			if err != nil || len(qs) != 1 {
				t.Fatalf("pending: %v, %v", qs, err)
			}
			if err := s.Delivered(ctx, qs[0], fmt.Sprint(room.Network, "-", n)); err != nil {
				t.Fatal(err)
			}
		}
		if time.Now().After(next) {
			fi, err := os.Stat(s.file)
			if err != nil {
				t.Fatal(err)
			}
			all, err := s.Size(ctx)
			if err != nil {
				t.Fatal(err)
			}
			sizes, total = append(sizes, fi.Size()), append(total, all)
			next = next.Add(sample)
		}
		time.Sleep(time.Until(start.Add(time.Duration(n) * time.Second / rate)))
	}
	stopPrune()
	<-done

	mu.Lock()
	var pruned, deleted, batches int
	var longest time.Duration
	for _, p := range passes {
		pruned, deleted, batches = pruned+p.Events, deleted+p.Deleted, batches+p.Batches
		longest = max(longest, p.Longest)
	}
	mu.Unlock()
	t.Logf("%d messages; %d pruned, %d deleted, in %d batches (longest %v); slowest accept %v", n, pruned, deleted, batches, longest, slowAccept)
	t.Logf("database file, every %v: %v", sample, sizes)
	t.Logf("file and log, every %v: %v", sample, total)
	if deleted == 0 {
		t.Fatal("nothing deleted")
	}
	// A message lives 2 s at most, plus a pass of pruning: after the first
	// half the file has all it will need, and reuses the pages retention
	// frees. (Without retention it would grow by some 600 bytes a
	// message, 1 MB in the second half, more than its whole size here.)
	half := len(sizes) / 2
	peak := slices.Max(sizes[:half])
	if last := slices.Max(sizes[half:]); last > peak*3/2 {
		t.Fatalf("the file grew from %d bytes in the first half to %d in the second", peak, last)
	}
}

// links is one link of the three test rooms, for the router.
type links struct{}

func (links) LinkOf(room bridge.RoomAddr) (string, []bridge.RoomAddr, bool) {
	return "lobby", []bridge.RoomAddr{lobby, mqtt, mx}, true
}

// network records what the router hands it; with replies, it takes
// replies natively.
type network struct {
	name string
	got  chan *bridge.Delivery
	n    atomic.Int64
}

func (n *network) Send(_ context.Context, d *bridge.Delivery) (string, error) {
	n.got <- d
	return fmt.Sprint(n.name, "-", n.n.Add(1)), nil
}

type replier struct{ *network }

func (r replier) SendReply(ctx context.Context, d *bridge.Delivery) (string, error) {
	return r.Send(ctx, d)
}

// onBothStores runs test on SQLite and on PostgreSQL.
func onBothStores(t *testing.T, test func(t *testing.T, newDB newDBFunc)) {
	for name, newDB := range map[string]newDBFunc{
		"sqlite":   func(t *testing.T) (string, string) { return "sqlite", t.TempDir() },
		"postgres": postgresDBs(t),
	} {
		t.Run(name, func(t *testing.T) { test(t, newDB) })
	}
}

// routed is a store with a router in front of it, delivering to mqtt, a
// network with native replies, and to mx, one without.
func routed(t *testing.T, newDB newDBFunc) (s *Store, r *bridge.Router, native, plain *network) {
	s = newStore(t, newDB)
	r = bridge.NewRouter(s, links{}, slog.New(slog.NewTextHandler(t.Output(), nil)))
	native = &network{name: "mq", got: make(chan *bridge.Delivery, 10)}
	plain = &network{name: "mx", got: make(chan *bridge.Delivery, 10)}
	r.AddNetwork(mqtt.Network, replier{native})
	r.AddNetwork(mx.Network, plain)
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return s, r, native, plain
}

// A reply to a message whose contents retention removed still reaches
// each room as a reply to it: with its remote id where the network has
// replies, with the kept quote where it has not.
func TestReplyToPrunedMessage(t *testing.T) {
	onBothStores(t, func(t *testing.T, newDB newDBFunc) {
		ctx := t.Context()
		s, r, native, plain := routed(t, newDB)
		next := func(n *network) *bridge.Delivery {
			t.Helper()
			select {
			case d := <-n.got:
				return d
			case <-time.After(10 * time.Second):
				t.Fatalf("nothing delivered to %s", n.name)
				return nil
			}
		}

		mark := marker()
		orig := message(lobby, "irc-1", oldText(mark))
		if err := r.Accept(ctx, orig); err != nil {
			t.Fatal(err)
		}
		next(native)
		next(plain)
		deadline := time.Now().Add(10 * time.Second)
		for { // the deliveries' records, then the prune
			st, err := s.Prune(ctx, Retention{Messages: time.Hour}, time.Now().Add(2*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if st.Events == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the message was not pruned")
			}
			time.Sleep(20 * time.Millisecond)
		}

		reply := message(lobby, "irc-2", "I agree")
		reply.ReplyTo = bridge.Ref{Remote: "irc-1"}
		if err := r.Accept(ctx, reply); err != nil {
			t.Fatal(err)
		}
		quote := bridge.Excerpt(orig.Text, 40)
		d := next(native)
		if d.Reply == nil || d.Reply.RemoteID != "mq-1" || d.Reply.Text != quote || d.Reply.SenderName != orig.Sender.Name {
			t.Fatalf("native reply %+v, want to mq-1 quoting %q", d.Reply, quote)
		}
		d = next(plain)
		if want := "> " + orig.Sender.Name + ": " + quote + "\nI agree"; d.Event.(*bridge.Message).Text != want {
			t.Fatalf("fallback reply %q, want %q", d.Event.(*bridge.Message).Text, want)
		}
		if strings.Contains(quote, mark) {
			t.Fatal("the quote holds the removed words")
		}

		// Its author may still edit it: the sender it was kept with
		// is checked.
		edit := &bridge.Edit{Header: header(lobby, "irc-3"), Target: bridge.Ref{Remote: "irc-1"}, Text: "fixed"}
		if err := r.Accept(ctx, edit); err != nil {
			t.Fatal(err)
		}
		for _, n := range []*network{native, plain} {
			if d := next(n); d.Event.(*bridge.Message).Text != "* fixed" {
				t.Fatalf("edit reached %s as %+v, want the fallback \"* fixed\"", n.name, d.Event)
			}
		}
	})
}

// A reader holding the log keeps the checkpoint from truncating it:
// pruning says so at once instead of holding accepts up, and the next
// try, the reader gone, finishes the job.
func TestSQLiteCheckpointWaitsBriefly(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, "sqlite", t.TempDir())
	mark := marker()
	accept(t, s, message(lobby, "irc-1", oldText(mark)))
	reader, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := reader.QueryRowContext(ctx, `SELECT COUNT(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	st, err := s.Prune(ctx, Retention{Messages: time.Hour}, time.Now().Add(2*time.Hour))
	took := time.Since(t0)
	if err == nil || st.Events != 1 {
		t.Fatalf("prune with a reader on the log: %+v, %v; want the event pruned and the checkpoint refused", st, err)
	}
	if took > 2*time.Second {
		t.Fatalf("prune took %v with a reader on the log", took)
	}
	if !fileHolds(t, s, mark) {
		t.Fatal("the log no longer holds the text, checkpoint refused or not: this test tests nothing")
	}
	accept(t, s, message(lobby, "irc-2", "still accepting"))
	reader.Rollback()
	if _, err := s.Prune(ctx, Retention{Messages: time.Hour}, time.Now().Add(2*time.Hour)); err != nil {
		t.Fatalf("prune once the reader is gone: %v", err)
	}
	if fileHolds(t, s, mark) {
		t.Fatal("the pruned text is still in the files")
	}
}

// A message its author or a moderator deleted loses its words in the
// store at once, as retention would take them, unless a delivery still
// waits for it.
func TestDeletedMessageForgotten(t *testing.T) {
	onBothStores(t, func(t *testing.T, newDB newDBFunc) {
		ctx := t.Context()
		s, r, a, b := routed(t, newDB)

		orig := message(lobby, "irc-1", oldText(marker()))
		if err := r.Accept(ctx, orig); err != nil {
			t.Fatal(err)
		}
		<-a.got
		<-b.got
		del := &bridge.Delete{Header: header(lobby, "irc-2"), Target: bridge.Ref{Remote: "irc-1"}}
		if err := r.Accept(ctx, del); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := fullText(t, s, orig.ID)
			if errors.Is(err, bridge.ErrContentRemoved) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("full text of a deleted message: %v, want ErrContentRemoved", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if ev, err := s.Event(ctx, orig.ID); err != nil || ev.(*bridge.Message).Text != bridge.Excerpt(orig.Text, 40) {
			t.Fatalf("the deleted message keeps %+v (%v), want its quote", ev, err)
		}

		// A moderator's delete of someone else's message forgets it too;
		// anyone else's attempt changes nothing.
		other := message(lobby, "irc-4", oldText(marker()))
		if err := r.Accept(ctx, other); err != nil {
			t.Fatal(err)
		}
		<-a.got
		<-b.got
		forged := &bridge.Delete{Header: header(lobby, "irc-5"), Target: bridge.Ref{Remote: "irc-4"}}
		forged.Sender.ID = "mallory"
		moderated := &bridge.Delete{Header: header(lobby, "irc-6"), Target: bridge.Ref{Remote: "irc-4"}, Moderator: true}
		moderated.Sender.ID = "op"
		if err := r.Accept(ctx, forged); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		if got, err := fullText(t, s, other.ID); err != nil || got != other.Text {
			t.Fatalf("after a forged delete the message says %q (%v), want it whole", got, err)
		}
		if err := r.Accept(ctx, moderated); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			_, err := fullText(t, s, other.ID)
			if errors.Is(err, bridge.ErrContentRemoved) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("full text of a moderated message: %v, want ErrContentRemoved", err)
			}
		}

		// Still waited for by a room: kept until it is delivered.
		waiting := message(lobby, "irc-3", oldText(marker()))
		accept(t, s, waiting, mqtt)
		if err := s.RemoveContent(ctx, waiting.ID); err != nil {
			t.Fatal(err)
		}
		if got, err := fullText(t, s, waiting.ID); err != nil || got != waiting.Text {
			t.Fatalf("full text of a message still in the outbox: %q, %v", got, err)
		}
	})
}
