package webrtc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/linksign"
)

// Files from the page. A peer sends a file over HTTP, not over its data
// channel (whose messages are small and whose buffer is shared with the
// room's traffic):
//
//	POST /webrtc/<room>/<session>/files?name=<file name>&reply_to=<event id>
//
// with the room's token and the person's token as on the offer, the
// bytes as the body. The session's URL (the offer's Location) is known
// to that peer only, so the file is sent as the peer who joined. The
// file is kept in the store and becomes a message with an attachment
// whose URL is a signed link under http.public_url:
//
//	<public_url>/webrtc/files/<sig>/<id>/<name>
//
// where sig, an HMAC over the file's id, makes Switchboard serve the
// files it offered and nothing else. Any instance on the same store
// serves it: the key is kept in the store too.

const (
	// fileKeyState is the State key of the link key.
	fileKeyState = "filekey"
	// filePurpose goes into every signature, so that no other link
	// signed with the same helper could pass for a file's.
	filePurpose = "file"
	filesPath   = "/webrtc/files/"
	// maxFileName bounds a file's name, in bytes.
	maxFileName = 128
	// maxReplyTo bounds the id of the message a file answers.
	maxReplyTo = 128
)

var (
	_ adapters.PublicURLUser = (*Adapter)(nil)
	_ adapters.Stateful      = (*Adapter)(nil)
	_ adapters.FileUser      = (*Adapter)(nil)
)

// UsePublicURL sets the base of the links to files (http.public_url,
// no trailing slash); without it no file can be sent.
func (a *Adapter) UsePublicURL(base string) { a.publicURL = strings.TrimRight(base, "/") }

// UseState sets where the link key is kept.
func (a *Adapter) UseState(st adapters.State) { a.state = st }

// UseFiles sets where files are kept.
func (a *Adapter) UseFiles(fs bridge.FileStore) { a.files = fs }

// loadFileKey reads the link key, made on first use, when files can be
// linked to at all.
func (a *Adapter) loadFileKey(ctx context.Context) error {
	if a.publicURL == "" || a.state == nil || a.files == nil {
		return nil
	}
	key, err := linksign.Load(ctx, a.state, fileKeyState)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.fileKey = key
	a.mu.Unlock()
	return nil
}

// filesOn reports whether peers may send files: max_size is not 0, and
// there are a store, a public URL and a key to link with.
func (a *Adapter) filesOn() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg.Files.MaxSize > 0 && a.fileKey != nil
}

// maxFile is what the welcome frame tells the page: 0 when files are off.
func (a *Adapter) maxFile() int64 {
	if !a.filesOn() {
		return 0
	}
	return a.cfg.Files.MaxSize
}

func (a *Adapter) fileLink(id, name string) string {
	a.mu.Lock()
	key := a.fileKey
	a.mu.Unlock()
	return a.publicURL + filesPath + key.Sign(filePurpose, id) + "/" + url.PathEscape(id) + "/" + url.PathEscape(name)
}

