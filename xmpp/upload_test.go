package xmpp

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/switchboard-chat/switchboard/adapters/adapterstest"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/store"
)

// uploadLimit is the test upload service's size limit.
const uploadLimit = 64 << 10

// fileServer serves files by path, counting the fetches; "/chunked/"
// paths are sent without a length.
type fileServer struct {
	*httptest.Server
	files   map[string][]byte
	fetches atomic.Int32
	// release, when set, holds the answers to "/slow/" paths until it
	// is closed; slow hears of each such request.
	release, slow chan struct{}
}

func newFileServer(t *testing.T, files map[string][]byte) *fileServer {
	fs := &fileServer{files: files}
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.fetches.Add(1)
		data, ok := fs.files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/slow/") && fs.release != nil {
			fs.slow <- struct{}{}
			<-fs.release
		}
		w.Header().Set("Content-Type", "image/png")
		if strings.HasPrefix(r.URL.Path, "/chunked/") {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush() // no Content-Length
		}
		w.Write(data)
	}))
	t.Cleanup(fs.Close)
	return fs
}

// download GETs a URL and returns its bytes.
func download(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, %v", u, resp.StatusCode, err)
	}
	return data
}

func oobURL(s testenv.XMPPStanza) string {
	return s.Child("jabber:x:oob", "x").Child("jabber:x:oob", "url").TextOrEmpty()
}

func png(n int, seed string) []byte {
	return append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte(seed), n/len(seed))...)
}

// TestUploads: attachments reach the MUC through the server's HTTP upload
// service (XEP-0363) as the upload's URL in body and OOB, with the bytes
// the file had; a retry does not upload again; a file over the service's
// limit, or one at an internal address that is not Switchboard's own,
// stays the link it came as.
func TestUploads(t *testing.T) {
	for _, server := range testenv.XMPPServers {
		t.Run(server.Name, func(t *testing.T) {
			srv := server.Start(t, testenv.XMPPServerConfig{Users: testUsers, FileShareLimit: uploadLimit})
			testUploads(t, srv)
		})
	}
}

