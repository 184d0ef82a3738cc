// Package fetch downloads the files other networks offer by URL
// (attachments), for the adapters that re-upload them: http and https
// only, bounded in time and redirects, and (unless allowed) never from
// loopback, private or other internal addresses, since the URLs come from
// remote users and the bridge must not fetch its own network's insides
// for them.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"syscall"
	"time"
)

const (
	// Timeout bounds one download, start to end: a slow server holds up
	// its sender's messages no longer than this.
	Timeout = 2 * time.Minute
	// maxRedirects is how many redirects a download follows.
	maxRedirects = 3
)

// ErrInternalAddress refuses a dial to an address inside a network.
var ErrInternalAddress = errors.New("refusing an internal address")

// internalPrefixes are ranges that lead inside a network beyond what the
// netip predicates in PublicAddress cover.
var internalPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),          // "this network"; 0.0.0.0 reaches the host itself
	netip.MustParsePrefix("100.64.0.0/10"),      // shared address space (carrier-grade NAT)
	netip.MustParsePrefix("255.255.255.255/32"), // broadcast
	netip.MustParsePrefix("fec0::/10"),          // deprecated site-local
}

// nat64 embeds an IPv4 address in its last four bytes; a NAT64 gateway
// reaches that address, so it is judged instead.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// PublicAddress reports whether ip is one the bridge may download from
// on behalf of remote users: not loopback, private, link-local,
// unspecified, multicast or otherwise internal.
func PublicAddress(ip netip.Addr) bool {
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
		return fmt.Errorf("%w: cannot read %q", ErrInternalAddress, address)
	}
	if !PublicAddress(ap.Addr()) {
		return fmt.Errorf("%w: %s", ErrInternalAddress, ap.Addr())
	}
	return nil
}

// Client downloads attachments.
type Client struct{ http *http.Client }

// New is a Client; private lets it reach internal addresses (a test, or
// the bridge's own links).
func New(private bool) *Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if !private {
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
	return &Client{http: &http.Client{
		Transport: tr,
		Timeout:   Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxRedirects {
				return fmt.Errorf("more than %d redirects", maxRedirects)
			}
			if !IsHTTP(req.URL) {
				return errors.New("redirected to a URL that is not http or https")
			}
			return nil
		},
	}}
}

// IsHTTP: an absolute http or https URL.
func IsHTTP(u *url.URL) bool {
	return (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// Open starts downloading a file: the response of a 2xx answer, whose
// body the caller reads and closes. Its errors never hold the URL:
// attachment URLs are often capabilities (an upload's secret path), not
// to be logged.
func (c *Client) Open(ctx context.Context, raw string) (*http.Response, error) {
	u, err := url.Parse(raw)
	if err != nil || !IsHTTP(u) {
		return nil, errors.New("not an http or https URL")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, errors.New("not a URL to request")
	}
	req.Header.Set("User-Agent", "Switchboard")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, WithoutURL(err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		resp.Body.Close()
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return resp, nil
}

// WithoutURL takes the URL out of an http.Client error.
func WithoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// Host is what a log says of an attachment URL: its host only.
func Host(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil {
		return u.Host
	}
	return ""
}

// FileName is an attachment's name: its own, else the last segment of
// its URL's path, else "file".
func FileName(name, rawURL string) string {
	if name != "" {
		return name
	}
	if u, err := url.Parse(rawURL); err == nil {
		if base := path.Base(u.Path); base != "." && base != "/" {
			return base
		}
	}
	return "file"
}
