package matrix

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/adapters/adapterstest"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/config"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/store"
)

const waitFor = 30 * time.Second

// server is a Dendrite with Switchboard's appservice registered, and the
// HTTP listener (Switchboard's, in the service) the appservice API is
// served on.
type server struct {
	*testenv.MatrixServer
	mux     *http.ServeMux
	asAddr  string
	cfg     Config
	network *config.Network
	state   adapters.State
	// publicURL, when set, is handed to every adapter (http.public_url).
	publicURL string
	// avatars, when set, is handed to every adapter (the shared avatar
	// store).
	avatars adapters.AvatarStore
	// pushes are the transactions the homeserver pushed.
	pushes *pushLog
}

// pushLog records the transactions a homeserver pushes to the
// appservice API, with the status each was answered.
type pushLog struct {
	mu   sync.Mutex
	txns []pushed
}

type pushed struct {
	body   string
	status int
}

func (l *pushLog) recording(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut || !strings.Contains(r.URL.Path, "/transactions/") {
			next.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		l.mu.Lock()
		l.txns = append(l.txns, pushed{string(body), sw.status})
		l.mu.Unlock()
	})
}

// answered reports whether a transaction holding text was pushed and
// answered 200.
func (l *pushLog) answered(text string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.txns {
		if strings.Contains(p.body, text) && p.status == http.StatusOK {
			return true
		}
	}
	return false
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// countingState counts the reads and writes of an adapter's State.
type countingState struct {
	adapters.State
	mu     sync.Mutex
	reads  []string
	writes []string
}

func (s *countingState) Get(ctx context.Context, key string) (string, bool, error) {
	s.note(&s.reads, key)
	return s.State.Get(ctx, key)
}

func (s *countingState) Put(ctx context.Context, key, value string) error {
	s.note(&s.writes, key)
	return s.State.Put(ctx, key, value)
}

func (s *countingState) PutIfAbsent(ctx context.Context, key, value string) (bool, error) {
	s.note(&s.writes, key)
	return s.State.PutIfAbsent(ctx, key, value)
}

func (s *countingState) Delete(ctx context.Context, key string) error {
	s.note(&s.writes, key)
	return s.State.Delete(ctx, key)
}

func (s *countingState) note(list *[]string, key string) {
	s.mu.Lock()
	*list = append(*list, key)
	s.mu.Unlock()
}

// counts returns the keys read and written so far, in order.
func (s *countingState) counts() (reads, writes []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reads), slices.Clone(s.writes)
}

var serverSeq atomic.Int32

func newServer(t *testing.T) *server { return newBenchServer(t) }

func nopLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newBenchServer(t testing.TB) *server { return newServerWith(t) }

// newServerWith is newServer with a registration that lets the
// appservice double-puppet the given users.
func newServerWith(t testing.TB, doublePuppeted ...string) *server {
	t.Helper()
	return newServerNamespace(t, "", doublePuppeted...)
}

