package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/store"
)

// slowDisk is the store with a disk that syncs only when told to, and
// whose syncs fail while failing is set.
type slowDisk struct {
	*store.Store
	release chan struct{}
	failing *atomic.Bool
}

func newSlowDisk(s *store.Store) slowDisk {
	return slowDisk{Store: s, release: make(chan struct{}), failing: new(atomic.Bool)}
}

var errDiskOnFire = errors.New("disk on fire")

func (s slowDisk) AcceptCommitted(ctx context.Context, link string, ev bridge.Event, targets []bridge.RoomAddr) ([]bridge.Queued, bool, func(bool) error, error) {
	queued, accepted, durable, err := s.Store.AcceptCommitted(ctx, link, ev, targets)
	return queued, accepted, func(now bool) error {
		<-s.release
		if err := durable(now); err != nil {
			return err
		}
		if s.failing.Load() {
			return errDiskOnFire
		}
		return nil
	}, err
}

// startRouter starts a router on st with the fixture's links.
func startRouter(t *testing.T, st bridge.Store, f *fixture, nets map[string]bridge.MessageSender) *bridge.Router {
	t.Helper()
	r := bridge.NewRouter(st, f.links, quiet)
	r.MinBackoff, r.MaxBackoff = 5*time.Millisecond, 50*time.Millisecond
	for name, n := range nets {
		r.AddNetwork(name, n)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

// still asserts that room has n deliveries and gets no more for a while.
func (p *plain) still(t *testing.T, room string, n int) {
	t.Helper()
	time.Sleep(150 * time.Millisecond)
	if got := p.room(room); len(got) != n {
		t.Fatalf("room %s got %q, want %d deliveries", room, texts(got), n)
	}
}

// With a store that commits before it syncs, the router takes further
// events meanwhile (Commit returns once committed) but delivers an event
// only once it is on disk, in commit order; Accept returns to the
// adapter (which then acknowledges the source) only then too.
func TestDeliveredOnceOnDisk(t *testing.T) {
	irc, mq := newPlain(), newPlain()
	f := newFixture(t, t.TempDir(), map[string]bridge.MessageSender{"irc": irc, "mqtt": mq})
	f.router.Stop()
	disk := newSlowDisk(f.store)
	nets := map[string]bridge.MessageSender{"irc": irc, "mqtt": mq}
	r := startRouter(t, disk, f, nets)

	ctx := context.Background()
	for _, text := range []string{"one", "two"} {
		if _, err := r.Commit(ctx, msg("mqtt", "chat/ops", "sensor", "", text)); err != nil {
			t.Fatal(err)
		}
	}
	returned := make(chan error, 1)
	go func() { returned <- r.Accept(ctx, msg("mqtt", "chat/ops", "sensor", "", "three")) }()
	irc.still(t, "#ops", 0)
	select {
	case err := <-returned:
		t.Fatalf("Accept returned before its event was on disk (%v)", err)
	default:
	}
	close(disk.release)
	if err := <-returned; err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(texts(irc.waitRoom(t, "#ops", 3)), "|"); got != "one|two|three" {
		t.Fatalf("#ops got %q", got)
	}

	// A failed sync is the adapter's error, so the source is not
	// acknowledged and sends again; the deliveries wait until a sync
	// succeeds.
	disk.failing.Store(true)
	if err := r.Accept(ctx, msg("mqtt", "chat/ops", "sensor", "", "four")); !errors.Is(err, errDiskOnFire) {
		t.Errorf("Accept with a failed sync: %v", err)
	}
	irc.still(t, "#ops", 3)
	disk.failing.Store(false)
	if got := texts(irc.waitRoom(t, "#ops", 4)); got[3] != "four" {
		t.Errorf("#ops got %q", got)
	}
	irc.still(t, "#ops", 4)
}

// Issue 25's test 3: Switchboard crashes after an IRC line is committed
// but before the commit reaches the disk; after the restart the channel's
// playback (catch-up) brings the line again, with the lines before it.
// The MQTT room gets each line once: the first copy was never delivered,
// since its commit was not on disk, and the lines that were are known by
// their remote ids.
func TestCrashBeforeTheSyncDeliversOnce(t *testing.T) {
	dir := t.TempDir()
	mq := newPlain()
	nets := map[string]bridge.MessageSender{"mqtt": mq}
	f := newFixture(t, dir, nets)
	ctx := context.Background()
	at := time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC)
	line := func(msgid, text string, sec int) *bridge.Message {
		m := msg("irc", "#ops", "alice", msgid, text)
		m.Time = at.Add(time.Duration(sec) * time.Second) // server-time
		return m
	}

	// A line bridged and on disk.
	accept(t, f.router, line("m0", "before", 0))
	mq.waitRoom(t, "chat/ops", 1)
	// Its delivery recorded, and on disk with the next write. (A crash
	// before that would send it again, with the same event id, from the
	// outbox: the at-least-once docs/delivery.md tells of.)
	for {
		if n, err := f.store.OutboxDepth(ctx); err != nil {
			t.Fatal(err)
		} else if n == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := f.store.State("test").Delete(ctx, "nothing"); err != nil {
		t.Fatal(err)
	}

	// What the disk holds when the process dies: everything synced so
	// far. The next line's commit is not synced before the crash.
	crashed := t.TempDir()
	copyDB(t, dir, crashed)
	f.router.Stop()
	disk := newSlowDisk(f.store)
	r := startRouter(t, disk, f, nets)
	if _, err := r.Commit(ctx, line("m1", "lost in the crash", 1)); err != nil {
		t.Fatal(err) // IRC's accept queue goes on from here
	}
	time.Sleep(150 * time.Millisecond) // a delivery would be out by now
	r.Stop()
	t.Cleanup(func() { close(disk.release) })

	// The restart, and the playback: both lines again, with new ids as
	// the adapter makes them.
	st, err := store.Open(ctx, "sqlite", crashed, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r2 := startRouter(t, st, f, nets)
	for _, m := range []*bridge.Message{line("m0", "before", 0), line("m1", "lost in the crash", 1)} {
		if err := r2.Accept(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	got := mq.waitRoom(t, "chat/ops", 2)
	mq.still(t, "chat/ops", 2)
	if s := strings.Join(texts(got), "|"); s != "before|lost in the crash" {
		t.Fatalf("chat/ops got %q, want each line once, in order", s)
	}
	if !got[1].Event.Head().Time.Equal(at.Add(time.Second)) {
		t.Errorf("replayed line's time %v, want its server-time", got[1].Event.Head().Time)
	}
}

// copyDB copies the SQLite database files of dir to to, as a crash
// would leave them: the database and its log, without the shared-memory
// index, which SQLite rebuilds.
func copyDB(t *testing.T, dir, to string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.IsDir() || strings.HasSuffix(e.Name(), "-shm") {
			continue
		}
		src, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		dst, err := os.Create(filepath.Join(to, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(dst, src); err != nil {
			t.Fatal(err)
		}
		src.Close()
		if err := dst.Close(); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n == 0 {
		t.Fatalf("no database files in %s", dir)
	}
}

// gatedNet delivers once open is closed.
type gatedNet struct {
	*plain
	open chan struct{}
}

func (g gatedNet) Send(ctx context.Context, d *bridge.Delivery) (string, error) {
	select {
	case <-g.open:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return g.record(d)
}

// A room's worker that is behind reads its entries from the outbox, which
// shows what is committed: it too stops before an entry whose commit is
// not on disk yet, which goes out once it is.
func TestBacklogReadStopsAtWhatIsNotOnDisk(t *testing.T) {
	f := newFixture(t, t.TempDir(), nil)
	ctx := context.Background()
	ops := []bridge.RoomAddr{{Network: "irc", Room: "#ops"}}
	const backlog = 70 // more than a read of the outbox takes
	for i := range backlog {
		m := msg("mqtt", "chat/ops", "sensor", "", fmt.Sprintf("backlog %d", i))
		m.ID, m.Time = bridge.NewEventID(), time.Now()
		if _, _, err := f.store.Accept(ctx, "ops", m, ops); err != nil {
			t.Fatal(err)
		}
	}
	f.router.Stop()
	disk := newSlowDisk(f.store)
	irc := gatedNet{newPlain(), make(chan struct{})}
	r := startRouter(t, disk, f, map[string]bridge.MessageSender{"irc": irc})
	if _, err := r.Commit(ctx, msg("mqtt", "chat/ops", "sensor", "", "not on disk yet")); err != nil {
		t.Fatal(err)
	}
	close(irc.open)
	irc.waitRoom(t, "#ops", backlog)
	irc.still(t, "#ops", backlog)
	close(disk.release)
	if got := texts(irc.waitRoom(t, "#ops", backlog+1)); got[backlog] != "not on disk yet" {
		t.Fatalf("#ops got %q last", got[backlog])
	}
	irc.still(t, "#ops", backlog+1)
}
