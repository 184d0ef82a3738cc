package matrix

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/bridge"
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

	rec1.Fail = func(bridge.Event) error { return errors.New("store down") }
	if code := putTxn(t, s, s.cfg.HSToken, "t-1", textEvent(rid, alice.UserID, "$e1", "once")); code < 500 {
		t.Fatalf("accept failed but the transaction got %d", code)
	}
	rec1.Fail = nil
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
