package webrtc

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/adapters/adapterstest"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

const wait = 20 * time.Second

func testConfig() Config {
	return Config{
		LoopbackCandidates: true,
		MaxMessage:         16384,
		Rate:               Rate{PerSecond: 5, Burst: 10},
		MaxPeers:           100,
		Tokens:             map[string]string{"secret": "s3cr3t"},
	}
}

// server is an adapter started on its own HTTP server, ICE on lo only.
type server struct {
	a   *Adapter
	rec *adapterstest.Recorder
	url string
}

func newAdapter(t testing.TB, cfg Config, rooms ...string) *Adapter {
	a := New("web", cfg, testenv.NewLog(t).Logger())
	a.InterfaceFilter = func(name string) bool { return name == "lo" }
	a.Timeouts.Disconnected, a.Timeouts.Failed, a.Timeouts.KeepAlive = time.Second, 2*time.Second, 300*time.Millisecond
	return a
}

func startServer(t testing.TB, cfg Config, rooms ...string) *server {
	t.Helper()
	return startAdapter(t, newAdapter(t, cfg), rooms...)
}

// startAdapter is startServer for an adapter made by newAdapter.
func startAdapter(t testing.TB, a *Adapter, rooms ...string) *server {
	t.Helper()
	rec := adapterstest.NewRecorder()
	if err := a.Start(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	for _, r := range rooms {
		if err := a.Join(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	a.RegisterHTTP(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a.Stop(ctx)
		hs.Close()
	})
	return &server{a: a, rec: rec, url: hs.URL}
}

// human adapts a WebRTC peer to the conformance suite.
// It reads frames in order, as a person reads the page.
type human struct {
	p    *testenv.WebRTCPeer
	next *int
}

func (h human) Say(text string) error { return h.p.Say(text) }

func (h human) WaitFor(ctx context.Context, match func(adapterstest.Line) bool) (adapterstest.Line, error) {
	f, next, err := h.p.Next(ctx, *h.next, func(f testenv.WebRTCFrame) bool {
		// Notices are Switchboard's own lines, shown in the chat too.
		return (f.Type == "message" || f.Type == "notice") && match(adapterstest.Line{From: f.Sender.Name, Text: f.Text})
	})
	*h.next = next
	return adapterstest.Line{From: f.Sender.Name, Text: f.Text}, err
}

func TestConformance(t *testing.T) {
	var mu sync.Mutex
	var url string
	adapterstest.Run(t, adapterstest.Harness{
		Network: "web",
		Room:    "conformance",
		New: func(t *testing.T) adapters.Adapter {
			cfg := testConfig()
			// The suite says a dozen lines at once.
			cfg.Rate = Rate{PerSecond: 50, Burst: 50}
			a := newAdapter(t, cfg)
			mux := http.NewServeMux()
			a.RegisterHTTP(mux)
			hs := httptest.NewServer(mux)
			t.Cleanup(hs.Close)
			mu.Lock()
			url = hs.URL
			mu.Unlock()
			return a
		},
		Human: func(t *testing.T) adapterstest.Human {
			mu.Lock()
			u := url
			mu.Unlock()
			return human{testenv.MustDialWebRTC(t, u, "conformance", "", "human", "human-1"), new(int)}
		},
	})
}

func TestEchoAndEvents(t *testing.T) {
	s := startServer(t, testConfig(), "lobby")
	alice := testenv.MustDialWebRTC(t, s.url, "lobby", "", "alice", "alice-1")
	s.rec.WaitEvent(t, func(ev bridge.Event) bool { j, ok := ev.(*bridge.Join); return ok && j.Sender.ID == "alice-1" })
	bob := testenv.MustDialWebRTC(t, s.url, "lobby", "", "bob", "")
	alice.Wait(t, wait, "bob's join", func(f testenv.WebRTCFrame) bool { return f.Type == "join" && f.Sender.Name == "bob" })

	alice.Send(map[string]any{"type": "message", "text": "hello bob"})
	echo := alice.Wait(t, wait, "the echo", func(f testenv.WebRTCFrame) bool { return f.Type == "message" && f.Text == "hello bob" })
	if echo.ID == "" || echo.Sender.ID != "alice-1" || echo.Network != "web" || echo.Room != "lobby" {
		t.Errorf("echo %s", echo.Raw)
	}
	got := bob.Wait(t, wait, "alice's message", func(f testenv.WebRTCFrame) bool { return f.Type == "message" && f.Text == "hello bob" })
	if got.ID != echo.ID {
		t.Errorf("bob saw id %s, alice %s", got.ID, echo.ID)
	}
	m := s.rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "hello bob" })
	if string(m.ID) != echo.ID || m.Sender.Name != "alice" || m.Origin.Room != "lobby" {
		t.Errorf("accepted %+v", m)
	}

	// A foreign message reaches both; edit, reaction are broadcast too.
	foreign := adapterstest.Message(bridge.Sender{Network: "irc", ID: "carol", Name: "carol"}, "hi from irc")
	id, err := s.a.Send(context.Background(), &bridge.Delivery{Room: "lobby", Event: foreign})
	if err != nil || id != string(foreign.ID) {
		t.Fatalf("send: %q %v", id, err)
	}
	for _, p := range []*testenv.WebRTCPeer{alice, bob} {
		f := p.Wait(t, wait, "carol's message", func(f testenv.WebRTCFrame) bool { return f.Text == "hi from irc" })
		if f.Sender.Name != "carol" || f.Network != "irc" || f.ID != string(foreign.ID) {
			t.Errorf("frame %s", f.Raw)
		}
	}
	// bob may not edit alice's message: refused before the router.
	bob.Send(map[string]any{"type": "edit", "target": echo.ID, "text": "forged"})
	bob.Wait(t, wait, "not_allowed", func(f testenv.WebRTCFrame) bool { return f.Code == "not_allowed" })

	// Leaving politely: DELETE, one leave.
	if code, err := bob.Delete(""); err != nil || code != http.StatusNoContent {
		t.Fatalf("DELETE: %d %v", code, err)
	}
	alice.Wait(t, wait, "bob's leave", func(f testenv.WebRTCFrame) bool { return f.Type == "leave" && f.Sender.Name == "bob" })
}

