package xmpp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/fetch"
)

// Files reach XMPP through the server's HTTP upload service (XEP-0363):
// each attachment is fetched from its URL, put into a slot of the
// service, and the message carries the slot's GET URL as its body (or
// part of it) and as an out-of-band URL (XEP-0066), which clients show
// inline. Without a service, over its size limit, or when the fetch or
// the upload fails, the attachment stays the link it came as.
//
// The slot is asked for by whoever sends the message: a puppet or the
// component itself (Prosody's mod_http_file_share lets every JID of a
// host it serves upload, components included), or the relay account; for
// a person speaking through their own session and for direct messages,
// the bot.

const (
	nsUpload = "urn:xmpp:http:upload:0"

	// uploadTimeout bounds one attachment: fetch, slot and upload.
	uploadTimeout = fetch.Timeout
	// uploadReuse is how long an uploaded file is used again for the same
	// URL (a retried delivery, the same file shared again): well within
	// the days upload services keep files.
	uploadReuse = 24 * time.Hour
	// defaultUploadMax bounds a file when the service states no limit.
	defaultUploadMax = 100 << 20
	// maxUploadItems bounds the server's items asked whether they are an
	// upload service.
	maxUploadItems = 32
	// uploadPrefix starts the State keys of uploads.
	uploadPrefix = "upload:"
	// UploadOff as upload.service turns uploads off.
	UploadOff = "off"
)

var (
	errNoUploadService = errors.New("the server has no HTTP upload service")
	errUploadTooLarge  = errors.New("over the upload service's size limit")
)

// Upload is how attachments reach XMPP (the upload keys of a network).
type Upload struct {
	// Service is the HTTP upload service's JID; empty, it is discovered
	// on the server's domain; "off" sends attachments as links.
	Service string `yaml:"service"`
	// PrivateAddresses lets attachments be fetched from loopback,
	// private and other internal addresses (Switchboard's own links,
	// under http.public_url, always may).
	PrivateAddresses bool `yaml:"private_addresses"`
}

func (u Upload) check() error {
	if u.Service == "" || u.Service == UploadOff {
		return nil
	}
	j, err := jid.Parse(u.Service)
	if err != nil || j.Resourcepart() != "" || strings.ContainsAny(u.Service, "/") {
		return fmt.Errorf("%q is not the JID of a service (upload.example.org), nor %q", u.Service, UploadOff)
	}
	return nil
}

// uploads is the adapter's upload state.
type uploads struct {
	public string // http.public_url: links to Switchboard itself

	fetch, own *fetch.Client // attachments; Switchboard's own links
	put        *http.Client

	mu      sync.Mutex
	svc     *uploadService // discovered on session gen
	svcGen  uint64
	finding chan struct{} // a discovery under way
	done    *lru[string, uploadRecord]
	busy    map[string]chan struct{} // uploads under way, by URL
	said    map[string]bool          // why attachments stay links, logged once
	pruned  time.Time                // State last pruned of old uploads
}

// uploadService is a server's HTTP upload service.
type uploadService struct {
	jid jid.JID
	max int64 // bytes
}

// uploadRecord is what is remembered of an upload: the file's GET URL.
type uploadRecord struct {
	Get string    `json:"get"`
	At  time.Time `json:"at"`
}

