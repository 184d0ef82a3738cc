package matrix

import (
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/adapters/adapterstest"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/store"
)

func TestTokenChecked(t *testing.T) {
	s := newServer(t)
	alice := s.Client(t, "alice")
	rid, _, rec := roomWithBot(t, s, alice)
	if code := putTxn(t, s, "", "forged-1", textEvent(rid, alice.UserID, "$f1", "forged")); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", code)
	}
	if code := putTxn(t, s, "wrong-token", "forged-2", textEvent(rid, alice.UserID, "$f2", "forged")); code != http.StatusForbidden {
		t.Errorf("wrong token: %d, want 403", code)
	}
	if code := putTxn(t, s, s.cfg.ASToken, "forged-3", textEvent(rid, alice.UserID, "$f3", "forged")); code != http.StatusForbidden {
		t.Errorf("the as_token: %d, want 403", code)
	}
	// A correct one goes through, and nothing forged came before it.
	if code := putTxn(t, s, s.cfg.HSToken, "real-1", textEvent(rid, alice.UserID, "$t1", "genuine")); code != http.StatusOK {
		t.Errorf("right token: %d", code)
	}
	rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "genuine" })
	for _, m := range rec.Messages() {
		if m.Text == "forged" {
			t.Errorf("a forged transaction was bridged: %+v", m)
		}
	}
	for _, k := range []string{"txn:forged-1", "txn:forged-2", "txn:forged-3"} {
		if _, ok, _ := s.state.Get(t.Context(), k); ok {
			t.Errorf("%s recorded", k)
		}
	}
}

// A transaction is acknowledged only once accepted, and remembered across
// a restart of the adapter.
func TestTransactionsPersistentlyDeduplicated(t *testing.T) {
	s := newServer(t)
	alice := s.Client(t, "alice")
	rid := alice.NewRoom(true, "")
	a1, rec1 := startAdapter(t, s, string(rid))

	rec1.SetFail(func(bridge.Event) error { return errors.New("store down") })
	if code := putTxn(t, s, s.cfg.HSToken, "t-1", textEvent(rid, alice.UserID, "$e1", "once")); code < 500 {
		t.Fatalf("accept failed but the transaction got %d", code)
	}
	rec1.SetFail(nil)
	if code := putTxn(t, s, s.cfg.HSToken, "t-1", textEvent(rid, alice.UserID, "$e1", "once")); code != http.StatusOK {
		t.Fatalf("retry: %d", code)
	}
	rec1.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "once" })
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	a1.Stop(ctx)

	_, rec2 := startAdapter(t, s, string(rid))
	if code := putTxn(t, s, s.cfg.HSToken, "t-1", textEvent(rid, alice.UserID, "$e1", "once")); code != http.StatusOK {
		t.Fatalf("replay: %d", code)
	}
	if code := putTxn(t, s, s.cfg.HSToken, "t-2", textEvent(rid, alice.UserID, "$e2", "marker")); code != http.StatusOK {
		t.Fatalf("next: %d", code)
	}
	rec2.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "marker" })
	for _, m := range rec2.Messages() {
		if m.Text == "once" {
			t.Errorf("the replayed transaction was bridged again")
		}
	}
}

