package matrix

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/adapters/adapterstest"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// hsProxy stands between the adapter and Dendrite: it records the media
// requests the adapter makes, and can play an older homeserver (no
// authenticated media) or an unreachable one.
type hsProxy struct {
	*httptest.Server
	mu          sync.Mutex
	media       []string // paths of media requests, in order
	noV1        bool
	hangUp      bool
	missingAuth bool // a media request came without the as_token
	// loseSends: the next sends reach Dendrite under another transaction
	// id (as if it had forgotten theirs in a restart) and their answers
	// are lost.
	loseSends int
	// fileLate: such a send reaches Dendrite this long after its answer
	// was lost, as from a homeserver slow to file the event in the room.
	fileLate time.Duration
}

func newHSProxy(t *testing.T, s *server) *hsProxy {
	target, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	p := &hsProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/media/") && strings.Contains(r.URL.Path, "/download/") {
			p.mu.Lock()
			p.media = append(p.media, r.URL.Path)
			if r.Header.Get("Authorization") != "Bearer "+s.cfg.ASToken {
				p.missingAuth = true
			}
			noV1, hangUp := p.noV1, p.hangUp
			p.mu.Unlock()
			if hangUp {
				conn, _, _ := w.(http.Hijacker).Hijack()
				conn.Close()
				return
			}
			if noV1 && strings.HasPrefix(r.URL.Path, "/_matrix/client/v1/media/") {
				writeError(w, http.StatusNotFound, "M_UNRECOGNIZED", "Unrecognized request")
				return
			}
		}
		p.mu.Lock()
		lose := r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/send/") && p.loseSends > 0
		if lose {
			p.loseSends--
		}
		late := p.fileLate
		p.mu.Unlock()
		if lose {
			body, _ := io.ReadAll(r.Body)
			forgotten := r.Clone(context.Background())
			forgotten.URL.Path += "-forgotten"
			file := func() {
				forgotten.Body = io.NopCloser(bytes.NewReader(body))
				rp.ServeHTTP(httptest.NewRecorder(), forgotten)
			}
			if late > 0 {
				time.AfterFunc(late, file)
			} else {
				file()
			}
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *hsProxy) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.media...)
}

func (p *hsProxy) set(noV1, hangUp bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.noV1, p.hangUp = noV1, hangUp
	p.media = nil
}

// sendFile uploads data as alice and posts it as a media event.
func sendFile(t *testing.T, c *testenv.MatrixClient, rid id.RoomID, typ event.MessageType, name, mime string, data []byte) id.ContentURI {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	up, err := c.UploadBytesWithName(ctx, data, mime, name)
	if err != nil {
		t.Fatalf("upload %s: %v", name, err)
	}
	if _, err := c.Send(rid, &event.MessageEventContent{
		MsgType: typ, Body: name, URL: up.ContentURI.CUString(),
		Info: &event.FileInfo{MimeType: mime, Size: len(data)},
	}); err != nil {
		t.Fatalf("send %s: %v", name, err)
	}
	return up.ContentURI
}

func attachmentOf(t *testing.T, rec *adapterstest.Recorder, name string) bridge.Attachment {
	t.Helper()
	m := rec.WaitMessage(t, func(m *bridge.Message) bool { return len(m.Attachments) == 1 && m.Attachments[0].Name == name })
	return m.Attachments[0]
}

func get(t *testing.T, method, u string) (*http.Response, []byte) {
	t.Helper()
	return testenv.HTTP(t, method, u, "", nil)
}

