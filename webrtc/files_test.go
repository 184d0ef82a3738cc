package webrtc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/adapters/adapterstest"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/store"
)

// fileServer is startServer with files on: a real SQLite store, and the
// server's own URL as http.public_url. public false leaves it unset.
func fileServer(t *testing.T, cfg Config, public bool) *server {
	t.Helper()
	st, err := store.Open(t.Context(), "sqlite", t.TempDir(), testenv.NewLog(t).Logger())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	hs := httptest.NewServer(mux)
	a := newAdapter(t, cfg)
	if public {
		a.UsePublicURL(hs.URL + "/")
	}
	a.UseState(st.State("web"))
	a.UseFiles(st)
	a.UsePeople([]adapters.PersonalAccount{{Person: "alice", Name: "Alice", ID: "alice", Token: aliceToken}})
	a.RegisterHTTP(mux)
	rec := adapterstest.NewRecorder()
	if err := a.Start(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"lobby", "secret"} {
		if err := a.Join(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a.Stop(ctx)
		hs.Close()
		st.Close()
	})
	return &server{a: a, rec: rec, url: hs.URL}
}

// png is the start of a PNG file, which its bytes show.
func png(n int) []byte {
	return append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{0, 0xaa, 0x55}, n)...)
}

// session is the URL of a peer's session.
func session(p *testenv.WebRTCPeer) string { return p.Base + p.Location }

// postFile sends data as name on a session with header.
func postFile(t *testing.T, session, name string, data []byte, header http.Header) (*http.Response, string) {
	t.Helper()
	return postReply(t, session, name, "", data, header)
}

