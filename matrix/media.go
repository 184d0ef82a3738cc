package matrix

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/fetch"
)

const (
	// mediaPrefix starts the State keys of uploads (see mediaRecord).
	mediaPrefix = "media:"
)

// fetcher downloads attachments (see package fetch) up to maxSize.
type fetcher struct {
	client  *fetch.Client
	maxSize int64
}

func newFetcher(c Media) *fetcher {
	return &fetcher{client: fetch.New(c.PrivateAddresses), maxSize: c.MaxSize}
}

// fetch downloads a file and returns it with the media type the server
// gave ("" for none). Its errors never hold the URL.
func (f *fetcher) fetch(ctx context.Context, raw string) ([]byte, string, error) {
	resp, err := f.client.Open(ctx, raw)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	if resp.ContentLength > f.maxSize {
		return nil, "", fmt.Errorf("%d bytes, over the limit of %d", resp.ContentLength, f.maxSize)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, f.maxSize+1))
	if err != nil {
		return nil, "", fetch.WithoutURL(err)
	}
	if int64(len(data)) > f.maxSize {
		return nil, "", fmt.Errorf("over the limit of %d bytes", f.maxSize)
	}
	typ, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return data, typ, nil
}

// msgTypeFor is the message type of a file of the given media type.
func msgTypeFor(mimeType string) event.MessageType {
	switch t := strings.ToLower(mimeType); {
	case strings.HasPrefix(t, "image/"):
		return event.MsgImage
	case strings.HasPrefix(t, "video/"):
		return event.MsgVideo
	case strings.HasPrefix(t, "audio/"):
		return event.MsgAudio
	}
	return event.MsgFile
}

// media is an attachment on the homeserver, ready to post.
type media struct {
	index int // in the message's attachments
	url   string
	name  string
	mediaRecord
}

// mediaRecord is what State keeps of an upload, so that a retried
// delivery does not upload again.
type mediaRecord struct {
	MXC  id.ContentURIString `json:"mxc"`
	Mime string              `json:"mime,omitempty"`
	Size int64               `json:"size,omitempty"`
	At   time.Time           `json:"at"`
}

// content is the media's event: the file name as body, the mxc URI, and
// the media type and size.
func (m *media) content() *event.MessageEventContent {
	return &event.MessageEventContent{
		MsgType:  msgTypeFor(m.Mime),
		Body:     m.name,
		URL:      m.MXC,
		Info:     &event.FileInfo{MimeType: m.Mime, Size: int(m.Size)},
		Mentions: &event.Mentions{},
	}
}

// mediaKey is the State key of an attachment URL's upload: a hash, as
// the URL may be long, and is no one's business in the store.
func mediaKey(rawURL string) string {
	sum := sha256.Sum256([]byte(rawURL))
	return mediaPrefix + hex.EncodeToString(sum[:16])
}

// fileName is an attachment's name: its own, else the last segment of
// its URL's path.
func fileName(att bridge.Attachment) string { return fetch.FileName(att.Name, att.URL) }

// ownMedia reads a download URL of this homeserver or a media link of
// this adapter (what inbound media become, see mediaURL) back into its
// mxc URI: such a file is there already.
func (a *Adapter) ownMedia(rawURL string) (id.ContentURIString, bool) {
	if u, ok := a.ownLink(rawURL); ok {
		return u.CUString(), true
	}
	rest, ok := strings.CutPrefix(rawURL, a.hsURL+"/_matrix/media/v3/download/")
	if !ok {
		return "", false
	}
	server, fileID, ok := strings.Cut(rest, "/")
	if !ok {
		return "", false
	}
	server, err1 := url.PathUnescape(server)
	fileID, err2 := url.PathUnescape(fileID)
	if err1 != nil || err2 != nil || server == "" || fileID == "" || strings.Contains(fileID, "/") {
		return "", false
	}
	return id.ContentURI{Homeserver: server, FileID: fileID}.CUString(), true
}

// uploadMedia puts a message's attachments on the homeserver as intent.
// An attachment that cannot be fetched (or is too large for the
// homeserver) is left out, to stay a link in the text; an upload that
// fails otherwise is an error, for the outbox to retry.
func (a *Adapter) uploadMedia(ctx context.Context, intent *appservice.IntentAPI, m *bridge.Message) ([]media, error) {
	if !a.cfg.Media.Upload {
		return nil, nil
	}
	var out []media
	for i, att := range m.Attachments {
		md := media{index: i, url: att.URL, name: fileName(att)}
		ok, err := a.upload(ctx, intent, att, &md)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, md)
		}
	}
	return out, nil
}