// newServerNamespace is newServerWith whose network (and registration)
// has double_puppet_namespace ns.
func newServerNamespace(t testing.TB, ns string, doublePuppeted ...string) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	pushes := &pushLog{}
	srv := &http.Server{Handler: pushes.recording(mux), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	n := serverSeq.Add(1)
	c := Config{
		Homeserver:            "http://placeholder",
		Domain:                "localhost",
		ASToken:               fmt.Sprintf("as-token-%d-abcdefghijklmnop", n),
		HSToken:               fmt.Sprintf("hs-token-%d-abcdefghijklmnop", n),
		Bot:                   "switchboard",
		GhostLocalpart:        "sb_{network}_{id}",
		ID:                    "switchboard",
		URL:                   "http://" + ln.Addr().String(),
		DoublePuppetNamespace: ns,
	}
	r := Registration(&c, "")
	withPeople(r, &c, doublePuppeted)
	reg, err := yaml.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	ms := testenv.Dendrite(t, reg)
	c.Homeserver = ms.URL
	st, err := store.Open(context.Background(), "sqlite", t.TempDir(), testenv.NewLog(t).Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &server{
		MatrixServer: ms, mux: mux, asAddr: ln.Addr().String(), cfg: c, pushes: pushes,
		network: &config.Network{Type: "matrix", Mode: "puppet", Puppets: config.Puppets{Template: "{name} ({network})"}, Section: &c},
		state:   st.State("matrix"),
	}
}

// newAdapter builds an adapter on the server's listener with the
// server's (persistent) state, started and stopped with the test.
func newAdapter(t *testing.T, s *server) *Adapter {
	t.Helper()
	a, err := New("matrix", s.network, testenv.NewLog(t).Logger())
	if err != nil {
		t.Fatal(err)
	}
	a.UseState(s.state)
	if s.avatars != nil {
		a.UseAvatars(s.avatars)
	}
	if s.publicURL != "" {
		a.UsePublicURL(s.publicURL)
	}
	a.RegisterHTTP(s.mux)
	return a
}

func startAdapter(t *testing.T, s *server, rooms ...string) (*Adapter, *adapterstest.Recorder) {
	t.Helper()
	a := newAdapter(t, s)
	return a, startRecorded(t, a, rooms...)
}

// startRecorded starts a (built with newAdapter) on a recorder, in rooms.
func startRecorded(t *testing.T, a *Adapter, rooms ...string) *adapterstest.Recorder {
	t.Helper()
	rec := adapterstest.NewRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := a.Start(ctx, rec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a.Stop(ctx)
	})
	for _, r := range rooms {
		if err := a.Join(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	adapterstest.WaitConnected(t, a)
	return rec
}

// roomWithBot makes a public room owned by the human that the bot is
// joined to, and the adapter bridging it.
func roomWithBot(t *testing.T, s *server, human *testenv.MatrixClient) (id.RoomID, *Adapter, *adapterstest.Recorder) {
	t.Helper()
	rid := human.NewRoom(true, "")
	a, rec := startAdapter(t, s, string(rid))
	return rid, a, rec
}

func foreign(id, name string) bridge.Sender {
	return bridge.Sender{Network: "elsewhere", ID: id, Name: name}
}

func header(s bridge.Sender) bridge.Header {
	return bridge.Header{ID: bridge.NewEventID(), Origin: bridge.Origin{Network: s.Network, Room: "#origin"}, Sender: s, Time: time.Now().UTC()}
}

// deliver calls f until it succeeds, as the router's outbox would.
func deliver(t *testing.T, f func(ctx context.Context) (string, error)) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitFor)
	defer cancel()
	for {
		id, err := f(ctx)
		if err == nil {
			return id
		}
		if errors.Is(err, bridge.ErrPermanent) || ctx.Err() != nil {
			t.Fatalf("delivery: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func waitEvent(t *testing.T, c *testenv.MatrixClient, what string, match func(*event.Event) bool) *event.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	evt, _, err := c.WaitFor(ctx, 0, match)
	if err != nil {
		t.Fatalf("never saw %s: %v", what, err)
	}
	return evt
}

func bodyIs(rid id.RoomID, text string) func(*event.Event) bool {
	return func(e *event.Event) bool {
		return e.RoomID == rid && e.Type == event.EventMessage && e.Content.AsMessage().Body == text
	}
}

func bodyContains(rid id.RoomID, text string) func(*event.Event) bool {
	return func(e *event.Event) bool {
		return e.RoomID == rid && e.Type == event.EventMessage && strings.Contains(e.Content.AsMessage().Body, text)
	}
}

// putTxn pushes a transaction to the appservice API as the homeserver
// would, and returns the status.
func putTxn(t *testing.T, s *server, token, txnID string, events ...map[string]any) int {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"events": events})
	resp, _ := testenv.HTTP(t, http.MethodPut, "http://"+s.asAddr+"/_matrix/app/v1/transactions/"+txnID, token, body)
	return resp.StatusCode
}

func redaction(rid id.RoomID, sender id.UserID, target id.EventID, evid string) map[string]any {
	return map[string]any{
		"type": "m.room.redaction", "room_id": rid, "sender": sender, "event_id": evid,
		"redacts": target, "content": map[string]any{"redacts": target}, "origin_server_ts": time.Now().UnixMilli(),
	}
}

func textEvent(rid id.RoomID, sender id.UserID, evid, body string) map[string]any {
	return map[string]any{
		"type": "m.room.message", "room_id": rid, "sender": sender, "event_id": evid,
		"content": map[string]any{"msgtype": "m.text", "body": body}, "origin_server_ts": time.Now().UnixMilli(),
	}
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

type mautrixCreate = mautrix.ReqCreateRoom
