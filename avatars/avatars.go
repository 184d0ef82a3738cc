// Package avatars keeps the senders' avatars for all networks in the
// store (adapters.AvatarStore): one network reads them, another shows
// them.
package avatars

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	"github.com/switchboard-chat/switchboard/adapters"
	"github.com/switchboard-chat/switchboard/bridge"
)

// Namespace is the State namespace of the shared avatar store: like
// the service's own, "@" keeps it apart from every network's.
const Namespace = "@avatars"

// maxAvatarHashes bounds the in-memory hash cache; past it the cache
// starts over (the store still has everything).
const maxAvatarHashes = 20000

// avatarRecord is one stored avatar. JSON carries the bytes as base64:
// store values are text.
type avatarRecord struct {
	Hash string `json:"h,omitempty"`
	Mime string `json:"m,omitempty"`
	Data []byte `json:"d,omitempty"`
}

// Store is adapters.AvatarStore on top of the store's State, no
// table of its own. It caches each sender's hash (and that a sender has
// no record), since the Matrix adapter asks for it with every message.
type Store struct {
	state adapters.State
	log   *slog.Logger

	mu     sync.Mutex
	hashes map[senderKey]avatarHash
}

// senderKey keys the hash cache: cheaper per message than avatarKey.
type senderKey struct{ network, id string }

type avatarHash struct {
	hash  string
	known bool
}

var _ adapters.AvatarStore = (*Store)(nil)

func New(state adapters.State, log *slog.Logger) *Store {
	return &Store{state: state, log: log, hashes: map[senderKey]avatarHash{}}
}

// avatarKey is a sender's key: a hash, since ids may be long and hold
// anything.
func avatarKey(s bridge.Sender) string {
	sum := sha256.Sum256([]byte(s.Network + "\x00" + s.ID))
	return "avatar:" + hex.EncodeToString(sum[:16])
}

func (st *Store) remember(s bridge.Sender, h avatarHash) {
	key := senderKey{s.Network, s.ID}
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.hashes[key]; !ok && len(st.hashes) >= maxAvatarHashes {
		clear(st.hashes)
	}
	st.hashes[key] = h
}

// PutAvatar records s's avatar, or that s has none (empty data).
func (st *Store) PutAvatar(ctx context.Context, s bridge.Sender, mime string, data []byte) error {
	if len(data) > adapters.MaxAvatarSize {
		st.log.Debug("avatar over the size limit; not kept", "network", s.Network, "sender", s.ID, "size", len(data), "limit", adapters.MaxAvatarSize)
		return nil
	}
	if len(data) == 0 {
		mime = ""
	}
	rec := avatarRecord{Hash: adapters.AvatarHash(data), Mime: mime, Data: data}
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	key := avatarKey(s)
	if err := st.state.Put(ctx, key, string(raw)); err != nil {
		return fmt.Errorf("avatars: %w", err)
	}
	st.remember(s, avatarHash{hash: rec.Hash, known: true})
	return nil
}

// AvatarHash is the hash of s's avatar, from memory when it can be.
func (st *Store) AvatarHash(ctx context.Context, s bridge.Sender) (string, bool, error) {
	st.mu.Lock()
	h, cached := st.hashes[senderKey{s.Network, s.ID}]
	st.mu.Unlock()
	if cached {
		return h.hash, h.known, nil
	}
	av, ok, err := st.Avatar(ctx, s)
	if err != nil {
		return "", false, err
	}
	return av.Hash, ok, nil
}

// Avatar reads s's avatar from the store.
func (st *Store) Avatar(ctx context.Context, s bridge.Sender) (adapters.Avatar, bool, error) {
	key := avatarKey(s)
	raw, ok, err := st.state.Get(ctx, key)
	if err != nil {
		return adapters.Avatar{}, false, fmt.Errorf("avatars: %w", err)
	}
	if !ok {
		st.remember(s, avatarHash{})
		return adapters.Avatar{}, false, nil
	}
	var rec avatarRecord
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return adapters.Avatar{}, false, fmt.Errorf("avatars: stored avatar of %s: %w", s.ID, err)
	}
	st.remember(s, avatarHash{hash: rec.Hash, known: true})
	return adapters.Avatar{Hash: rec.Hash, Mime: rec.Mime, Data: rec.Data}, true, nil
}
