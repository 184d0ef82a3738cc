package adapterstest

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
)

// Avatars is an adapters.AvatarStore in memory, for adapter tests (the
// service's is on the store): what one adapter stores, a test reads, and
// what a test puts, an adapter shows.
type Avatars struct {
	mu   sync.Mutex
	m    map[string]adapters.Avatar
	puts int
}

var _ adapters.AvatarStore = (*Avatars)(nil)

// NewAvatars returns an empty store.
func NewAvatars() *Avatars { return &Avatars{m: map[string]adapters.Avatar{}} }

func avatarKey(s bridge.Sender) string { return s.Network + "\x00" + s.ID }

// PutAvatar records s's avatar, as the service's store does (data over
// adapters.MaxAvatarSize is not kept).
func (st *Avatars) PutAvatar(_ context.Context, s bridge.Sender, mime string, data []byte) error {
	if len(data) > adapters.MaxAvatarSize {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.puts++
	st.m[avatarKey(s)] = adapters.Avatar{Hash: adapters.AvatarHash(data), Mime: mime, Data: slices.Clone(data)}
	return nil
}

// AvatarHash is the hash of s's avatar.
func (st *Avatars) AvatarHash(ctx context.Context, s bridge.Sender) (string, bool, error) {
	av, ok, err := st.Avatar(ctx, s)
	return av.Hash, ok, err
}

// Avatar is s's avatar.
func (st *Avatars) Avatar(_ context.Context, s bridge.Sender) (adapters.Avatar, bool, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	av, ok := st.m[avatarKey(s)]
	av.Data = slices.Clone(av.Data)
	return av, ok, nil
}

// Puts counts the PutAvatar calls that kept something.
func (st *Avatars) Puts() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.puts
}

// Wait waits up to timeout for s to have an avatar and returns it.
func (st *Avatars) Wait(t testing.TB, s bridge.Sender, timeout time.Duration) adapters.Avatar {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if av, ok, _ := st.Avatar(context.Background(), s); ok {
			return av
		}
		if time.Now().After(deadline) {
			t.Fatalf("no avatar for %s/%s after %v", s.Network, s.ID, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