func TestMediaLinks(t *testing.T) {
	s := newServer(t)
	proxy := newHSProxy(t, s)
	s.network.Section.(*Config).Homeserver = proxy.URL
	// Switchboard's listener in the tests is the one the appservice API
	// is served on.
	s.publicURL = "http://" + s.asAddr + "/"
	alice := s.Client(t, "alice")
	rid, _, rec := roomWithBot(t, s, alice)

	pic := testPNG(t)
	sendFile(t, alice, rid, event.MsgImage, "cat picture.png", "image/png", pic)
	att := attachmentOf(t, rec, "cat picture.png")
	base := "http://" + s.asAddr + "/media/matrix/matrix/"
	if !strings.HasPrefix(att.URL, base) || !strings.HasSuffix(att.URL, "/cat%20picture.png") {
		t.Fatalf("attachment URL %s, want one under %s", att.URL, base)
	}
	if att.Mime != "image/png" || att.Size != int64(len(pic)) {
		t.Errorf("attachment %+v", att)
	}
	resp, body := get(t, http.MethodGet, att.URL)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, pic) {
		t.Fatalf("GET %s: %d, %d bytes (uploaded %d)", att.URL, resp.StatusCode, len(body), len(pic))
	}
	for k, want := range map[string]string{
		"Content-Type":            "image/png",
		"Content-Length":          "", // checked below
		"Content-Disposition":     `inline; filename="cat picture.png"`,
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "sandbox; default-src 'none'",
	} {
		if got := resp.Header.Get(k); want != "" && got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if resp.ContentLength != int64(len(pic)) {
		t.Errorf("Content-Length %d, want %d", resp.ContentLength, len(pic))
	}
	// Dendrite v0.15.2 has authenticated media: the new endpoint alone
	// is asked, with the as_token.
	reqs := proxy.requests()
	if len(reqs) != 1 || !strings.HasPrefix(reqs[0], "/_matrix/client/v1/media/download/") {
		t.Errorf("homeserver asked for %v, want the authenticated endpoint once", reqs)
	}
	if proxy.missingAuth {
		t.Error("a media request to the homeserver without the as_token")
	}
	head, hbody := get(t, http.MethodHead, att.URL)
	if head.StatusCode != http.StatusOK || len(hbody) != 0 || head.Header.Get("Content-Type") != "image/png" || head.ContentLength != int64(len(pic)) {
		t.Errorf("HEAD: %d, %q, %d bytes, length %d", head.StatusCode, head.Header.Get("Content-Type"), len(hbody), head.ContentLength)
	}
	if resp, _ := get(t, http.MethodPost, att.URL); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", resp.StatusCode)
	}

	// An HTML file must not run as a page on Switchboard's origin.
	page := []byte("<html><script>alert(document.cookie)</script></html>")
	sendFile(t, alice, rid, event.MsgFile, "page.html", "text/html", page)
	hatt := attachmentOf(t, rec, "page.html")
	resp, body = get(t, http.MethodGet, hatt.URL)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, page) {
		t.Fatalf("GET the html: %d %q", resp.StatusCode, body)
	}
	if cd := resp.Header.Get("Content-Disposition"); cd != "attachment; filename=page.html" {
		t.Errorf("html Content-Disposition %q", cd)
	}
	if resp.Header.Get("Content-Security-Policy") != "sandbox; default-src 'none'" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("html served without the sandbox: %v", resp.Header)
	}

	// Links are good only as signed: a changed signature, network,
	// server or media id is a 404, and the homeserver is not asked.
	proxy.set(false, false)
	parts := strings.Split(strings.TrimPrefix(att.URL, base), "/") // sig, server, id, name
	sig := []byte(parts[0])
	sig[0] ^= 1
	for what, u := range map[string]string{
		"signature":     base + string(sig) + "/" + strings.Join(parts[1:], "/"),
		"no signature":  base + "/" + strings.Join(parts[1:], "/"),
		"server":        base + parts[0] + "/other.org/" + parts[2] + "/" + parts[3],
		"media id":      base + parts[0] + "/" + parts[1] + "/" + parts[2] + "x/" + parts[3],
		"network":       "http://" + s.asAddr + "/media/matrix/other/" + strings.Join(parts, "/"),
		"path trickery": base + parts[0] + "/" + parts[1] + "/..%2F..%2F" + parts[2] + "/" + parts[3],
	} {
		if resp, _ := get(t, http.MethodGet, u); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s changed: %d, want 404", what, resp.StatusCode)
		}
	}
	if reqs := proxy.requests(); len(reqs) != 0 {
		t.Errorf("the homeserver was asked for tampered links: %v", reqs)
	}
	// The file name is cosmetic.
	if resp, body := get(t, http.MethodGet, base+strings.Join(parts[:3], "/")+"/other.png"); resp.StatusCode != http.StatusOK || !bytes.Equal(body, pic) {
		t.Errorf("renamed link: %d", resp.StatusCode)
	}

	// A homeserver without authenticated media is asked on the old
	// endpoint.
	proxy.set(true, false)
	if resp, body := get(t, http.MethodGet, att.URL); resp.StatusCode != http.StatusOK || !bytes.Equal(body, pic) {
		t.Errorf("through the old endpoint: %d, %d bytes", resp.StatusCode, len(body))
	}
	if reqs := proxy.requests(); len(reqs) != 2 || !strings.HasPrefix(reqs[1], "/_matrix/media/v3/download/") {
		t.Errorf("homeserver without v1 asked for %v", reqs)
	}
	// A signed link to a file the homeserver does not have is a 404; an
	// unreachable homeserver a 502.
	proxy.set(false, false)
	a2 := &Adapter{name: "matrix", state: s.state}
	a2.UsePublicURL(s.publicURL)
	if err := a2.loadLinkKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	missing := a2.publicLink(id.ContentURI{Homeserver: parts[1], FileID: "NoSuchFile" + parts[2]}, "x.png")
	if resp, _ := get(t, http.MethodGet, missing); resp.StatusCode != http.StatusNotFound {
		t.Errorf("missing file: %d, want 404", resp.StatusCode)
	}
	proxy.set(false, true)
	if resp, _ := get(t, http.MethodGet, att.URL); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("homeserver hanging up: %d, want 502", resp.StatusCode)
	}
}

// TestMediaLinksOff keeps the homeserver's link without http.public_url.
func TestMediaLinksOff(t *testing.T) {
	s := newServer(t)
	alice := s.Client(t, "alice")
	rid, _, rec := roomWithBot(t, s, alice)
	pic := testPNG(t)
	mxc := sendFile(t, alice, rid, event.MsgImage, "cat.png", "image/png", pic)
	att := attachmentOf(t, rec, "cat.png")
	want := s.URL + "/_matrix/media/v3/download/" + mxc.Homeserver + "/" + mxc.FileID
	if att.URL != want {
		t.Errorf("attachment URL %s, want %s", att.URL, want)
	}
	// And the media route answers nothing without a key.
	if resp, _ := get(t, http.MethodGet, "http://"+s.asAddr+"/media/matrix/matrix/AAAAAAAAAAAAAAAAAAAAAA/"+mxc.Homeserver+"/"+mxc.FileID+"/cat.png"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("media link without public_url: %d, want 404", resp.StatusCode)
	}
}
