package avatars

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
	"github.com/switchboard-chat/switchboard/internal/testenv"
	"github.com/switchboard-chat/switchboard/store"
)

// The avatar store keeps what XMPP reads for Matrix, across a restart,
// apart from every network's state, and bounded.
func TestAvatarStore(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	st, err := store.Open(ctx, "sqlite", dir, log)
	if err != nil {
		t.Fatal(err)
	}
	avatars := New(st.State(Namespace), log)
	alice := bridge.Sender{Network: "jabber", ID: "alice@example.org", Name: "Alice"}
	pic := testenv.PNG()
	if _, ok, _ := avatars.AvatarHash(ctx, alice); ok {
		t.Fatal("an avatar known before any was stored")
	}
	if err := avatars.PutAvatar(ctx, alice, "image/png", pic); err != nil {
		t.Fatal(err)
	}
	// The name does not matter: a renamed sender keeps the picture.
	renamed := alice
	renamed.Name = "Alice L."
	if h, ok, err := avatars.AvatarHash(ctx, renamed); err != nil || !ok || h != testenv.SHA1Hex(pic) {
		t.Fatalf("hash %q %v %v, want the picture's SHA-1", h, ok, err)
	}
	// Another network's sender with the same id is someone else.
	if _, ok, _ := avatars.AvatarHash(ctx, bridge.Sender{Network: "other", ID: alice.ID}); ok {
		t.Fatal("an avatar shared across networks")
	}
	// Too large: not kept, the old one stays.
	if err := avatars.PutAvatar(ctx, alice, "image/png", make([]byte, adapters.MaxAvatarSize+1)); err != nil {
		t.Fatal(err)
	}
	st.Close()

	// After a restart, from the store.
	st, err = store.Open(ctx, "sqlite", dir, log)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	avatars = New(st.State(Namespace), log)
	av, ok, err := avatars.Avatar(ctx, alice)
	if err != nil || !ok || !bytes.Equal(av.Data, pic) || av.Mime != "image/png" || av.Hash != testenv.SHA1Hex(pic) {
		t.Fatalf("after restart: %v %v, %s %d bytes; want her picture", ok, err, av.Mime, len(av.Data))
	}
	// No network sees it: its namespace is not a network name.
	var keys []string
	st.State("jabber").Scan(ctx, "", func(k, _ string) bool { keys = append(keys, k); return true })
	if len(keys) != 0 {
		t.Fatalf("avatars leaked into the network's state: %v", keys)
	}
	// Stored compactly: base64 in JSON, not a byte array.
	raw, _, _ := st.State(Namespace).Get(ctx, avatarKey(alice))
	if strings.Contains(raw, "[") || len(raw) > len(pic)*4/3+100 {
		t.Fatalf("stored as %s", raw)
	}
	// Removed: known, no picture.
	if err := avatars.PutAvatar(ctx, alice, "image/png", nil); err != nil {
		t.Fatal(err)
	}
	av, ok, _ = avatars.Avatar(ctx, alice)
	if !ok || av.Hash != "" || len(av.Data) != 0 {
		t.Fatalf("after removal: %v %+v", ok, av)
	}
}
