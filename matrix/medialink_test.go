package matrix

import (
	"bytes"
	"context"
	"net/url"
	"strings"
	"testing"

	"maunium.net/go/mautrix/id"

	"github.com/switchboard-chat/switchboard/internal/linksign"
)

func TestPublicLink(t *testing.T) {
	a := &Adapter{name: "matrix", hsURL: "http://127.0.0.1:8008", state: newMemState()}
	u := id.ContentURI{Homeserver: "example.org", FileID: "AbC123"}
	if got := a.mediaURL(u.CUString(), "x.png"); got != "http://127.0.0.1:8008/_matrix/media/v3/download/example.org/AbC123" {
		t.Errorf("without public_url: %s", got)
	}
	a.UsePublicURL("https://bridge.example.org/")
	ctx := context.Background()
	if err := a.loadLinkKey(ctx); err != nil {
		t.Fatal(err)
	}
	link := a.mediaURL(u.CUString(), "my cat/ü?.png")
	prefix := "https://bridge.example.org/media/matrix/matrix/"
	suffix := "/example.org/AbC123/" + url.PathEscape("my cat/ü?.png")
	if !strings.HasPrefix(link, prefix) || !strings.HasSuffix(link, suffix) {
		t.Fatalf("link %s, want %s<sig>%s", link, prefix, suffix)
	}
	if got, ok := a.ownMedia(link); !ok || got != u.CUString() {
		t.Errorf("ownMedia(%s) = %s, %v", link, got, ok)
	}
	if _, ok := a.ownMedia(strings.Replace(link, "AbC123", "AbC124", 1)); ok {
		t.Error("ownMedia takes a link with another media id")
	}
	for _, name := range []string{"", ".", ".."} {
		if l := a.mediaURL(u.CUString(), name); !strings.HasSuffix(l, "/AbC123/file") {
			t.Errorf("name %q: link %s", name, l)
		}
	}
	// The key is kept in State: another adapter on it (a restart) signs
	// the same links.
	b := &Adapter{name: "matrix", state: a.state}
	b.UsePublicURL("https://bridge.example.org")
	if err := b.loadLinkKey(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.mediaURL(u.CUString(), "my cat/ü?.png"); got != link {
		t.Errorf("after a restart: %s, before %s", got, link)
	}
	if len(a.linkKey) != linksign.KeySize || bytes.Equal(a.linkKey, make([]byte, linksign.KeySize)) {
		t.Errorf("key %x", a.linkKey)
	}
}
