// Package textlinks makes and serves the links to the whole text of a
// long message, for networks with short lines.
package textlinks

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/linksign"
)

// Long-text links. A network with short lines (IRC) sends a long message
// as its beginning and a link to the whole text:
//
//	<public_url>/text/<sig>/<event id>
//
// where sig, an HMAC over the event id, makes the listener serve the
// texts it linked to and nothing else: event ids are not secrets, and
// without it anyone could read every room's history.

const (
	// textLinkKey is the key's State key, in the service's namespace.
	textLinkKey = "textlinkkey"
	textPath    = "/text/"
	// textLinkPurpose goes into every signature, so that no other link
	// signed with the same helper could pass for a text link.
	textLinkPurpose = "text"
)

// Links makes and serves long-text links (adapters.TextLinks).
type Links struct {
	base  string // http.public_url, no trailing slash
	key   linksign.Key
	texts bridge.TextStore
	log   *slog.Logger
}

var _ adapters.TextLinks = (*Links)(nil)

// New loads the key (made on first use) from st.
func New(ctx context.Context, base string, st linksign.KeyStore, texts bridge.TextStore, log *slog.Logger) (*Links, error) {
	key, err := linksign.Load(ctx, st, textLinkKey)
	if err != nil {
		return nil, err
	}
	return &Links{base: base, key: key, texts: texts, log: log}, nil
}

// TextLink implements adapters.TextLinks.
func (t *Links) TextLink(id bridge.EventID) string {
	return t.base + textPath + t.key.Sign(textLinkPurpose, string(id)) + "/" + url.PathEscape(string(id))
}

func (t *Links) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+textPath+"{sig}/{id}", t.serve)
}

// serve answers a link with the event's exact text.
func (t *Links) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	linksign.Protect(h)
	id := r.PathValue("id")
	// Checked before the store is asked: a wrong link learns nothing,
	// not even whether the event exists.
	if !t.key.Verify(r.PathValue("sig"), textLinkPurpose, id) {
		http.NotFound(w, r)
		return
	}
	text, err := t.texts.FullText(r.Context(), bridge.EventID(id))
	switch {
	case errors.Is(err, bridge.ErrContentRemoved):
		http.Error(w, "This message's text was removed: Switchboard keeps texts only for a while.", http.StatusGone)
		return
	case errors.Is(err, bridge.ErrNotFound):
		http.NotFound(w, r)
		return
	case err != nil:
		if r.Context().Err() == nil {
			t.log.Warn("text link: store", "event", id, "err", err)
		}
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(text)))
	// Retention removes texts from the store; no cache may keep them.
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write([]byte(text))
	}
}
