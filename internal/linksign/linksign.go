// Package linksign signs the links Switchboard hands out to other
// networks (Matrix media, the whole text of a long message), so that its
// HTTP listener serves what it offered and nothing else. One key per
// purpose is made on first use and kept in the store, so links survive
// restarts and every instance on the same store agrees on them.
package linksign

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
)

const (
	// KeySize is the size of a key in bytes.
	KeySize = 32
	// sigSize is how much of the HMAC a link carries: 128 bits is beyond
	// guessing and keeps links short.
	sigSize = 16
)

// KeyStore is where a key is kept: adapters.State and store.State have
// these methods.
type KeyStore interface {
	Get(ctx context.Context, key string) (value string, ok bool, err error)
	// PutIfAbsent sets key unless it is set.
	PutIfAbsent(ctx context.Context, key, value string) (bool, error)
}

// Key signs and checks links.
type Key []byte

// Load reads the key kept under name in st, made on first use. Every
// instance that shares the store agrees on it: a racing second one loses
// PutIfAbsent and reads the winner's.
func Load(ctx context.Context, st KeyStore, name string) (Key, error) {
	fresh := make([]byte, KeySize)
	rand.Read(fresh)
	if _, err := st.PutIfAbsent(ctx, name, base64.StdEncoding.EncodeToString(fresh)); err != nil {
		return nil, fmt.Errorf("link key: %w", err)
	}
	v, ok, err := st.Get(ctx, name)
	if err != nil || !ok {
		return nil, fmt.Errorf("link key: not stored (%v)", err)
	}
	key, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(key) != KeySize {
		return nil, errors.New("link key: stored value is not a key")
	}
	return key, nil
}

// mac signs what a link names. Each part goes in with its length, so
// that no two lists of parts give the same input.
func (k Key) mac(parts []string) []byte {
	m := hmac.New(sha256.New, k)
	for _, s := range parts {
		fmt.Fprintf(m, "%d:%s", len(s), s)
	}
	return m.Sum(nil)[:sigSize]
}

// Sign returns the signature of parts, fit for a URL path segment.
func (k Key) Sign(parts ...string) string {
	return base64.RawURLEncoding.EncodeToString(k.mac(parts))
}

// Verify checks a signature of parts in constant time; without a key
// nothing verifies. Only the one spelling Sign gives is taken: a lax
// decoder ignores the unused low bits of the last character, so that
// four spellings of a signature would open the same link.
func (k Key) Verify(sig string, parts ...string) bool {
	got, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	return err == nil && len(k) > 0 && hmac.Equal(got, k.mac(parts))
}

// Protect sets the headers every answer to a link carries. Switchboard's
// chat page and API share the origin of the links: whatever a link
// serves (a Matrix upload's HTML or SVG, a message's text) must never
// run there as a page or be sniffed into one.
func Protect(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
}

// Disposition shows images, audio and video in the browser and
// has everything else saved: those are the types a browser renders
// without running anything. SVG is an image that can carry script.
func Disposition(typ, name string) string {
	disp := "attachment"
	if mt, _, err := mime.ParseMediaType(typ); err == nil && !strings.Contains(mt, "svg") &&
		(strings.HasPrefix(mt, "image/") || strings.HasPrefix(mt, "audio/") || strings.HasPrefix(mt, "video/")) {
		disp = "inline"
	}
	if name == "" {
		return disp
	}
	// RFC 2231 encoding for names outside ASCII; "" when the name cannot
	// be put in a header at all.
	if v := mime.FormatMediaType(disp, map[string]string{"filename": name}); v != "" {
		return v
	}
	return disp
}
