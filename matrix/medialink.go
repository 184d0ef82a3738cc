package matrix

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/internal/linksign"
)

// Matrix media are offered to other networks as links through
// Switchboard (http.public_url) rather than the homeserver's: its URL is
// often internal, and since authenticated media (MSC3916, Synapse 1.120)
// it serves new media only to logged-in users. A link is
//
//	<public_url>/media/matrix/<network>/<sig>/<server>/<mediaID>/<filename>
//
// where sig, an HMAC over network, server and media id, makes Switchboard
// a proxy for the media it offered and nothing else.

const (
	// linkKeyState is the State key of the HMAC key, kept so that links
	// survive restarts.
	linkKeyState = "linkkey"
	// mediaHeaderTimeout bounds the wait for the homeserver's answer,
	// mediaTimeout the whole transfer (a large video to a slow reader).
	mediaHeaderTimeout = 30 * time.Second
	mediaTimeout       = 10 * time.Minute
	// mediaPath is the route, on Switchboard's listener and the own one.
	mediaPath = "/media/matrix/"
)

// UsePublicURL makes the adapter offer media as links under base
// (http.public_url, without a trailing slash).
func (a *Adapter) UsePublicURL(base string) { a.publicURL = strings.TrimRight(base, "/") }

// loadLinkKey reads the link key from State, made on first use.
func (a *Adapter) loadLinkKey(ctx context.Context) error {
	if a.publicURL == "" {
		return nil
	}
	key, err := linksign.Load(ctx, a.state, linkKeyState)
	if err != nil {
		return fmt.Errorf("media %w", err)
	}
	a.mu.Lock()
	a.linkKey = key
	a.mu.Unlock()
	return nil
}

func (a *Adapter) currentLinkKey() linksign.Key {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.linkKey
}

// publicLink is the link to a Matrix file through Switchboard, or "" when
// there is no public URL (or the adapter has not started).
func (a *Adapter) publicLink(u id.ContentURI, name string) string {
	key := a.currentLinkKey()
	if a.publicURL == "" || key == nil {
		return ""
	}
	// The name is cosmetic, but "." or ".." would be cleaned away by the
	// HTTP server (a redirect), so those become "file" like a missing one.
	if name == "" || name == "." || name == ".." {
		name = "file"
	}
	return a.publicURL + mediaPath + url.PathEscape(a.name) + "/" + key.Sign(a.name, u.Homeserver, u.FileID) +
		"/" + url.PathEscape(u.Homeserver) + "/" + url.PathEscape(u.FileID) + "/" + url.PathEscape(name)
}

// ownLink reads a link of this adapter back into its mxc URI.
func (a *Adapter) ownLink(rawURL string) (id.ContentURI, bool) {
	key := a.currentLinkKey()
	if a.publicURL == "" || key == nil {
		return id.ContentURI{}, false
	}
	rest, ok := strings.CutPrefix(rawURL, a.publicURL+mediaPath+url.PathEscape(a.name)+"/")
	if !ok {
		return id.ContentURI{}, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 4 {
		return id.ContentURI{}, false
	}
	server, err1 := url.PathUnescape(parts[1])
	fileID, err2 := url.PathUnescape(parts[2])
	if err1 != nil || err2 != nil || !key.Verify(parts[0], a.name, server, fileID) {
		return id.ContentURI{}, false
	}
	return id.ContentURI{Homeserver: server, FileID: fileID}, true
}

// serveMedia answers a link: a file the adapter offered, fetched from
// the homeserver with the as_token and streamed through.
func (a *Adapter) serveMedia(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Whatever a Matrix user uploaded (HTML, SVG) must never run here
	// as a page.
	linksign.Protect(h)
	server, mediaID := r.PathValue("server"), r.PathValue("mediaID")
	// Checked before anything is fetched: without the key nobody makes
	// Switchboard fetch what it did not offer.
	if !a.currentLinkKey().Verify(r.PathValue("sig"), a.name, server, mediaID) {
		http.NotFound(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), mediaTimeout)
	defer cancel()
	resp, err := a.downloadMedia(ctx, server, mediaID)
	if err != nil {
		if r.Context().Err() == nil {
			a.log.Warn("matrix media link: homeserver unreachable", "server", server, "media", mediaID, "err", err)
		}
		http.Error(w, "homeserver unreachable", http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		a.log.Debug("matrix media link: no such file on the homeserver", "server", server, "media", mediaID)
		http.NotFound(w, r)
		return
	case resp.StatusCode != http.StatusOK:
		a.log.Warn("matrix media link: homeserver refused", "server", server, "media", mediaID, "status", resp.StatusCode)
		http.Error(w, "homeserver refused", http.StatusBadGateway)
		return
	}
	typ := resp.Header.Get("Content-Type")
	if typ == "" {
		typ = "application/octet-stream"
	}
	h.Set("Content-Type", typ)
	if resp.ContentLength >= 0 {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	h.Set("Content-Disposition", linksign.Disposition(typ, r.PathValue("filename")))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if n, err := io.Copy(w, resp.Body); err != nil && r.Context().Err() == nil {
		a.log.Info("matrix media link: transfer cut short", "server", server, "media", mediaID, "bytes", n, "err", err)
	}
}

// downloadMedia asks the homeserver for a file: on the authenticated
// endpoint (spec v1.11), and on the old one when the homeserver does not
// know the new (it is not remembered: an upgraded homeserver is used
// fully at once). The response is the caller's to close.
func (a *Adapter) downloadMedia(ctx context.Context, server, mediaID string) (*http.Response, error) {
	path := url.PathEscape(server) + "/" + url.PathEscape(mediaID)
	resp, err := a.mediaGet(ctx, a.hsURL+"/_matrix/client/v1/media/download/"+path)
	if err != nil || !unrecognized(resp) {
		return resp, err
	}
	resp.Body.Close()
	return a.mediaGet(ctx, a.hsURL+"/_matrix/media/v3/download/"+path)
}

func (a *Adapter) mediaGet(ctx context.Context, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.cfg.ASToken)
	return a.mediaClient.Do(req)
}

// unrecognized reports the homeserver's answer to an endpoint it does
// not have: a 404 or 405 that is not M_NOT_FOUND (M_UNRECOGNIZED by the
// spec, but proxies and routers answer with a page of their own). A
// missing file is M_NOT_FOUND; asking the old endpoint in any other case
// costs one request and gets the true answer. It reads the body of such
// answers only.
func unrecognized(resp *http.Response) bool {
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
		return false
	}
	var e struct {
		Errcode string `json:"errcode"`
	}
	json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&e)
	return e.Errcode != "M_NOT_FOUND"
}

func newMediaClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = mediaHeaderTimeout
	// Redirects are followed (a homeserver may send media to a CDN); Go
	// drops the Authorization header when they leave the host.
	return &http.Client{Transport: t}
}