// postReply is postFile in answer to the message replyTo ("" for none).
func postReply(t *testing.T, session, name, replyTo string, data []byte, header http.Header) (*http.Response, string) {
	t.Helper()
	q := url.Values{"name": {name}}
	if replyTo != "" {
		q.Set("reply_to", replyTo)
	}
	req, err := http.NewRequest(http.MethodPost, session+"/files?"+q.Encode(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "image/png") // what the page says is never believed
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func maxFileOf(t *testing.T, w testenv.WebRTCFrame) int64 {
	var f struct {
		Limits struct {
			MaxFile int64 `json:"max_file"`
		} `json:"limits"`
	}
	if err := json.Unmarshal([]byte(w.Raw), &f); err != nil {
		t.Fatal(err)
	}
	return f.Limits.MaxFile
}

// TestFileSentAndServed: a file a peer sends becomes its message with the
// file attached, shown to the room's peers and handed to the router, and
// its link serves the same bytes, typed by what they are: an image
// inline, HTML and SVG (whatever their names) only as a download, with
// nosniff and a sandbox everywhere.
func TestFileSentAndServed(t *testing.T) {
	cfg := testConfig()
	cfg.Files.MaxSize = 64 << 10
	s := fileServer(t, cfg, true)
	watcher := testenv.MustDialWebRTC(t, s.url, "lobby", "", "watcher", "watcher-1")
	alice, err := testenv.DialWebRTC(t, s.url, "lobby", "")
	if err != nil {
		t.Fatal(err)
	}
	alice.Send(map[string]any{"type": "hello", "name": "al", "id": "al-1"})
	w := alice.Wait(t, wait, "welcome", func(f testenv.WebRTCFrame) bool { return f.Type == "welcome" })
	if got := maxFileOf(t, w); got != 64<<10 {
		t.Errorf("welcome max_file %d, want %d", got, 64<<10)
	}

	pic := png(1000)
	alice.Say("look at this")
	said := s.rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Text == "look at this" })
	resp, body := postReply(t, session(alice), `C:\photos\../cat 1.png`, string(said.ID), pic, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST file: %d %s", resp.StatusCode, body)
	}
	var ans fileAnswer
	if err := json.Unmarshal([]byte(body), &ans); err != nil {
		t.Fatal(err)
	}
	m := s.rec.WaitMessage(t, func(m *bridge.Message) bool { return len(m.Attachments) > 0 })
	at := m.Attachments[0]
	if m.ReplyTo.Remote != string(said.ID) {
		t.Errorf("the file answers %+v, want %s", m.ReplyTo, said.ID)
	}
	if m.Text != "cat 1.png" || m.Sender.ID != "al-1" || at.Name != "cat 1.png" || at.Mime != "image/png" || at.Size != int64(len(pic)) ||
		!strings.HasPrefix(at.URL, s.url+filesPath) || !strings.HasSuffix(at.URL, "/cat%201.png") || at.URL != ans.URL || string(m.ID) != ans.ID {
		t.Errorf("message %q from %s with %+v; answer %+v", m.Text, m.Sender.ID, at, ans)
	}
	// The room's peers see it with its attachment, the sender too.
	for _, p := range []*testenv.WebRTCPeer{watcher, alice} {
		f := p.Wait(t, wait, "the file's message", func(f testenv.WebRTCFrame) bool { return f.Type == "message" && f.ID == ans.ID })
		var shown struct {
			Attachments []bridge.Attachment `json:"attachments"`
		}
		json.Unmarshal([]byte(f.Raw), &shown)
		if len(shown.Attachments) != 1 || shown.Attachments[0] != at {
			t.Errorf("frame %s, want the attachment %+v", f.Raw, at)
		}
	}

	get := func(link string) (*http.Response, []byte) {
		t.Helper()
		resp, err := http.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, got := get(at.URL)
	h := resp.Header
	if resp.StatusCode != 200 || !bytes.Equal(got, pic) || h.Get("Content-Type") != "image/png" ||
		h.Get("Content-Disposition") != `inline; filename="cat 1.png"` || h.Get("X-Content-Type-Options") != "nosniff" ||
		!strings.Contains(h.Get("Content-Security-Policy"), "sandbox") || h.Get("Cache-Control") != "no-store" {
		t.Errorf("GET the link: %d, %d bytes, %v", resp.StatusCode, len(got), h)
	}

	// Typed by the bytes, never by the name or the declared type.
	for _, c := range []struct {
		name, data, mime, disposition string
	}{
		{"innocent.png", "<!DOCTYPE html><script>alert(1)</script>", "application/octet-stream", `attachment; filename=innocent.png`},
		{"logo.svg", `<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`, "application/octet-stream", `attachment; filename=logo.svg`},
		{"notes.txt", "just some notes\n", "text/plain; charset=utf-8", `attachment; filename=notes.txt`},
		{"doc.pdf", "%PDF-1.4\n%...", "application/pdf", `attachment; filename=doc.pdf`},
	} {
		resp, body := postFile(t, session(alice), c.name, []byte(c.data), nil)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", c.name, resp.StatusCode, body)
		}
		var ans fileAnswer
		json.Unmarshal([]byte(body), &ans)
		r, b := get(ans.URL)
		if ans.Mime != c.mime || r.Header.Get("Content-Type") != c.mime || r.Header.Get("Content-Disposition") != c.disposition ||
			string(b) != c.data || r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: sent as %q, served as %q, %q", c.name, ans.Mime, r.Header.Get("Content-Type"), r.Header.Get("Content-Disposition"))
		}
	}

	// A link with another signature, or to another id, is nothing.
	sigStart := len(s.url + filesPath)
	for _, bad := range []string{
		at.URL[:sigStart] + "A" + at.URL[sigStart+1:],
		strings.Replace(at.URL, "/"+strings.Split(at.URL[sigStart:], "/")[1]+"/", "/"+newSessionID()+"/", 1),
	} {
		if r, _ := get(bad); r.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", bad, r.StatusCode)
		}
	}

	// Over the limit, or empty: refused, and nothing reaches the room.
	before := len(s.rec.Messages())
	if resp, body := postFile(t, session(alice), "big.png", png(64<<10), nil); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a file over the limit: %d %s, want 413", resp.StatusCode, body)
	}
	if resp, body := postFile(t, session(alice), "empty", nil, nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("an empty file: %d %s, want 400", resp.StatusCode, body)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(s.rec.Messages()); n != before {
		t.Errorf("%d messages after the refused files, want %d", n, before)
	}
	if s.a.Dropped()[DropOversize] != 1 {
		t.Errorf("dropped: %v, want one oversize", s.a.Dropped())
	}
}

