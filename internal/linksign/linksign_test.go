package linksign

import (
	"bytes"
	"context"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/store"
)

func newKey() Key {
	k := make(Key, KeySize)
	rand.Read(k)
	return k
}

func TestSignature(t *testing.T) {
	key := newKey()
	sig := key.Sign("matrix", "example.org", "AbC123")
	if !key.Verify(sig, "matrix", "example.org", "AbC123") {
		t.Fatal("a link's own signature does not verify")
	}
	flipped := []byte(sig)
	flipped[3] ^= 1
	// The last character of 16 bytes in base64 carries 2 bits; setting
	// one of its 4 unused ones spells the same bytes another way.
	respelled := []byte(sig)
	respelled[len(sig)-1] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", sig[len(sig)-1])|1]
	for name, c := range map[string][4]string{
		"network":             {"matrix2", "example.org", "AbC123", sig},
		"server":              {"matrix", "example.com", "AbC123", sig},
		"media id":            {"matrix", "example.org", "AbC124", sig},
		"parts shifted":       {"matrix", "example.orgA", "bC123", sig},
		"signature":           {"matrix", "example.org", "AbC123", string(flipped)},
		"signature respelled": {"matrix", "example.org", "AbC123", string(respelled)},
		"signature cut":       {"matrix", "example.org", "AbC123", sig[:len(sig)-2]},
		"signature missing":   {"matrix", "example.org", "AbC123", ""},
		"signature not b64":   {"matrix", "example.org", "AbC123", "!!!!"},
		"other key's":         {"matrix", "example.org", "AbC123", newKey().Sign("matrix", "example.org", "AbC123")},
		"whole HMAC (longer)": {"matrix", "example.org", "AbC123", sig + sig},
	} {
		if key.Verify(c[3], c[0], c[1], c[2]) {
			t.Errorf("tampered %s: verifies", name)
		}
	}
	if key.Verify(sig, "matrix", "example.org") || key.Verify(sig, "matrix", "example.org", "AbC123", "") {
		t.Error("verifies for fewer or more parts")
	}
	if Key(nil).Verify(sig, "matrix", "example.org", "AbC123") {
		t.Error("verifies without a key")
	}
}

func TestLoadKeepsTheKey(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite", t.TempDir(), testenv.NewLog(t).Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := db.State("net")
	a, err := Load(ctx, st, "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != KeySize || bytes.Equal(a, make([]byte, KeySize)) {
		t.Fatalf("key %x", a)
	}
	// A restart on the same store signs the same links; another name is
	// another key.
	b, err := Load(ctx, st, "k")
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("second load: %x, %v; first %x", b, err, a)
	}
	if c, _ := Load(ctx, st, "other"); bytes.Equal(a, c) {
		t.Error("two names share a key")
	}
	if err := st.Put(ctx, "bad", "c2hvcnQ="); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(ctx, st, "bad"); err == nil {
		t.Error("a stored value that is no key loads")
	}
}

func TestDisposition(t *testing.T) {
	for _, c := range []struct{ typ, name, want string }{
		{"image/png", "cat.png", `inline; filename=cat.png`},
		{"IMAGE/JPEG", "a b.jpg", `inline; filename="a b.jpg"`},
		{"video/mp4", "v.mp4", `inline; filename=v.mp4`},
		{"audio/ogg; codecs=opus", "v.ogg", `inline; filename=v.ogg`},
		{"image/svg+xml", "x.svg", `attachment; filename=x.svg`},
		{"text/html; charset=utf-8", "page.html", `attachment; filename=page.html`},
		{"application/octet-stream", "x.bin", `attachment; filename=x.bin`},
		{"application/xhtml+xml", "x.xhtml", `attachment; filename=x.xhtml`},
		{"not a type", "x", `attachment; filename=x`},
		{"", "x", `attachment; filename=x`},
		{"text/plain", `quote" and \ slash`, `attachment; filename="quote\" and \\ slash"`},
		{"text/plain", "grüße.txt", `attachment; filename*=utf-8''gr%C3%BC%C3%9Fe.txt`},
		{"image/png", "", `inline`},
	} {
		if got := Disposition(c.typ, c.name); got != c.want {
			t.Errorf("Disposition(%q, %q) = %s, want %s", c.typ, c.name, got, c.want)
		}
	}
}