// Before its offer a client asks which ICE servers to gather with; TURN
// credentials go only to those with the room's token.
func TestOptionsOfferICEServers(t *testing.T) {
	cfg := testConfig()
	cfg.ICEServers = []ICEServer{
		{URLs: []string{"stun:stun.example.org:3478"}},
		{URLs: []string{"turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"}, Username: "page-user", Credential: "pa;ss,word"},
	}
	s := startServer(t, cfg, "lobby", "secret")
	options := func(room, token string) *http.Response {
		resp, _ := testenv.HTTP(t, http.MethodOptions, s.url+"/webrtc/"+room, token, nil)
		return resp
	}
	want := []string{
		`<stun:stun.example.org:3478>; rel="ice-server"`,
		`<turn:turn.example.org:3478?transport=udp>; rel="ice-server"; username="page-user"; credential="pa;ss,word"; credential-type="password"`,
		`<turns:turn.example.org:5349>; rel="ice-server"; username="page-user"; credential="pa;ss,word"; credential-type="password"`,
	}
	for _, c := range []struct{ room, token string }{{"lobby", ""}, {"secret", "s3cr3t"}} {
		resp := options(c.room, c.token)
		if got := resp.Header.Values("Link"); resp.StatusCode != 204 || strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("OPTIONS %s: %d, Link %q", c.room, resp.StatusCode, got)
		}
		if resp.Header.Get("Accept-Post") != "application/sdp" {
			t.Errorf("OPTIONS %s: Accept-Post %q", c.room, resp.Header.Get("Accept-Post"))
		}
	}
	for _, tok := range []string{"", "wrong"} {
		if resp := options("secret", tok); resp.StatusCode != 401 || len(resp.Header.Values("Link")) != 0 {
			t.Errorf("OPTIONS secret with token %q: %d, Link %q", tok, resp.StatusCode, resp.Header.Values("Link"))
		}
	}
	if resp := options("nowhere", ""); resp.StatusCode != 404 || len(resp.Header.Values("Link")) != 0 {
		t.Errorf("OPTIONS of an unlinked room: %d, Link %q", resp.StatusCode, resp.Header.Values("Link"))
	}
}

func TestSignalingRefusals(t *testing.T) {
	s := startServer(t, testConfig(), "lobby", "secret")
	post := func(room, token, ctype, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, s.url+"/webrtc/"+room, strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b := new(strings.Builder)
		fmt.Fprint(b, resp.Header.Get("WWW-Authenticate"))
		buf := make([]byte, 4096)
		n, _ := resp.Body.Read(buf)
		return resp.StatusCode, b.String() + string(buf[:n])
	}
	if code, body := post("lobby", "", "application/sdp", "v=0\r\nnonsense"); code != 400 || !strings.Contains(body, "malformed SDP") {
		t.Errorf("malformed SDP: %d %q", code, body)
	}
	if code, _ := post("nowhere", "", "application/sdp", "v=0"); code != 404 {
		t.Errorf("unlinked room: %d", code)
	}
	if code, _ := post("lobby", "", "text/plain", "v=0"); code != 415 {
		t.Errorf("wrong content type: %d", code)
	}
	if code, _ := post("lobby", "", "application/sdp", strings.Repeat("a", maxOfferBytes+1)); code != 413 {
		t.Errorf("huge offer: %d", code)
	}
	for _, tok := range []string{"", "wrong", "s3cr3t-"} {
		if code, body := post("secret", tok, "application/sdp", "v=0"); code != 401 || !strings.Contains(body, "Bearer") {
			t.Errorf("token %q: %d %q", tok, code, body)
		}
		if _, err := testenv.DialWebRTC(t, s.url, "secret", tok); err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("dial with token %q: %v", tok, err)
		}
	}
	s.a.mu.Lock()
	n := len(s.a.sessions)
	s.a.mu.Unlock()
	if n != 0 {
		t.Errorf("%d sessions after refusals", n)
	}
	p := testenv.MustDialWebRTC(t, s.url, "secret", "s3cr3t", "eve", "")
	if p.Location == "" || !strings.HasPrefix(p.Location, "/webrtc/secret/") {
		t.Errorf("Location %q", p.Location)
	}
	if code, _ := p.Delete("wrong"); code != 401 {
		t.Errorf("DELETE with a wrong token: %d", code)
	}
}

