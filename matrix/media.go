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
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"syscall"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/bridge"
)

const (
	// fetchTimeout bounds one attachment's download, start to end: a
	// slow server holds up its room's outbox no longer than this.
	fetchTimeout = 2 * time.Minute
	// maxRedirects is how many redirects a download follows.
	maxRedirects = 3
	// mediaPrefix starts the State keys of uploads (see mediaRecord).
	mediaPrefix = "media:"
)

// errInternalAddress refuses a dial to an address inside a network.
var errInternalAddress = errors.New("refusing an internal address")

// internalPrefixes are ranges that lead inside a network beyond what the
// netip predicates in publicAddress cover.
var internalPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),          // "this network"; 0.0.0.0 reaches the host itself
	netip.MustParsePrefix("100.64.0.0/10"),      // shared address space (carrier-grade NAT)
	netip.MustParsePrefix("255.255.255.255/32"), // broadcast
	netip.MustParsePrefix("fec0::/10"),          // deprecated site-local
}

// nat64 embeds an IPv4 address in its last four bytes; a NAT64 gateway
// reaches that address, so it is judged instead.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// publicAddress reports whether ip is one the bridge may download from
// on behalf of remote users: not loopback, private, link-local,
// unspecified, multicast or otherwise internal.
func publicAddress(ip netip.Addr) bool {
	ip = ip.Unmap()
	if nat64.Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte(b[12:]))
	}
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() || ip.IsMulticast() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() {
		return false
	}
	for _, p := range internalPrefixes {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// refuseInternal is a dialer's Control: it sees the address actually
// dialed, after name resolution and on every redirect, so neither a name
// that resolves inside nor a redirect there gets through.
func refuseInternal(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot read %q", errInternalAddress, address)
	}
	if !publicAddress(ap.Addr()) {
		return fmt.Errorf("%w: %s", errInternalAddress, ap.Addr())
	}
	return nil
}

// fetcher downloads attachments: http and https only, bounded in size,
// time and redirects, and (unless allowed) never from internal addresses.
type fetcher struct {
	client  *http.Client
	maxSize int64
}

func newFetcher(c Media) *fetcher {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if !c.PrivateAddresses {
		d.Control = refuseInternal
	}
	tr := &http.Transport{
		// No proxy, not even from the environment: the address check
		// must see the server's own address.
		Proxy:                 nil,
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       30 * time.Second,
		MaxIdleConns:          8,
		ForceAttemptHTTP2:     true,
	}
	return &fetcher{
		client: &http.Client{
			Transport: tr,
			Timeout:   fetchTimeout,
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) > maxRedirects {
					return fmt.Errorf("more than %d redirects", maxRedirects)
				}
				if !isHTTP(req.URL) {
					return errors.New("redirected to a URL that is not http or https")
				}
				return nil
			},
		},
		maxSize: c.MaxSize,
	}
}

func isHTTP(u *url.URL) bool {
	return (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// fetch downloads a file and returns it with the media type the server
// gave ("" for none). Its errors never hold the URL: attachment URLs are
// often capabilities (an upload's secret path), not to be logged.
func (f *fetcher) fetch(ctx context.Context, raw string) ([]byte, string, error) {
	u, err := url.Parse(raw)
	if err != nil || !isHTTP(u) {
		return nil, "", errors.New("not an http or https URL")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, "", errors.New("not a URL to request")
	}
	req.Header.Set("User-Agent", "Switchboard")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, "", withoutURL(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, "", fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if resp.ContentLength > f.maxSize {
		return nil, "", fmt.Errorf("%d bytes, over the limit of %d", resp.ContentLength, f.maxSize)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, f.maxSize+1))
	if err != nil {
		return nil, "", withoutURL(err)
	}
	if int64(len(data)) > f.maxSize {
		return nil, "", fmt.Errorf("over the limit of %d bytes", f.maxSize)
	}
	typ, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return data, typ, nil
}

// withoutURL takes the URL out of an http.Client error.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
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
func fileName(att bridge.Attachment) string {
	if att.Name != "" {
		return att.Name
	}
	if u, err := url.Parse(att.URL); err == nil {
		if base := path.Base(u.Path); base != "." && base != "/" {
			return base
		}
	}
	return "file"
}

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
		a.log.Info("matrix: attachment stays a link", "host", urlHost(att.URL), "reason", reason)
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

// urlHost is what the log says of an attachment URL: its host only.
func urlHost(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil {
		return u.Host
	}
	return ""
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