func newUploads(c Upload) *uploads {
	return &uploads{
		fetch: fetch.New(c.PrivateAddresses),
		own:   fetch.New(true),
		// The slot's PUT URL is the operator's own server's: no
		// address check; no redirects (the headers are for that URL).
		put: &http.Client{Timeout: uploadTimeout, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		done: newLRU[string, uploadRecord](1024),
		busy: map[string]chan struct{}{},
		said: map[string]bool{},
	}
}

// UsePublicURL implements adapters.PublicURLUser: links under it are
// Switchboard's own, fetched whatever their address.
func (a *Adapter) UsePublicURL(base string) { a.up.public = strings.TrimRight(base, "/") + "/" }

// withUploads is m with its attachments uploaded where they can be: their
// URLs replaced by the upload's, in the text too; a message that is only
// its file has the file's URL as its whole body, which clients show
// inline. It returns m itself when nothing was uploaded, and an error
// (with m) only when ctx ended: the delivery is retried.
func (a *Adapter) withUploads(ctx context.Context, c *session, sp speaker, m *bridge.Message) (*bridge.Message, error) {
	if len(m.Attachments) == 0 || a.cfg.Upload.Service == UploadOff {
		return m, nil
	}
	var out *bridge.Message
	for i, at := range m.Attachments {
		if at.URL == "" {
			continue
		}
		get, err := a.uploadOne(ctx, c, sp, at)
		if err != nil {
			if ctx.Err() != nil {
				return m, ctx.Err()
			}
			a.stayLink(c, at, err)
			continue
		}
		if out == nil {
			cp := *m
			cp.Attachments = append([]bridge.Attachment(nil), m.Attachments...)
			out = &cp
		}
		out.Attachments[i].URL = get
		out.Text = strings.ReplaceAll(out.Text, at.URL, get)
		out.HTML = strings.ReplaceAll(out.HTML, html.EscapeString(at.URL), html.EscapeString(get))
	}
	if out == nil {
		return m, nil
	}
	if len(out.Attachments) == 1 {
		at := out.Attachments[0]
		if t := strings.TrimSpace(out.Text); t == "" || t == at.URL || t == at.Name || t == at.Line() {
			out.Text, out.HTML = at.URL, ""
		}
	}
	return out, nil
}

// stayLink logs why an attachment stays a link: once per reason and
// session at info, then at debug.
func (a *Adapter) stayLink(c *session, at bridge.Attachment, err error) {
	reason := err.Error()
	switch {
	case errors.Is(err, errNoUploadService):
		reason = errNoUploadService.Error()
	case errors.Is(err, errUploadTooLarge):
		reason = errUploadTooLarge.Error()
	}
	key := strconv.FormatUint(c.gen, 10) + "\x00" + reason
	a.up.mu.Lock()
	first := !a.up.said[key]
	if first {
		if len(a.up.said) > 256 {
			clear(a.up.said)
		}
		a.up.said[key] = true
	}
	a.up.mu.Unlock()
	level := slog.LevelDebug
	if first {
		level = slog.LevelInfo
	}
	a.log.Log(context.Background(), level, "xmpp: attachment sent as a link", "host", fetch.Host(at.URL), "reason", err)
}

// uploadKey is the State key of an attachment URL's upload: a hash, as
// the URL may be long, and is no one's business in the store.
func uploadKey(rawURL string) string {
	sum := sha256.Sum256([]byte(rawURL))
	return uploadPrefix + hex.EncodeToString(sum[:16])
}

// uploaded is the GET URL of an earlier upload of rawURL, if recent.
func (a *Adapter) uploaded(ctx context.Context, rawURL string) (string, bool) {
	u := a.up
	u.mu.Lock()
	rec, ok := u.done.get(rawURL)
	u.mu.Unlock()
	if !ok && a.state != nil {
		if v, found, err := a.state.Get(ctx, uploadKey(rawURL)); err == nil && found {
			ok = json.Unmarshal([]byte(v), &rec) == nil && rec.Get != ""
		}
	}
	if !ok || time.Since(rec.At) > uploadReuse {
		return "", false
	}
	return rec.Get, true
}

func (a *Adapter) remember(ctx context.Context, rawURL, get string) {
	rec := uploadRecord{Get: get, At: time.Now().UTC()}
	a.up.mu.Lock()
	a.up.done.put(rawURL, rec)
	a.up.mu.Unlock()
	if a.state != nil {
		v, _ := json.Marshal(rec)
		a.state.Put(ctx, uploadKey(rawURL), string(v)) // memory still has it
	}
}

// pruneUploads forgets, at most once an hour, the uploads too old to
// use again (the janitor calls it).
func (a *Adapter) pruneUploads(ctx context.Context, now time.Time) {
	u := a.up
	u.mu.Lock()
	due := a.state != nil && now.Sub(u.pruned) >= time.Hour
	if due {
		u.pruned = now
	}
	u.mu.Unlock()
	if !due {
		return
	}
	var old []string
	err := a.state.Scan(ctx, uploadPrefix, func(key, value string) bool {
		var rec uploadRecord
		if json.Unmarshal([]byte(value), &rec) != nil || now.Sub(rec.At) > uploadReuse {
			old = append(old, key)
		}
		return true
	})
	for _, key := range old {
		if err == nil {
			err = a.state.Delete(ctx, key)
		}
	}
	if err != nil && ctx.Err() == nil {
		a.log.Warn("xmpp: cannot prune old uploads", "err", err)
	}
}

// uploadOne uploads one attachment and returns its GET URL: one upload
// per URL at a time, and none for a URL uploaded lately.
func (a *Adapter) uploadOne(ctx context.Context, c *session, sp speaker, at bridge.Attachment) (string, error) {
	u := a.up
	for {
		if get, ok := a.uploaded(ctx, at.URL); ok {
			return get, nil
		}
		u.mu.Lock()
		wait := u.busy[at.URL]
		if wait == nil {
			mine := make(chan struct{})
			u.busy[at.URL] = mine
			u.mu.Unlock()
			defer func() {
				u.mu.Lock()
				delete(u.busy, at.URL)
				u.mu.Unlock()
				close(mine)
			}()
			break
		}
		u.mu.Unlock()
		select {
		case <-wait:
			// Done (or failed): look again, or try ourselves.
			if get, ok := a.uploaded(ctx, at.URL); ok {
				return get, nil
			}
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	ctx, cancel := context.WithTimeout(ctx, uploadTimeout)
	defer cancel()
	from := sp.jid
	if sp.via != nil {
		// A person's own session reads no answers to requests: the bot
		// asks for them.
		from = c.me
	}
	svc, err := a.uploadService(ctx, c, from)
	if err != nil {
		return "", err
	}
	if at.Size > svc.max {
		return "", fmt.Errorf("%w (%d bytes, the limit is %d)", errUploadTooLarge, at.Size, svc.max)
	}
	get, err := a.transfer(ctx, c, from, svc, at)
	if err != nil {
		return "", err
	}
	a.remember(ctx, at.URL, get)
	return get, nil
}

// transfer fetches an attachment, asks svc for a slot and puts the file
// there, streaming; a file of unknown length is kept in a temporary file
// first (its size is part of the slot request).
func (a *Adapter) transfer(ctx context.Context, c *session, from jid.JID, svc *uploadService, at bridge.Attachment) (string, error) {
	client := a.up.fetch
	if a.up.public != "/" && a.up.public != "" && strings.HasPrefix(at.URL, a.up.public) {
		client = a.up.own
	}
	resp, err := client.Open(ctx, at.URL)
	if err != nil {
		return "", fmt.Errorf("fetch: %w", err)
	}
	defer resp.Body.Close()
	size := resp.ContentLength
	if size > svc.max {
		return "", fmt.Errorf("%w (%d bytes, the limit is %d)", errUploadTooLarge, size, svc.max)
	}
	var body io.Reader = resp.Body
	if size < 0 {
		tmp, err := os.CreateTemp("", "switchboard-upload-*")
		if err != nil {
			return "", err
		}
		defer func() { tmp.Close(); os.Remove(tmp.Name()) }()
		n, err := io.Copy(tmp, io.LimitReader(resp.Body, svc.max+1))
		if err != nil {
			return "", fmt.Errorf("fetch: %w", fetch.WithoutURL(err))
		}
		if n > svc.max {
			return "", fmt.Errorf("%w (more than %d bytes)", errUploadTooLarge, svc.max)
		}
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return "", err
		}
		size, body = n, tmp
	}
	typ, _, err := mime.ParseMediaType(at.Mime)
	if err != nil {
		typ, _, _ = mime.ParseMediaType(resp.Header.Get("Content-Type"))
	}
	if typ == "" {
		typ = "application/octet-stream"
	}
	s, err := a.requestSlot(ctx, c, from, svc, fetch.FileName(at.Name, at.URL), size, typ)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.put, io.LimitReader(body, size))
	if err != nil {
		return "", fmt.Errorf("upload: %w", err)
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", typ)
	for k, v := range s.headers {
		req.Header.Set(k, v)
	}
	put, err := a.up.put.Do(req)
	if err != nil {
		return "", fmt.Errorf("upload: %w", fetch.WithoutURL(err))
	}
	io.Copy(io.Discard, io.LimitReader(put.Body, 4096))
	put.Body.Close()
	if put.StatusCode != http.StatusOK && put.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("upload: HTTP %d", put.StatusCode)
	}
	return s.get, nil
}

// slot is an upload slot: where to put the file, with which headers, and
// where it will be.
type slot struct {
	put, get string
	headers  map[string]string
}

// slotHeaders are the headers a slot may ask for (XEP-0363 §5: the
// others are ignored).
var slotHeaders = map[string]string{"authorization": "Authorization", "cookie": "Cookie", "expires": "Expires"}

func (a *Adapter) requestSlot(ctx context.Context, c *session, from jid.JID, svc *uploadService, name string, size int64, typ string) (slot, error) {
	// A name is a name, not a path, on one line.
	name = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r < ' ' || r == 0x7f {
			return '_'
		}
		return r
	}, bridge.CleanText(name))
	if name == "" || name == "." || name == ".." {
		name = "file"
	}
	req := el(nsUpload, "request", "filename", name, "size", strconv.FormatInt(size, 10), "content-type", typ)
	st, err := a.iq(ctx, c, from, svc.jid, "get", req, a.t.join)
	if err != nil {
		return slot{}, fmt.Errorf("slot: %w", err)
	}
	if st.typ == "error" {
		if st.err != nil && st.err.condition == "not-acceptable" {
			return slot{}, fmt.Errorf("%w (the service refused %d bytes: %v)", errUploadTooLarge, size, st.err)
		}
		return slot{}, fmt.Errorf("slot refused: %v", st.err)
	}
	x := st.payload
	if x == nil || x.name.Space != nsUpload || x.name.Local != "slot" {
		return slot{}, errors.New("slot: no slot in the answer")
	}
	s := slot{put: x.child(nsUpload, "put").get("url"), get: x.child(nsUpload, "get").get("url"), headers: map[string]string{}}
	for _, h := range x.child(nsUpload, "put").children(nsUpload, "header") {
		if k, ok := slotHeaders[strings.ToLower(h.get("name"))]; ok && !strings.ContainsAny(h.text, "\r\n") {
			s.headers[k] = h.text
		}
	}
	for _, raw := range []string{s.put, s.get} {
		if u, err := url.Parse(raw); err != nil || !fetch.IsHTTP(u) {
			return slot{}, errors.New("slot: its URLs are not http or https")
		}
	}
	return s, nil
}