func testUploads(t *testing.T, srv *testenv.XMPPServer) {
	small, chunked, big := png(20<<10, "pixels "), png(30<<10, "chunks "), png(uploadLimit+1024, "large ")
	files := newFileServer(t, map[string][]byte{"/m/cat.png": small, "/chunked/dog.png": chunked, "/m/big.png": big, "/m/later.png": small,
		"/chunked/huge.png": big, "/slow/turtle.png": small, "/m/dm.png": chunked})
	files.release, files.slow = make(chan struct{}), make(chan struct{}, 1)
	other := newFileServer(t, map[string][]byte{"/inside.png": small})
	room := newRoomName(srv, "up")
	st, err := store.Open(t.Context(), "sqlite", t.TempDir(), testenv.NewLog(t).Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a, log := newTestAdapter(t, srv, setup{})
	a.UseState(st.State("jabber"))
	a.UsePublicURL(files.URL + "/") // its links are Switchboard's own
	start(t, a, room)
	alice := joinHuman(t, srv, "alice", room, "Alice")
	bob := foreign("libera", "Bob", "bob")

	var catURL string // where cat.png was uploaded
	t.Run("image", func(t *testing.T) {
		m := message(bob, "cat.png")
		u := files.URL + "/m/cat.png"
		m.Attachments = []bridge.Attachment{{URL: u, Name: "cat.png", Mime: "image/png", Size: int64(len(small))}}
		first := send(t, a, room, m)
		st := alice.waitMessage(func(s testenv.XMPPStanza) bool { return s.Nick() == "bob (libera)" && oobURL(s) != "" })
		if !strings.HasPrefix(st.Body(), srv.UploadURL+"/") || oobURL(st) != st.Body() {
			t.Fatalf("want the upload URL as body and OOB: %s", st.Raw)
		}
		if got := download(t, st.Body()); !bytes.Equal(got, small) {
			t.Errorf("the upload holds %d bytes, want the %d sent", len(got), len(small))
		}
		catURL = st.Body()
		// A retry of the delivery (the room's answer lost) finds what
		// was sent; nothing is fetched or uploaded again.
		if again := send(t, a, room, m); again != first {
			t.Errorf("retry: %q, first %q", again, first)
		}
		if n := files.fetches.Load(); n != 1 {
			t.Errorf("fetched %d times", n)
		}
	})

	t.Run("caption and unknown length", func(t *testing.T) {
		u := files.URL + "/chunked/dog.png"
		m := message(bob, "look at this "+u)
		m.Attachments = []bridge.Attachment{{URL: u}}
		send(t, a, room, m)
		st := alice.waitMessage(func(s testenv.XMPPStanza) bool { return strings.HasPrefix(s.Body(), "look at this ") })
		get := oobURL(st)
		if !strings.HasPrefix(get, srv.UploadURL+"/") || st.Body() != "look at this "+get {
			t.Fatalf("want the caption with the upload URL: %s", st.Raw)
		}
		if got := download(t, get); !bytes.Equal(got, chunked) {
			t.Errorf("the upload holds %d bytes, want the %d sent", len(got), len(chunked))
		}
	})

	t.Run("over the limit", func(t *testing.T) {
		u := files.URL + "/m/big.png"
		m := message(bob, "big.png")
		m.Attachments = []bridge.Attachment{{URL: u, Name: "big.png"}} // size unknown until fetched
		send(t, a, room, m)
		st := alice.waitMessage(func(s testenv.XMPPStanza) bool { return strings.Contains(s.Body(), "big.png") })
		if st.Body() != "big.png: "+u || oobURL(st) != u {
			t.Errorf("want the link as today: %s", st.Raw)
		}
		// Without a length, it is read up to the limit only.
		u = files.URL + "/chunked/huge.png"
		m = message(bob, "huge.png")
		m.Attachments = []bridge.Attachment{{URL: u, Name: "huge.png"}}
		send(t, a, room, m)
		st = alice.waitMessage(func(s testenv.XMPPStanza) bool { return strings.Contains(s.Body(), "huge.png") })
		if st.Body() != "huge.png: "+u || oobURL(st) != u {
			t.Errorf("want the link as today: %s", st.Raw)
		}
	})

	t.Run("a slow file holds up no one else", func(t *testing.T) {
		u := files.URL + "/slow/turtle.png"
		m := message(bob, "turtle.png")
		m.Attachments = []bridge.Attachment{{URL: u, Name: "turtle.png"}}
		var once sync.Once
		release := func() { once.Do(func() { close(files.release) }) }
		defer release() // a failure must not leave the file server hanging
		done := make(chan error, 1)
		go func() {
			_, err := a.Send(context.Background(), &bridge.Delivery{Link: "test", Room: room, Event: m})
			done <- err
		}()
		<-files.slow // Bob's file is on its way; Carol speaks meanwhile.
		send(t, a, room, message(foreign("libera", "Carol", "carol"), "meanwhile"))
		alice.waitMessage(func(s testenv.XMPPStanza) bool { return s.Body() == "meanwhile" })
		select {
		case err := <-done:
			t.Fatalf("bob's message was done before its file was fetched: %v", err)
		default:
		}
		release()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		st := alice.waitMessage(func(s testenv.XMPPStanza) bool { return strings.HasSuffix(oobURL(s), "/turtle.png") })
		if !strings.HasPrefix(st.Body(), srv.UploadURL+"/") {
			t.Errorf("want the upload URL: %s", st.Raw)
		}
	})

	t.Run("direct message", func(t *testing.T) {
		m := message(bob, "dm.png")
		m.To = &bridge.Sender{Network: "jabber", ID: srv.JID("alice").String()}
		m.Attachments = []bridge.Attachment{{URL: files.URL + "/m/dm.png", Name: "dm.png"}}
		deliver(t, func(ctx context.Context) (string, error) {
			return a.Send(ctx, &bridge.Delivery{Link: bridge.DirectLink, Event: m})
		})
		st := alice.c.WaitMessage(waitFor, func(s testenv.XMPPStanza) bool { return s.Type() == "chat" && oobURL(s) != "" })
		if !strings.HasPrefix(st.Body(), srv.UploadURL+"/") || oobURL(st) != st.Body() {
			t.Fatalf("want the upload URL as body and OOB: %s", st.Raw)
		}
		if got := download(t, st.Body()); !bytes.Equal(got, chunked) {
			t.Errorf("the upload holds %d bytes, want the %d sent", len(got), len(chunked))
		}
	})

	t.Run("after a reconnect", func(t *testing.T) {
		c, err := a.current()
		if err != nil {
			t.Fatal(err)
		}
		c.kill()
		waitJoined(t, a, room)
		adapterstest.WaitConnected(t, a)
		u := files.URL + "/m/later.png"
		m := message(bob, "later.png")
		m.Attachments = []bridge.Attachment{{URL: u, Name: "later.png"}}
		send(t, a, room, m)
		st := alice.waitMessage(func(s testenv.XMPPStanza) bool { return strings.HasSuffix(oobURL(s), "/later.png") })
		if !strings.HasPrefix(st.Body(), srv.UploadURL+"/") {
			t.Fatalf("want the upload URL: %s", st.Raw)
		}
		// The service is looked for again on the new session.
		if n := strings.Count(log.String(), "xmpp: HTTP upload service"); n != 2 {
			t.Errorf("the service was found %d times, want once per session", n)
		}
	})

	t.Run("internal address", func(t *testing.T) {
		u := other.URL + "/inside.png"
		m := message(bob, u)
		m.Attachments = []bridge.Attachment{{URL: u}}
		send(t, a, room, m)
		st := alice.waitMessage(func(s testenv.XMPPStanza) bool { return strings.Contains(s.Body(), "/inside.png") })
		if st.Body() != u || oobURL(st) != u {
			t.Errorf("want the link as today: %s", st.Raw)
		}
		if n := other.fetches.Load(); n != 0 {
			t.Errorf("an internal address was fetched %d times", n)
		}
	})

	t.Run("after a restart", func(t *testing.T) {
		if catURL == "" {
			t.Skip("no upload to find again")
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		b, _ := newTestAdapter(t, srv, setup{})
		b.UseState(st.State("jabber"))
		b.UsePublicURL(files.URL + "/")
		start(t, b, room)
		// The same file shared again is not uploaded again.
		before := files.fetches.Load()
		m := message(bob, "cat.png")
		m.Attachments = []bridge.Attachment{{URL: files.URL + "/m/cat.png", Name: "cat.png"}}
		send(t, b, room, m)
		got := alice.waitMessage(func(s testenv.XMPPStanza) bool { return s.ID() == msgID(m.ID) })
		if got.Body() != catURL || oobURL(got) != catURL {
			t.Errorf("want the earlier upload %s: %s", catURL, got.Raw)
		}
		if n := files.fetches.Load() - before; n != 0 {
			t.Errorf("fetched %d times again", n)
		}
	})
}

// TestUploadsRelayAccount: a relay bot (an ordinary account) uploads as
// itself, to the service upload.service names.
func TestUploadsRelayAccount(t *testing.T) {
	srv := testenv.ProsodyWith(t, testenv.XMPPServerConfig{Users: testUsers, FileShareLimit: uploadLimit})
	small := png(10<<10, "relay ")
	files := newFileServer(t, map[string][]byte{"/r.png": small})
	room := newRoomName(srv, "uprelay")
	a, _ := newTestAdapter(t, srv, setup{mode: "relay"})
	a.cfg.Upload = Upload{Service: srv.Upload, PrivateAddresses: true}
	a.up = newUploads(a.cfg.Upload)
	start(t, a, room)
	alice := joinHuman(t, srv, "alice", room, "Alice")
	m := message(foreign("libera", "Bob", "bob"), "")
	m.Attachments = []bridge.Attachment{{URL: files.URL + "/r.png", Name: "r.png"}}
	send(t, a, room, m)
	st := alice.waitMessage(func(s testenv.XMPPStanza) bool { return oobURL(s) != "" })
	get := oobURL(st)
	if !strings.HasPrefix(get, srv.UploadURL+"/") || st.Body() != "<bob> "+get {
		t.Fatalf("want the relayed upload URL: %s", st.Raw)
	}
	if got := download(t, get); !bytes.Equal(got, small) {
		t.Errorf("the upload holds %d bytes, want the %d sent", len(got), len(small))
	}
}

// TestUploadServiceOff: upload.service off sends links without asking the
// server anything.
func TestUploadServiceOff(t *testing.T) {
	a := &Adapter{cfg: Config{Upload: Upload{Service: UploadOff}}}
	m := message(foreign("libera", "Bob", "bob"), "x")
	m.Attachments = []bridge.Attachment{{URL: "https://files.example/x.png"}}
	got, err := a.withUploads(context.Background(), nil, speaker{}, m)
	if err != nil || got != m {
		t.Errorf("got %+v, %v", got, err)
	}
}

// TestPruneUploads: records of uploads too old to use again leave the
// store; recent ones stay.
func TestPruneUploads(t *testing.T) {
	st, err := store.Open(t.Context(), "sqlite", t.TempDir(), testenv.NewLog(t).Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a := &Adapter{log: testenv.NewLog(t).Logger(), up: newUploads(Upload{})}
	a.UseState(st.State("jabber"))
	now := time.Now()
	a.remember(t.Context(), "https://files.example/new.png", "https://upload.example/new.png")
	old, _ := json.Marshal(uploadRecord{Get: "https://upload.example/old.png", At: now.Add(-uploadReuse - time.Minute)})
	if err := st.State("jabber").Put(t.Context(), uploadKey("https://files.example/old.png"), string(old)); err != nil {
		t.Fatal(err)
	}
	a.pruneUploads(t.Context(), now)
	if _, ok, _ := st.State("jabber").Get(t.Context(), uploadKey("https://files.example/old.png")); ok {
		t.Error("the old record is still there")
	}
	if _, ok, _ := st.State("jabber").Get(t.Context(), uploadKey("https://files.example/new.png")); !ok {
		t.Error("the recent record is gone")
	}
}

func TestServerDomain(t *testing.T) {
	for domain, want := range map[string]string{
		"bridge.example.org":      "example.org",
		"bridge.chat.example.org": "chat.example.org",
		"bridge.localhost":        "localhost",
		"bridge.org":              "bridge.org",
		"localhost":               "localhost",
	} {
		a := &Adapter{component: true, domain: domain}
		if got := a.serverDomain().String(); got != want {
			t.Errorf("serverDomain of %s = %s, want %s", domain, got, want)
		}
	}
	a := &Adapter{account: jid.MustParse("bot@chat.example.org")}
	if got := a.serverDomain().String(); got != "chat.example.org" {
		t.Errorf("serverDomain of an account = %s", got)
	}
}
