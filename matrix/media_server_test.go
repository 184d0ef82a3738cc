package matrix

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// served is a file of the test's file server.
type served struct {
	body []byte
	typ  string
	// length sends Content-Length; without it a large body goes chunked.
	length bool
}

// fileServer serves files on 127.0.0.1 and counts the requests for each
// path.
type fileServer struct {
	*httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func newFileServer(t *testing.T, files map[string]served) *fileServer {
	fs := &fileServer{hits: map[string]int{}}
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.mu.Lock()
		fs.hits[r.URL.Path]++
		fs.mu.Unlock()
		f, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if f.typ != "" {
			w.Header().Set("Content-Type", f.typ)
		}
		if f.length {
			w.Header().Set("Content-Length", strconv.Itoa(len(f.body)))
		}
		w.Write(f.body)
	}))
	t.Cleanup(fs.Close)
	return fs
}

func (fs *fileServer) requests(path string) int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.hits[path]
}

func (fs *fileServer) total() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := 0
	for _, c := range fs.hits {
		n += c
	}
	return n
}

// testPNG draws a small picture.
func testPNG(t *testing.T) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 8, 6))
	for x := range 8 {
		for y := range 6 {
			img.Set(x, y, color.RGBA{uint8(x * 30), uint8(y * 40), 200, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// downloadMXC fetches media from the homeserver as a Matrix client does.
func downloadMXC(t *testing.T, c *testenv.MatrixClient, mxc id.ContentURIString) []byte {
	t.Helper()
	uri, err := mxc.Parse()
	if err != nil {
		t.Fatalf("mxc %q: %v", mxc, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	resp, err := c.Download(ctx, uri)
	if err != nil {
		t.Fatalf("download %s: %v", mxc, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func isMsgType(rid id.RoomID, typ event.MessageType, body string) func(*event.Event) bool {
	return func(e *event.Event) bool {
		if e.RoomID != rid || e.Type != event.EventMessage {
			return false
		}
		c := e.Content.AsMessage()
		return c.MsgType == typ && c.Body == body
	}
}

// eventsUntil returns what alice saw in the room up to and including the
// first event matching last.
func eventsUntil(t *testing.T, c *testenv.MatrixClient, rid id.RoomID, last func(*event.Event) bool) []*event.Event {
	t.Helper()
	waitEvent(t, c, "the marker", last)
	var out []*event.Event
	for _, e := range c.Events() {
		if e.RoomID != rid || e.Type != event.EventMessage {
			continue
		}
		out = append(out, e)
		if last(e) {
			break
		}
	}
	return out
}

func TestOutboundMedia(t *testing.T) {
	s := newServer(t)
	// Everything runs on 127.0.0.1 here: internal addresses allowed.
	const maxSize = 64 << 10
	s.network.Section.(*Config).Media = Media{Upload: true, MaxSize: maxSize, PrivateAddresses: true}
	alice := s.Client(t, "alice")
	rid, a, _ := roomWithBot(t, s, alice)
	pic := testPNG(t)
	notes := []byte("shopping list:\n- tea\n- milk\n")
	files := newFileServer(t, map[string]served{
		"/up/cat.png":   {body: pic, typ: "image/png", length: true},
		"/up/notes.txt": {body: notes, typ: "text/plain; charset=utf-8"},
		"/up/big.bin":   {body: bytes.Repeat([]byte("x"), maxSize+1), typ: "application/octet-stream"},
		"/up/huge.bin":  {body: bytes.Repeat([]byte("y"), maxSize+1), typ: "application/octet-stream", length: true},
	})
	carol := foreign("carol", "Carol")
	send := func(d *bridge.Delivery) string {
		return deliver(t, func(ctx context.Context) (string, error) { return a.Send(ctx, d) })
	}

	// A message that is only the attachment's URL: only the image.
	catURL := files.URL + "/up/cat.png"
	m1 := &bridge.Message{Header: header(carol), Text: catURL, Attachments: []bridge.Attachment{{URL: catURL, Name: "cat.png"}}}
	id1 := send(&bridge.Delivery{Room: string(rid), Event: m1})
	img := waitEvent(t, alice, "carol's picture", isMsgType(rid, event.MsgImage, "cat.png"))
	c := img.Content.AsMessage()
	if !strings.HasPrefix(string(img.Sender), "@sb_elsewhere_carol:") || string(img.ID) != id1 {
		t.Errorf("image from %s id %s, want carol's ghost and the delivery's id %s", img.Sender, img.ID, id1)
	}
	if c.Info == nil || c.Info.MimeType != "image/png" || c.Info.Size != len(pic) {
		t.Errorf("image info %+v, want image/png and %d bytes", c.Info, len(pic))
	}
	if got := downloadMXC(t, alice, c.URL); !bytes.Equal(got, pic) {
		t.Errorf("the homeserver's copy is %d bytes, not the %d served", len(got), len(pic))
	}

	// Text and a file: the text first, then the file, from the same ghost.
	notesURL := files.URL + "/up/notes.txt"
	m2 := &bridge.Message{Header: header(carol), Text: "my notes " + notesURL, Attachments: []bridge.Attachment{{URL: notesURL}}}
	d2 := &bridge.Delivery{Room: string(rid), Event: m2}
	id2 := send(d2)
	file := waitEvent(t, alice, "carol's file", isMsgType(rid, event.MsgFile, "notes.txt"))
	text := waitEvent(t, alice, "carol's text", isMsgType(rid, event.MsgText, "my notes"))
	if string(text.ID) != id2 || text.Sender != img.Sender || file.Sender != img.Sender {
		t.Errorf("text %s from %s, file from %s; want id %s from %s", text.ID, text.Sender, file.Sender, id2, img.Sender)
	}
	if fc := file.Content.AsMessage(); fc.Info == nil || fc.Info.MimeType != "text/plain" || fc.Info.Size != len(notes) ||
		!bytes.Equal(downloadMXC(t, alice, fc.URL), notes) {
		t.Errorf("file content %+v", fc)
	}

	// The same delivery again, as the outbox retries: nothing new is
	// posted, nothing fetched (so nothing uploaded) again.
	if again := send(d2); again != id2 {
		t.Errorf("retry gave %s, first %s", again, id2)
	}
	if n := files.requests("/up/notes.txt"); n != 1 {
		t.Errorf("the file was fetched %d times", n)
	}

	// Relayed, the bot posts the picture, with a line saying who sent it.
	m3 := &bridge.Message{Header: header(carol), Text: catURL, Attachments: []bridge.Attachment{{URL: catURL, Name: "cat.png"}}}
	send(&bridge.Delivery{Room: string(rid), Event: m3, Relay: true})
	waitEvent(t, alice, "the relayed line", func(e *event.Event) bool {
		return isMsgType(rid, event.MsgText, "<Carol (elsewhere)> cat.png")(e) && e.Sender == s.UserID("switchboard")
	})

	// What cannot be fetched is shown as a link.
	for _, f := range []struct{ path, why string }{
		{"/up/gone.png", "404"},
		{"/up/big.bin", "over max_size, sent chunked"},
		{"/up/huge.bin", "over max_size, with Content-Length"},
	} {
		u := files.URL + f.path
		name := strings.TrimPrefix(f.path, "/up/")
		m := &bridge.Message{Header: header(carol), Text: "see this", Attachments: []bridge.Attachment{{URL: u, Name: name}}}
		send(&bridge.Delivery{Room: string(rid), Event: m})
		waitEvent(t, alice, "the link to "+f.path+" ("+f.why+")", isMsgType(rid, event.MsgText, "see this\n"+name+": "+u))
	}

	marker := &bridge.Message{Header: header(carol), Text: "marker"}
	send(&bridge.Delivery{Room: string(rid), Event: marker})
	seen := eventsUntil(t, alice, rid, bodyIs(rid, "marker"))
	count := map[string]int{}
	for _, e := range seen {
		mc := e.Content.AsMessage()
		count[string(mc.MsgType)+" "+mc.Body]++
		if strings.Contains(mc.Body, catURL) || strings.Contains(mc.Body, notesURL) {
			t.Errorf("a URL that became media is in the text: %q", mc.Body)
		}
	}
	for what, want := range map[string]int{"m.image cat.png": 2, "m.text my notes": 1, "m.file notes.txt": 1} {
		if count[what] != want {
			t.Errorf("alice saw %q %d times, want %d (all: %v)", what, count[what], want, count)
		}
	}
	order := map[string]int{}
	for i, e := range seen {
		order[string(e.ID)] = i
	}
	if order[string(text.ID)] > order[string(file.ID)] {
		t.Error("the file came before its text")
	}
	// The relayed picture was the same URL: uploaded once, reused.
	if n := files.requests("/up/cat.png"); n != 1 {
		t.Errorf("cat.png fetched %d times", n)
	}

	// Deleting the text-and-file message takes both of its events.
	del := &bridge.Delete{Header: header(carol)}
	deliver(t, func(ctx context.Context) (string, error) {
		return "", a.SendDelete(ctx, &bridge.Delivery{Room: string(rid), Event: del, Target: id2})
	})
	for _, gone := range []*event.Event{text, file} {
		waitEvent(t, alice, "the redaction of "+string(gone.ID), func(e *event.Event) bool {
			return e.Type == event.EventRedaction && (e.Redacts == gone.ID || e.Content.AsRedaction().Redacts == gone.ID)
		})
	}
}

// By default nothing on an internal address is fetched.
func TestOutboundMediaInternalRefused(t *testing.T) {
	s := newServer(t)
	s.network.Section.(*Config).Media = Media{Upload: true, MaxSize: DefaultMediaMaxSize}
	alice := s.Client(t, "alice")
	rid, a, _ := roomWithBot(t, s, alice)
	files := newFileServer(t, map[string]served{"/cat.png": {body: testPNG(t), typ: "image/png"}})
	u := files.URL + "/cat.png"
	for i, host := range []string{u, strings.Replace(u, "127.0.0.1", "localhost", 1)} {
		m := &bridge.Message{Header: header(foreign("carol", "Carol")), Text: fmt.Sprintf("try %d", i), Attachments: []bridge.Attachment{{URL: host}}}
		deliver(t, func(ctx context.Context) (string, error) {
			return a.Send(ctx, &bridge.Delivery{Room: string(rid), Event: m})
		})
		waitEvent(t, alice, "the link", isMsgType(rid, event.MsgText, fmt.Sprintf("try %d\n%s", i, host)))
	}
	if n := files.total(); n != 0 {
		t.Errorf("the file server got %d requests", n)
	}
}

// A file the homeserver refuses as too large (Dendrite's limit here is
// 10 MiB) stays a link rather than blocking the room's outbox.
func TestOutboundMediaTooLargeForHomeserver(t *testing.T) {
	s := newServer(t)
	s.network.Section.(*Config).Media = Media{Upload: true, MaxSize: 12 << 20, PrivateAddresses: true}
	alice := s.Client(t, "alice")
	rid, a, _ := roomWithBot(t, s, alice)
	files := newFileServer(t, map[string]served{"/video.mp4": {body: bytes.Repeat([]byte{0}, 11<<20), typ: "video/mp4", length: true}})
	u := files.URL + "/video.mp4"
	m := &bridge.Message{Header: header(foreign("carol", "Carol")), Text: u, Attachments: []bridge.Attachment{{URL: u, Name: "video.mp4"}}}
	deliver(t, func(ctx context.Context) (string, error) {
		return a.Send(ctx, &bridge.Delivery{Room: string(rid), Event: m})
	})
	waitEvent(t, alice, "the link", isMsgType(rid, event.MsgText, u))
	if n := files.requests("/video.mp4"); n != 1 {
		t.Errorf("fetched %d times", n)
	}
}