// uploadService is the server's upload service, discovered once per
// session of the bot, c (a reconnect may find another server): the one
// configured, or the server's domain or one of its items announcing
// XEP-0363.
func (a *Adapter) uploadService(ctx context.Context, c *session, from jid.JID) (*uploadService, error) {
	u := a.up
	for {
		u.mu.Lock()
		if u.svcGen == c.gen {
			svc := u.svc
			u.mu.Unlock()
			if svc == nil {
				return nil, errNoUploadService
			}
			return svc, nil
		}
		wait := u.finding
		if wait == nil {
			u.finding = make(chan struct{})
			u.mu.Unlock()
			break
		}
		u.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	svc, err := a.discoverUpload(ctx, c, from)
	called := ctx.Err() != nil
	u.mu.Lock()
	close(u.finding)
	u.finding = nil
	if !called {
		// A server that did not answer is not asked again before the
		// next connection: every file would wait for it.
		u.svc, u.svcGen = svc, c.gen
	}
	u.mu.Unlock()
	if err != nil {
		if !called {
			a.log.Warn("xmpp: cannot discover the HTTP upload service; attachments are links until the next connection", "err", err)
		}
		return nil, err
	}
	if svc == nil {
		return nil, errNoUploadService
	}
	a.log.Info("xmpp: HTTP upload service", "service", svc.jid.String(), "max_bytes", svc.max)
	return svc, nil
}

// discoverUpload looks for the upload service: nil, nil when there is
// none; an error when the server did not answer (asked again).
func (a *Adapter) discoverUpload(ctx context.Context, c *session, from jid.JID) (*uploadService, error) {
	if s := a.cfg.Upload.Service; s != "" {
		j, err := jid.Parse(s)
		if err != nil {
			return nil, err
		}
		svc, err := a.uploadInfo(ctx, c, from, j)
		if err == nil && svc == nil {
			a.log.Warn("xmpp: upload.service does not announce HTTP upload", "service", s)
		}
		return svc, err
	}
	domain := a.serverDomain()
	svc, err := a.uploadInfo(ctx, c, from, domain)
	if err != nil || svc != nil {
		return svc, err
	}
	st, err := a.iq(ctx, c, from, domain, "get", el(nsDiscoItems, "query"), a.t.join)
	if err != nil {
		return nil, err
	}
	items := st.payload.children(nsDiscoItems, "item")
	for i, it := range items {
		if i == maxUploadItems {
			break
		}
		j, err := jid.Parse(it.get("jid"))
		if err != nil || it.get("node") != "" {
			continue
		}
		svc, err := a.uploadInfo(ctx, c, from, j)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err == nil && svc != nil {
			return svc, nil
		}
	}
	return nil, nil
}

// serverDomain is the domain of the server the adapter is on: the
// account's, or the one the component's domain is under
// (bridge.example.org: example.org).
func (a *Adapter) serverDomain() jid.JID {
	if !a.component {
		return a.account.Domain()
	}
	d := a.domain
	if _, parent, ok := strings.Cut(d, "."); ok && (strings.Contains(parent, ".") || parent == "localhost") {
		d = parent
	}
	return jid.MustParse(d)
}

// uploadInfo asks j whether it is an upload service, and its limit.
func (a *Adapter) uploadInfo(ctx context.Context, c *session, from, j jid.JID) (*uploadService, error) {
	st, err := a.iq(ctx, c, from, j, "get", el(nsDiscoInfo, "query"), a.t.join)
	if err != nil {
		return nil, err
	}
	if st.typ == "error" || st.payload == nil {
		return nil, nil
	}
	found := false
	for _, f := range st.payload.children(nsDiscoInfo, "feature") {
		found = found || f.get("var") == nsUpload
	}
	if !found {
		return nil, nil
	}
	svc := &uploadService{jid: j, max: defaultUploadMax}
	for _, x := range st.payload.children(nsData, "x") {
		if formType(x) != nsUpload {
			continue
		}
		for _, f := range x.children(nsData, "field") {
			if f.get("var") == "max-file-size" {
				if n, err := strconv.ParseInt(strings.TrimSpace(f.child(nsData, "value").textOr("")), 10, 64); err == nil && n > 0 {
					svc.max = n
				}
			}
		}
	}
	return svc, nil
}

// formType is a data form's FORM_TYPE.
func formType(x *element) string {
	for _, f := range x.children(nsData, "field") {
		if f.get("var") == "FORM_TYPE" {
			return strings.TrimSpace(f.child(nsData, "value").textOr(""))
		}
	}
	return ""
}