func TestFrameViolations(t *testing.T) {
	s := startServer(t, testConfig(), "lobby")
	p, err := testenv.DialWebRTC(t, s.url, "lobby", "")
	if err != nil {
		t.Fatal(err)
	}
	code := func(c string) func(testenv.WebRTCFrame) bool {
		return func(f testenv.WebRTCFrame) bool { return f.Type == "error" && f.Code == c }
	}
	p.Send(map[string]any{"type": "message", "text": "too early"})
	p.Wait(t, wait, "not_hello", code("not_hello"))
	p.Send(map[string]any{"type": "hello", "name": "alice"})
	p.Wait(t, wait, "welcome", func(f testenv.WebRTCFrame) bool { return f.Type == "welcome" && f.ID != "" })
	p.SendRaw(`{"type":`)
	p.Wait(t, wait, "invalid_json", code("invalid_json"))
	p.Send(map[string]any{"type": "message", "text": strings.Repeat("x", 16385)})
	p.Wait(t, wait, "too_large", code("too_large"))
	time.Sleep(time.Second) // refill
	for i := range 30 {
		p.Send(map[string]any{"type": "message", "text": fmt.Sprintf("flood %d", i)})
	}
	p.Wait(t, wait, "rate_limited", code("rate_limited"))
	time.Sleep(2500 * time.Millisecond)
	p.Send(map[string]any{"type": "message", "text": "still usable"})
	p.Wait(t, wait, "the echo after the flood", func(f testenv.WebRTCFrame) bool { return f.Type == "message" && f.Text == "still usable" })
	s.rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "still usable" })
	floods := 0
	for _, m := range s.rec.Messages() {
		if strings.HasPrefix(m.Text, "flood ") {
			floods++
		}
	}
	if floods > 10 || floods < 5 {
		t.Errorf("%d flood messages accepted, want the burst (about 10)", floods)
	}
	d := s.a.Dropped()
	if d[DropMalformed] != 1 || d[DropOversize] != 1 || d[DropRateLimited] < 20-uint64(floods) {
		t.Errorf("drops counted %v, want 1 malformed, 1 oversize and the flood past the burst", d)
	}
}

// A peer that vanishes (or closes abruptly) leaves exactly once, within
// the ICE timeout.
func TestVanishedPeerLeavesOnce(t *testing.T) {
	for _, how := range []string{"vanish", "close"} {
		t.Run(how, func(t *testing.T) {
			s := startServer(t, testConfig(), "lobby")
			watcher := testenv.MustDialWebRTC(t, s.url, "lobby", "", "watcher", "")
			p := testenv.MustDialWebRTC(t, s.url, "lobby", "", "ghost", "ghost-1")
			start := time.Now()
			if how == "vanish" {
				p.Vanish()
			} else {
				p.Close()
			}
			isLeave := func(ev bridge.Event) bool { l, ok := ev.(*bridge.Leave); return ok && l.Sender.ID == "ghost-1" }
			s.rec.WaitEvent(t, isLeave)
			took := time.Since(start)
			watcher.Wait(t, wait, "the ghost's leave", func(f testenv.WebRTCFrame) bool { return f.Type == "leave" && f.Sender.ID == "ghost-1" })
			time.Sleep(3 * time.Second) // a second leave would come by now
			n := 0
			for _, ev := range s.rec.Events() {
				if isLeave(ev) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d leave events, want 1", n)
			}
			if took > 10*time.Second {
				t.Errorf("leave after %v", took)
			}
			if s.a.Peers("lobby") != 1 {
				t.Errorf("%d peers left in the room, want 1", s.a.Peers("lobby"))
			}
			t.Logf("%s: leave after %v", how, took)
		})
	}
}

func TestPageServedWithCSP(t *testing.T) {
	s := startServer(t, testConfig(), "lobby")
	for _, path := range []string{"/", "/chat/lobby", "/static/webrtc/app.js", "/static/webrtc/style.css"} {
		resp, err := http.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Errorf("%s: %d %q", path, resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
		}
	}
}