func (a *Adapter) upload(ctx context.Context, intent *appservice.IntentAPI, att bridge.Attachment, md *media) (bool, error) {
	if mxc, ok := a.ownMedia(att.URL); ok {
		md.mediaRecord = mediaRecord{MXC: mxc, Mime: att.Mime, Size: att.Size}
		return true, nil
	}
	key := mediaKey(att.URL)
	if v, ok, err := a.state.Get(ctx, key); err != nil {
		return false, err
	} else if ok && json.Unmarshal([]byte(v), &md.mediaRecord) == nil && md.MXC != "" {
		return true, nil
	}
	leave := func(reason any) (bool, error) {
		a.log.Info("matrix: attachment stays a link", "host", fetch.Host(att.URL), "reason", reason)
		return false, nil
	}
	if att.Size > a.fetch.maxSize {
		return leave(fmt.Sprintf("%d bytes, over media.max_size", att.Size))
	}
	data, typ, err := a.fetch.fetch(ctx, att.URL)
	if err != nil {
		if ctx.Err() != nil {
			// The delivery was called off (a shutdown): try again later
			// rather than settle for a link.
			return false, ctx.Err()
		}
		return leave(err)
	}
	md.Mime = att.Mime
	if md.Mime == "" {
		md.Mime = typ
	}
	if md.Mime == "" {
		md.Mime = "application/octet-stream"
	}
	md.Size = int64(len(data))
	resp, err := retry(ctx, func() (*mautrix.RespMediaUpload, error) {
		return intent.UploadMedia(ctx, mautrix.ReqUploadMedia{ContentBytes: data, ContentType: md.Mime, FileName: md.name})
	})
	var herr mautrix.HTTPError
	if errors.Is(err, mautrix.MTooLarge) || errors.As(err, &herr) && herr.IsStatus(http.StatusRequestEntityTooLarge) {
		return leave("too large for the homeserver")
	}
	if err != nil {
		return false, fmt.Errorf("matrix: upload an attachment as %s: %w", intent.UserID, err)
	}
	md.MXC, md.At = resp.ContentURI.CUString(), time.Now().UTC()
	rec, _ := json.Marshal(md.mediaRecord)
	return true, a.state.Put(ctx, key, string(rec))
}

// mediaTime reads when a media record was made, for pruning.
func mediaTime(v string) (time.Time, bool) {
	var rec mediaRecord
	if json.Unmarshal([]byte(v), &rec) != nil {
		return time.Time{}, false
	}
	return rec.At, true
}

// textPart is what is left of m to say in text once the media are posted:
// the text without the media's URLs, and without a line (or a whole
// text) that is only a media's name, which the media event shows; and
// the attachments that stay links.
func textPart(m *bridge.Message, ms []media) *bridge.Message {
	r := *m
	if len(ms) == 0 {
		return &r
	}
	posted := map[int]bool{}
	for _, md := range ms {
		posted[md.index] = true
	}
	r.Attachments = nil
	for i, att := range m.Attachments {
		if !posted[i] {
			r.Attachments = append(r.Attachments, att)
		}
	}
	isName := func(s string) bool {
		s = strings.TrimSuffix(strings.TrimSpace(s), ":")
		for _, md := range ms {
			if s == md.name {
				return true
			}
		}
		return false
	}
	var lines []string
	changed := false
	for _, line := range strings.Split(r.Text, "\n") {
		cut := line
		for _, md := range ms {
			cut = strings.ReplaceAll(cut, md.url, "")
		}
		if cut != line {
			changed = true
			if cut = strings.Join(strings.Fields(cut), " "); cut == "" || isName(cut) {
				continue
			}
		}
		lines = append(lines, cut)
	}
	if changed {
		// The HTML still holds the URLs, and taking them out of markup
		// can leave it broken: the plain text says it all.
		r.Text, r.HTML = strings.Join(lines, "\n"), ""
	}
	if isName(r.Text) {
		r.Text, r.HTML = "", ""
	}
	return &r
}

// blank reports whether a message has nothing to say in text.
func blank(m *bridge.Message) bool {
	return strings.TrimSpace(m.Text) == "" && len(m.Attachments) == 0
}
