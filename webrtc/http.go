package webrtc

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"golang.org/x/time/rate"
)

// maxOfferBytes bounds an SDP offer; a browser's is a few kilobytes.
const maxOfferBytes = 64 << 10

//go:embed static
var staticFiles embed.FS

// csp allows the page's own files and nothing else: no inline scripts or
// styles, no third-party origins.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// pageCSP is csp for the page itself, which also shows the images of
// every network inline: its own and Matrix's through http.public_url
// (which may not be the origin the page was opened at), and those that
// XMPP and MQTT users link to, over https. Images run nothing; the page
// asks for them without a referrer.
func (a *Adapter) pageCSP() string {
	src := "img-src 'self' data: https:"
	if u, err := url.Parse(a.publicURL); err == nil && a.publicURL != "" && u.Scheme == "http" && u.Host != "" {
		src += " http://" + u.Host
	}
	return strings.Replace(csp, "img-src 'self' data:", src, 1)
}

// RegisterHTTP serves the signaling and the chat page.
func (a *Adapter) RegisterHTTP(mux *http.ServeMux) {
	mux.HandleFunc("POST /webrtc/{room}", a.postOffer)
	mux.HandleFunc("DELETE /webrtc/{room}/{session}", a.deleteSession)
	mux.HandleFunc("OPTIONS /webrtc/{room}", a.options)
	mux.HandleFunc("POST /webrtc/{room}/{session}/files", a.postFile)
	mux.HandleFunc("GET "+filesPath+"{sig}/{id}/{name}", a.serveFile)
	static, _ := fs.Sub(staticFiles, "static")
	files := http.FileServerFS(static)
	mux.HandleFunc("GET /{$}", a.page)
	mux.HandleFunc("GET /chat/{room}", a.page)
	mux.Handle("GET /static/webrtc/", http.StripPrefix("/static/webrtc/", secure(csp, files)))
}

func secure(policy string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", policy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

func (a *Adapter) page(w http.ResponseWriter, r *http.Request) {
	body, err := staticFiles.ReadFile("static/index.html")
	if err != nil {
		http.Error(w, "page missing", http.StatusInternalServerError)
		return
	}
	secure(a.pageCSP(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(body)
	})).ServeHTTP(w, r)
}

func httpError(w http.ResponseWriter, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintf(w, format+"\n", args...)
}