// TestFileRefusals: a file is taken only on a live session of the room,
// with the room's token, from a peer that said hello, and on a person's
// session with that person's token.
func TestFileRefusals(t *testing.T) {
	cfg := testConfig()
	cfg.Files.MaxSize = 1 << 20
	s := fileServer(t, cfg, true)
	anon := testenv.MustDialWebRTC(t, s.url, "lobby", "", "anon", "anon-1")
	silent, err := testenv.DialWebRTC(t, s.url, "lobby", "")
	if err != nil {
		t.Fatal(err)
	}
	secret := testenv.MustDialWebRTC(t, s.url, "secret", "s3cr3t", "insider", "in-1")
	alice, err := testenv.DialWebRTCHeader(t, s.url, "lobby", personHeader(aliceToken))
	if err != nil {
		t.Fatal(err)
	}
	alice.Send(map[string]any{"type": "hello"})
	alice.Wait(t, wait, "welcome", func(f testenv.WebRTCFrame) bool { return f.Type == "welcome" })

	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	for _, c := range []struct {
		what    string
		session string
		header  http.Header
		want    int
	}{
		{"an unknown session", s.url + "/webrtc/lobby/" + newSessionID(), nil, http.StatusNotFound},
		{"another room's session", strings.Replace(session(anon), "/lobby/", "/secret/", 1), bearer("s3cr3t"), http.StatusNotFound},
		{"the token room without its token", session(secret), nil, http.StatusUnauthorized},
		{"the token room with a wrong token", session(secret), bearer("guess"), http.StatusUnauthorized},
		{"a peer before hello", session(silent), nil, http.StatusConflict},
		{"alice's session without her token", session(alice), nil, http.StatusForbidden},
		{"alice's session with a wrong token", session(alice), personHeader("wrong"), http.StatusForbidden},
	} {
		if resp, body := postFile(t, c.session, "x.png", png(10), c.header); resp.StatusCode != c.want {
			t.Errorf("%s: %d %s, want %d", c.what, resp.StatusCode, body, c.want)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(s.rec.Messages()); n != 0 {
		t.Fatalf("%d messages after refused files, want none", n)
	}
	// The right credentials pass.
	for _, c := range []struct {
		peer   *testenv.WebRTCPeer
		header http.Header
		sender string
	}{
		{secret, bearer("s3cr3t"), "in-1"},
		{alice, personHeader(aliceToken), "alice"},
	} {
		resp, body := postFile(t, session(c.peer), "ok.png", png(10), c.header)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("%s: %d %s", c.sender, resp.StatusCode, body)
		}
		m := s.rec.WaitMessage(t, func(m *bridge.Message) bool { return m.Sender.ID == c.sender && len(m.Attachments) == 1 })
		if c.sender == "alice" && !m.Sender.Authenticated {
			t.Errorf("alice's file is not from her, verified: %+v", m.Sender)
		}
	}
}

// TestFilesOff: with files.max_size 0, or without http.public_url to
// link to, the welcome says no file may be sent, and none is taken.
func TestFilesOff(t *testing.T) {
	for _, c := range []struct {
		what    string
		maxSize int64
		public  bool
	}{
		{"max_size 0", 0, true},
		{"no public URL", 1 << 20, false},
	} {
		t.Run(c.what, func(t *testing.T) {
			cfg := testConfig()
			cfg.Files.MaxSize = c.maxSize
			s := fileServer(t, cfg, c.public)
			p, err := testenv.DialWebRTC(t, s.url, "lobby", "")
			if err != nil {
				t.Fatal(err)
			}
			p.Send(map[string]any{"type": "hello", "name": "n"})
			if got := maxFileOf(t, p.Wait(t, wait, "welcome", func(f testenv.WebRTCFrame) bool { return f.Type == "welcome" })); got != 0 {
				t.Errorf("welcome max_file %d, want 0", got)
			}
			if resp, body := postFile(t, session(p), "x.png", png(10), nil); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "off") {
				t.Errorf("POST: %d %s, want 404, files are off", resp.StatusCode, body)
			}
		})
	}
}

// TestPageCSPShowsImages: the page may show images from http.public_url
// and over https, and runs nothing from anywhere but itself.
func TestPageCSPShowsImages(t *testing.T) {
	s := fileServer(t, testConfig(), true)
	resp, err := http.Get(s.url + "/chat/lobby")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := resp.Header.Get("Content-Security-Policy")
	u, _ := url.Parse(s.url)
	if want := fmt.Sprintf("img-src 'self' data: https: http://%s;", u.Host); !strings.Contains(got, want) || !strings.Contains(got, "script-src 'self';") {
		t.Errorf("page CSP %q, want %q and scripts from itself only", got, want)
	}
}

func TestFileName(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	for in, want := range map[string]string{
		"cat.png":                  "cat.png",
		"/home/al/cat.png":         "cat.png",
		`C:\Users\al\cat.png`:      "cat.png",
		"../../etc/passwd":         "passwd",
		"line\r\nbreak\x00.txt":    "linebreak.txt",
		"  spaced  ":               "spaced",
		"":                         "file",
		"..":                       "file",
		"dir/":                     "file",
		"\x1b[31m":                 "[31m",
		long:                       strings.Repeat("é", 64),
		"bad \xff utf8.png":        "bad  utf8.png",
		"grüße 🖼.png":              "grüße 🖼.png",
		"name with\u2028separator": "name withseparator",
		"cat\u202egnp.exe":         "catgnp.exe",
	} {
		if got := fileName(in); got != want {
			t.Errorf("fileName(%q) = %q, want %q", in, got, want)
		}
	}
}