// A transaction's events are all committed before it waits for the disk,
// and it is acknowledged (and remembered) only once they are on it.
func TestTransactionWaitsForTheDisk(t *testing.T) {
	s := newServer(t)
	alice := s.Client(t, "alice")
	rid := alice.NewRoom(true, "")
	_, rec := startAdapter(t, s, string(rid))
	var committedFirst []int
	var waitedNow []bool
	rec.Durable = func(now bool) error {
		committedFirst = append(committedFirst, len(rec.Messages()))
		waitedNow = append(waitedNow, now)
		return errors.New("disk failed")
	}
	txn := []map[string]any{
		textEvent(rid, alice.UserID, "$d1", "one"),
		textEvent(rid, alice.UserID, "$d2", "two"),
		textEvent(rid, alice.UserID, "$d3", "three"),
	}
	if code := putTxn(t, s, s.cfg.HSToken, "d-1", txn...); code < 500 {
		t.Fatalf("not on disk but the transaction got %d", code)
	}
	if len(committedFirst) == 0 || committedFirst[0] != 3 {
		t.Errorf("the disk was waited for with %v of 3 events committed", committedFirst)
	}
	// The homeserver waits: no sync window to wait for.
	if slices.Contains(waitedNow, false) {
		t.Errorf("waits for the disk, at once or not: %v", waitedNow)
	}
	if _, ok, _ := s.state.Get(t.Context(), "txn:d-1"); ok {
		t.Error("a transaction not on disk was remembered as done")
	}
	rec.Durable = nil
	if code := putTxn(t, s, s.cfg.HSToken, "d-1", txn...); code != http.StatusOK {
		t.Fatalf("retry: %d", code)
	}
	if _, ok, _ := s.state.Get(t.Context(), "txn:d-1"); !ok {
		t.Error("the transaction was not remembered")
	}
}

// unitAdapter is an adapter with a store's state and no homeserver (its
// URL refuses connections): for what needs no Matrix traffic.
func unitAdapter(t *testing.T) (*Adapter, adapters.State) {
	t.Helper()
	c := Config{
		Homeserver: "http://127.0.0.1:1", Domain: "localhost",
		ASToken: "as-token-unit-abcdefghijklmnop", HSToken: "hs-token-unit-abcdefghijklmnop",
		Bot: "switchboard", GhostLocalpart: "sb_{network}_{id}", ID: "switchboard",
	}
	a, err := New("matrix", &config.Network{Type: "matrix", Mode: "puppet", Section: &c}, testenv.NewLog(t).Logger())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), "sqlite", t.TempDir(), testenv.NewLog(t).Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a.UseState(st.State("matrix"))
	return a, st.State("matrix")
}

func TestPruneTransactions(t *testing.T) {
	ctx := t.Context()
	a, state := unitAdapter(t)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	cutoff := now.Add(-retention)
	ages := map[string]time.Duration{
		"old-1": 30 * 24 * time.Hour, "old-2": retention + time.Second,
		"edge": retention, "new-1": 6 * 24 * time.Hour, "new-2": 0,
	}
	for id, age := range ages {
		if err := a.rememberTxn(ctx, id, now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	if err := state.Put(ctx, "portal:#sb_lobby:localhost", "!r:localhost"); err != nil {
		t.Fatal(err)
	}
	n, err := a.prune(ctx, cutoff)
	if err != nil || n != 2 {
		t.Errorf("pruned %d, %v; want the 2 older than the cutoff", n, err)
	}
	for id, age := range ages {
		_, ok, err := state.Get(ctx, txnPrefix+id)
		if err != nil {
			t.Fatal(err)
		}
		if old := age > retention; ok == old {
			t.Errorf("%s (%v old): kept %v", id, age, ok)
		}
	}
	if _, ok, _ := state.Get(ctx, "portal:#sb_lobby:localhost"); !ok {
		t.Error("a record other than a transaction was pruned")
	}
}

// The adapter prunes as it starts, with no homeserver needed.
func TestPruneAtStart(t *testing.T) {
	a, state := unitAdapter(t)
	ctx := t.Context()
	if err := a.rememberTxn(ctx, "ancient", time.Now().Add(-2*retention)); err != nil {
		t.Fatal(err)
	}
	if err := a.rememberTxn(ctx, "recent", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx, adapterstest.NewRecorder()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := contextWithTimeout(10 * time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	deadline := time.Now().Add(waitFor)
	for {
		_, ok, err := state.Get(ctx, txnPrefix+"ancient")
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the old transaction record was not pruned at start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, ok, _ := state.Get(ctx, txnPrefix+"recent"); !ok {
		t.Error("a recent transaction record was pruned")
	}
}