// authorized checks the room's bearer token, in constant time.
func (a *Adapter) authorized(w http.ResponseWriter, r *http.Request, roomName string) bool {
	want, ok := a.cfg.Tokens[roomName]
	if !ok || want == "" {
		return true
	}
	got, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if found && tokenEqual(strings.TrimSpace(got), want) {
		return true
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard"`)
	httpError(w, http.StatusUnauthorized, "this room needs its token: Authorization: Bearer <token>")
	return false
}

func (a *Adapter) lookupRoom(w http.ResponseWriter, name string) *room {
	if CheckRoom(name) == nil {
		a.mu.Lock()
		r := a.rooms[name]
		a.mu.Unlock()
		if r != nil {
			return r
		}
	}
	httpError(w, http.StatusNotFound, "no room %q here", name)
	return nil
}

// postOffer answers an SDP offer: 201 with the answer, every candidate
// gathered, and the session's URL in Location.
func (a *Adapter) postOffer(w http.ResponseWriter, r *http.Request) {
	roomName := r.PathValue("room")
	rm := a.lookupRoom(w, roomName)
	if rm == nil || !a.authorized(w, r, roomName) {
		return
	}
	person, ok := a.personOf(w, r)
	if !ok {
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/sdp" {
		httpError(w, http.StatusUnsupportedMediaType, "send the offer as Content-Type: application/sdp")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxOfferBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpError(w, http.StatusRequestEntityTooLarge, "offer larger than %d bytes", maxOfferBytes)
			return
		}
		httpError(w, http.StatusBadRequest, "reading the offer: %v", err)
		return
	}
	if err := checkOffer(body); err != nil {
		httpError(w, http.StatusBadRequest, "malformed SDP offer: %v", err)
		return
	}

	a.mu.Lock()
	if a.api == nil || a.stopped {
		a.mu.Unlock()
		httpError(w, http.StatusServiceUnavailable, "not running")
		return
	}
	if len(rm.peers)+rm.pending >= a.cfg.MaxPeers {
		a.mu.Unlock()
		w.Header().Set("Retry-After", "10")
		httpError(w, http.StatusServiceUnavailable, "room %s is full (%d peers)", roomName, a.cfg.MaxPeers)
		return
	}
	api := a.api
	rm.pending++
	p := &peer{a: a, room: rm, session: newSessionID(), person: person, done: make(chan struct{})}
	p.bucket = rate.NewLimiter(rate.Limit(a.cfg.Rate.PerSecond), a.cfg.Rate.Burst)
	a.sessions[p.session] = p
	a.wg.Add(1)
	a.mu.Unlock()

	fail := func(code int, format string, args ...any) {
		httpError(w, code, format, args...)
		p.close("signaling failed")
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{ICEServers: a.iceServers()})
	if err != nil {
		// p.pc is needed by close.
		p.pc, _ = api.NewPeerConnection(webrtc.Configuration{})
		if p.pc == nil {
			a.mu.Lock()
			delete(a.sessions, p.session)
			rm.pending--
			a.mu.Unlock()
			a.wg.Done()
			httpError(w, http.StatusInternalServerError, "peer connection: %v", err)
			return
		}
		fail(http.StatusInternalServerError, "peer connection: %v", err)
		return
	}
	p.pc = pc
	p.watch()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(body)}); err != nil {
		fail(http.StatusBadRequest, "unusable SDP offer: %v", err)
		return
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		fail(http.StatusBadRequest, "cannot answer the offer: %v", err)
		return
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		fail(http.StatusInternalServerError, "local description: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.Timeouts.Gather)
	defer cancel()
	select {
	case <-gathered:
	case <-ctx.Done():
		fail(http.StatusServiceUnavailable, "ICE gathering took too long")
		return
	}
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", "/webrtc/"+roomName+"/"+p.session)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, pc.LocalDescription().SDP)
}

// checkOffer parses an offer and wants a data channel in it.
func checkOffer(body []byte) error {
	if len(body) == 0 {
		return errors.New("empty body")
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(string(body)); err != nil {
		return err
	}
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Media == "application" {
			return nil
		}
	}
	return errors.New("no data channel (m=application) in the offer")
}

func (a *Adapter) deleteSession(w http.ResponseWriter, r *http.Request) {
	roomName := r.PathValue("room")
	if a.lookupRoom(w, roomName) == nil || !a.authorized(w, r, roomName) {
		return
	}
	a.mu.Lock()
	p := a.sessions[r.PathValue("session")]
	a.mu.Unlock()
	if p == nil || p.room.name != roomName {
		httpError(w, http.StatusNotFound, "no such session")
		return
	}
	p.close("left")
	w.WriteHeader(http.StatusNoContent)
}

// options answers a client's question before its offer with the ICE
// servers to gather with (RFC 9725 Link headers): behind a firewall that
// lets no UDP out, a browser reaches Switchboard only through the TURN
// server. TURN credentials go only to peers the room lets in.
func (a *Adapter) options(w http.ResponseWriter, r *http.Request) {
	roomName := r.PathValue("room")
	if a.lookupRoom(w, roomName) == nil || !a.authorized(w, r, roomName) {
		return
	}
	h := w.Header()
	h.Set("Allow", "OPTIONS, POST")
	h.Set("Accept-Post", "application/sdp")
	h.Set("Cache-Control", "no-store")
	for _, l := range iceLinks(a.cfg.ICEServers) {
		h.Add("Link", l)
	}
	w.WriteHeader(http.StatusNoContent)
}

// iceLinks renders ICE servers as Link header values. The config checks
// that URLs and credentials hold nothing that would end a quoted string
// or the header.
func iceLinks(servers []ICEServer) []string {
	var links []string
	for _, s := range servers {
		for _, u := range s.URLs {
			l := "<" + u + `>; rel="ice-server"`
			if s.Username != "" {
				l += `; username="` + s.Username + `"; credential="` + s.Credential + `"; credential-type="password"`
			}
			links = append(links, l)
		}
	}
	return links
}

func (a *Adapter) iceServers() []webrtc.ICEServer {
	var out []webrtc.ICEServer
	for _, s := range a.cfg.ICEServers {
		is := webrtc.ICEServer{URLs: s.URLs, Username: s.Username}
		if s.Credential != "" {
			is.Credential = s.Credential
			is.CredentialType = webrtc.ICECredentialTypePassword
		}
		out = append(out, is)
	}
	return out
}