// fileType is the type a file's bytes show, as it is served: the types
// a browser shows without running anything (raster images, audio,
// video) and a few common documents as they are, everything else (HTML,
// SVG, XML, scripts, what is not recognised) as plain bytes, which are
// only ever downloaded. The type the page declares is never used.
func fileType(data []byte) string {
	detected := http.DetectContentType(data)
	mt, _, err := mime.ParseMediaType(detected)
	if err != nil {
		return "application/octet-stream"
	}
	switch {
	case mt == "image/png", mt == "image/jpeg", mt == "image/gif", mt == "image/webp", mt == "image/bmp", mt == "image/x-icon",
		strings.HasPrefix(mt, "audio/"), strings.HasPrefix(mt, "video/"),
		mt == "application/pdf", mt == "application/zip", mt == "application/x-gzip", mt == "application/ogg":
		return mt
	case mt == "text/plain":
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

// fileName makes the name a page gave a file fit for a link, a header
// and every network: its last path element, without control, format
// and line-separator characters, at most maxFileName bytes; "file" when
// nothing is left.
func fileName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		// Format characters too: a right-to-left override would show
		// "cat‮gnp.exe" as "catexe.png".
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) || r == utf8.RuneError {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	for len(name) > maxFileName {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	if name == "" || name == "." || name == ".." {
		return "file"
	}
	return name
}

// fileAnswer is the answer to a file sent: the message that carries it.
type fileAnswer struct {
	ID   string `json:"id"`
	URL  string `json:"url"`
	Name string `json:"name"`
	Mime string `json:"mime"`
	Size int    `json:"size"`
}

// postFile takes a file from a peer and sends it to the room as a
// message with the file attached.
func (a *Adapter) postFile(w http.ResponseWriter, r *http.Request) {
	roomName := r.PathValue("room")
	rm := a.lookupRoom(w, roomName)
	if rm == nil || !a.authorized(w, r, roomName) {
		return
	}
	a.mu.Lock()
	p := a.sessions[r.PathValue("session")]
	a.mu.Unlock()
	if p == nil || p.room != rm {
		httpError(w, http.StatusNotFound, "no such session")
		return
	}
	p.mu.Lock()
	hello := p.hello
	p.mu.Unlock()
	if !hello {
		httpError(w, http.StatusConflict, "say hello on the data channel first")
		return
	}
	// A person's session takes files only with their token too.
	if p.person != nil {
		person, ok := a.personOf(w, r)
		if !ok {
			return
		}
		if person == nil || person.Person != p.person.Person {
			httpError(w, http.StatusForbidden, "this session is a person's: send their token (%s)", PersonHeader)
			return
		}
	}
	if !a.filesOn() {
		httpError(w, http.StatusNotFound, "sending files is off here")
		return
	}
	if !p.bucket.Allow() {
		a.drop(DropRateLimited)
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusTooManyRequests, "more than %d frames or files a second (burst %d)", a.cfg.Rate.PerSecond, a.cfg.Rate.Burst)
		return
	}
	limit := a.cfg.Files.MaxSize
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			a.drop(DropOversize)
			httpError(w, http.StatusRequestEntityTooLarge, "file larger than %d bytes", limit)
			return
		}
		httpError(w, http.StatusBadRequest, "reading the file: %v", err)
		return
	}
	if len(data) == 0 {
		httpError(w, http.StatusBadRequest, "empty file")
		return
	}
	typ, name := fileType(data), fileName(r.URL.Query().Get("name"))
	h := p.header()
	f := bridge.File{ID: newSessionID(), Event: h.ID, Name: name, Mime: typ, Data: data, Time: h.Time}
	ctx, cancel := context.WithTimeout(a.ctx, acceptWait)
	defer cancel()
	if err := a.files.PutFile(ctx, f); err != nil {
		a.log.Warn("file not kept", "room", roomName, "err", err)
		httpError(w, http.StatusServiceUnavailable, "the file could not be kept, try again")
		return
	}
	link := a.fileLink(f.ID, name)
	// The text is the file's name, as a Matrix file's body is.
	msg := &bridge.Message{Header: h, Text: name, Attachments: []bridge.Attachment{{URL: link, Name: name, Mime: typ, Size: int64(len(data))}}}
	// A file may answer a message, as a message frame's reply_to does.
	if rt := r.URL.Query().Get("reply_to"); rt != "" && len(rt) <= maxReplyTo {
		msg.ReplyTo = bridge.Ref{Remote: rt}
	}
	if err := a.in.Accept(ctx, msg); err != nil {
		// The file, without its message, goes at the next retention.
		a.log.Warn("file message not accepted", "room", roomName, "err", err)
		httpError(w, http.StatusServiceUnavailable, "not accepted, try again")
		return
	}
	a.log.Info("file sent", "room", roomName, "id", p.sender.ID, "type", typ, "bytes", len(data))
	p.shareLocally(msg)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(fileAnswer{ID: string(h.ID), URL: link, Name: name, Mime: typ, Size: len(data)})
}

// serveFile answers a file's link.
func (a *Adapter) serveFile(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	linksign.Protect(h)
	id := r.PathValue("id")
	a.mu.Lock()
	key, files := a.fileKey, a.files
	a.mu.Unlock()
	// Checked before the store is asked: a wrong link learns nothing,
	// not even whether the file exists.
	if !key.Verify(r.PathValue("sig"), filePurpose, id) {
		http.NotFound(w, r)
		return
	}
	f, err := files.File(r.Context(), id)
	switch {
	case errors.Is(err, bridge.ErrNotFound):
		http.Error(w, "No such file: Switchboard keeps a file only as long as its message.", http.StatusNotFound)
		return
	case err != nil:
		if r.Context().Err() == nil {
			a.log.Warn("file link: store", "file", id, "err", err)
		}
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	h.Set("Content-Type", f.Mime)
	h.Set("Content-Disposition", linksign.Disposition(f.Mime, f.Name))
	// Retention and deletions remove files from the store; no cache may
	// keep them.
	h.Set("Cache-Control", "no-store")
	// Ranges and HEAD (a video seeking) are served from the bytes.
	http.ServeContent(w, r, "", f.Time, bytes.NewReader(f.Data))
}
